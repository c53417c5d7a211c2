"""Fixtures for the deploy runners: small pose ONNX models and runner YAML files.

``analytic_pose_onnx``: a pose "network" whose 17 heatmaps are the grey image average-pooled
over 5x5 windows centred on every 4th pixel (heatmap pixel ``j`` <-> input pixel ``4j``, the
decoder's convention), so a bright dot in the crop is where every keypoint must be found - an exact,
training-free check of crop geometry, decode and mapping back. ``litehrnet18_onnx``: a synthetic-weights
``litehrnet_18`` exported by :func:`litehrnet.export.export_onnx` (the real graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import yaml

from deploy_helpers import POSE_HW, PooledGrey, affine_params, pose_metadata_for, pose_params
from litehrnet.export import export_onnx


@pytest.fixture(scope="session")
def analytic_pose_onnx(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pose") / "pooled_grey.onnx"
    export_onnx(PooledGrey(), out, POSE_HW, simplify=False, metadata=pose_metadata_for("pooled_grey"))
    return out


@pytest.fixture(scope="session")
def analytic_pose_onnx_dynamic(analytic_pose_onnx, tmp_path_factory) -> Path:
    """Same model with a dynamic batch dimension (the runner then sends all crops at once)."""
    proto = onnx.load(str(analytic_pose_onnx))
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    out = tmp_path_factory.mktemp("pose_dyn") / "pooled_grey_dynamic.onnx"
    onnx.save(proto, str(out))
    return out


@pytest.fixture(scope="session")
def litehrnet18_model():
    torch.manual_seed(0)
    from litehrnet.export.synthetic import synthetic_trained_weights
    from litehrnet.models import build_model

    # trained-like activation ranges: mmpose's init gives ~1e-18 heatmaps, which export refuses
    calib = torch.rand(2, 3, *POSE_HW, generator=torch.Generator().manual_seed(0)) - 0.5
    return synthetic_trained_weights(build_model("litehrnet_18"), calib)


@pytest.fixture(scope="session")
def litehrnet18_onnx(litehrnet18_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lhr") / "litehrnet_18.onnx"
    verify = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, *POSE_HW)).astype(np.float32)
    export_onnx(litehrnet18_model, out, POSE_HW, simplify=False, metadata=pose_metadata_for("litehrnet_18"),
                verify_input=verify)
    return out


@pytest.fixture(scope="session")
def yolov5n_onnx(shared_dir, tmp_path_factory) -> Path:
    """The official YOLOv5n export (shared with tests/yolov5 through the session temp folder)."""
    out = tmp_path_factory.getbasetemp() / "shared_models" / "yolov5n.onnx"
    if not out.is_file():
        from litehrnet.yolov5.model import export_yolov5_onnx, yolov5_from_checkpoint, yolov5_onnx_metadata

        model = yolov5_from_checkpoint(shared_dir / "weights" / "yolov5n.pt").fuse()
        export_yolov5_onnx(model, out, (640, 640), yolov5_onnx_metadata(model, (640, 640), "official", "n"))
    return out


@pytest.fixture
def yaml_set(tmp_path, analytic_pose_onnx):
    """Write the three runner YAMLs (pose: analytic model, relative path) and return their paths."""

    def write(detector_onnx: Path | None = None, pose_onnx: Path = analytic_pose_onnx, **pose_overrides):
        folder = tmp_path / "params"
        folder.mkdir(exist_ok=True)
        pose = pose_params(Path(pose_onnx), **pose_overrides)
        paths = {"pose": folder / "pose.yaml", "affine": folder / "affine.yaml", "yolov5": folder / "yolov5.yaml"}
        paths["pose"].write_text(yaml.safe_dump(pose))
        paths["affine"].write_text(yaml.safe_dump(affine_params()))
        if detector_onnx is not None:
            paths["yolov5"].write_text(yaml.safe_dump(dict(
                onnx_path=str(detector_onnx), input_w=640, input_h=640, conf_thres=0.25, iou_thres=0.45,
                top_k_num=100, classes=[0], preprocess="official")))
        return paths

    return write
