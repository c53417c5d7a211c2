"""Which nodes of an ONNX graph run on a Kneron NPU, by a literal reading of Kneron's table.

``python -m litehrnet.kneron.checker MODEL.onnx --target KL520|KL720|KL530|KL630|KL730 [--strict] [--json]``

Every node gets one of three verdicts from :mod:`litehrnet.kneron.operators` (the table as data):

- ``npu``: the cell is Y, or one alternative of its note holds for this node;
- ``cpu``: the cell is N / absent, or every alternative of the note fails;
- ``ambiguous``: the node meets the note only under a reading the document leaves open (e.g.
  KL720 Resize note 35 "not both vus_en and hus_en enabled" for a 2-D resize), the note is not
  encoded, or a fact (a shape) is unknown. The literal reading counts these on the CPU; the output
  names them so nobody takes them for a yes.

Tensor shapes come from ONNX shape inference. No torch import.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .operators import CHIPS, Note, OperatorTableError, load_table, normalize_chip

NPU, CPU, AMBIGUOUS = "npu", "cpu", "ambiguous"


class NpuCheckError(ValueError):
    """The model file or the chip name is unusable."""


# ----------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------
@dataclass
class OpVerdict:
    """Verdicts of all nodes of one op type."""

    op_type: str
    count: int = 0
    cpu: int = 0
    ambiguous: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """``supported`` (all on the NPU), ``ambiguous`` (the rest only ambiguous), ``partial``
        or ``unsupported`` (no node on the NPU by any reading)."""
        if self.cpu + self.ambiguous == 0:
            return "supported"
        if self.cpu == 0:
            return "ambiguous"
        return "unsupported" if self.cpu == self.count else "partial"


@dataclass
class NpuReport:
    """Result of :func:`check_model` for one chip."""

    target: str
    ops: "OrderedDict[str, OpVerdict]"
    graph_issues: list[str]
    max_rank: int
    num_rank_gt4_tensors: int
    cited: str = ""

    @property
    def num_cpu_nodes(self) -> int:
        """Nodes on the host CPU by a literal reading of the table (ambiguous ones included)."""
        return sum(v.cpu + v.ambiguous for v in self.ops.values())

    @property
    def num_ambiguous_nodes(self) -> int:
        return sum(v.ambiguous for v in self.ops.values())

    @property
    def ok(self) -> bool:
        """True when every node runs on the NPU by every reading and the graph is static."""
        return self.num_cpu_nodes == 0 and not self.graph_issues

    @property
    def verdict(self) -> str:
        if self.ok:
            return "supported"
        if self.num_cpu_nodes == self.num_ambiguous_nodes and not self.graph_issues:
            return "ambiguous"
        total = sum(v.count for v in self.ops.values())
        return "partial" if total > self.num_cpu_nodes else "unsupported"

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "table": self.cited,
            "verdict": self.verdict,
            "ok": self.ok,
            "num_nodes": sum(v.count for v in self.ops.values()),
            "num_cpu_nodes": self.num_cpu_nodes,
            "num_ambiguous_nodes": self.num_ambiguous_nodes,
            "max_rank": self.max_rank,
            "num_rank_gt4_tensors": self.num_rank_gt4_tensors,
            "graph_issues": list(self.graph_issues),
            "ops": [{"op": v.op_type, "count": v.count, "cpu": v.cpu, "ambiguous": v.ambiguous,
                     "verdict": v.verdict, "reasons": v.reasons} for v in self.ops.values()],
        }

    def format_table(self) -> str:
        lines = [f"{'op':<20} {'count':>5}  verdict"]
        for v in self.ops.values():
            text = v.verdict
            if v.reasons:
                text += f" ({v.cpu} cpu, {v.ambiguous} ambiguous of {v.count}: {'; '.join(v.reasons)})"
            lines.append(f"{v.op_type:<20} {v.count:>5}  {text}")
        lines.extend(f"graph: {issue}" for issue in self.graph_issues)
        amb = f" ({self.num_ambiguous_nodes} of them ambiguous: the docs allow another reading)" \
            if self.num_ambiguous_nodes else ""
        lines.append(f"{self.target} per Kneron's operator table ({self.cited}): {self.verdict}; "
                     f"{self.num_cpu_nodes} node(s) on the CPU by a literal reading{amb}; "
                     f"max tensor rank {self.max_rank}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Graph facts
# ----------------------------------------------------------------------------------------------
def _shape_of(value_info) -> list | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]


def tensor_shapes(model: onnx.ModelProto) -> dict[str, list]:
    """Shapes of every named tensor (inputs, outputs, intermediates, initializers)."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference can fail on exotic graphs; fall back to what is stored
        inferred = model
    g = inferred.graph
    shapes: dict[str, list] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        shape = _shape_of(vi)
        if shape is not None:
            shapes[vi.name] = shape
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    for node in g.node:          # Constant outputs: shape from the value itself
        if node.op_type == "Constant" and node.output[0] not in shapes:
            for a in node.attribute:
                if a.name == "value":
                    shapes[node.output[0]] = list(a.t.dims)
    return shapes


def constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Initializers and ``Constant`` node outputs as numpy arrays."""
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


class NodeFacts:
    """Attributes, shapes and constant inputs of one node, as the checks need them."""

    def __init__(self, node: onnx.NodeProto, shapes: dict, consts: dict) -> None:
        self.node, self.shapes, self.consts = node, shapes, consts
        self.attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def attr(self, name: str, default=None):
        value = self.attrs.get(name, default)
        return value.decode() if isinstance(value, bytes) else value

    def shape(self, name: str | None) -> list | None:
        shape = self.shapes.get(name) if name else None
        return shape if _static(shape) else None

    def input_shape(self, i: int = 0) -> list | None:
        return self.shape(self.node.input[i]) if len(self.node.input) > i else None

    def output_shape(self, i: int = 0) -> list | None:
        return self.shape(self.node.output[i]) if len(self.node.output) > i else None

    def const_input(self, i: int):
        """Value of input ``i`` when it is a constant; ``missing`` when absent; None when dynamic."""
        if len(self.node.input) <= i or not self.node.input[i]:
            return "missing"
        return self.consts.get(self.node.input[i])

    def kernel(self) -> list[int] | None:
        if "kernel_shape" in self.attrs:
            return [int(k) for k in self.attrs["kernel_shape"]]
        if self.node.op_type in ("Conv", "ConvTranspose"):
            w = self.shape(self.node.input[1])
            return list(w[2:]) if w else None
        return None

    def strides(self) -> list[int] | None:
        k = self.kernel()
        return [int(s) for s in self.attrs.get("strides", [1] * len(k))] if k is not None else None

    def dilations(self) -> list[int] | None:
        k = self.kernel()
        return [int(s) for s in self.attrs.get("dilations", [1] * len(k))] if k is not None else None

    def spatial_change(self) -> tuple[list[int], list[int]] | None:
        """(input, output) shapes of a Resize/Upsample, or None when unknown."""
        src, dst = self.input_shape(), self.output_shape()
        if src is None or dst is None or len(src) != len(dst):
            return None
        return src, dst


def _all(values, predicate) -> bool | None:
    return None if values is None else all(predicate(v) for v in values)


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _pads(f: NodeFacts) -> list[int] | None:
    if "pads" in f.attrs:                    # Pad opset < 11
        return [int(p) for p in f.attrs["pads"]]
    value = f.const_input(1)
    return None if value is None or isinstance(value, str) else [int(p) for p in np.ravel(value)]


def _axes(f: NodeFacts) -> list[int] | str | None:
    """Reduce axes (normalised, non-negative); ``all`` when every axis is reduced."""
    axes = f.attrs.get("axes")
    if axes is None:
        value = f.const_input(1)
        if value is None:
            return None
        axes = None if isinstance(value, str) else list(np.ravel(value))
    shape = f.input_shape()
    if not axes:
        return "all"
    rank = len(shape) if shape is not None else None
    if rank is None and any(a < 0 for a in axes):
        return None
    return [int(a) % rank if rank else int(a) for a in axes]


def _clip_relu_like(f: NodeFacts, _v) -> bool | None:
    lo, hi = f.attrs.get("min"), f.attrs.get("max")
    if "min" not in f.attrs and "max" not in f.attrs and len(f.node.input) > 1:
        lo, hi = f.const_input(1), f.const_input(2)
        if lo is None or hi is None:
            return None
        lo = None if isinstance(lo, str) else float(np.ravel(lo)[0])
        hi = None if isinstance(hi, str) else float(np.ravel(hi)[0])
    return lo is not None and float(lo) == 0.0 and (hi is None or float(hi) >= 0.0)


def _ranks(f: NodeFacts) -> list[int] | None:
    names = [n for n in list(f.node.input) + list(f.node.output) if n]
    shapes = [f.shapes.get(n) for n in names]
    return None if any(s is None for s in shapes) else [len(s) for s in shapes]


def _phase(mode: str, in_size: int, out_size: int) -> float:
    """Source coordinate of output pixel 0 (``phase_init``) for a coordinate_transformation_mode."""
    if out_size == in_size or mode in ("asymmetric", "align_corners"):
        return 0.0
    scale = out_size / in_size
    if mode == "tf_half_pixel_for_nn":
        return 0.5 / scale
    if mode == "pytorch_half_pixel" and out_size == 1:
        return 0.0
    return 0.5 / scale - 0.5                 # half_pixel, pytorch_half_pixel


def _changed_dims(f: NodeFacts) -> list[tuple[int, int]] | None:
    change = f.spatial_change()
    if change is None:
        return None
    src, dst = change
    return [(a, b) for a, b in zip(src[2:], dst[2:]) if a != b]


def _resize_one_direction(f, _v):
    dims = _changed_dims(f)
    return None if dims is None else len(dims) <= 1


def _upsample_spatial(f, _v):
    change = f.spatial_change()
    if change is None:
        return None
    src, dst = change
    return src[:2] == dst[:2] and all(b >= a for a, b in zip(src[2:], dst[2:]))


def _resize_phase(f: NodeFacts, predicate) -> bool | None:
    change = f.spatial_change()
    if change is None:
        return None
    mode = f.attr("coordinate_transformation_mode", "half_pixel")
    return all(predicate(_phase(mode, a, b)) for a, b in zip(change[0][2:], change[1][2:]))


def _slice_steps_one(f, _v):
    if "starts" in f.attrs:                   # opset < 10: no steps
        return True
    steps = f.const_input(4)
    if steps is None:
        return None
    return isinstance(steps, str) or all(int(s) == 1 for s in np.ravel(steps))


def _gather_single_index(f, _v):
    idx = f.const_input(1)
    if idx is not None and not isinstance(idx, str):
        return int(np.size(idx)) == 1
    shape = f.input_shape(1)
    return None if shape is None else math.prod(shape) == 1


def _hw(f: NodeFacts):
    s = f.input_shape()
    return None if s is None or len(s) != 4 else s[2:]


# check name -> function(facts, value) -> True (holds) / False (fails) / None (facts unknown)
CHECKS = {
    "rank_max": lambda f, v: _all(_ranks(f), lambda r: r <= v),
    "rank_eq": lambda f, v: None if f.input_shape() is None else len(f.input_shape()) == v,
    "ceil_mode": lambda f, v: int(f.attr("ceil_mode", 0)) == v,
    "count_include_pad": lambda f, v: int(f.attr("count_include_pad", 0)) == v,
    "dilations_one": lambda f, v: _all(f.dilations(), lambda d: d == 1),
    "pool_dims": lambda f, v: None if f.kernel() is None else len(f.kernel()) in v,
    "kernel_square": lambda f, v: None if f.kernel() is None else len(set(f.kernel())) == 1,
    "stride_square": lambda f, v: None if f.strides() is None else len(set(f.strides())) == 1,
    "kernel_eq_stride": lambda f, v: None if f.kernel() is None else f.kernel() == f.strides(),
    "kernel_pow2_gt": lambda f, v: _all(f.kernel(), lambda k: _pow2(k) and k > v),
    "kernel_one": lambda f, v: _all(f.kernel(), lambda k: k == 1),
    "kernel_gt": lambda f, v: _all(f.kernel(), lambda k: k > v),
    "kernel_min": lambda f, v: _all(f.kernel(), lambda k: k >= v),
    "kernel_max": lambda f, v: _all(f.kernel(), lambda k: k <= v),
    "stride_gt": lambda f, v: _all(f.strides(), lambda s: s > v),
    "stride_max": lambda f, v: _all(f.strides(), lambda s: s <= v),
    "stride_eq": lambda f, v: _all(f.strides(), lambda s: s == v),
    "stride_le_kernel": lambda f, v: None if f.kernel() is None else all(
        s <= k for s, k in zip(f.strides(), f.kernel())),
    "stride_h_max": lambda f, v: None if f.strides() is None else f.strides()[0] <= v,
    "stride_w_max": lambda f, v: None if f.strides() is None else f.strides()[-1] <= v,
    "kernel_h_max": lambda f, v: None if f.kernel() is None else f.kernel()[0] <= v,
    "kernel_w_max": lambda f, v: None if f.kernel() is None else f.kernel()[-1] <= v,
    "kernel_w_stride_w_one": lambda f, v: None if f.kernel() is None else f.kernel()[-1] == f.strides()[-1] == 1,
    "kernel_h_stride_h_one": lambda f, v: None if f.kernel() is None else f.kernel()[0] == f.strides()[0] == 1,
    "kernel_w_eq_stride_w": lambda f, v: None if f.kernel() is None else f.kernel()[-1] == f.strides()[-1],
    "clip_relu_like": _clip_relu_like,
    "blocksize_in": lambda f, v: int(f.attr("blocksize", 0)) in v,
    "flatten_axis": lambda f, v: int(f.attr("axis", 1)) == v,
    "gather_single_index": _gather_single_index,
    "spatial_size_max": lambda f, v: None if _hw(f) is None else _hw(f)[0] * _hw(f)[1] <= v,
    "rows_gt": lambda f, v: None if _hw(f) is None else _hw(f)[0] > v,
    "pad_not_batch": lambda f, v: None if _pads(f) is None else (
        _pads(f)[0] == 0 and _pads(f)[len(_pads(f)) // 2] == 0),
    "pad_spatial_lt": lambda f, v: None if _pads(f) is None else all(
        p < v for i, p in enumerate(_pads(f)) if i % (len(_pads(f)) // 2) >= 2),
    "pad_all_lt": lambda f, v: _all(_pads(f), lambda p: p < v),
    "pad_constant_zero": lambda f, v: f.attr("mode", "constant") == "constant" and (
        float(f.attr("value", 0.0)) == 0.0 if "value" in f.attrs else
        (lambda c: None if c is None else isinstance(c, str) or float(np.ravel(c)[0]) == 0.0)(f.const_input(2))),
    "pow_exponent": lambda f, v: (lambda c: None if c is None or isinstance(c, str) else
                                  bool(np.all(np.asarray(c) == v)))(f.const_input(1)),
    "keepdims": lambda f, v: int(f.attr("keepdims", 1)) == v,
    "reduce_not_batch": lambda f, v: (lambda a: None if a is None else a != "all" and 0 not in a)(_axes(f)),
    "reduce_channel": lambda f, v: (lambda a: None if a is None else a == [1])(_axes(f)),
    "resize_not_cubic": lambda f, v: f.attr("mode", "nearest") != "cubic",
    "extrapolation_zero": lambda f, v: float(f.attr("extrapolation_value", 0.0)) == 0.0,
    "nearest_floor": lambda f, v: f.attr("mode", "nearest") != "nearest" or
    f.attr("nearest_mode", "round_prefer_floor") == "floor",
    "not_tf_crop_and_resize": lambda f, v: f.attr("coordinate_transformation_mode", "half_pixel") != "tf_crop_and_resize",
    "resize_phase_zero": lambda f, v: _resize_phase(f, lambda p: p == 0.0),
    "resize_phase_nonneg": lambda f, v: _resize_phase(f, lambda p: p >= 0.0),
    "resize_upsampling": _upsample_spatial,
    "resize_one_direction": _resize_one_direction,
    "upsample_spatial": _upsample_spatial,
    "upsample_mode": lambda f, v: f.attr("mode", "nearest") in v,
    "slice_steps_one": _slice_steps_one,
    "transpose_perm_in": lambda f, v: (lambda p: None if p is None else p in [list(q) for q in v])(_perm(f)),
    "transpose_keeps_batch": lambda f, v: (lambda p: None if p is None else p[0] == 0)(_perm(f)),
}


def _perm(f: NodeFacts) -> list[int] | None:
    if "perm" in f.attrs:
        return [int(p) for p in f.attrs["perm"]]
    shape = f.shapes.get(f.node.input[0])
    return None if shape is None else list(range(len(shape)))[::-1]


# ----------------------------------------------------------------------------------------------
# Verdict of one node
# ----------------------------------------------------------------------------------------------
def _describe(name: str, value) -> str:
    return name if value is True else f"{name}={value}"


def evaluate_note(note: Note, facts: NodeFacts) -> tuple[str, str | None]:
    """(verdict, reason) of a node against one note."""
    if note.meets:
        return NPU, None
    if note.unencoded:
        return AMBIGUOUS, f"note {note.number} not encoded ({note.unencoded}); read Kneron's document"
    best: tuple[int, str, str] | None = None     # (number of failures, verdict, reason)
    for alternative in note.any_of:
        failed, unknown, ambiguous = [], [], []
        for name, value in alternative.items():
            result = CHECKS[name](facts, value)
            if result is None:
                unknown.append(name)
            elif not result:
                (ambiguous if name in note.ambiguous else failed).append(_describe(name, value))
        if not failed and not unknown and not ambiguous:
            return NPU, None
        if failed:
            candidate = (len(failed), CPU, f"note {note.number}: fails {', '.join(failed)}")
        elif ambiguous:
            why = "; ".join(note.ambiguous[n.split("=")[0]] for n in ambiguous)
            candidate = (0, AMBIGUOUS, f"note {note.number}: {', '.join(ambiguous)} is ambiguous ({why})")
        else:
            candidate = (0, AMBIGUOUS, f"note {note.number}: unknown {', '.join(unknown)} (shapes not inferred)")
        if best is None or candidate[:1] < best[:1] or (candidate[1] == AMBIGUOUS and best[1] == CPU):
            best = candidate
    return best[1], best[2]


def node_verdict(node: onnx.NodeProto, chip: str, shapes: dict, consts: dict) -> tuple[str, str | None]:
    """(``npu`` | ``cpu`` | ``ambiguous``, reason) of one node on ``chip``."""
    table = load_table()
    if node.op_type in table.graph_constants:
        return NPU, None
    entry = table.entry(node.op_type, chip)
    if entry.status == "yes":
        return NPU, None
    if entry.status == "absent":
        return CPU, "not in Kneron's operator table"
    if entry.status == "no":
        return CPU, "N in Kneron's operator table"
    return evaluate_note(entry.note, NodeFacts(node, shapes, consts))


# ----------------------------------------------------------------------------------------------
# Whole graph
# ----------------------------------------------------------------------------------------------
def _graph_issues(model: onnx.ModelProto, shapes: dict) -> list[str]:
    issues = []
    init_names = {i.name for i in model.graph.initializer}
    input_names = {vi.name for vi in model.graph.input}
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.name in init_names:
            continue
        shape = shapes.get(vi.name)
        if not _static(shape):
            issues.append(f"'{vi.name}' has a non-static shape {shape} (needs fixed dims)")
        elif vi.name in input_names and (len(shape) != 4 or shape[0] != 1):
            issues.append(f"input '{vi.name}' shape {shape} is not batch-1 NCHW")
    dynamic = [n for n, s in shapes.items() if not _static(s) and n not in init_names]
    if dynamic:
        issues.append(f"{len(dynamic)} tensor(s) without a static shape (first: {dynamic[0]})")
    return issues


def check_model(model: onnx.ModelProto | str | Path, target: str) -> NpuReport:
    """Verdict of every node of ``model`` on chip ``target`` (KL520/720/530/630/730)."""
    try:
        chip = normalize_chip(target)
    except OperatorTableError as exc:
        raise NpuCheckError(str(exc)) from None
    if not isinstance(model, onnx.ModelProto):
        model = load_onnx(model)
    shapes = tensor_shapes(model)
    consts = constant_values(model)
    ops: "OrderedDict[str, OpVerdict]" = OrderedDict()
    for node in model.graph.node:
        v = ops.setdefault(node.op_type, OpVerdict(node.op_type))
        v.count += 1
        verdict, reason = node_verdict(node, chip, shapes, consts)
        if verdict == CPU:
            v.cpu += 1
        elif verdict == AMBIGUOUS:
            v.ambiguous += 1
        if reason is not None and reason not in v.reasons:
            v.reasons.append(reason)
    ranks = [len(s) for s in shapes.values()]
    return NpuReport(target=chip, ops=ops, graph_issues=_graph_issues(model, shapes),
                     max_rank=max(ranks, default=0), num_rank_gt4_tensors=sum(r > 4 for r in ranks),
                     cited=load_table().cite())


def op_histogram(model: onnx.ModelProto) -> "Counter[str]":
    """Count of every op type in the graph."""
    return Counter(node.op_type for node in model.graph.node)


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """Load an ONNX file with one clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise NpuCheckError(f"{path}: ONNX file not found")
    try:
        return onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise NpuCheckError(f"{path}: not a readable ONNX model ({exc.__class__.__name__}); re-export it") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m litehrnet.kneron.checker",
                                     description="Check an ONNX model against Kneron's operator table.")
    parser.add_argument("model", help="ONNX file")
    parser.add_argument("--target", default="KL720", help=" | ".join(CHIPS) + " (comma-separated for several)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when any node runs on the CPU by a literal reading (ambiguous included)")
    parser.add_argument("--json", action="store_true", help="print the report(s) as JSON")
    args = parser.parse_args(argv)
    try:
        model = load_onnx(args.model)
        reports = [check_model(model, t) for t in filter(None, (s.strip() for s in args.target.split(",")))]
    except NpuCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        data = [r.to_dict() for r in reports]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, allow_nan=False))
    else:
        print("\n\n".join(r.format_table() for r in reports))
    return 1 if args.strict and not all(r.ok for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
