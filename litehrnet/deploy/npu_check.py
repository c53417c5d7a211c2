"""Kneron NPU operator checker for ONNX models (no torch; deploy layer).

``python -m litehrnet.deploy.npu_check MODEL.onnx --target KL520|KL720|KL730 [--strict] [--json]``

Every node gets a verdict from the operator table in ``npu_ops.yaml`` (data, citing SPEC 3) plus
per-node rules: tensor rank <= 4, static shapes, GlobalAveragePool H*W limit, AveragePool
kernel == stride in {2, 4, 8}, allowed Transpose permutations, Slice steps of 1, Resize only as
nearest/bilinear upsampling. Per op type the verdict is ``supported`` (every node runs on the NPU),
``partial`` (some nodes fall back to the CPU, with the reasons) or ``unsupported`` (none does).
Tensor shapes come from ONNX shape inference.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import yaml
from onnx import numpy_helper

OPS_TABLE_PATH = Path(__file__).with_name("npu_ops.yaml")
TARGETS = ("KL520", "KL720", "KL730")


class NpuCheckError(ValueError):
    """The model file or the target name is unusable."""


@dataclass
class OpVerdict:
    """Verdict for one ONNX op type: node count, how many fall back, and why."""

    op_type: str
    count: int = 0
    unsupported: int = 0
    reasons: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.unsupported == 0:
            return "supported"
        return "unsupported" if self.unsupported == self.count else "partial"


@dataclass
class NpuReport:
    """Result of :func:`check_model` for one target."""

    target: str
    ops: "OrderedDict[str, OpVerdict]"
    graph_issues: list[str]
    max_rank: int
    num_rank_gt4_tensors: int

    @property
    def num_unsupported_nodes(self) -> int:
        return sum(v.unsupported for v in self.ops.values())

    @property
    def ok(self) -> bool:
        """True when every node runs on the NPU and the graph is static."""
        return self.num_unsupported_nodes == 0 and not self.graph_issues

    @property
    def verdict(self) -> str:
        if self.ok:
            return "supported"
        supported_nodes = sum(v.count - v.unsupported for v in self.ops.values())
        return "partial" if supported_nodes else "unsupported"

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "verdict": self.verdict,
            "ok": self.ok,
            "num_nodes": sum(v.count for v in self.ops.values()),
            "num_unsupported_nodes": self.num_unsupported_nodes,
            "max_rank": self.max_rank,
            "num_rank_gt4_tensors": self.num_rank_gt4_tensors,
            "graph_issues": list(self.graph_issues),
            "ops": [
                {"op": v.op_type, "count": v.count, "unsupported": v.unsupported,
                 "verdict": v.verdict, "reasons": v.reasons}
                for v in self.ops.values()
            ],
        }

    def format_table(self) -> str:
        lines = [f"{'op':<20} {'count':>5}  verdict"]
        for v in self.ops.values():
            text = v.verdict
            if v.reasons:
                text += f" ({v.unsupported}/{v.count}: {'; '.join(v.reasons)})"
            lines.append(f"{v.op_type:<20} {v.count:>5}  {text}")
        for issue in self.graph_issues:
            lines.append(f"graph: {issue}")
        lines.append(
            f"{self.target}: {self.verdict}; {self.num_unsupported_nodes} node(s) fall back to the CPU; "
            f"max tensor rank {self.max_rank}, {self.num_rank_gt4_tensors} tensor(s) of rank > 4"
        )
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Operator table
# ----------------------------------------------------------------------------------------------
def load_ops_table(target: str, path: Path = OPS_TABLE_PATH) -> dict:
    """Return the table row of ``target`` (``same_as`` aliases resolved)."""
    with open(path, "r", encoding="utf-8") as f:
        targets = yaml.safe_load(f)["targets"]
    key = target.upper()
    if key not in targets:
        raise NpuCheckError(f"unknown NPU target {target!r}; choose one of {', '.join(sorted(targets))}")
    row = targets[key]
    while "same_as" in row:
        row = targets[row["same_as"]]
    return row


# ----------------------------------------------------------------------------------------------
# Graph facts: shapes and constants
# ----------------------------------------------------------------------------------------------
def _shape_of(value_info) -> list[int | str | None] | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return dims


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


def _attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _static(shape) -> bool:
    return shape is not None and all(isinstance(d, int) and d >= 0 for d in shape)


# ----------------------------------------------------------------------------------------------
# Per-node rules: each returns a reason string when the node cannot run on the NPU, else None
# ----------------------------------------------------------------------------------------------
def _rule_global_avgpool(node, shapes, consts, row) -> str | None:
    shape = shapes.get(node.input[0])
    if not _static(shape) or len(shape) != 4:
        return "GlobalAveragePool input shape unknown"
    hw = shape[2] * shape[3]
    limit = row["global_avgpool_max_hw"]
    if hw > limit:
        return f"GlobalAveragePool over {shape[2]}x{shape[3]}={hw} > {limit}"
    return None


def _rule_avgpool(node, shapes, consts, row) -> str | None:
    kernel = list(_attr(node, "kernel_shape", []))
    strides = list(_attr(node, "strides", [1] * len(kernel)))
    pads = list(_attr(node, "pads", [0] * 2 * len(kernel)))
    allowed = row["avgpool_kernels"]
    if kernel != strides or any(k not in allowed for k in kernel):
        return f"AveragePool kernel {kernel} stride {strides} (needs kernel = stride in {allowed})"
    if any(pads):
        return f"AveragePool with padding {pads}"
    return None


def _rule_transpose(node, shapes, consts, row) -> str | None:
    perm = list(_attr(node, "perm", []))
    if perm == sorted(perm) and perm:
        return None
    allowed = [list(p) for p in row.get("transpose_perms", [])]
    if perm not in allowed:
        return f"Transpose perm {perm} not allowed (allowed: {allowed or 'none'})"
    return None


def _rule_slice(node, shapes, consts, row) -> str | None:
    steps = _attr(node, "steps")  # opset < 10 has no steps: always 1
    if len(node.input) >= 5 and node.input[4]:
        if node.input[4] not in consts:
            return "Slice steps not constant"
        steps = consts[node.input[4]].tolist()
    steps = [int(s) for s in np.atleast_1d(steps)] if steps is not None else [1]
    if any(s != 1 for s in steps):
        return f"Slice steps {steps} (needs 1)"
    shape = shapes.get(node.input[0])
    if shape is not None and len(shape) > 4:
        return f"Slice on a rank-{len(shape)} tensor"
    return None


def _rule_resize(node, shapes, consts, row) -> str | None:
    mode = _attr(node, "mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode not in row["resize_modes"]:
        return f"Resize mode {mode!r} (needs {row['resize_modes']})"
    src, dst = shapes.get(node.input[0]), shapes.get(node.output[0])
    if not (_static(src) and _static(dst)) or len(src) != 4:
        return "Resize shapes unknown"
    if dst[0] != src[0] or dst[1] != src[1] or dst[2] < src[2] or dst[3] < src[3]:
        return f"Resize {src} -> {dst} is not a spatial upsampling"
    return None


RULES = {
    "GlobalAveragePool": _rule_global_avgpool,
    "AveragePool": _rule_avgpool,
    "Transpose": _rule_transpose,
    "Slice": _rule_slice,
    "Resize": _rule_resize,
}


def _node_reason(node, shapes, consts, row) -> str | None:
    """Why ``node`` cannot run on the NPU of ``row``, or None when it can."""
    max_rank = row["max_rank"]
    for name in list(node.input) + list(node.output):
        shape = shapes.get(name) if name else None
        if shape is not None and len(shape) > max_rank:
            return f"rank-{len(shape)} tensor"
    status = row["ops"].get(node.op_type, "no")
    if status is True or status == "yes":
        return None
    if status is False or status == "no":
        known = node.op_type in row["ops"]
        return "not supported" if known else "not in the Kneron operator table"
    return RULES[node.op_type](node, shapes, consts, row)


# ----------------------------------------------------------------------------------------------
# Whole-graph check
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
    """Check every node of ``model`` against ``target``'s operator table and rules."""
    if not isinstance(model, onnx.ModelProto):
        model = load_onnx(model)
    row = load_ops_table(target)
    shapes = tensor_shapes(model)
    consts = constant_values(model)
    ops: "OrderedDict[str, OpVerdict]" = OrderedDict()
    for node in model.graph.node:
        v = ops.setdefault(node.op_type, OpVerdict(node.op_type))
        v.count += 1
        reason = _node_reason(node, shapes, consts, row)
        if reason is not None:
            v.unsupported += 1
            if reason not in v.reasons:
                v.reasons.append(reason)
    ranks = [len(s) for s in shapes.values()]
    return NpuReport(
        target=target.upper(),
        ops=ops,
        graph_issues=_graph_issues(model, shapes),
        max_rank=max(ranks, default=0),
        num_rank_gt4_tensors=sum(r > 4 for r in ranks),
    )


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
    parser = argparse.ArgumentParser(prog="python -m litehrnet.deploy.npu_check",
                                     description="Check an ONNX model against a Kneron NPU's operator table (SPEC 3).")
    parser.add_argument("model", help="ONNX file")
    parser.add_argument("--target", default="KL720", help="KL520 | KL720 | KL730 (KL730 assumed = KL720)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any node falls back to the CPU")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    try:
        report = check_model(args.model, args.target)
    except NpuCheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.format_table())
    return 1 if args.strict and not report.ok else 0


if __name__ == "__main__":
    sys.exit(main())
