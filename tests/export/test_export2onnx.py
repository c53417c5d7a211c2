"""``export2onnx.py``: checkpoint -> verified ONNX, the --npu-rewrite path, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch

import export2onnx
from litehrnet.export import read_metadata
from litehrnet.models import build_model

REPO = Path(__file__).resolve().parents[2]
CFG_18 = str(REPO / "configs/coco/litehrnet_18_coco_256x192.yaml")
CFG_NAIVE = str(REPO / "configs/coco/naive_litehrnet_18_coco_256x192.yaml")


@pytest.fixture(scope="module")
def official_ckpt(tmp_path_factory, officialise_fn):
    torch.manual_seed(0)
    model = officialise_fn(build_model("litehrnet_18"), torch.randn(2, 3, 256, 192))
    path = tmp_path_factory.mktemp("ckpt") / "litehrnet_18.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"epoch": 210}}, path)
    return path


def run(argv, capsys):
    rc = export2onnx.main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_export_official_checkpoint(tmp_path, official_ckpt, capsys):
    out_path = tmp_path / "l18.onnx"
    rc, out, err = run([CFG_18, official_ckpt, "-o", out_path, "--check-npu", "KL520,KL720"], capsys)
    assert rc == 0, err
    assert "verified on a " in out and "(<= 1e-4 x max|output|)" in out
    # the official graph needs the CPU: the rank-5 shuffle Transposes break KL720 note 42
    assert "KL720 per Kneron's operator table" in out and "v0.33.1)): partial;" in out
    assert "note 42: fails transpose_perm_in" in out
    meta = read_metadata(out_path)
    assert (meta["variant"], meta["input_hw"], meta["norm"]) == ("litehrnet_18", "256,192", "torch")
    assert meta["weights"] == "trained"
    proto = onnx.load(str(out_path))
    assert proto.opset_import[0].version == 11 and proto.doc_string == ""


def test_export_npu_rewrite_of_random_init(tmp_path, capsys):
    out_path = tmp_path / "rw.onnx"
    rc, out, err = run([CFG_18, "none", "-o", out_path, "--npu-rewrite", "--check-npu", "KL720"], capsys)
    assert rc == 0, err
    assert "RANDOM-INIT" in out and "KL720 per Kneron's operator table" in out and "v0.33.1)): supported;" in out
    proto = onnx.load(str(out_path))
    assert "RANDOM-INIT" in proto.doc_string
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Transpose", "Reshape", "Split", "Slice", "Gather", "Shape"}
    assert read_metadata(out_path)["variant"] == "litehrnet_18_npu_rewrite"
    assert read_metadata(out_path)["weights"] == "random"  # the runners warn about it (issue 15 item 8)


def _error_line(rc, err) -> str:
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1, err
    return lines[0]


def test_missing_and_corrupt_checkpoints(tmp_path, capsys):
    line = _error_line(*run([CFG_18, tmp_path / "nope.pth"], capsys)[::2])
    assert "nope.pth" in line and "not found" in line
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a checkpoint")
    line = _error_line(*run([CFG_18, bad], capsys)[::2])
    assert line.startswith("error: ") and "bad.pth" in line


def test_checkpoint_of_another_variant(tmp_path, capsys):
    path = tmp_path / "naive.pth"
    torch.save({"state_dict": build_model("naive_litehrnet_18").state_dict()}, path)
    line = _error_line(*run([CFG_18, path], capsys)[::2])
    assert "naive.pth" in line and "naive_litehrnet_18" in line


@pytest.mark.parametrize("extra,match", [
    (["--shape", "250", "192"], "multiples of 32"),
    (["--opset", "99"], "opset 99 is not supported"),
])
def test_bad_shape_and_opset(extra, match, capsys):
    rc, out, err = run([CFG_18, "none", *extra], capsys)
    assert match in _error_line(rc, err) and out == ""      # refused before any work


def test_rewrite_of_a_naive_model_is_refused(capsys):
    assert "LITE blocks only" in _error_line(*run([CFG_NAIVE, "none", "--npu-rewrite"], capsys)[::2])
