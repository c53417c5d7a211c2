"""train.py end to end on the tiny synthetic set: resume exactness, NaN stop, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

import train as train_script
from litehrnet.config import load_config
from litehrnet.models import build_model
from litehrnet.models.checkpoint import load_checkpoint
from litehrnet.training import JointsMSELoss, save_atomic
from litehrnet.training.rng import capture_rng_state

from training_helpers import write_config


def _run(capsys, *argv: str) -> tuple[int, list[str]]:
    rc = train_script.main([*map(str, argv), "--no-progress"])
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip() and "Warning" not in line]


def _weights(path) -> dict:
    return torch.load(path, weights_only=True)


def test_resume_mid_epoch_gives_identical_weights(tmp_path, tiny_synthetic, capsys):
    cfg_path = write_config(tmp_path / "cfg.yaml", tiny_synthetic)  # default augmentation on
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert _run(capsys, cfg_path, "--work-dir", full, "--no-validate", "--deterministic")[0] == 0
    # "kill" the second run one iteration into epoch 2: the partial epoch is never saved
    assert _run(capsys, cfg_path, "--work-dir", cut, "--no-validate", "--deterministic",
                "--cfg-options", "train.max_iters=4")[0] == 0
    assert sorted(p.name for p in cut.glob("epoch_*.pth")) == ["epoch_1.pth"]
    assert _run(capsys, cfg_path, "--work-dir", cut, "--no-validate", "--deterministic",
                "--resume-from", "auto")[0] == 0
    a, b = _weights(full / "epoch_2.pth"), _weights(cut / "epoch_2.pth")
    assert a["meta"]["iter"] == b["meta"]["iter"] == 2 * a["meta"]["iter"] // 2 > 3
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    exp_a, exp_b = a["optimizer"]["state"], b["optimizer"]["state"]
    assert all(torch.equal(exp_a[i]["exp_avg_sq"], exp_b[i]["exp_avg_sq"]) for i in exp_a)
    # our training checkpoints load through the model zoo's loader (test.py / export2onnx.py use it)
    meta = load_checkpoint(build_model("litehrnet_18"), full / "epoch_2.pth")
    assert meta["epoch"] == 2
    # the resolved config is saved and reloads to the same dict
    saved = yaml.safe_load((full / "config.yaml").read_text())
    assert saved == load_config(cfg_path)
    # epoch 2 changed the weights (a resume that skipped training would fail the equality above
    # only if epoch 2 did something)
    first = _weights(full / "epoch_1.pth")["state_dict"]
    assert not torch.equal(first["keypoint_head.final_layer.weight"], a["state_dict"]["keypoint_head.final_layer.weight"])


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, tiny_synthetic, capsys, monkeypatch):
    calls = {"n": 0}
    real_forward = JointsMSELoss.forward

    def forward_nan_in_epoch_2(self, *args):
        calls["n"] += 1
        loss = real_forward(self, *args)
        return loss * float("nan") if calls["n"] > 4 else loss

    monkeypatch.setattr(JointsMSELoss, "forward", forward_nan_in_epoch_2)
    work = tmp_path / "work"
    rc, lines = _run(capsys, write_config(tmp_path / "cfg.yaml", tiny_synthetic, train={"epochs": 3}),
                     "--work-dir", work, "--no-validate")
    assert rc == 1 and len(lines) == 1
    assert "NaN" in lines[0] and "epoch 2" in lines[0] and str(work / "epoch_1.pth") in lines[0]
    assert sorted(p.name for p in work.glob("*.pth")) == ["epoch_1.pth"]
    assert _weights(work / "epoch_1.pth")["meta"]["epoch"] == 1
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert records[-1]["mode"] == "error"


def test_missing_and_empty_dataset_are_one_line(tmp_path, tiny_synthetic, capsys):
    rc, lines = _run(capsys, write_config(tmp_path / "a.yaml", tmp_path / "nowhere"), "--work-dir", tmp_path / "a")
    assert rc == 2 and len(lines) == 1 and "nowhere" in lines[0] and "make_synthetic" in lines[0]  # checked up front
    empty = tmp_path / "empty"
    (empty / "annotations").mkdir(parents=True)
    (empty / "train").mkdir()
    data = json.loads((tiny_synthetic / "annotations/person_keypoints_train.json").read_text())
    (empty / "annotations/person_keypoints_train.json").write_text(json.dumps({**data, "annotations": []}))
    rc, lines = _run(capsys, write_config(tmp_path / "b.yaml", empty), "--work-dir", tmp_path / "b", "--no-validate")
    assert rc == 1 and len(lines) == 1 and "person_keypoints_train.json" in lines[0]


def test_checkpoint_of_another_variant_is_one_line(tmp_path, tiny_synthetic, capsys):
    other = build_model("naive_litehrnet_18")
    opt = torch.optim.Adam(other.parameters())
    ckpt = save_atomic({"state_dict": other.state_dict(), "meta": {"variant": "naive_litehrnet_18", "epoch": 1},
                        "optimizer": opt.state_dict(), "rng": [capture_rng_state()]}, tmp_path / "naive.pth")
    cfg_path = write_config(tmp_path / "cfg.yaml", tiny_synthetic)
    rc, lines = _run(capsys, cfg_path, "--work-dir", tmp_path / "w1", "--resume-from", ckpt)
    assert rc == 1 and len(lines) == 1
    assert "naive_litehrnet_18" in lines[0] and "litehrnet_18" in lines[0] and str(ckpt) in lines[0]
    weights = save_atomic({"state_dict": other.state_dict()}, tmp_path / "naive_weights.pth")
    rc, lines = _run(capsys, cfg_path, "--work-dir", tmp_path / "w2", "--load-from", weights)
    assert rc == 1 and len(lines) == 1 and "naive_weights.pth" in lines[0]


def test_bad_config_option_is_one_line(tmp_path, tiny_synthetic, capsys):
    rc, lines = _run(capsys, write_config(tmp_path / "cfg.yaml", tiny_synthetic), "--cfg-options", "train.epoch=3")
    assert rc == 2 and len(lines) == 1 and "train.epoch" in lines[0] and "epochs" in lines[0]


def test_autoscaled_lr_and_amp_refused_on_cpu(tmp_path, tiny_synthetic, capsys):
    cfg_path = write_config(tmp_path / "cfg.yaml", tiny_synthetic, train={"lr_schedule": {"warmup_iters": 1}})
    work = tmp_path / "autoscale"
    rc, lines = _run(capsys, cfg_path, "--work-dir", work, "--no-validate", "--autoscale-lr",
                     "--cfg-options", "train.max_iters=2")
    assert rc == 0, lines
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["mode"] == "train"]
    assert [r["iter"] for r in train_records] == [1, 2]
    assert all(0 < r["loss"] < 1 for r in train_records)
    assert train_records[1]["lr"] == pytest.approx(2e-3 * 4 / 512)  # batch 4 x 1 process / 512
    assert not list(work.glob("*.pth"))                              # a partial epoch is not checkpointed
    # mixed precision is CUDA-only (slower on CPU): one line, exit 2, nothing written
    rc, lines = _run(capsys, cfg_path, "--work-dir", tmp_path / "amp", "--amp")
    assert rc == 2 and len(lines) == 1 and "--amp" in lines[0] and "--device cuda" in lines[0]
    assert not (tmp_path / "amp").exists()
