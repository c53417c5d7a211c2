"""CI learning test: two short epochs on the synthetic set lower the loss and raise held-out AP.

96 generated training images (about 140 figures, 38 iterations of 4 per epoch) at a 64x64 input;
AP (pycocotools, GT boxes, flip test) on 16 held-out images that training never sees. A broken
loss, target, optimiser step, data pipeline or left/right convention keeps AP at its untrained
level (0.0 for this seed).
"""

from __future__ import annotations

import json

import pytest

from litehrnet.config import load_config
from litehrnet.data.synthetic import SyntheticSpec, make_synthetic_coco
from litehrnet.models import build_model_from_config
from litehrnet.training.predict import evaluate_model
from litehrnet.training.rng import seed_everything
from litehrnet.training.trainer import TrainOptions, train

from training_helpers import write_config

MIN_AP_GAIN = 0.005


@pytest.mark.slow
def test_two_short_epochs_reduce_loss_and_raise_heldout_ap(tmp_path):
    root = tmp_path / "synthetic"
    make_synthetic_coco(root, SyntheticSpec(num_train=96, num_val=16, seed=0))
    cfg = load_config(write_config(
        tmp_path / "cfg.yaml", root,
        data={"aug": {"rot_prob": 0.0, "half_body_prob": 0.0, "scale_factor": 0.0}},
        train={"epochs": 2, "optimizer": {"lr": 1e-2}, "lr_schedule": {"warmup_iters": 5},
               "validate_interval": 1, "log_interval": 5}))
    seed_everything(cfg["train"]["seed"])        # the trainer builds its model after the same seeding
    ap_before = evaluate_model(build_model_from_config(cfg), cfg, "val")["AP"]

    result = train(cfg, TrainOptions(work_dir=str(tmp_path / "work"), show_progress=False))
    first_loss = next(json.loads(line)["loss"] for line in (tmp_path / "work/log.jsonl").read_text().splitlines()
                      if json.loads(line)["mode"] == "train")
    epoch1, epoch2 = result.history
    assert epoch1["iters"] >= 30
    assert epoch2["loss"] < epoch1["loss"] < first_loss
    assert epoch2["loss"] < 0.8 * first_loss
    ap_after = epoch2["AP"]
    print(f"synthetic held-out AP {ap_before:.4f} -> {epoch1['AP']:.4f}, {epoch2['AP']:.4f}; "
          f"loss {first_loss:.5f} -> {epoch1['loss']:.5f} -> {epoch2['loss']:.5f}")
    assert ap_after >= ap_before + MIN_AP_GAIN
    assert result.best_checkpoint is not None and result.best_checkpoint.is_file()
    assert result.best_metric == pytest.approx(max(epoch1["AP"], epoch2["AP"]))
