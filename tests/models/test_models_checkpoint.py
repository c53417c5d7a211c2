"""Checkpoint loading: every accepted layout (written from mmpose reference weights), and one
clear error for truncated, foreign and wrong-variant files."""

from __future__ import annotations

import os

import pytest
import torch

from litehrnet.models import build_model
from litehrnet.models.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, to_model_layout

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # from mmcv/mmengine imports


@pytest.fixture(scope="module")
def reference_state(reference_backbones):
    """mmpose's randomised naive_litehrnet_18 backbone weights + a random 17-keypoint head."""
    backbone = {k: v.clone() for k, v in reference_backbones("naive_litehrnet_18").state_dict().items()}
    g = torch.Generator().manual_seed(3)
    head = {"final_layer.weight": torch.randn(17, 30, 1, 1, generator=g), "final_layer.bias": torch.randn(17, generator=g)}
    return backbone, head


def _save(obj, path):
    torch.save(obj, path)
    return path


def _assert_loaded(model, backbone, head=None):
    state = model.state_dict()
    for k, v in backbone.items():
        assert torch.equal(state["backbone." + k], v), k
    for k, v in (head or {}).items():
        assert torch.equal(state["keypoint_head." + k], v), k


def test_mmpose0_full_model_with_meta(tmp_path, reference_state):
    backbone, head = reference_state
    sd = {**{"backbone." + k: v for k, v in backbone.items()}, **{"keypoint_head." + k: v for k, v in head.items()}}
    path = _save({"state_dict": sd, "meta": {"epoch": 210, "mmpose_version": "0.29.0"}}, tmp_path / "m0.pth")
    model = build_model("naive_litehrnet_18")
    meta = load_checkpoint(model, path)
    assert meta == {"epoch": 210, "mmpose_version": "0.29.0"}
    _assert_loaded(model, backbone, head)


def test_mmpose1_head_prefix(tmp_path, reference_state):
    backbone, head = reference_state
    sd = {**{"backbone." + k: v for k, v in backbone.items()}, **{"head." + k: v for k, v in head.items()},
          "data_preprocessor.mean": torch.zeros(3)}
    path = _save({"state_dict": sd, "meta": {"dataset_meta": {"dataset_name": "coco"}}}, tmp_path / "m1.pth")
    model = build_model("naive_litehrnet_18")
    assert load_checkpoint(model, path)["dataset_meta"]["dataset_name"] == "coco"
    _assert_loaded(model, backbone, head)


def test_bare_backbone_keeps_head_init(tmp_path, reference_state):
    backbone, _ = reference_state
    path = _save(backbone, tmp_path / "bare.pth")
    model = build_model("naive_litehrnet_18", num_keypoints=16)  # any head: only the backbone loads
    head_before = model.keypoint_head.final_layer.weight.clone()
    assert load_checkpoint(model, path) == {}
    _assert_loaded(model, backbone)
    assert torch.equal(model.keypoint_head.final_layer.weight, head_before)


def test_own_training_checkpoint_with_dataparallel_prefix(tmp_path, reference_state):
    backbone, head = reference_state
    source = build_model("naive_litehrnet_18")
    source.backbone.load_state_dict(backbone)
    source.keypoint_head.load_state_dict(head)
    optimizer = torch.optim.Adam(source.parameters(), lr=1e-3)
    sd = {"module." + k: v for k, v in source.state_dict().items()}
    path = _save({"state_dict": sd, "meta": {"epoch": 3}, "optimizer": optimizer.state_dict()}, tmp_path / "own.pth")
    model = build_model("naive_litehrnet_18")
    assert load_checkpoint(model, path) == {"epoch": 3}
    _assert_loaded(model, backbone, head)
    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), source.eval()(x), rtol=0, atol=0)


def test_truncated_file(tmp_path, reference_state):
    path = _save({"state_dict": reference_state[0]}, tmp_path / "cut.pth")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(build_model("naive_litehrnet_18"), path)
    msg = str(err.value)
    assert str(path) in msg and "truncated" in msg and "\n" not in msg


def test_missing_and_non_checkpoint_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "absent.pth")
    text = tmp_path / "notes.pth"
    text.write_text("hello")  # raises KeyError inside torch.load, not a pickling error
    with pytest.raises(CheckpointError, match="notes.pth.*not a PyTorch checkpoint"):
        read_checkpoint(text)


def test_pickled_objects_refused(tmp_path):
    """weights_only=True: a checkpoint pickling a custom object is refused, never executed."""
    path = tmp_path / "obj.pth"
    torch.save({"state_dict": {}, "cfg": os.stat_result(range(10))}, path)
    with pytest.raises(CheckpointError, match="weights_only"):
        read_checkpoint(path)


def test_wrong_variant_names_both_and_suggests_config(tmp_path):
    lite30 = build_model("litehrnet_30")
    path = _save({"state_dict": lite30.state_dict(), "meta": {}}, tmp_path / "lite30.pth")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(build_model("litehrnet_18"), path)
    msg = str(err.value)
    assert str(path) in msg and "'litehrnet_18'" in msg and "\n" not in msg
    assert "unexpected keys (backbone.stage0.2." in msg  # litehrnet_30 has 3 modules in stage 0
    assert "'litehrnet_30'" in msg and "configs/coco/litehrnet_30_coco_256x192.yaml" in msg


def test_wrong_keypoint_count_suggests_mpii(tmp_path):
    path = _save({"state_dict": build_model("litehrnet_18", num_keypoints=16).state_dict()}, tmp_path / "mpii.pth")
    model = build_model("litehrnet_18")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, path)
    msg = str(err.value)
    assert "shape mismatches (e.g. keypoint_head.final_layer.bias: checkpoint (16,) vs model (17,))" in msg
    assert "configs/mpii/litehrnet_18_mpii_256x256.yaml" in msg
    # non-strict: backbone loads, mismatched head is skipped with a warning
    head_before = model.keypoint_head.final_layer.weight.clone()
    with pytest.warns(UserWarning, match="strict=False"):
        load_checkpoint(model, path, strict=False)
    assert torch.equal(model.keypoint_head.final_layer.weight, head_before)
    assert torch.equal(model.backbone.stem.conv1.conv.weight, read_checkpoint(path)[0]["backbone.stem.conv1.conv.weight"])


def test_hrnet_checkpoint_into_lite_model(tmp_path):
    state = {k: v for k, v in build_model("hrnet_w32").state_dict().items()}
    path = _save({"state_dict": state}, tmp_path / "w32.pth")
    with pytest.raises(CheckpointError, match="looks like a 'hrnet_w32' checkpoint with 17 keypoints"):
        load_checkpoint(build_model("naive_litehrnet_18"), path)


def test_layout_detection():
    t = torch.zeros(1)
    assert to_model_layout({"backbone.a": t, "keypoint_head.b": t})[1] == "mmpose0"
    assert to_model_layout({"backbone.a": t, "head.final_layer.weight": t}) == (
        {"backbone.a": t, "keypoint_head.final_layer.weight": t}, "mmpose1")
    assert to_model_layout({"stem.conv1.conv.weight": t}) == ({"backbone.stem.conv1.conv.weight": t}, "backbone")
