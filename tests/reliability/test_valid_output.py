"""Valid output only: boxes validated, strict JSON everywhere, exports that can fail, models that say
when they know nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from torch import nn

import inference
from litehrnet.deploy.boxes import BoxTable, split_valid_boxes
from litehrnet.deploy.drawing import below_threshold_note
from litehrnet.deploy.pose_runner import PoseRunner
from litehrnet.evaluation import write_results_json
from litehrnet.export import ExportError, export_onnx, pose_metadata
from litehrnet.export.pipeline import weights_metadata
from litehrnet.keypoints import COCO_BODY_17
from tools import eval_e2e

POSE_HW = (64, 64)


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


class Grey(nn.Module):
    """Kneron-normalised image -> 17 heatmaps = pooled grey level (score = brightness), times ``gain``."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, x):
        grey = x.mean(1, keepdim=True) + 0.5
        return nn.functional.avg_pool2d(grey, 5, stride=4, padding=2).repeat(1, 17, 1, 1) * self.gain


def _meta(**extra) -> dict:
    info = COCO_BODY_17
    return {**pose_metadata("grey", POSE_HW, "kneron", "rgb", info.keypoint_names, info.flip_pairs, heatmap_stride=4),
            **extra}


@pytest.fixture(scope="module")
def random_weights_onnx(tmp_path_factory):
    out = tmp_path_factory.mktemp("grey") / "grey_random.onnx"
    export_onnx(Grey(), out, POSE_HW, simplify=False, metadata=_meta(weights="random"))
    return out


def _chain_yaml(folder, onnx_path) -> list[str]:
    pose, affine = folder / "pose.yaml", folder / "affine.yaml"
    pose.write_text(yaml.safe_dump(dict(onnx_path=str(onnx_path), input_w=POSE_HW[1], input_h=POSE_HW[0],
                                        norm="kneron", channel_order="rgb", decode="default", flip_test=False)))
    affine.write_text(yaml.safe_dump(dict(input_w=POSE_HW[1], input_h=POSE_HW[0], padding=1.25)))
    return ["--lite_hrnet_params", str(pose), "--rsn_affine_params", str(affine), "--threads", "1"]


def test_invalid_boxes_are_skipped_with_reasons(tmp_path, capsys):
    boxes = {"a.jpg": [[10, 10, 40, 80, 0.9], [math.nan, 10, 40, 80, 0.9], [10, 10, math.inf, 80],
                       [10, 10, 0, 80, 0.9], [10, 10, 1e12, 1e12, 0.9]],
             "b.jpg": [[0, 0, 20, 20]], "c.jpg": [[1, 1, 5, 5]]}
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(boxes))  # NaN / Infinity literals, as a broken producer writes them
    table = BoxTable(path)
    err = capsys.readouterr().err
    assert f"{path}: skipped 4 invalid box(es)" in err and "non-finite" in err and err.count("\n") == 1
    np.testing.assert_array_equal(table.lookup("dir/a.jpg"), np.float32([[10, 10, 40, 80, 0.9]]))
    assert table.report_unmatched(num_inputs=1) == 2
    err = capsys.readouterr().err
    assert "2 of 3 image key(s) matched none of the 1 input image(s)" in err
    kept, bad = split_valid_boxes(np.array([[0, 0, 10, 10, 1], [0, 0, -1, 10, 1], [2e5, 0, 10, 10, 1]]))
    assert len(kept) == 1 and [why for _, why in bad] == ["empty box (width or height <= 0)",
                                                          "absurd size or position (beyond 100000 px)"]


def test_keys_matching_nothing_say_so(tmp_path, capsys):
    (tmp_path / "boxes.json").write_text(json.dumps({"x.jpg": [[0, 0, 5, 5]], "y.jpg": [[0, 0, 5, 5]]}))
    table = BoxTable(tmp_path / "boxes.json")
    assert len(table.lookup("img/000001.jpg")) == 0
    assert table.report_unmatched(num_inputs=1) == 2
    assert "no key matched any input" in capsys.readouterr().err
    assert table.report_missing("img/000001.jpg") and not table.report_missing("other/x.jpg")  # inference.py
    assert "no key matches img/000001.jpg" in capsys.readouterr().err


def test_inference_with_hostile_boxes_writes_strict_json_and_says_nothing_is_drawn(
        tmp_path, random_weights_onnx, capsys):
    img = tmp_path / "dark.png"
    cv2.imwrite(str(img), np.full((120, 100, 3), 20, np.uint8))  # dark: every score ~0.08
    (tmp_path / "boxes.json").write_text(json.dumps(
        {"dark.png": [[10, 10, 40, 80], [math.nan, 0, 1, 1], [0, 0, math.inf, 5], [0, 0, 0, 0], [0, 0, 1e12, 1e12]]}))
    out, vis = tmp_path / "out.json", tmp_path / "vis.png"
    rc = inference.main(["--img-path", str(img), *_chain_yaml(tmp_path, random_weights_onnx),
                         "--boxes", str(tmp_path / "boxes.json"), "--save-path", str(out), "--vis", str(vis)])
    captured = capsys.readouterr()
    assert rc == 0
    record = _strict(out.read_text())
    assert len(record["bbox"]) == 1 and _strict(captured.out.strip())["bbox"] == record["bbox"]
    assert "skipped 4 invalid box(es)" in captured.err
    assert "random weights" in captured.err  # the runner warns: metadata weights=random
    assert "all keypoint scores < 0.3" in captured.err and vis.is_file()


def test_runner_warns_once_per_model(random_weights_onnx, capsys):
    params = dict(onnx_path=str(random_weights_onnx), input_w=POSE_HW[1], input_h=POSE_HW[0], norm="kneron",
                  channel_order="rgb", decode="default", flip_test=False)
    from litehrnet.deploy import base

    base._warned_weights.discard(str(random_weights_onnx))
    PoseRunner(params)
    PoseRunner(params)
    assert capsys.readouterr().err.count("random weights") == 1


def test_below_threshold_note():
    kpts = np.zeros((2, 17, 3))
    kpts[..., 2] = 0.1
    assert below_threshold_note(kpts, 0.3) == "all keypoint scores < 0.3 (max 0.10): nothing drawn"
    kpts[1, 3, 2] = 0.31
    assert below_threshold_note(kpts, 0.3) is None
    assert below_threshold_note(np.zeros((0, 17, 3)), 0.3) is None  # nobody found: nothing to explain


def test_export_refuses_near_zero_output_and_checks_relative_to_magnitude(tmp_path):
    with pytest.raises(ExportError, match="all near zero"):
        export_onnx(Grey(gain=1e-20), tmp_path / "zero.onnx", POSE_HW, simplify=False, metadata=_meta())
    assert not (tmp_path / "zero.onnx").exists()
    # large outputs (~1e5): float32 rounding differences grow with them; an absolute 1e-4 would refuse this
    torch.manual_seed(0)
    big = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(32, 17, 3, stride=2, padding=1))
    with torch.no_grad():
        for param in big.parameters():
            param.mul_(100.0)
    report = export_onnx(big.eval(), tmp_path / "big.onnx", POSE_HW, simplify=False, metadata=_meta())
    assert 1e-4 < report.max_abs_diff and (tmp_path / "big.onnx").is_file()


def test_weights_metadata():
    assert weights_metadata(None) == {"weights": "random"}
    assert weights_metadata({"iter": 40}) == {"weights": "barely-trained", "train_iters": "40"}
    assert weights_metadata({"iter": 50_000, "epoch": 210}) == {"weights": "trained", "train_iters": "50000"}
    assert weights_metadata({}) == {"weights": "trained"}  # official checkpoints without a counter


def test_strict_json_writers(tmp_path):
    with pytest.raises(ValueError):
        write_results_json([{"image_id": 1, "score": math.nan}], tmp_path / "r.json")
    assert not (tmp_path / "r.json").exists()
    gt = [{"img_path": "a.jpg", "lmk_coco_body_17pts": [[[1, 1, 1]] * 17]}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps([{"img_path": "z.jpg", "lmk_coco_body_17pts": [], "bbox": []}]))
    assert eval_e2e.main(["--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                          "--out", str(tmp_path / "m.json")]) == 0
    metrics = _strict((tmp_path / "m.json").read_text())
    assert metrics["l1"] is None and metrics["missed_persons"] == 1.0  # undefined metric: null, not NaN


def test_onnxruntime_telemetry_is_switched_off_before_sessions(random_weights_onnx, monkeypatch):
    import onnxruntime as ort

    calls = []
    monkeypatch.setattr(ort, "disable_telemetry_events", lambda: calls.append(1))
    PoseRunner(dict(onnx_path=str(random_weights_onnx), input_w=POSE_HW[1], input_h=POSE_HW[0], norm="kneron",
                    channel_order="rgb", decode="default", flip_test=False))
    assert calls
    repo = Path(__file__).resolve().parents[2]
    for path in [*repo.glob("litehrnet/**/*.py"), *repo.glob("bench/*.py"), *repo.glob("tools/*.py")]:
        text = path.read_text()
        if "InferenceSession(" in text:
            assert "disable_telemetry_events" in text or "quiet_onnxruntime" in text, path
