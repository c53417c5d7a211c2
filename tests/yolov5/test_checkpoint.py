"""Restricted reading of official YOLOv5 checkpoints."""

from __future__ import annotations

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from litehrnet.yolov5.model import build_yolov5, yolov5_from_checkpoint
from litehrnet.yolov5.checkpoint import YoloCheckpointError, read_yolov5_checkpoint


def test_official_checkpoint_contents(yolov5n_pt):
    ckpt = read_yolov5_checkpoint(yolov5n_pt)
    assert ckpt.yaml["nc"] == 80 and ckpt.yaml["width_multiple"] == 0.25 and ckpt.yaml["depth_multiple"] == 0.33
    assert ckpt.names[0] == "person" and len(ckpt.names) == 80
    assert ckpt.stride == [8.0, 16.0, 32.0]
    np.testing.assert_allclose(ckpt.anchors_px[0], [[10, 13], [16, 30], [33, 23]])
    np.testing.assert_allclose(ckpt.anchors_px[2], [[116, 90], [156, 198], [373, 326]])
    assert ckpt.state_dict["model.0.conv.weight"].shape == (16, 3, 6, 6)
    assert ckpt.state_dict["model.24.m.0.weight"].dtype == torch.float32  # stored fp16, read as fp32
    # only containers, tensors and allow-listed builtins were requested by the pickle
    assert {g for g in ckpt.globals_seen if not g.startswith(("models.", "torch."))} <= {
        "collections.OrderedDict", "__builtin__.set"}


def test_strict_load_and_fuse_keep_outputs(yolov5n_pt):
    model = yolov5_from_checkpoint(yolov5n_pt)
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x)
        after = model.fuse()(x)
    assert [t.shape for t in before] == [(1, 255, 16, 12), (1, 255, 8, 6), (1, 255, 4, 3)]
    for a, b in zip(before, after):
        assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("variant,params", [("n", 1_872_157), ("s", 7_235_389)])
def test_variant_parameter_counts_match_official(variant, params):
    assert sum(p.numel() for p in build_yolov5(variant).parameters()) == params


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch should_not_exist",))


def _zip_with_pickle(path, obj) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))


def test_refuses_arbitrary_globals(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pt"
    _zip_with_pickle(bad, {"model": _Evil()})
    with pytest.raises(YoloCheckpointError, match=r"refusing pickle global '(posix|os)\.system'"):
        read_yolov5_checkpoint(bad)
    assert not (tmp_path / "should_not_exist").exists()


def test_clear_errors_for_wrong_files(tmp_path):
    with pytest.raises(YoloCheckpointError, match="not found"):
        read_yolov5_checkpoint(tmp_path / "missing.pt")
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(YoloCheckpointError, match="not a torch zip checkpoint"):
        read_yolov5_checkpoint(text)
    state_dict_only = tmp_path / "sd.pt"
    buffer = io.BytesIO()
    torch.save({"state_dict": {"w": torch.zeros(2)}}, buffer)
    state_dict_only.write_bytes(buffer.getvalue())
    with pytest.raises(YoloCheckpointError, match="no YOLOv5 'model' entry"):
        read_yolov5_checkpoint(state_dict_only)


def test_export_cli_rejects_bad_arguments(tmp_path, capsys):
    from tools import yolov5_to_onnx

    assert yolov5_to_onnx.main([str(tmp_path / "x.pt"), "--imgsz", "630", "-o", str(tmp_path / "y.onnx")]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert yolov5_to_onnx.main([str(tmp_path / "x.pt"), "-o", str(tmp_path / "y.onnx")]) == 2
    assert "x.pt: checkpoint file not found" in capsys.readouterr().err
    assert not (tmp_path / "y.onnx").exists()
