"""The Kneron checker against the table: per rule and chip, the smallest graph that meets the rule
and one that breaks it (onnx.helper graphs), plus the report, the CLI and the table file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from litehrnet.kneron.checker import NpuCheckError, check_model, main
from litehrnet.kneron.operators import CHIPS, OperatorTableError, load_table, normalize_chip

F32 = TensorProto.FLOAT
LETTER = {"npu": "N", "cpu": "C", "ambiguous": "A"}


def const(name: str, values, dtype=np.int64) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def graph(nodes, inputs: dict, inits=(), opset: int = 11, out_shape=None) -> onnx.ModelProto:
    """Inputs ``name -> shape``; the last node's first output is the graph output ``y``."""
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, F32, s) for n, s in inputs.items()],
                          [helper.make_tensor_value_info("y", F32, out_shape)], initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def one(op: str, shape=(1, 2, 8, 8), inits=(), extra_inputs=(), opset: int = 11, **attrs) -> onnx.ModelProto:
    """A single ``op`` node reading ``x`` (and constant ``extra_inputs``) and writing ``y``."""
    node = helper.make_node(op, ["x", *extra_inputs], ["y"], **attrs)
    return graph([node], {"x": list(shape)}, inits, opset)


def binary(op: str, rank: int) -> onnx.ModelProto:
    shape = [1, 2, 4, 4, 2][:rank]
    return graph([helper.make_node(op, ["x", "x2"], ["y"])], {"x": shape, "x2": shape})


def conv(kernel, strides, rank: int = 4, transpose: bool = False) -> onnx.ModelProto:
    spatial = [16] * (rank - 2)
    w = numpy_helper.from_array(np.ones((2, 2, *kernel), np.float32), "w")
    node = helper.make_node("ConvTranspose" if transpose else "Conv", ["x", "w"], ["y"],
                            kernel_shape=list(kernel), strides=list(strides))
    return graph([node], {"x": [1, 2, *spatial]}, [w])


def pool(op: str, kernel, strides, shape=(1, 2, 32, 32), **attrs) -> onnx.ModelProto:
    return one(op, shape, kernel_shape=list(kernel), strides=list(strides), **attrs)


def resize(scale_hw, mode="nearest", ctm="asymmetric", nearest_mode="floor") -> onnx.ModelProto:
    inits = [const("roi", [], np.float32), const("scales", [1, 1, *scale_hw], np.float32)]
    return one("Resize", (1, 2, 8, 8), inits, ["roi", "scales"], mode=mode,
               coordinate_transformation_mode=ctm, nearest_mode=nearest_mode)


def upsample(scale_hw) -> onnx.ModelProto:
    return one("Upsample", (1, 2, 8, 8), [const("scales", [1, 1, *scale_hw], np.float32)], ["scales"],
               opset=9, mode="nearest")


def slice_(step: int, rank: int = 4) -> onnx.ModelProto:
    inits = [const("st", [0]), const("en", [8]), const("ax", [1]), const("sp", [step])]
    return one("Slice", [1, 8, 4, 4, 2][:rank], inits, ["st", "en", "ax", "sp"])


def pad(pads, mode="constant") -> onnx.ModelProto:
    return one("Pad", (1, 2, 8, 8), [const("p", pads)], ["p"], mode=mode)


def reduce_(op: str, axes) -> onnx.ModelProto:
    return one(op, (1, 2, 8, 8), axes=list(axes), keepdims=1)


# (case id, model, op under test, verdicts on KL520 KL720 KL530 KL630 KL730: N npu, C cpu, A ambiguous)
CASES = [
    ("add rank 4 (note 1)", lambda: binary("Add", 4), "Add", "NNNNN"),
    ("add rank 5 breaks note 1; KL730 has no note", lambda: binary("Add", 5), "Add", "CCCCN"),
    ("mul rank 4: N on KL520", lambda: binary("Mul", 4), "Mul", "CNNNN"),
    ("mul rank 5", lambda: binary("Mul", 5), "Mul", "CCCCN"),
    ("concat rank 5", lambda: graph([helper.make_node("Concat", ["x", "x2"], ["y"], axis=1)],
                                    {"x": [1, 2, 2, 2, 2], "x2": [1, 2, 2, 2, 2]}), "Concat", "CCCCN"),
    ("batchnorm rank 4", lambda: one("BatchNormalization", (1, 2, 4, 4),
                                     [const(n, [1.0, 1.0], np.float32) for n in "sbmv"], list("sbmv")),
     "BatchNormalization", "NNNNN"),
    ("batchnorm rank 5", lambda: one("BatchNormalization", (1, 2, 4, 4, 2),
                                     [const(n, [1.0, 1.0], np.float32) for n in "sbmv"], list("sbmv")),
     "BatchNormalization", "CCCCC"),
    # AveragePool (notes 2, 3, 4)
    ("avgpool 4x4/s4 count_include_pad=0", lambda: pool("AveragePool", [4, 4], [4, 4], count_include_pad=0),
     "AveragePool", "NNNNN"),
    ("avgpool 4x4/s4 count_include_pad=1", lambda: pool("AveragePool", [4, 4], [4, 4], count_include_pad=1),
     "AveragePool", "CCCCC"),
    ("avgpool 8x8/s8 ceil_mode=1", lambda: pool("AveragePool", [8, 8], [8, 8], ceil_mode=1), "AveragePool", "CCCCC"),
    ("avgpool 2x2/s2 count_include_pad=1 (k <= 3 form)",
     lambda: pool("AveragePool", [2, 2], [2, 2], count_include_pad=1), "AveragePool", "NNNNN"),
    ("avgpool 2x2/s3: stride > kernel", lambda: pool("AveragePool", [2, 2], [3, 3]), "AveragePool", "CNNNN"),
    ("avgpool 3x1/s2x1 (1-D form)", lambda: pool("AveragePool", [3, 1], [2, 1]), "AveragePool", "CNNNN"),
    ("avgpool 1x3/s1x3 (1-D form)", lambda: pool("AveragePool", [1, 3], [1, 3]), "AveragePool", "CNNNN"),
    ("avgpool 1x1/s4 count_include_pad=1",
     lambda: pool("AveragePool", [1, 1], [4, 4], count_include_pad=1), "AveragePool", "NNNNC"),
    ("avgpool 6x6/s6 count_include_pad=0 (stride > 3 form)",
     lambda: pool("AveragePool", [6, 6], [6, 6], count_include_pad=0), "AveragePool", "NNNNN"),
    # MaxPool (notes 24, 25)
    ("maxpool 5x5/s1 pad 2 (YOLOv5 SPPF)",
     lambda: pool("MaxPool", [5, 5], [1, 1], pads=[2, 2, 2, 2]), "MaxPool", "NNNNN"),
    ("maxpool 5x5/s1 ceil_mode=1", lambda: pool("MaxPool", [5, 5], [1, 1], ceil_mode=1), "MaxPool", "CCCCC"),
    ("maxpool 2x2/s2", lambda: pool("MaxPool", [2, 2], [2, 2]), "MaxPool", "NNNNN"),
    ("maxpool 2x2/s3", lambda: pool("MaxPool", [2, 2], [3, 3]), "MaxPool", "CCNNN"),
    ("maxpool 3x1/s1", lambda: pool("MaxPool", [3, 1], [1, 1]), "MaxPool", "CCNNN"),
    ("maxpool 1x1/s2", lambda: pool("MaxPool", [1, 1], [2, 2]), "MaxPool", "NNNNN"),
    ("maxpool 1x1/s1", lambda: pool("MaxPool", [1, 1], [1, 1]), "MaxPool", "CCNNN"),
    # GlobalAveragePool (19, 20), GlobalMaxPool (21)
    ("gap 16x16", lambda: one("GlobalAveragePool", (1, 2, 16, 16)), "GlobalAveragePool", "NNNNN"),
    ("gap 17x16", lambda: one("GlobalAveragePool", (1, 2, 17, 16)), "GlobalAveragePool", "CNNNN"),
    ("gap 128x129", lambda: one("GlobalAveragePool", (1, 2, 128, 129)), "GlobalAveragePool", "CCCCC"),
    ("gmp rows 3", lambda: one("GlobalMaxPool", (1, 2, 3, 8)), "GlobalMaxPool", "CNNNN"),
    ("gmp rows 4", lambda: one("GlobalMaxPool", (1, 2, 4, 8)), "GlobalMaxPool", "NNNNN"),
    # Clip (5)
    ("clip 0..6", lambda: one("Clip", inits=[const("lo", 0.0, np.float32), const("hi", 6.0, np.float32)],
                              extra_inputs=["lo", "hi"]), "Clip", "NNNNN"),
    ("clip -1..1", lambda: one("Clip", inits=[const("lo", -1.0, np.float32), const("hi", 1.0, np.float32)],
                               extra_inputs=["lo", "hi"]), "Clip", "CCCCC"),
    # Conv (6, 7, 8), ConvTranspose (9, 10)
    ("conv 3x3/s1", lambda: conv([3, 3], [1, 1]), "Conv", "NNNNN"),
    ("conv kernel 13", lambda: conv([13, 13], [1, 1]), "Conv", "CNNNN"),
    ("conv stride_h 5", lambda: conv([3, 3], [5, 1]), "Conv", "CCNNN"),
    ("conv 3-D (rank 5)", lambda: conv([3, 3, 3], [1, 1, 1], rank=5), "Conv", "CCCCC"),
    ("deconv s2", lambda: conv([4, 4], [2, 2], transpose=True), "ConvTranspose", "CNNNN"),
    ("deconv s3", lambda: conv([3, 3], [3, 3], transpose=True), "ConvTranspose", "CCNNN"),
    ("deconv s2x1", lambda: conv([4, 4], [2, 1], transpose=True), "ConvTranspose", "CCCCN"),
    # plain Y / N cells
    ("relu", lambda: one("Relu"), "Relu", "NNNNN"),
    ("sigmoid", lambda: one("Sigmoid"), "Sigmoid", "CNNNN"),
    ("split", lambda: graph([helper.make_node("Split", ["x"], ["y", "z"], axis=1)], {"x": [1, 2, 4, 4]}),
     "Split", "CCCCN"),
    ("gemm", lambda: graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], {"x": [1, 4]},
                           [numpy_helper.from_array(np.ones((3, 4), np.float32), "w")]), "Gemm", "NNNNN"),
    ("div", lambda: binary("Div", 4), "Div", "CCNNN"),
    ("softmax (note 39 N, 40 decomposed)", lambda: one("Softmax", axis=1), "Softmax", "CCNNN"),
    ("not in the table", lambda: one("Celu"), "Celu", "CCCCC"),
    # Slice (37, 38), Reshape, Flatten (17)
    ("slice steps 1", lambda: slice_(1), "Slice", "CNNNN"),
    ("slice steps 2", lambda: slice_(2), "Slice", "CCCCC"),
    ("slice rank 5", lambda: slice_(1, rank=5), "Slice", "CCCCN"),
    ("reshape rank 5: KL720 Y is unconditional", lambda: one("Reshape", (1, 4, 2, 2), [const("s", [1, 2, 2, 2, 2])],
                                                           ["s"]), "Reshape", "CNNNN"),
    ("flatten axis 1", lambda: one("Flatten", axis=1), "Flatten", "CNNNN"),
    ("flatten axis 2", lambda: one("Flatten", axis=2), "Flatten", "CCCCC"),
    # Transpose (42, 43)
    ("transpose row<->col", lambda: one("Transpose", perm=[0, 1, 3, 2]), "Transpose", "CNNNN"),
    ("transpose NCHW->NHWC", lambda: one("Transpose", perm=[0, 2, 3, 1]), "Transpose", "CCNNN"),
    ("transpose batch", lambda: one("Transpose", perm=[1, 0, 2, 3]), "Transpose", "CCCCN"),
    ("transpose rank 5 (shuffle)", lambda: one("Transpose", (1, 2, 2, 4, 4), perm=[0, 2, 1, 3, 4]),
     "Transpose", "CCNNN"),
    # Resize (34, 35, 36), Upsample (44, 45, 46)
    ("resize nearest x2 both axes", lambda: resize([2, 2]), "Resize", "NANNN"),
    ("resize nearest x2 rows only", lambda: resize([2, 1]), "Resize", "NNNNN"),
    ("resize bilinear half_pixel rows only", lambda: resize([2, 1], "linear", "half_pixel"), "Resize", "CCNNN"),
    ("resize bilinear align_corners x2 both", lambda: resize([2, 2], "linear", "align_corners"), "Resize", "NANNN"),
    ("resize cubic", lambda: resize([2, 1], "cubic"), "Resize", "CCCCC"),
    ("resize nearest round_prefer_floor", lambda: resize([2, 1], nearest_mode="round_prefer_floor"),
     "Resize", "CNNNN"),
    ("resize downsampling rows", lambda: resize([0.5, 1]), "Resize", "NCNNN"),
    ("upsample x2 both axes (opset 9)", lambda: upsample([2, 2]), "Upsample", "NANNN"),
    ("upsample x2 columns only", lambda: upsample([1, 2]), "Upsample", "NNNNN"),
    # Pad (26, 27)
    ("pad spatial 1", lambda: pad([0, 0, 1, 1, 0, 0, 1, 1]), "Pad", "NNNNN"),
    ("pad batch", lambda: pad([1, 0, 0, 0, 0, 0, 0, 0]), "Pad", "CCCCC"),
    ("pad spatial 32", lambda: pad([0, 0, 32, 0, 0, 0, 0, 0]), "Pad", "CCCCC"),
    ("pad channel 40", lambda: pad([0, 40, 0, 0, 0, 0, 0, 0]), "Pad", "NNNNC"),
    ("pad reflect", lambda: pad([0, 0, 1, 1, 0, 0, 1, 1], "reflect"), "Pad", "CCCCC"),
    # Reduce (30, 31, 32), Pow (29), Gather (18)
    ("reducemean over H, W", lambda: reduce_("ReduceMean", [2, 3]), "ReduceMean", "CNNNN"),
    ("reducemean over batch", lambda: reduce_("ReduceMean", [0]), "ReduceMean", "CCCCC"),
    ("reducesum over channels", lambda: reduce_("ReduceSum", [1]), "ReduceSum", "NNNNN"),
    ("reducesum over rows", lambda: reduce_("ReduceSum", [2]), "ReduceSum", "CNNNN"),
    ("reducesum over batch", lambda: reduce_("ReduceSum", [0]), "ReduceSum", "CCCCN"),
    ("pow 2", lambda: one("Pow", inits=[const("e", 2.0, np.float32)], extra_inputs=["e"]), "Pow", "CNNNN"),
    ("pow 3", lambda: one("Pow", inits=[const("e", 3.0, np.float32)], extra_inputs=["e"]), "Pow", "CCCCC"),
    ("gather one index", lambda: one("Gather", inits=[const("i", [1])], extra_inputs=["i"], axis=1),
     "Gather", "NNNNN"),
    ("gather two indices", lambda: one("Gather", inits=[const("i", [0, 1])], extra_inputs=["i"], axis=1),
     "Gather", "CCCCC"),
    ("reducemax keepdims 1 (note 30)", lambda: one("ReduceMax", axes=[1], keepdims=1), "ReduceMax", "NNNNN"),
    ("reducemax keepdims 0", lambda: one("ReduceMax", axes=[1], keepdims=0), "ReduceMax", "CCCCC"),
    ("conv stride_w 17", lambda: conv([1, 1], [1, 17]), "Conv", "CCNNN"),
    ("exp (note 14 decomposed)", lambda: one("Exp"), "Exp", "CNNNN"),
    ("spacetodepth blocksize 2 (note 41)", lambda: one("SpaceToDepth", blocksize=2), "SpaceToDepth", "CCNNN"),
    ("spacetodepth blocksize 8", lambda: one("SpaceToDepth", blocksize=8), "SpaceToDepth", "CCCCC"),
    ("depthtospace blocksize 2 (notes 11, 12)", lambda: one("DepthToSpace", (1, 4, 4, 4), blocksize=2),
     "DepthToSpace", "AANNN"),
    ("depthtospace blocksize 3", lambda: one("DepthToSpace", (1, 9, 4, 4), blocksize=3), "DepthToSpace", "AACCC"),
    # a note the table file does not encode: the third verdict, never a silent yes
    ("expand (note 15/16 not encoded)", lambda: one("Expand", (1, 1, 4, 4), [const("s", [1, 2, 4, 4])], ["s"]),
     "Expand", "CAAAA"),
]


@pytest.mark.parametrize("build,op,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_per_chip(build, op, expected):
    model = build()
    got = ""
    for chip in CHIPS:
        v = check_model(model, chip).ops[op]
        assert v.count == 1
        got += "C" if v.cpu else ("A" if v.ambiguous else "N")
    assert got == expected, [(c, g, e) for c, g, e in zip(CHIPS, got, expected) if g != e]


def test_reasons_cite_the_note_and_ambiguity_is_reported():
    report = check_model(resize([2, 2]), "KL720")
    assert report.ops["Resize"].verdict == "ambiguous"
    assert report.ops["Resize"].reasons[0].startswith("note 35: resize_one_direction is ambiguous")
    assert report.num_cpu_nodes == report.num_ambiguous_nodes == 1 and not report.ok
    assert report.verdict == "ambiguous"
    text = report.format_table()
    assert "toolchain v0.33.1" in text and "1 of them ambiguous" in text
    cpu = check_model(pool("AveragePool", [4, 4], [4, 4], count_include_pad=1), "KL520")
    assert cpu.ops["AveragePool"].reasons == ["note 2: fails count_include_pad=0"]


def test_partial_verdict_counts_nodes():
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]),
             helper.make_node("AveragePool", ["x"], ["p"], kernel_shape=[8, 8], strides=[8, 8]),
             helper.make_node("GlobalAveragePool", ["p"], ["y"])]
    model = graph(nodes, {"x": [1, 2, 64, 48]})
    report = check_model(model, "KL520")
    v = report.ops["GlobalAveragePool"]
    assert (v.count, v.cpu, v.verdict) == (2, 1, "partial") and report.verdict == "partial"
    assert v.reasons == ["note 19: fails spatial_size_max=256"]
    assert check_model(model, "KL720").ok


def test_dynamic_shapes_are_a_graph_issue():
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", F32, ["batch", 3, 4, 4])],
                          [helper.make_tensor_value_info("y", F32, ["batch", 3, 4, 4])])
    report = check_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 11)]), "KL720")
    assert report.num_cpu_nodes == 0 and not report.ok
    assert any("non-static shape" in issue for issue in report.graph_issues)


def test_table_file_is_complete_and_cited():
    table = load_table()
    assert table.chips == CHIPS == ("KL520", "KL720", "KL530", "KL630", "KL730")
    assert table.source["toolchain"] == "v0.33.1"
    assert table.source["path"] == "docs/toolchain/appendix/operators.md"
    emitted = {"Conv", "ConvTranspose", "Relu", "Clip", "Add", "Mul", "Sigmoid", "Concat", "Slice", "Split",
               "Reshape", "Transpose", "Resize", "Upsample", "AveragePool", "MaxPool", "GlobalAveragePool",
               "BatchNormalization", "Pad", "Gemm", "Flatten", "Div", "Sub", "LeakyRelu"}
    assert emitted <= set(table.ops)
    assert table.entry("Reshape", "KL720").status == "yes"
    assert table.entry("Resize", "720").note.number == 35 and "resize_one_direction" in table.notes[35].ambiguous
    assert table.entry("Softmax", "KL720").status == "no"
    from litehrnet.kneron.checker import CHECKS

    names = {name for note in table.notes.values() for alt in note.any_of for name in alt}
    assert names <= set(CHECKS), names - set(CHECKS)


def test_chip_names():
    assert normalize_chip("kl730") == normalize_chip("730") == "KL730"
    with pytest.raises(OperatorTableError, match="unknown Kneron chip 'KL999'"):
        normalize_chip("KL999")
    with pytest.raises(NpuCheckError, match="KL520, KL720, KL530, KL630, KL730"):
        check_model(one("Relu"), "KL999")


def test_cli_strict_json_and_errors(tmp_path, capsys):
    onnx.save(one("Relu"), tmp_path / "good.onnx")
    onnx.save(one("GlobalAveragePool", (1, 3, 64, 48)), tmp_path / "bad.onnx")
    assert main([str(tmp_path / "good.onnx"), "--target", "KL520", "--strict"]) == 0
    assert main([str(tmp_path / "bad.onnx"), "--target", "KL720,KL630", "--strict"]) == 0
    capsys.readouterr()
    assert main([str(tmp_path / "bad.onnx"), "--target", "KL520", "--strict", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "unsupported" and data["num_cpu_nodes"] == 1
    assert data["ops"][0]["op"] == "GlobalAveragePool" and "v0.33.1" in data["table"]
    (tmp_path / "corrupt.onnx").write_bytes(b"\x00not a protobuf\xff" * 8)
    assert main([str(tmp_path / "corrupt.onnx")]) == 2
    assert main([str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a readable ONNX model" in err[0] and "not found" in err[1]


def test_chip_room_does_not_import_torch():
    code = ("import sys, litehrnet.kneron.checker, litehrnet.kneron.operators; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
