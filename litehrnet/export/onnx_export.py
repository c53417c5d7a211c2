"""Export a torch pose model to a static, batch-1, NCHW ONNX file that checks itself.

For CPU/GPU use (not the chip) ``batch=N`` writes a static batch-N file and ``dynamic_batch=True``
a file whose batch axis is named ``batch``; metadata ``batch`` says which ("1", "N", "dynamic").

:func:`export_onnx` traces with the TorchScript exporter (``dynamo=False``), simplifies with
onnxsim, validates with ``onnx.checker``, writes the metadata contract
(:mod:`litehrnet.export.metadata`), runs the file with onnxruntime and compares it with PyTorch
on the same input. The file is written atomically (temporary file + ``os.replace``) and only when
the comparison passes.
"""

from __future__ import annotations

import io
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
import torch
from torch import nn

from .batch import free_batch_axis

INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
SUPPORTED_OPSETS = range(11, 19)   # Kneron: opset 11 (older converter) up to 18 (current optimiser)
SIZE_MULTIPLE = 32                  # Lite-HRNet / HRNet downsample five times
DEFAULT_ATOL = 1e-4                 # relative: max|onnxruntime - torch| <= DEFAULT_ATOL x max|torch output|
MIN_OUTPUT_MAX = 1e-6               # below: an all-near-zero output, refused (check_output_magnitude)


class ExportError(ValueError):
    """Export cannot proceed or the exported file does not match PyTorch."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` produced and measured."""

    path: Path
    input_hw: tuple[int, int]
    opset: int
    simplified: bool
    max_abs_diff: float
    output_shape: tuple[int, ...]
    num_nodes: int
    op_histogram: dict[str, int] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    batch: str = "1"  # "1", "N" (static) or "dynamic"

    def summary(self) -> str:
        return (f"{self.path}: opset {self.opset}, input {self.batch}x3x{self.input_hw[0]}x{self.input_hw[1]}, "
                f"output {'x'.join([self.batch, *map(str, self.output_shape[1:])])}, {self.num_nodes} nodes"
                f"{', simplified' if self.simplified else ''}; "
                f"max|onnxruntime - torch| = {self.max_abs_diff:.3g}")


def check_output_magnitude(output_max: float, out_path) -> None:
    """Refuse a verification whose PyTorch output is all near zero (``max|y| <`` :data:`MIN_OUTPUT_MAX`).

    Untrained mmpose-initialised networks give heatmaps of ~1e-18: any exported graph then
    "matches" PyTorch (measured max|diff| 1.1e-24). Export trained weights, or ``none`` in
    ``export2onnx.py`` (synthetic trained-like weights)."""
    if not output_max >= MIN_OUTPUT_MAX:
        raise ExportError(f"the model's output is all near zero (max|y| = {output_max:.3g} < {MIN_OUTPUT_MAX:g}) on "
                          "the verification input, so the ONNX check would pass vacuously; export trained weights "
                          f"(nothing written to {out_path})")


def check_export_args(input_hw: Sequence[int], opset: int) -> tuple[int, int]:
    """Validate the export size and opset; return ``(h, w)``."""
    if opset not in SUPPORTED_OPSETS:
        raise ExportError(f"opset {opset} is not supported; use {SUPPORTED_OPSETS.start}.."
                          f"{SUPPORTED_OPSETS.stop - 1} (Kneron: 11 for the older converter, <= 18 current)")
    if len(input_hw) != 2:
        raise ExportError(f"input size must be H W, got {list(input_hw)}")
    h, w = (int(v) for v in input_hw)
    if h <= 0 or w <= 0 or h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise ExportError(f"input size {h}x{w} must be positive multiples of {SIZE_MULTIPLE}, e.g. 256x192")
    return h, w


def batch_label(batch: int, dynamic_batch: bool) -> str:
    """Metadata value of the batch axis: ``"dynamic"`` or the static size; refuses both or N < 1."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ExportError(f"batch must be a positive integer, got {batch!r}")
    if dynamic_batch and batch != 1:
        raise ExportError(f"choose a static batch ({batch}) or a dynamic batch, not both")
    return "dynamic" if dynamic_batch else str(batch)


def _trace(model: nn.Module, dummy: torch.Tensor, opset: int) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # static shapes are intended
        torch.onnx.export(
            model, (dummy,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def _verify_rows(first_row: np.ndarray, rows: int) -> np.ndarray:
    """``rows`` verification inputs: the given one first, then shifted and mirrored copies of it.

    Every row differs (a batch export that mixed rows up fails the comparison) and stays in the
    input's value range: random out-of-range rows blow a trained network's activations up to where
    float32 rounding alone gives differences of order 1 (measured on Lite-HRNet).
    """
    variants = [first_row]
    for k in range(1, rows):
        shifted = np.roll(first_row, shift=(8 * k, 5 * k), axis=(2, 3))
        variants.append(shifted[..., ::-1] if k % 2 else shifted)
    return np.ascontiguousarray(np.concatenate(variants, 0), dtype=np.float32)


def _simplify(proto: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    simplified, ok = onnxsim.simplify(proto)
    if not ok:
        raise ExportError("onnxsim could not validate the simplified model; retry with --no-simplify")
    return simplified


def _set_metadata(proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)


def run_onnxruntime(proto_or_path: onnx.ModelProto | str | Path, input_nchw: np.ndarray,
                    threads: int = 1) -> np.ndarray:
    """Run a single-input, single-output ONNX model on the CPU with onnxruntime."""
    import onnxruntime as ort

    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    source = proto_or_path.SerializeToString() if isinstance(proto_or_path, onnx.ModelProto) else str(proto_or_path)
    session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: input_nchw.astype(np.float32)})[0]


def _write_atomic(proto: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def export_onnx(
    model: nn.Module,
    out_path: str | os.PathLike,
    input_hw: Sequence[int],
    *,
    opset: int = 11,
    simplify: bool = True,
    metadata: dict[str, str],
    verify_input: np.ndarray | None = None,
    atol: float = DEFAULT_ATOL,
    doc_string: str | None = None,
    batch: int = 1,
    dynamic_batch: bool = False,
) -> ExportReport:
    """Export ``model`` (images 1x3xHxW -> heatmaps) to ``out_path`` and verify it.

    ``verify_input`` is a normalised 1x3xHxW float32 array (e.g. a real preprocessed crop); a
    seeded standard-normal input is used when it is None. ``doc_string`` labels the file (e.g.
    random-init weights). ``batch``/``dynamic_batch``: see the module docstring; a batch-N file is
    verified on N different rows, a dynamic one on 1 and on 3 rows. Raises :class:`ExportError` when
    the arguments are invalid, when the output is all near zero (:func:`check_output_magnitude`) or when
    max|onnxruntime - torch| exceeds ``atol`` x max|torch output| (nothing is written).
    """
    start = time.perf_counter()
    h, w = check_export_args(input_hw, opset)
    label = batch_label(batch, dynamic_batch)
    if dynamic_batch and not simplify:
        raise ExportError("a dynamic batch needs the simplified graph (every shape folded to a constant); "
                          "drop --no-simplify")
    if verify_input is None:
        verify_input = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
    if tuple(verify_input.shape) != (1, 3, h, w):
        raise ExportError(f"verify_input shape {tuple(verify_input.shape)} != (1, 3, {h}, {w})")
    model = model.eval()
    # a dynamic export is traced at batch 2 (static, so every shape folds), then freed; verified at 1 and 3
    trace_input = _verify_rows(verify_input, 2 if dynamic_batch else batch)
    checks = [trace_input[:1], _verify_rows(verify_input, 3)] if dynamic_batch else [trace_input]

    proto = _trace(model, torch.from_numpy(trace_input), opset)
    if simplify:
        proto = _simplify(proto)
    if dynamic_batch:
        proto = free_batch_axis(proto, len(trace_input))
    _set_metadata(proto, {**metadata, "batch": label})
    if doc_string:
        proto.doc_string = doc_string
    onnx.checker.check_model(proto, full_check=True)

    max_abs_diff, output_shape, output_max = 0.0, None, 0.0
    for x in checks:
        with torch.no_grad():
            expected = model(torch.from_numpy(x)).numpy()
        try:
            got = run_onnxruntime(proto, x)
        except Exception as exc:  # onnxruntime raises private exception types
            raise ExportError(f"the exported graph does not run at batch {len(x)} ({exc}); export with a static "
                              "--batch N instead") from exc
        if got.shape != expected.shape:
            hint = "; the graph keeps its traced batch somewhere: export with a static --batch N" if dynamic_batch else ""
            raise ExportError(f"onnxruntime output shape {got.shape} != torch {expected.shape} at batch {len(x)}{hint}")
        max_abs_diff = max(max_abs_diff, float(np.max(np.abs(got - expected))))
        output_max = max(output_max, float(np.max(np.abs(expected))))
        output_shape = output_shape or tuple(got.shape)  # batch 1 for a dynamic export
    check_output_magnitude(output_max, out_path)
    if not max_abs_diff <= atol * output_max:  # relative to the output's size: a check that can fail
        raise ExportError(f"exported model differs from PyTorch: max|diff| = {max_abs_diff:.3g} > {atol:g} x "
                          f"max|torch output| ({output_max:.3g}); nothing written to {out_path}")
    stride = int(metadata.get("heatmap_stride", 0))
    if stride and (got.ndim != 4 or tuple(got.shape[2:]) != (h // stride, w // stride)):
        raise ExportError(f"metadata heatmap_stride={stride} does not match the output {tuple(got.shape)} of a "
                          f"{h}x{w} input; take the stride from the model (model.heatmap_stride)")
    path = Path(out_path)
    _write_atomic(proto, path)
    return ExportReport(
        path=path, input_hw=(h, w), opset=opset, simplified=simplify, max_abs_diff=max_abs_diff,
        output_shape=output_shape, num_nodes=len(proto.graph.node),
        op_histogram=dict(Counter(n.op_type for n in proto.graph.node)),
        metadata={**metadata, "batch": label}, seconds=time.perf_counter() - start, batch=label,
    )


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
