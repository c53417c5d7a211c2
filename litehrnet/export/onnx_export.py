"""Export a torch pose model to a static, batch-1, NCHW ONNX file that checks itself.

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

INPUT_NAME = "input"
OUTPUT_NAME = "heatmaps"
SUPPORTED_OPSETS = range(11, 19)   # Kneron: opset 11 (older converter) up to 18 (current optimiser)
SIZE_MULTIPLE = 32                  # Lite-HRNet / HRNet downsample five times
DEFAULT_ATOL = 1e-4


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

    def summary(self) -> str:
        return (f"{self.path}: opset {self.opset}, input 1x3x{self.input_hw[0]}x{self.input_hw[1]}, "
                f"output {'x'.join(map(str, self.output_shape))}, {self.num_nodes} nodes"
                f"{', simplified' if self.simplified else ''}; "
                f"max|onnxruntime - torch| = {self.max_abs_diff:.3g}")


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


def _trace(model: nn.Module, dummy: torch.Tensor, opset: int) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # static shapes are intended
        torch.onnx.export(
            model, (dummy,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


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
) -> ExportReport:
    """Export ``model`` (images 1x3xHxW -> heatmaps) to ``out_path`` and verify it.

    ``verify_input`` is a normalised 1x3xHxW float32 array (e.g. a real preprocessed crop); a
    seeded standard-normal input is used when it is None. ``doc_string`` labels the file (e.g.
    random-init weights). Raises :class:`ExportError` when the
    arguments are invalid or when max|onnxruntime - torch| exceeds ``atol`` (nothing is written).
    """
    start = time.perf_counter()
    h, w = check_export_args(input_hw, opset)
    if verify_input is None:
        verify_input = np.random.default_rng(0).standard_normal((1, 3, h, w)).astype(np.float32)
    if tuple(verify_input.shape) != (1, 3, h, w):
        raise ExportError(f"verify_input shape {tuple(verify_input.shape)} != (1, 3, {h}, {w})")
    model = model.eval()
    dummy = torch.from_numpy(np.ascontiguousarray(verify_input, dtype=np.float32))
    with torch.no_grad():
        expected = model(dummy).numpy()

    proto = _trace(model, dummy, opset)
    if simplify:
        proto = _simplify(proto)
    _set_metadata(proto, metadata)
    if doc_string:
        proto.doc_string = doc_string
    onnx.checker.check_model(proto, full_check=True)

    got = run_onnxruntime(proto, verify_input)
    if got.shape != expected.shape:
        raise ExportError(f"onnxruntime output shape {got.shape} != torch {expected.shape}")
    max_abs_diff = float(np.max(np.abs(got - expected)))
    if not max_abs_diff <= atol:
        raise ExportError(f"exported model differs from PyTorch: max|diff| = {max_abs_diff:.3g} > {atol:g}; "
                          f"nothing written to {out_path}")
    path = Path(out_path)
    _write_atomic(proto, path)
    return ExportReport(
        path=path, input_hw=(h, w), opset=opset, simplified=simplify, max_abs_diff=max_abs_diff,
        output_shape=tuple(got.shape), num_nodes=len(proto.graph.node),
        op_histogram=dict(Counter(n.op_type for n in proto.graph.node)),
        metadata=dict(metadata), seconds=time.perf_counter() - start,
    )


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}
