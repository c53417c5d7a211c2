"""``test.py`` end to end: random-init litehrnet_18 checkpoint, detector boxes, results JSON, errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from litehrnet.models import build_model

REPO_ROOT = Path(__file__).resolve().parents[2]
DET_IMAGES = {785, 40083, 196141, 197388}


def _load_test_script():
    spec = importlib.util.spec_from_file_location("litehrnet_test_script", REPO_ROOT / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    return _load_test_script()


@pytest.fixture(scope="module")
def setup(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("test_script")
    cfg = tmp / "litehrnet_18_dev.yaml"
    cfg.write_text(
        f"_base_: {REPO_ROOT / 'configs/coco/litehrnet_18_coco_256x192.yaml'}\n"
        "model:\n  input_hw: [96, 64]\n"
        f"data:\n  root: {shared_data / 'coco_val2017_dev'}\n"
        "  val_ann: annotations/person_keypoints_val2017.json\n  val_img_dir: val2017\n"
        "  workers: 0\n  det_score_thr: 0.99\n"
        "test:\n  batch_size: 16\n  only_predicted_images: true\n"
    )
    torch.manual_seed(0)
    ckpt = tmp / "litehrnet_18_random.pth"
    torch.save({"state_dict": build_model("litehrnet_18").state_dict(), "meta": {"epoch": 0}}, ckpt)
    det_file = shared_data / "coco_dets/COCO_val2017_detections_AP_H_56_person_subset.json"
    return tmp, cfg, ckpt, det_file


def test_test_script_with_detections_writes_results(script, setup, capsys):
    tmp, cfg, ckpt, det_file = setup
    out = tmp / "results.json"
    rc = script.main([str(cfg), str(ckpt), "--det-file", str(det_file), "--out", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    results = json.loads(out.read_text())
    # 12 detections score > 0.99 on the 4 images; OKS-NMS may merge some of them
    assert 1 <= len(results) <= 12
    assert {r["image_id"] for r in results} <= DET_IMAGES
    assert all(len(r["keypoints"]) == 51 and r["category_id"] == 1 and r["score"] >= 0 for r in results)
    ap = float(next(line.split()[1] for line in printed.splitlines() if line.startswith("AP ")))
    assert 0.0 <= ap <= 1.0 and "results written to" in printed


def test_test_script_clear_errors(script, setup, shared_data, capsys):
    tmp, cfg, ckpt, det_file = setup
    wrong = tmp / "naive.pth"
    torch.save({"state_dict": build_model("naive_litehrnet_18").state_dict()}, wrong)
    assert script.main([str(cfg), str(wrong), "--det-file", str(det_file)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "naive.pth" in err[0]

    assert script.main([str(cfg), str(ckpt), "--det-file", str(tmp / "no_dets.json")]) == 2  # checked before any work
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_dets.json" in err[0]

    assert script.main([str(cfg), str(ckpt), "--cfg-options", "test.bogus=1"]) == 2
    assert "unknown key 'test.bogus'" in capsys.readouterr().err
