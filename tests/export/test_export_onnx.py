"""The export library on a tiny network: static shapes, metadata contract, verification, errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from litehrnet.config import SCHEMA, merge
from litehrnet.export import (
    INPUT_NAME,
    OUTPUT_NAME,
    REQUIRED_KEYS,
    ExportError,
    export_onnx,
    metadata_from_config,
    pose_metadata,
    read_metadata,
    run_onnxruntime,
)
from litehrnet.keypoints import get_keypoint_info

COCO = get_keypoint_info("coco")


class TinyPose(nn.Module):
    """3 -> K heatmaps at stride 4 with a BN, an upsample and a pooled branch."""

    def __init__(self, k: int = 17) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, k, 1)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = y + nn.functional.interpolate(nn.functional.avg_pool2d(y, 2), scale_factor=2.0, mode="nearest")
        return self.head(y)


class CallCounter(nn.Module):
    """Output depends on how often forward ran: the trace and the eager call disagree."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * float(self.calls)


def coco_meta(variant: str = "tiny", hw=(64, 32)) -> dict:
    return pose_metadata(variant, hw, "kneron", "rgb", COCO.keypoint_names, COCO.flip_pairs, heatmap_stride=4)


def test_export_writes_static_verified_model_with_metadata(tmp_path):
    torch.manual_seed(0)
    model = TinyPose()
    model.bn.running_mean.normal_()
    model.bn.running_var.uniform_(0.5, 2.0)
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 32)).astype(np.float32)
    report = export_onnx(model, tmp_path / "m.onnx", (64, 32), metadata=coco_meta(), verify_input=x)

    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert [i.name for i in proto.graph.input] == [INPUT_NAME]
    assert [o.name for o in proto.graph.output] == [OUTPUT_NAME]
    dims = [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 32]
    assert proto.opset_import[0].version == 11
    assert "BatchNormalization" not in report.op_histogram       # folded
    meta = read_metadata(tmp_path / "m.onnx")
    assert tuple(meta) == (*REQUIRED_KEYS, "batch") and meta["batch"] == "1"  # batch: written by export_onnx
    assert meta["input_hw"] == "64,32" and meta["heatmap_stride"] == "4" and meta["num_keypoints"] == "17"
    assert json.loads(meta["keypoint_names"])[0] == "nose"
    assert json.loads(meta["flip_pairs"])[0] == [1, 2]
    assert meta["producer"] == "litehrnet-kneron"
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    diff = float(np.abs(run_onnxruntime(tmp_path / "m.onnx", x) - expected).max())
    assert diff <= 1e-4 and report.max_abs_diff == pytest.approx(diff, abs=1e-7)
    assert report.output_shape == (1, 17, 16, 8)
    assert "max|onnxruntime - torch|" in report.summary()


def test_opset_13_and_no_simplify(tmp_path):
    report = export_onnx(TinyPose(), tmp_path / "m13.onnx", (32, 32), opset=13, simplify=False,
                         metadata=coco_meta(hw=(32, 32)))
    assert onnx.load(str(tmp_path / "m13.onnx")).opset_import[0].version == 13
    assert not report.simplified


@pytest.mark.parametrize("hw,opset,match", [
    ((250, 192), 11, "multiples of 32"),
    ((256, 0), 11, "multiples of 32"),
    ((256, 192), 9, "opset 9 is not supported"),
    ((256, 192), 99, "opset 99 is not supported"),
])
def test_bad_size_or_opset_is_one_clear_error(tmp_path, hw, opset, match):
    with pytest.raises(ExportError, match=match):
        export_onnx(TinyPose(), tmp_path / "x.onnx", hw, opset=opset, metadata=coco_meta())
    assert not (tmp_path / "x.onnx").exists()


def test_mismatch_with_torch_writes_nothing(tmp_path):
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_onnx(CallCounter(), tmp_path / "bad.onnx", (32, 32), metadata=coco_meta(hw=(32, 32)))
    assert list(tmp_path.iterdir()) == []


def test_metadata_from_config_and_validation():
    cfg = merge(SCHEMA, {"data": {"norm": "kneron", "channel_order": "bgr"}})
    model = SimpleNamespace(variant="litehrnet_18", heatmap_stride=4)  # what metadata reads of a model
    meta = metadata_from_config(cfg, model)
    assert (meta["variant"], meta["norm"], meta["channel_order"], meta["input_hw"], meta["heatmap_stride"]) == \
        ("litehrnet_18", "kneron", "bgr", "256,192", "4")
    mpii = merge(SCHEMA, {"data": {"keypoint_layout": "mpii"}, "model": {"num_keypoints": 16}})
    assert metadata_from_config(mpii, model)["num_keypoints"] == "16"
    with pytest.raises(ValueError, match="has 16 keypoints"):
        metadata_from_config(merge(SCHEMA, {"data": {"keypoint_layout": "mpii"}}), model)
    with pytest.raises(ValueError, match="norm must be one of"):
        pose_metadata("v", (256, 192), "imagenet", "rgb", ["a"], [], heatmap_stride=4)
