"""Write the int8-emulating ONNX: a float graph with quantise-dequantise (QDQ) steps where the chip rounds.

What is quantised (``plan_activations``): the graph input (at the radix of the normalisation mode,
``kneron`` -> 8) and every output of the operators the NPU keeps in int8 (:data:`KEPT_OPS`: conv,
gemm, add, mul, concat, sigmoid, pools, resize, ...). A conv/gemm/batch-norm/add whose only consumer
is an activation (ReLU, Clip, ...) is fused with it on the chip, so only the activation's output is
quantised. Layout-only operators (reshape, transpose, split, ...) keep their input's radix.

An activation's grid is ``float = q / m`` with ``m = scale * 2**radix``: Kneron's documented
datapath format (scale in [1, 2), default of :func:`quantize_model`) or a bare power of two
(``activation_grid="pow2"``, scale 1, the stricter reading). One ``m`` per tensor, or
(``per_channel_activations``, the default, Kneron's per-channel datapath quantisation) one per
channel (axis 1), stored as a ``1 x C x 1 x 1`` initializer the fake quantiser broadcasts. The
ranges come from calibration, widened by an outlier factor (fixed, or chosen on held-out
calibration crops: ``outlier_factor="auto"``).

Weights of Conv/ConvTranspose/Gemm are stored as int8 initializers with one power-of-two radix per
output channel (or per tensor), biases as int32 at the accumulator radix ``r_in + r_w``; float
constants that enter Add/Mul/Sub/Div/Concat are int8 per tensor. Each is turned back into float by
``Cast`` + ``Mul(2**-r)``, so the file runs in any onnxruntime at the model's own opset.

Why the activation QDQ is written with elementary operators instead of ``QuantizeLinear`` /
``DequantizeLinear``: those round half to even and onnxruntime fuses them with the conv into integer
kernels with their own requantisation; the chip's input quantiser (``prepostprocess.normalize``)
rounds half away from zero. ``x -> Mul(2**r) -> sign * floor(|v| + 0.5) -> clip [-128, 127] ->
Mul(2**-r)`` (``Div(m)`` on the Kneron grid) keeps one rounding rule and float accumulation of exact int8 products (exact while a
sum stays below 2**24, the float32 mantissa; an int32 accumulator on the chip).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from prepostprocess.normalize import quantize

from .int8 import bias_to_int32, quantize_weight, radix_for_range, radix_w_for_bias, scale_of

SCHEME = "kneron-int8-pow2"
SCHEME_SCALED = "kneron-int8-scaled"  # activations at scale * 2**radix (Kneron's documented datapath format)
ACTIVATION_GRIDS = ("kneron", "pow2")
KEPT_OPS = frozenset({
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Concat", "Sigmoid", "HardSigmoid",
    "Relu", "LeakyRelu", "PRelu", "Clip", "Tanh", "BatchNormalization", "AveragePool", "MaxPool",
    "GlobalAveragePool", "GlobalMaxPool", "Resize", "Upsample", "Pad", "ReduceMean", "Softmax",
})
FUSING_ACTIVATIONS = frozenset({"Relu", "Clip", "LeakyRelu", "PRelu"})
FUSABLE_PRODUCERS = frozenset({"Conv", "ConvTranspose", "Gemm", "BatchNormalization", "Add"})
PASS_THROUGH = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Split", "Slice"})
CONSTANT_OPERAND_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Concat"})
FLOAT_SUFFIX = "::f32"
INPUT_Q_SUFFIX = "::q8"


@dataclass
class QuantPlan:
    """Which tensors get an int8 radix, in graph order, and the graph input's name."""

    input_name: str
    activations: list[str]                       # node outputs quantised in place (names kept)
    fused: list[str] = field(default_factory=list)  # outputs left float because an activation follows

    @property
    def calibrated(self) -> list[str]:
        return [self.input_name] + self.activations


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            out[name].append(node)
    return out


def plan_activations(model: onnx.ModelProto) -> QuantPlan:
    """The tensors the chip keeps in int8 (see the module doc), in graph order."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValueError(f"expected one graph input, got {inputs}; export a single-input pose model")
    consumers = _consumers(graph)
    graph_outputs = {o.name for o in graph.output}
    plan = QuantPlan(inputs[0], [])
    for node in graph.node:
        if node.op_type not in KEPT_OPS:
            continue
        for name in node.output[:1]:
            users = consumers.get(name, [])
            fused = (node.op_type in FUSABLE_PRODUCERS and name not in graph_outputs and len(users) == 1
                     and users[0].op_type in FUSING_ACTIVATIONS)
            (plan.fused if fused else plan.activations).append(name)
    return plan


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` that also returns the tensors ``names`` (float32) as graph outputs."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    present = {o.name for o in out.graph.output}
    for name in names:
        if name not in present:
            out.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    return out


class _Builder:
    """Collects new nodes and shared scalar initializers while the graph is rewritten."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph
        self.scalars: dict[str, float] = {}

    def scalar(self, value: float) -> str:
        name = f"q8/const/{value!r}"
        self.scalars[name] = value
        return name

    def fake_quant(self, src: str, dst: str, radix, scale=None) -> list[onnx.NodeProto]:
        """``dst = clip(round_half_away(src * m), -128, 127) / m`` as nine elementary nodes, ``m = scale * 2**r``.

        ``radix`` (and ``scale``, default 1): a number, or an array shaped to broadcast against the
        tensor (per channel). A power-of-two ``m`` dequantises by ``Mul(2**-r)`` (exact), any other by ``Div``.
        """
        p = f"q8/{dst}/"
        m = np.exp2(np.asarray(radix, np.float64)) * (1.0 if scale is None else np.asarray(scale, np.float64))
        pow2 = scale is None or bool(np.all(np.asarray(scale) == 1.0))
        if np.ndim(m) == 0:
            up, down = self.scalar(float(m)), self.scalar(float(1.0 / m) if pow2 else float(m))
        else:
            up, down = p + "up", p + "down"
            self.graph.initializer.extend([numpy_helper.from_array(m.astype(np.float32), up),
                                           numpy_helper.from_array((1.0 / m if pow2 else m).astype(np.float32), down)])
        mk = helper.make_node
        return [
            mk("Mul", [src, up], [p + "v"]), mk("Abs", [p + "v"], [p + "a"]),
            mk("Add", [p + "a", self.scalar(0.5)], [p + "h"]), mk("Floor", [p + "h"], [p + "f"]),
            mk("Sign", [p + "v"], [p + "s"]), mk("Mul", [p + "s", p + "f"], [p + "q"]),
            mk("Max", [p + "q", self.scalar(-128.0)], [p + "lo"]), mk("Min", [p + "lo", self.scalar(127.0)], [p + "hi"]),
            mk("Mul" if pow2 else "Div", [p + "hi", down], [dst]),
        ]

    def dequant_initializer(self, name: str, q: np.ndarray, radix: np.ndarray, axis: int) -> list[onnx.NodeProto]:
        """int ``q`` initializer + ``Cast`` + ``Mul(2**-radix)`` -> float tensor ``name``."""
        qname, sname = f"{name}::int{q.dtype.itemsize * 8}", f"{name}::scale"
        self.graph.initializer.append(numpy_helper.from_array(q, qname))
        scale = scale_of(radix)
        if scale.size > 1 or q.ndim > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale = scale.reshape(shape) if scale.size > 1 else scale.reshape([])
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(scale, np.float32), sname))
        return [helper.make_node("Cast", [qname], [name + "::cast"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [name + "::cast", sname], [name])]

    def finish(self) -> None:
        for name, value in self.scalars.items():
            self.graph.initializer.append(numpy_helper.from_array(np.array(value, np.float32), name))


def _weight_axis(node: onnx.NodeProto) -> int:
    if node.op_type == "ConvTranspose":
        return 1
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return 0


def _source_radix(name: str, radix: dict, producers: dict[str, onnx.NodeProto]) -> int | None:
    """Radix of the int8 tensor behind ``name``, looking through layout-only operators.

    A per-channel radix gives its finest channel: the accumulator that adds the products of all
    input channels holds them at that radix (coarser channels' products are exact there), and the
    bias is stored at it.
    """
    seen = 0
    while name not in radix and name in producers and producers[name].op_type in PASS_THROUGH and seen < 64:
        name, seen = producers[name].input[0], seen + 1
    r = radix.get(name)
    return None if r is None else int(np.max(r))


def radix_json(r) -> int | list[int]:
    """A radix for the metadata and reports: an int, or the list of per-channel radices."""
    return int(r) if np.ndim(r) == 0 else [int(v) for v in np.ravel(r)]


def scale_json(s) -> float | list[float]:
    """A Kneron scale for the metadata: a float, or the list of per-channel scales (float32 values)."""
    return float(np.float32(s)) if np.ndim(s) == 0 else [float(v) for v in np.ravel(s).astype(np.float32)]


def write_qdq(model: onnx.ModelProto, radix: dict, plan: QuantPlan, per_channel: bool = True,
              calibration: dict | None = None, scale: dict | None = None) -> tuple[onnx.ModelProto, dict]:
    """The int8-emulating copy of ``model``; ``radix`` maps every tensor of ``plan.calibrated`` to its radix
    (an int, or per channel an array shaped to broadcast against the tensor); ``scale`` (same keys and
    shapes, values in [1, 2)): Kneron's activation scale, ``float = q / (scale * 2**radix)``; absent = 1.

    ``calibration`` (method, percentile, number of inputs, ...) is recorded in the ``quantization``
    metadata next to the scheme; the float model's other metadata (the runners' contract) is kept.

    Returns the model and a summary (weight radices, float leftovers) for the report and metadata.
    """
    missing = [n for n in plan.calibrated if n not in radix]
    if missing:
        raise ValueError(f"no radix for {len(missing)} tensors (e.g. {missing[0]}); calibrate first")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    init = {i.name: i for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    builder = _Builder(graph)
    summary: dict = {"weights": {}, "float_biases": [], "constants": {}}
    new_nodes: list[onnx.NodeProto] = []
    handled: dict[str, str] = {}  # initializer name -> its dequantised float name

    q_input = plan.input_name + INPUT_Q_SUFFIX
    new_nodes += builder.fake_quant(plan.input_name, q_input, radix[plan.input_name])
    quantised = set(plan.activations)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == plan.input_name:
                node.input[i] = q_input
        pre = []
        if node.op_type in ("Conv", "ConvTranspose", "Gemm") and len(node.input) > 1 and node.input[1] in init:
            w_name = node.input[1]
            axis = _weight_axis(node)
            r_in = _source_radix(node.input[0].replace(INPUT_Q_SUFFIX, ""), radix, producers)
            b_name = node.input[2] if len(node.input) > 2 and node.input[2] in init else None
            b = numpy_helper.to_array(init[b_name]).astype(np.float64) if b_name else None
            if w_name not in handled:
                w = numpy_helper.to_array(init[w_name]).astype(np.float64)
                r_w = quantize_weight(w, per_channel=per_channel, axis=axis)[1]
                if b is not None and r_in is not None:  # the int32 accumulator must hold the bias
                    capped = radix_w_for_bias(r_w if r_w.size == b.size else np.full(b.size, r_w[0]), b, r_in)
                    r_w = capped if per_channel else np.full_like(r_w, capped.min())
                q, r_w = quantize_weight(w, axis=axis, radix=r_w)
                pre += builder.dequant_initializer(w_name + "/int8", q, r_w, axis)
                handled[w_name] = w_name + "/int8"
                summary["weights"][w_name] = [int(v) for v in r_w]
            node.input[1] = handled[w_name]
            if b_name is not None:
                if r_in is None:
                    summary["float_biases"].append(b_name)
                else:
                    r_w = np.asarray(summary["weights"][w_name])
                    q_b, r_b = bias_to_int32(b, r_in, r_w if r_w.size == b.size else np.full(b.size, r_w[0]))
                    pre += builder.dequant_initializer(b_name + f"/int32@{node.name or len(new_nodes)}", q_b, r_b, 0)
                    node.input[2] = pre[-1].output[0]
        elif node.op_type in CONSTANT_OPERAND_OPS:
            for i, name in enumerate(node.input):
                if name in init and init[name].data_type == TensorProto.FLOAT:
                    if name not in handled:
                        c = numpy_helper.to_array(init[name]).astype(np.float64)
                        r_c = radix_for_range(c.min(), c.max())
                        pre += builder.dequant_initializer(name + "/int8", quantize(c, r_c), np.array([r_c]), 0)
                        handled[name] = name + "/int8"
                        summary["constants"][name] = r_c
                    node.input[i] = handled[name]
        new_nodes += pre
        new_nodes.append(node)
        if node.output and node.output[0] in quantised:
            name = node.output[0]
            node.output[0] = name + FLOAT_SUFFIX
            new_nodes += builder.fake_quant(name + FLOAT_SUFFIX, name, radix[name], (scale or {}).get(name))
    builder.finish()
    used = {n for node in new_nodes for n in node.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    del graph.node[:]
    graph.node.extend(new_nodes)
    del graph.value_info[:]
    meta = {p.key: p.value for p in model.metadata_props}
    act_channels = any(np.ndim(radix[n]) > 0 for n in plan.activations)
    meta["quantization"] = json.dumps(scheme_description(per_channel, radix[plan.input_name], act_channels,
                                                         scale is not None, **(calibration or {})))
    meta["int8_radix"] = json.dumps({n: radix_json(radix[n]) for n in plan.calibrated})
    if scale is not None:
        meta["int8_scale"] = json.dumps({n: scale_json(scale[n]) for n in plan.calibrated if n in scale})
    del out.metadata_props[:]
    for key, value in meta.items():
        out.metadata_props.append(onnx.StringStringEntryProto(key=key, value=str(value)))
    onnx.checker.check_model(out)
    return out, summary


def scheme_description(per_channel: bool, input_radix: int, per_channel_activations: bool = False,
                       activation_scale: bool = False, **calibration) -> dict:
    """What the ``quantization`` metadata key says about the emulated arithmetic."""
    grid = "scale * 2**radix (scale in [1, 2))" if activation_scale else "power-of-two radix"
    return {
        "scheme": SCHEME_SCALED if activation_scale else SCHEME,
        "weights": "int8, power-of-two radix " + ("per output channel" if per_channel else "per tensor"),
        "activations": f"int8, {grid} " + ("per channel (never coarser than the tensor's)"
                                          if per_channel_activations else "per tensor") + ", from calibration",
        "bias": "int32 at radix r_in + r_w (accumulator scale)",
        "rounding": "half away from zero, saturate to [-128, 127]",
        "input_radix": int(input_radix),
        **calibration,
    }


def read_scheme(model: onnx.ModelProto) -> dict | None:
    """The ``quantization`` metadata of an int8-emulating ONNX, or None for a float model."""
    for prop in model.metadata_props:
        if prop.key == "quantization":
            return json.loads(prop.value)
    return None


OUTLIER_FACTORS = (1.0, 1.25, 1.5, 2.0, 3.0)  # the candidates of outlier_factor="auto"
# operators whose output cannot leave a fixed range, whatever the input: the outlier factor never widens
# their grid beyond it (a sigmoid weight of 1.0 stays exactly 1.0: 127 on the grid of [0, 1])
BOUNDED_OUTPUTS = {"Sigmoid": (0.0, 1.0), "HardSigmoid": (0.0, 1.0), "Tanh": (-1.0, 1.0)}


def _build(model, plan, stats, method, percentile, input_radix, per_channel, per_channel_activations, pow2,
           outlier_factor, calibration):
    from .calibration import choose_multipliers, multiplier_for_stats
    from .int8 import multiplier_for_range, split_multiplier

    fixed = {plan.input_name: int(input_radix)} if input_radix is not None else {}
    mult = choose_multipliers(stats, method, percentile, fixed, per_channel_activations, pow2, outlier_factor)
    op_of = {n.output[0]: n.op_type for n in model.graph.node if n.output}
    for name in plan.activations:
        if op_of.get(name) in BOUNDED_OUTPUTS:
            mult[name] = np.maximum(mult[name], multiplier_for_range(*BOUNDED_OUTPUTS[op_of[name]], pow2))
    if input_radix is None:  # the input quantiser is per tensor
        mult[plan.input_name] = multiplier_for_stats(stats[plan.input_name], method, percentile, pow2, outlier_factor)
    radix, scale = {}, {}
    for name, m in mult.items():
        r, s = split_multiplier(m)
        radix[name], scale[name] = (int(r), float(s)) if np.ndim(r) == 0 else (r, s)
    return write_qdq(model, radix, plan, per_channel, calibration, None if pow2 else scale)


def _keypoint_shift(float_model: onnx.ModelProto, qmodel: onnx.ModelProto, inputs: list[np.ndarray]) -> float:
    """Mean distance (input px) between the keypoints decoded from the float and the int8 heatmaps."""
    import onnxruntime as ort

    from litehrnet.data.codec import HeatmapCodec

    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    sessions = [ort.InferenceSession(m.SerializeToString(), options, providers=["CPUExecutionProvider"])
                for m in (float_model, qmodel)]
    name = sessions[0].get_inputs()[0].name
    shifts = []
    for x in inputs:
        hm_f, hm_q = (s.run(None, {name: x})[0] for s in sessions)
        h, w = x.shape[2:]
        codec = HeatmapCodec((h, w), h // hm_f.shape[2])
        (kp_f, _), (kp_q, _) = codec.decode(hm_f), codec.decode(hm_q)
        shifts.append(np.linalg.norm(kp_f.astype(np.float64) - kp_q, axis=-1).mean())
    return float(np.mean(shifts))


def quantize_model(model: onnx.ModelProto, calib_inputs, per_channel: bool = True, method: str = "percentile",
                   percentile: float = 0.999, input_radix: int | None = None,
                   extra: dict | None = None, per_channel_activations: bool = True,
                   activation_grid: str = "kneron",
                   outlier_factor: float | str = 1.0) -> tuple[onnx.ModelProto, QuantPlan, dict]:
    """Calibrate ``model`` (float ONNX) on ``calib_inputs`` (iterable of 1x3xHxW) and write its int8 emulation.

    ``per_channel``: weight radix per output channel (else per tensor); ``per_channel_activations``:
    activation grid per channel (Kneron's per-channel datapath quantisation; else per tensor);
    ``activation_grid``: ``kneron`` (``scale * 2**radix``, the documented datapath format) or ``pow2``
    (radix only, stricter). ``input_radix``: the chip's fixed input radix (from the norm mode); None
    calibrates it like any activation (``torch`` norm, which has no hardware radix), per tensor.
    ``outlier_factor``: every activation range widened by this factor (Kneron's ``outlier_factor``,
    default 1.0), or ``"auto"``: calibrate on every other calibration input, try
    :data:`OUTLIER_FACTORS` on the held-out others and keep the one whose int8 keypoints move least
    from the float keypoints (then calibrate on all inputs with it). Only calibration data are used.
    """
    from .calibration import collect_stats

    if activation_grid not in ACTIVATION_GRIDS:
        raise ValueError(f"unknown activation grid {activation_grid!r}; use one of {', '.join(ACTIVATION_GRIDS)}")
    if outlier_factor != "auto" and not float(outlier_factor) >= 1.0:
        raise ValueError(f"outlier factor must be >= 1 or 'auto', got {outlier_factor!r}")
    pow2 = activation_grid == "pow2"
    plan = plan_activations(model)
    names = plan.activations if input_radix is not None else plan.calibrated
    args = (method, percentile, input_radix, per_channel, per_channel_activations, pow2)
    trials: dict[float, float] = {}
    if outlier_factor == "auto":
        calib_inputs = list(calib_inputs)
        if len(calib_inputs) < 4:
            raise ValueError(f"outlier_factor='auto' needs at least 4 calibration inputs, got {len(calib_inputs)}")
        fit, held_out = calib_inputs[0::2], calib_inputs[1::2]
        stats, _ = collect_stats(model, names, fit, per_channel=per_channel_activations)
        for f in OUTLIER_FACTORS:
            trial, _ = _build(model, plan, stats, *args, f, {})
            trials[f] = _keypoint_shift(model, trial, held_out)
        outlier_factor = min(trials, key=lambda f: (round(trials[f], 3), f))
    stats, seen = collect_stats(model, names, calib_inputs, per_channel=per_channel_activations)
    calibration = {"calib_method": method, "num_calib": seen, **({"percentile": percentile} if method == "percentile" else {}),
                   "outlier_factor": float(outlier_factor),
                   **({"outlier_factor_trials_px": {f"{f:g}": round(v, 4) for f, v in trials.items()}} if trials else {}),
                   **(extra or {})}
    qmodel, summary = _build(model, plan, stats, *args, float(outlier_factor), calibration)
    summary["ranges"] = {n: s.to_json() for n, s in stats.items()}
    summary["outlier_factor"] = float(outlier_factor)
    return qmodel, plan, summary


def save_model(model: onnx.ModelProto, path) -> None:
    """Write atomically (temporary file + rename)."""
    import os
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, path)
