"""On real exports (official Lite-HRNet, its exact rewrite, the NPU variant, HRNet) the checker's
CPU-node count per chip equals an independent, literal reading of Kneron's table written here for
the op types these graphs contain (YOLOv5: tests/kneron/test_yolov5_kneron.py)."""

from __future__ import annotations

import onnx
import pytest
import torch

from litehrnet.export.npu_rewrite import to_npu_rewrite
from litehrnet.export.onnx_export import _simplify, _trace
from litehrnet.kneron.checker import check_model
from litehrnet.kneron.operators import CHIPS
from litehrnet.models import build_model

ALWAYS = {"Conv", "Relu", "Add", "Concat", "Constant", "BatchNormalization"}   # rank-4 graphs only
NOT_ON_520 = {"Sigmoid", "Mul", "Slice", "Reshape", "Transpose", "Split"}


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def literal_cpu(node, chip: str, shapes: dict) -> bool:
    """True when the table puts ``node`` on the CPU of ``chip`` (ambiguous counted as CPU)."""
    op, a = node.op_type, _attrs(node)
    if op in ALWAYS or (op in ("Sigmoid", "Mul", "Reshape") and chip != "KL520"):
        return False
    if op == "Split":
        return chip != "KL730"
    if chip == "KL520" and op in NOT_ON_520:
        return True
    if op == "Slice":
        return False                                       # steps 1, rank 4 in these graphs
    if op == "Transpose":
        perm = list(a["perm"])
        if chip == "KL720":
            return perm not in ([0, 1, 3, 2], [0, 2, 1, 3])
        return chip != "KL730" and perm[0] != 0
    if op == "GlobalAveragePool":
        h, w = shapes[node.input[0]][2:]
        return h * w > (256 if chip == "KL520" else 16384)
    if op == "AveragePool":
        k, s = list(a["kernel_shape"]), list(a.get("strides", [1, 1]))
        big = k == s and k[0] == k[1] and k[0] in (4, 8) and not a.get("count_include_pad", 0) \
            and not a.get("ceil_mode", 0)
        small = k[0] == k[1] <= 3 and s[0] == s[1] and s[0] <= k[0]
        return not (big or small)
    if op == "Resize":
        src, dst = shapes[node.input[0]], shapes[node.output[0]]
        changed = sum(x != y for x, y in zip(src[2:], dst[2:]))
        ctm = a.get("coordinate_transformation_mode", b"half_pixel").decode()
        if chip == "KL720":                                 # literal note 35: one direction only
            return changed > 1 or ctm not in ("asymmetric", "align_corners")
        if chip == "KL520":
            floor = a.get("mode", b"nearest") != b"nearest" or a.get("nearest_mode", b"") == b"floor"
            return not (floor and ctm in ("asymmetric", "align_corners"))
        return a.get("mode", b"nearest") == b"cubic"
    raise AssertionError(f"op {op} not covered by this reading")


def _shapes(proto) -> dict:
    inferred = onnx.shape_inference.infer_shapes(proto)
    return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}


def _graph(kind: str, input_hw) -> onnx.ModelProto:
    """The graph export_onnx writes (traced, simplified); weights do not matter to the checker, so
    random init and no onnxruntime verification (tests/export covers that)."""
    torch.manual_seed(0)
    variant = {"official": "litehrnet_18", "rewrite": "litehrnet_18", "npu": "litehrnet_18_npu", "npu30": "litehrnet_30_npu",
               "hrnet": "hrnet_w32"}[kind]
    model = build_model(variant).eval()
    if kind == "rewrite":
        model = to_npu_rewrite(model, input_hw)
    proto = _trace(model, torch.zeros(1, 3, *input_hw), 11)
    return _simplify(proto)


@pytest.mark.parametrize("kind,input_hw,zero_on", [
    ("official", (128, 96), ("KL730",)),      # KL730: Split, Transpose, Reshape, Slice all Y
    ("rewrite", (128, 96), ("KL720", "KL530", "KL630", "KL730")),
    ("npu", (128, 96), ("KL720", "KL530", "KL630", "KL730")),
    ("npu30", (128, 96), ("KL720", "KL530", "KL630", "KL730")),
    ("hrnet", (64, 64), ("KL520", "KL530", "KL630", "KL730")),
])
def test_cpu_nodes_follow_the_table_literally(kind, input_hw, zero_on):
    proto = _graph(kind, input_hw)
    shapes = _shapes(proto)
    for chip in CHIPS:
        report = check_model(proto, chip)
        expected = sum(literal_cpu(n, chip, shapes) for n in proto.graph.node)
        assert report.num_cpu_nodes == expected, (chip, report.format_table())
        assert (expected == 0) == (chip in zero_on), (chip, expected)
    if kind == "official":    # the channel shuffles: rank-5 Transposes, CPU on KL720, NPU on KL730
        ops = report.ops
        assert check_model(proto, "KL720").ops["Transpose"].cpu == ops["Transpose"].count > 0
        assert check_model(proto, "KL730").ops["Transpose"].cpu == 0
        assert check_model(proto, "KL720").ops["Reshape"].cpu == 0        # KL720 Reshape: unconditional Y
    if kind == "hrnet":       # nearest x2/x4/x8 fuse upsampling in both axes: KL720 note 35, ambiguous
        kl720 = check_model(proto, "KL720")
        assert kl720.num_cpu_nodes == kl720.num_ambiguous_nodes == kl720.ops["Resize"].count > 0
