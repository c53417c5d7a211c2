"""``tools/yolov5_to_onnx.py --kneron``: the input normalisation folded exactly into the first conv,
no input Mul/Add (what Kneron's optimiser turned into Transpose -> BN -> Transpose), and per-chip
CPU-node counts that follow the table literally."""

from __future__ import annotations

import copy
from collections import Counter

import onnx
import pytest
import torch

from litehrnet.kneron.checker import check_model


@pytest.fixture(scope="module")
def yolov5n(shared_dir):
    from litehrnet.yolov5.model import yolov5_from_checkpoint

    return yolov5_from_checkpoint(shared_dir / "weights" / "yolov5n.pt").fuse().eval()


def test_fold_is_exact_and_touches_only_the_border(yolov5n):
    from litehrnet.yolov5.model import fold_kneron_input, set_kneron_input

    affine = set_kneron_input(copy.deepcopy(yolov5n))
    folded = fold_kneron_input(set_kneron_input(copy.deepcopy(yolov5n)), (128, 96))
    assert folded.input_affine is None
    x = torch.rand(1, 3, 128, 96, generator=torch.Generator().manual_seed(0)) - 0.5   # x/256 - 0.5 range
    with torch.no_grad():
        for a, b in zip(affine(x), folded(x)):
            assert float((a - b).abs().max()) <= 1e-4 * float(a.abs().max())
    correction = folded.model[0].conv.border_correction[0]           # (C, 64, 48): 6x6 s2 p2 conv
    assert float(correction[:, 1:-1, 1:-1].abs().max()) < 1e-5       # interior: no padding in the window
    assert float(correction[:, 0].abs().max()) > 1e-3                # top row: two padded input rows


def _export(tmp_path, shared_dir, kneron: bool):
    from tools import yolov5_to_onnx

    out = tmp_path / ("kn.onnx" if kneron else "off.onnx")
    argv = ["--imgsz", "128", "-o", str(out), *(["--kneron"] if kneron else [])]
    assert yolov5_to_onnx.main([str(shared_dir / "weights" / "yolov5n.pt"), *argv]) == 0
    return onnx.load(str(out))


def test_kneron_export_has_no_input_mul_add_and_stays_on_the_npu(tmp_path, shared_dir):
    proto = _export(tmp_path, shared_dir, kneron=True)
    first = next(n for n in proto.graph.node if n.op_type != "Constant")
    assert first.op_type == "Conv" and first.input[0] == "input"
    readers = [n.op_type for n in proto.graph.node if "input" in n.input]
    assert readers == ["Conv"]
    ops = Counter(n.op_type for n in proto.graph.node)
    assert not ops.keys() & {"Transpose", "Reshape", "BatchNormalization"}
    assert {m.key: m.value for m in proto.metadata_props}["preprocess"] == "kneron"
    # literal reading: SiLU = Sigmoid + Mul are N on KL520, everything else (SPPF MaxPool k5 s1 p2,
    # row-then-column Resizes, Concat, Add) runs on every chip
    assert check_model(proto, "KL520").num_cpu_nodes == ops["Sigmoid"] + ops["Mul"] > 0
    for chip in ("KL720", "KL530", "KL630", "KL730"):
        report = check_model(proto, chip)
        assert report.ok, report.format_table()
        assert report.ops["MaxPool"].verdict == "supported" and report.ops["MaxPool"].count == 3


def test_official_export_resizes_are_ambiguous_on_kl720(tmp_path, shared_dir):
    proto = _export(tmp_path, shared_dir, kneron=False)
    ops = Counter(n.op_type for n in proto.graph.node)
    report = check_model(proto, "KL720")
    assert report.num_cpu_nodes == report.num_ambiguous_nodes == ops["Resize"] == 2
    assert report.verdict == "ambiguous" and check_model(proto, "KL730").ok
    assert check_model(proto, "KL520").ops["MaxPool"].verdict == "supported"
