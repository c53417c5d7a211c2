"""Pure-torch training pieces: loss, lr schedule, RNG state round trip, checkpoint files, log + plot."""

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from litehrnet.training import (CheckpointKeeper, JointsMSELoss, TrainingError, WarmupStepSchedule,
                                build_optimizer, load_training_checkpoint, save_atomic, scaled_lr)
from litehrnet.training.logger import JsonLinesLogger, read_log
from litehrnet.training.rng import capture_rng_state, preserved_rng, restore_rng_state

REPO = Path(__file__).resolve().parents[2]


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TRAIN_CFG = {"optimizer": {"type": "adam", "lr": 2e-3, "weight_decay": 0.0, "momentum": 0.9},
             "lr_schedule": {"warmup_iters": 500, "warmup_ratio": 1e-3, "steps": [170, 200], "gamma": 0.1},
             "autoscale_base_batch": 512}


def test_joints_mse_matches_hand_computation():
    pred = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    target[:, 0] = 1.0            # joint 0 off by 1 everywhere
    target[0, 1, 0, 0] = 4.0      # joint 1 off by 4 at one pixel of sample 0
    weight = torch.ones(2, 3, 1)
    loss = JointsMSELoss()(pred, target, weight)
    # joint means of 0.5*err^2 over (n, h, w): j0 = 0.5, j1 = 0.5*16/32 = 0.25, j2 = 0
    assert loss.item() == pytest.approx((0.5 + 0.25 + 0.0) / 3)
    weight[:, 0] = 0.0            # an invisible joint contributes nothing
    assert JointsMSELoss()(pred, target, weight).item() == pytest.approx(0.25 / 3)
    weight[0, 1] = 0.5            # weight scales the error before squaring
    assert JointsMSELoss()(pred, target, weight).item() == pytest.approx(0.5 * 4 / 32 / 3)
    with pytest.raises(ValueError, match="differ"):
        JointsMSELoss()(pred, target[:, :2], weight)


def test_warmup_and_step_decay_match_recipe():
    sched = WarmupStepSchedule.from_config(TRAIN_CFG, 2e-3)
    assert sched.lr(0, 0) == pytest.approx(2e-6)                      # ratio 1e-3 at iteration 0
    assert sched.lr(250, 0) == pytest.approx(2e-3 * (1 - 0.5 * (1 - 1e-3)))
    assert sched.lr(500, 0) == pytest.approx(2e-3)
    assert sched.lr(10**6, 169) == pytest.approx(2e-3)
    assert sched.lr(10**6, 170) == pytest.approx(2e-4)                # x0.1 at epoch 170
    assert sched.lr(10**6, 200) == pytest.approx(2e-5)                # and at 200
    lrs = [sched.lr(i, 0) for i in range(501)]
    assert all(b > a for a, b in zip(lrs, lrs[1:]))                   # strictly increasing warm-up
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], TRAIN_CFG, 2e-3)
    assert isinstance(opt, torch.optim.Adam)
    assert sched.apply(opt, 250, 0) == opt.param_groups[0]["lr"]


def test_autoscale_lr_is_linear_in_total_batch():
    assert scaled_lr(TRAIN_CFG, 512, autoscale=True) == pytest.approx(2e-3)
    assert scaled_lr(TRAIN_CFG, 64, autoscale=True) == pytest.approx(2.5e-4)
    assert scaled_lr(TRAIN_CFG, 64, autoscale=False) == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="adam, adamw, sgd"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], {**TRAIN_CFG, "optimizer": {
            **TRAIN_CFG["optimizer"], "type": "lamb"}}, 1e-3)


def _draws():
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist()


def test_rng_state_round_trips_through_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leave a cached gaussian in numpy's state
    state = capture_rng_state()
    expected = _draws()
    save_atomic({"rng": [state]}, tmp_path / "rng.pth")
    loaded = torch.load(tmp_path / "rng.pth", weights_only=True)["rng"][0]
    _draws(), _draws()  # move every generator on
    restore_rng_state(loaded)
    assert _draws() == expected
    with preserved_rng():
        _draws()
    assert _draws() != expected  # the context restored the post-draw state, not the old one


def _ckpt(variant="litehrnet_18", epoch=1):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    return {"state_dict": model.state_dict(), "meta": {"variant": variant, "epoch": epoch},
            "optimizer": opt.state_dict(), "rng": [capture_rng_state()]}


def test_checkpoint_load_errors_are_one_clear_line(tmp_path):
    good = save_atomic(_ckpt(), tmp_path / "good.pth")
    assert load_training_checkpoint(good, "litehrnet_18")["meta"]["epoch"] == 1
    cases = {
        tmp_path / "missing.pth": "not found",
        save_atomic(_ckpt("hrnet_w32"), tmp_path / "other.pth"): "variant 'hrnet_w32'",
        save_atomic({"state_dict": {}}, tmp_path / "weights.pth"): "not a training checkpoint",
    }
    (tmp_path / "trunc.pth").write_bytes(good.read_bytes()[:100])
    cases[tmp_path / "trunc.pth"] = "cannot be read"
    for path, words in cases.items():
        with pytest.raises(TrainingError) as err:
            load_training_checkpoint(path, "litehrnet_18")
        msg = str(err.value)
        assert words in msg and str(path) in msg and "\n" not in msg


def test_keeper_rotates_epochs_and_keeps_one_best(tmp_path):
    keeper = CheckpointKeeper(tmp_path, max_keep=2)
    for epoch in range(1, 5):
        keeper.save_epoch(_ckpt(epoch=epoch), epoch)
    assert [p.name for p in keeper.epoch_checkpoints()] == ["epoch_3.pth", "epoch_4.pth"]
    assert keeper.latest().name == "epoch_4.pth"
    keeper.save_best(_ckpt(epoch=2), 2, "AP")
    keeper.save_best(_ckpt(epoch=4), 4, "AP")
    assert sorted(p.name for p in tmp_path.glob("best_*")) == ["best_AP_epoch_4.pth"]
    assert not [p for p in tmp_path.iterdir() if "tmp" in p.name]
    assert torch.load(tmp_path / "epoch_4.pth", weights_only=True)["meta"]["epoch"] == 4


def test_keeper_never_deletes_the_checkpoint_it_just_wrote(tmp_path):
    """A fresh run in a folder holding a longer run's epoch_51.pth: its epoch_1.pth must survive
    (found by the bench's QAT stage: the new checkpoint was rotated away, the resume then failed)."""
    CheckpointKeeper(tmp_path, max_keep=1).save_epoch(_ckpt(epoch=51), 51)
    keeper = CheckpointKeeper(tmp_path, max_keep=1)
    keeper.save_epoch(_ckpt(epoch=1), 1)
    assert (tmp_path / "epoch_1.pth").is_file() and keeper.latest().name == "epoch_1.pth"
    keeper.save_epoch(_ckpt(epoch=2), 2)
    assert sorted(p.name for p in keeper.epoch_checkpoints()) == ["epoch_2.pth", "epoch_51.pth"]


def test_log_and_plot(tmp_path, capsys):
    log = JsonLinesLogger(tmp_path / "log.jsonl")
    for it in range(1, 21):
        log.log("train", epoch=1 + it // 10, iter=it, lr=1e-3 * it / 20, loss=1.0 / it)
    log.log("epoch", epoch=1, iter=10, loss=0.3)
    log.log("val", epoch=1, iter=10, AP=0.25)
    log.log("train", epoch=2, iter=21, lr=1e-3, loss=float("nan"))
    log.close()
    records = list(read_log(tmp_path / "log.jsonl"))
    assert len(records) == 23 and records[-1]["loss"] == "nan" and records[-2]["AP"] == 0.25
    out = tmp_path / "curves.png"
    plot_log = _load_tool("plot_log")
    assert plot_log.main([str(tmp_path / "log.jsonl"), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    curves = plot_log.collect_curves(records, "AP")
    assert curves["AP"] == ([10], [0.25]) and len(curves["loss"][0]) == 20  # the "nan" string is skipped
    (tmp_path / "bad.jsonl").write_text('{"mode": "train"}\nnot json\n')
    capsys.readouterr()
    assert plot_log.main([str(tmp_path / "bad.jsonl")]) == 1
    assert "bad.jsonl:2" in capsys.readouterr().err
