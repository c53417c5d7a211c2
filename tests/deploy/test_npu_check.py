"""The Kneron NPU checker: every rule on small hand-built ONNX graphs (onnx.helper)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from litehrnet.deploy import npu_check
from litehrnet.deploy.npu_check import check_model, load_ops_table, main

F32 = TensorProto.FLOAT


def make_model(nodes, in_shape, out_shape, initializers=(), extra_outputs=()) -> onnx.ModelProto:
    """Single input ``x`` -> output ``y`` graph at opset 11."""
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", F32, in_shape)],
        [helper.make_tensor_value_info("y", F32, out_shape), *extra_outputs],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    onnx.checker.check_model(model)
    return model


def const(name: str, values, dtype=np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def verdict(model, target: str, op: str) -> str:
    return check_model(model, target).ops[op].verdict


def test_plain_conv_graph_runs_everywhere():
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    model = make_model([helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                        helper.make_node("Relu", ["c"], ["y"])], [1, 3, 8, 8], [1, 4, 8, 8], [w])
    for target in ("KL520", "KL720", "KL730"):
        report = check_model(model, target)
        assert report.ok and report.verdict == "supported"
        assert {op: v.count for op, v in report.ops.items()} == {"Conv": 1, "Relu": 1}


def test_rank5_reshape_and_transpose_are_rejected():
    nodes = [
        helper.make_node("Reshape", ["x", "s5"], ["r5"]),
        helper.make_node("Transpose", ["r5"], ["t5"], perm=[0, 2, 1, 3, 4]),
        helper.make_node("Reshape", ["t5", "s4"], ["y"]),
    ]
    model = make_model(nodes, [1, 4, 2, 2], [1, 4, 2, 2],
                       [const("s5", [1, 2, 2, 2, 2]), const("s4", [1, 4, 2, 2])])
    report = check_model(model, "KL720")  # Reshape is a KL720 op: only the rank makes it fail
    assert report.max_rank == 5 and report.num_rank_gt4_tensors == 2
    assert report.ops["Reshape"].verdict == "unsupported"
    assert report.ops["Transpose"].reasons == ["rank-5 tensor"]
    assert not report.ok


@pytest.mark.parametrize("hw,kl520,kl720", [
    ((16, 16), "supported", "supported"),       # 256 elements: the KL520 limit
    ((17, 16), "unsupported", "supported"),     # 272 > 256
    ((128, 129), "unsupported", "unsupported"),  # 16512 > 16384
])
def test_global_avgpool_size_limits(hw, kl520, kl720):
    model = make_model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], [1, 2, *hw], [1, 2, 1, 1])
    assert verdict(model, "KL520", "GlobalAveragePool") == kl520
    assert verdict(model, "KL720", "GlobalAveragePool") == kl720


def test_partial_verdict_lists_the_reason():
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
             helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
             helper.make_node("GlobalAveragePool", ["p"], ["y"])]
    model = make_model(nodes, [1, 2, 64, 48], [1, 2, 1, 1])
    v = check_model(model, "KL520").ops["GlobalAveragePool"]
    assert (v.count, v.unsupported, v.verdict) == (2, 1, "partial")
    assert v.reasons == ["GlobalAveragePool over 64x48=3072 > 256"]
    assert "partial (1/2: GlobalAveragePool over 64x48=3072 > 256)" in check_model(model, "KL520").format_table()


@pytest.mark.parametrize("attrs,ok", [
    (dict(kernel_shape=[2, 2], strides=[2, 2]), True),
    (dict(kernel_shape=[8, 8], strides=[8, 8]), True),
    (dict(kernel_shape=[4, 2], strides=[4, 2]), True),
    (dict(kernel_shape=[3, 3], strides=[3, 3]), False),           # kernel not in {2, 4, 8}
    (dict(kernel_shape=[2, 2], strides=[1, 1]), False),           # kernel != stride
    (dict(kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1]), False),
])
def test_avgpool_kernel_equals_stride(attrs, ok):
    node = helper.make_node("AveragePool", ["x"], ["y"], **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", F32, [1, 2, 16, 16])],
                              [helper.make_tensor_value_info("y", F32, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    assert check_model(model, "KL520").ops["AveragePool"].verdict == ("supported" if ok else "unsupported")


@pytest.mark.parametrize("perm,kl720", [
    ([0, 1, 3, 2], "supported"),    # row <-> column
    ([0, 2, 1, 3], "supported"),    # channel <-> row
    ([0, 2, 3, 1], "unsupported"),  # NCHW -> NHWC
    ([0, 1, 2, 3], "supported"),    # identity
])
def test_transpose_permutations(perm, kl720):
    in_shape = [1, 2, 3, 4]
    model = make_model([helper.make_node("Transpose", ["x"], ["y"], perm=perm)], in_shape,
                       [in_shape[p] for p in perm])
    assert verdict(model, "KL720", "Transpose") == kl720
    assert verdict(model, "KL730", "Transpose") == kl720     # assumed = KL720
    assert verdict(model, "KL520", "Transpose") == "unsupported"


@pytest.mark.parametrize("step,kl720", [(1, "supported"), (2, "unsupported")])
def test_slice_steps(step, kl720):
    node = helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])
    model = make_model([node], [1, 8, 4, 4], [1, 8 // step, 4, 4],
                       [const("st", [0]), const("en", [8]), const("ax", [1]), const("sp", [step])])
    report = check_model(model, "KL720")
    assert report.ops["Slice"].verdict == kl720
    if step != 1:
        assert report.ops["Slice"].reasons == ["Slice steps [2] (needs 1)"]
    assert verdict(model, "KL520", "Slice") == "unsupported"


@pytest.mark.parametrize("mode,out_hw,ok", [
    ("nearest", (8, 8), True), ("linear", (8, 8), True),
    ("nearest", (2, 2), False),   # downsampling
    ("cubic", (8, 8), False),
])
def test_resize_only_upsampling(mode, out_hw, ok):
    scale = out_hw[0] / 4
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], mode=mode)
    model = make_model([node], [1, 2, 4, 4], [1, 2, *out_hw],
                       [const("roi", [], np.float32), const("scales", [1, 1, scale, scale], np.float32)])
    assert verdict(model, "KL720", "Resize") == ("supported" if ok else "unsupported")


def test_split_mul_sigmoid_per_target():
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], axis=1),
             helper.make_node("Sigmoid", ["a"], ["s"]),
             helper.make_node("Mul", ["s", "b"], ["y"])]
    model = make_model(nodes, [1, 4, 2, 2], [1, 2, 2, 2])
    kl720 = check_model(model, "KL720")
    assert kl720.ops["Split"].verdict == "unsupported"          # SPEC 3: Split no, Slice yes
    assert kl720.ops["Mul"].verdict == kl720.ops["Sigmoid"].verdict == "supported"
    kl520 = check_model(model, "KL520")
    assert kl520.num_unsupported_nodes == 3 and kl520.verdict == "unsupported"


def test_unknown_op_and_dynamic_shape_fail():
    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=1)], "g",
        [helper.make_tensor_value_info("x", F32, ["batch", 3, 4, 4])],
        [helper.make_tensor_value_info("y", F32, ["batch", 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    report = check_model(model, "KL720")
    assert report.ops["Softmax"].reasons == ["not in the Kneron operator table"]
    assert any("non-static shape" in issue for issue in report.graph_issues)
    assert not report.ok


def test_kl730_is_documented_as_kl720():
    assert load_ops_table("KL730") == load_ops_table("KL720")
    with pytest.raises(npu_check.NpuCheckError, match="unknown NPU target 'KL999'"):
        load_ops_table("KL999")


def test_cli_strict_json_and_errors(tmp_path, capsys):
    good = make_model([helper.make_node("Relu", ["x"], ["y"])], [1, 3, 4, 4], [1, 3, 4, 4])
    bad = make_model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], [1, 3, 64, 48], [1, 3, 1, 1])
    onnx.save(good, tmp_path / "good.onnx")
    onnx.save(bad, tmp_path / "bad.onnx")
    assert main([str(tmp_path / "good.onnx"), "--target", "KL520", "--strict"]) == 0
    assert main([str(tmp_path / "bad.onnx"), "--target", "KL720", "--strict"]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "bad.onnx"), "--target", "KL520", "--strict", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "unsupported" and data["ops"][0]["op"] == "GlobalAveragePool"
    (tmp_path / "corrupt.onnx").write_bytes(b"\x00not a protobuf\xff" * 8)
    assert main([str(tmp_path / "corrupt.onnx")]) == 2
    assert main([str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a readable ONNX model" in err[0] and "not found" in err[1]


def test_deploy_checker_does_not_import_torch():
    code = "import sys, litehrnet.deploy.npu_check; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
