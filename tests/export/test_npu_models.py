"""NPU-friendly Lite-HRNet: static pools, the trainable variant, and the exact rewrite."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from litehrnet.kneron.checker import check_model, tensor_shapes
from litehrnet.export import export_onnx, pose_metadata
from litehrnet.export.pipeline import real_crop_input
from litehrnet.keypoints import get_keypoint_info
from litehrnet.models import VARIANTS, build_model
from litehrnet.models.separable_resize import set_separable_upsampling
from litehrnet.export.npu_rewrite import NpuRewriteError, to_npu_rewrite
from litehrnet.models.static_pools import (
    StaticPoolError,
    cascade_global_pool,
    cascade_plan,
    pool_ratio,
    static_avg_pool,
)

COCO = get_keypoint_info("coco")
FORBIDDEN_OPS = {"Transpose", "Reshape", "Shape", "Gather", "Split"}


def assert_npu_constraints(model: onnx.ModelProto) -> None:
    """Issue 3, item 2: rank <= 4, no Transpose/Reshape/Shape/Gather, small GAPs, AvgPool k = s;
    issue 9: AvgPool with count_include_pad=0 and ceil_mode=0, every Resize changes one axis only,
    and zero CPU nodes on KL720 and KL730 by every reading of Kneron's table."""
    shapes = tensor_shapes(model)
    assert max(len(s) for s in shapes.values()) <= 4
    ops = {n.op_type for n in model.graph.node}
    assert not ops & FORBIDDEN_OPS, ops & FORBIDDEN_OPS
    for node in model.graph.node:
        if node.op_type == "GlobalAveragePool":
            h, w = shapes[node.input[0]][2:]
            assert h * w <= 256, (node.name, h, w)
        if node.op_type == "AveragePool":
            attrs = {a.name: list(a.ints) or a.i for a in node.attribute}
            assert attrs["kernel_shape"] == attrs["strides"] and set(attrs["kernel_shape"]) <= {2, 4, 8}
            assert attrs.get("count_include_pad", 0) == 0 and attrs.get("ceil_mode", 0) == 0
        if node.op_type == "Resize":
            src, dst = shapes[node.input[0]], shapes[node.output[0]]
            assert sum(a != b for a, b in zip(src, dst)) == 1, (node.name, src, dst)
    for chip in ("KL720", "KL730"):
        report = check_model(model, chip)
        assert report.ok and report.num_cpu_nodes == report.num_ambiguous_nodes == 0, report.format_table()


@pytest.mark.parametrize("in_hw,plan", [((64, 48), [8]), ((96, 72), [8]), ((48, 36), [4]),
                                        ((24, 18), [2]), ((16, 12), []), ((160, 160), [8, 4])])
def test_cascade_plan_reaches_256(in_hw, plan):
    assert cascade_plan(in_hw) == plan
    x = torch.randn(2, 3, *in_hw)
    torch.testing.assert_close(cascade_global_pool(x), x.mean((2, 3), keepdim=True), rtol=0, atol=1e-6)


def test_static_pool_matches_adaptive_and_fails_clearly():
    x = torch.randn(1, 4, 96, 72)
    for size in [(12, 9), (24, 18), (48, 36), (96, 72)]:
        torch.testing.assert_close(static_avg_pool(x, size), F.adaptive_avg_pool2d(x, size), rtol=0, atol=1e-6)
    with pytest.raises(StaticPoolError, match="cannot pool 64x50 to 8x7"):
        pool_ratio((64, 50), (8, 7))
    with pytest.raises(StaticPoolError, match="global pooling over 136x136"):
        cascade_plan((136, 136))  # 544x544 input: 17x17 = 289 > 256 after the 8x8 step


def test_npu_variant_rows_are_registered_and_trainable():
    assert VARIANTS["litehrnet_18_npu"]["arch"] == "litehrnet_npu"
    assert VARIANTS["litehrnet_30_npu"]["num_modules"] == VARIANTS["litehrnet_30"]["num_modules"]
    model = build_model("litehrnet_30_npu").train()
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 17, 16, 16)
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("variant", ["litehrnet_18_npu", "litehrnet_18_rewrite"])
def test_separable_upsampling_keeps_the_outputs(variant, officialise_fn):
    """Row-then-column resizes give what the 2-D resizes gave (<= 1e-5), and the switch really
    changes the graph: the separable export has twice the Resize nodes, each changing one axis."""
    torch.manual_seed(4)
    x = torch.randn(1, 3, 256, 192)
    if variant.endswith("_rewrite"):
        model = to_npu_rewrite(officialise_fn(build_model("litehrnet_18"), x), (256, 192))
    else:
        model = officialise_fn(build_model(variant), x)
    with torch.no_grad():
        separable = model(x)
        joint = set_separable_upsampling(model, False)(x)
        set_separable_upsampling(model, True)
    assert float(separable.abs().max()) > 0.5
    assert float((separable - joint).abs().max()) <= 1e-5
    from litehrnet.export.onnx_export import _trace

    resizes = [sum(n.op_type == "Resize" for n in _trace(set_separable_upsampling(model, flag), x, 11).graph.node)
               for flag in (True, False)]
    assert resizes[0] == 2 * resizes[1] > 0


def test_npu_variant_export_meets_constraints(tmp_path, officialise_fn):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 256, 192)
    model = officialise_fn(build_model("litehrnet_18_npu"), x)
    meta = pose_metadata("litehrnet_18_npu", (256, 192), "kneron", "rgb", COCO.keypoint_names, COCO.flip_pairs,
                         heatmap_stride=4)
    report = export_onnx(model, tmp_path / "npu.onnx", (256, 192), metadata=meta, verify_input=x[:1].numpy())
    assert report.max_abs_diff <= 1e-4
    assert_npu_constraints(onnx.load(str(tmp_path / "npu.onnx")))


def _crops(shared_data, input_hw, n=2):
    crops = [real_crop_input(input_hw, "torch", "rgb", shared_data / "coco_val2017_dev", i) for i in range(n)]
    return torch.from_numpy(np.concatenate(crops))


@pytest.mark.parametrize("variant", ["litehrnet_18", "litehrnet_30"])
@pytest.mark.parametrize("input_hw", [(256, 192), (384, 288)])
def test_rewrite_is_exact_on_real_crops(variant, input_hw, shared_data, officialise_fn):
    crops = _crops(shared_data, input_hw)
    torch.manual_seed(1)
    model = officialise_fn(build_model(variant), crops)
    rewritten = to_npu_rewrite(model, input_hw)
    with torch.no_grad():
        ref, got = model(crops), rewritten(crops)
    assert 0.5 < float(ref.abs().max()) <= 1.0 + 1e-6      # heatmaps peak at 1, like official weights
    assert float((ref - got).abs().max()) <= 1e-4
    assert rewritten.variant == f"{variant}_npu_rewrite"


def test_rewrite_is_exact_in_float64(officialise_fn):
    """Same function, not an approximation: in float64 only rounding noise remains."""
    torch.manual_seed(3)
    x = torch.randn(1, 3, 256, 192, dtype=torch.float64)
    model = officialise_fn(build_model("litehrnet_18"), x.float()).double()
    rewritten = to_npu_rewrite(model, (256, 192), one_logit=40.0)  # sigmoid(40) == 1.0 in float64
    with torch.no_grad():
        assert float((model(x) - rewritten(x)).abs().max()) <= 1e-9


def test_rewrite_onnx_meets_constraints_and_matches_original(tmp_path, officialise_fn):
    torch.manual_seed(2)
    x = torch.randn(1, 3, 384, 288)
    model = officialise_fn(build_model("litehrnet_18"), x)
    rewritten = to_npu_rewrite(model, (384, 288))
    meta = pose_metadata(rewritten.variant, (384, 288), "torch", "rgb", COCO.keypoint_names, COCO.flip_pairs,
                         heatmap_stride=rewritten.heatmap_stride)
    report = export_onnx(rewritten, tmp_path / "rw.onnx", (384, 288), metadata=meta, verify_input=x.numpy())
    proto = onnx.load(str(tmp_path / "rw.onnx"))
    assert_npu_constraints(proto)
    assert "Slice" not in {n.op_type for n in proto.graph.node}
    assert_blocked_layout_friendly(proto)
    from litehrnet.export import run_onnxruntime

    with torch.no_grad():
        official = model(x).numpy()
    assert np.abs(run_onnxruntime(proto, x.numpy()) - official).max() <= 1e-4
    assert report.op_histogram["AveragePool"] > 0


def assert_blocked_layout_friendly(proto: onnx.ModelProto) -> None:
    """What lets onnxruntime run the rewrite in NCHWc without layout reorders (its CPU speed):
    every Mul multiplies equal shapes (no broadcast) and every backbone 1x1 conv has 8k output
    channels (the keypoint head's final 17-channel conv is the graph output, left as it is)."""
    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    muls = [n for n in proto.graph.node if n.op_type == "Mul"]
    assert muls and all(shapes[n.input[0]] == shapes[n.input[1]] for n in muls)
    weights = {t.name: t.dims for t in proto.graph.initializer}
    pointwise = [weights[n.input[1]] for n in proto.graph.node
                 if n.op_type == "Conv" and list(weights[n.input[1]][2:]) == [1, 1]
                 and n.output[0] not in {o.name for o in proto.graph.output}]
    assert pointwise and all(w[0] % 8 == 0 for w in pointwise)


def test_rewrite_refuses_what_it_cannot_do_exactly():
    model = build_model("litehrnet_18")
    with pytest.raises(NpuRewriteError, match="global pooling over 64x50"):
        to_npu_rewrite(model, (256, 200))
    with pytest.raises(NpuRewriteError, match="global pooling over 136x136"):
        to_npu_rewrite(model, (544, 544))
    with pytest.raises(NpuRewriteError, match="LITE blocks only"):
        to_npu_rewrite(build_model("naive_litehrnet_18"), (256, 192))
    rewritten = to_npu_rewrite(model, (256, 192))
    with pytest.raises(NpuRewriteError, match="built for input"):
        rewritten(torch.zeros(1, 3, 384, 288))
