"""Fixtures: the official YOLOv5n checkpoint and its ONNX exports (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def yolov5n_pt(shared_dir: Path) -> Path:
    return shared_dir / "weights" / "yolov5n.pt"


def _export(model, out: Path, preprocess: str) -> Path:
    from litehrnet.yolov5.model import export_yolov5_onnx, yolov5_onnx_metadata

    export_yolov5_onnx(model, out, (640, 640), yolov5_onnx_metadata(model, (640, 640), preprocess, "n"))
    return out


@pytest.fixture(scope="session")
def yolov5n_onnx(yolov5n_pt, tmp_path_factory) -> Path:
    """Official-preprocessing export (input x/255); tests/deploy reuses the same file."""
    out = tmp_path_factory.getbasetemp() / "shared_models" / "yolov5n.onnx"
    if not out.is_file():
        from litehrnet.yolov5.model import yolov5_from_checkpoint

        _export(yolov5_from_checkpoint(yolov5n_pt).fuse(), out, "official")
    return out


@pytest.fixture(scope="session")
def yolov5n_kneron_onnx(yolov5n_pt, tmp_path_factory) -> Path:
    """Kneron export (input x/256 - 0.5) of a fresh copy of the model."""
    from litehrnet.yolov5.model import set_kneron_input, yolov5_from_checkpoint

    model = set_kneron_input(yolov5_from_checkpoint(yolov5n_pt).fuse())
    return _export(model, tmp_path_factory.mktemp("yolo_kn") / "yolov5n_kneron.onnx", "kneron")


@pytest.fixture(scope="session")
def detector_params():
    """``detector_params(onnx_path, **overrides)`` -> a valid detector parameter dict."""
    return _detector_params


def _detector_params(onnx_path: Path, **overrides) -> dict:
    params = dict(onnx_path=str(onnx_path), input_w=640, input_h=640, conf_thres=0.25, iou_thres=0.45,
                  top_k_num=1000, classes=[0], preprocess="official")
    params.update(overrides)
    return params
