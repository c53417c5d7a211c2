"""The one place that owns an onnxruntime session (every runner derives from :class:`OnnxRunner`).

A runner is ``preprocess -> infer -> postprocess``; the base class opens the session with a fixed
thread count, exposes the input name/shape and the model's ``metadata_props``, and turns
onnxruntime's load errors into one clear line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort


class RunnerError(ValueError):
    """A runner cannot be built or used: wrong model file, metadata or parameters."""


class OnnxRunner:
    """Owns an ``onnxruntime.InferenceSession`` for one ONNX file (CPU)."""

    def __init__(self, onnx_path: str | Path, num_threads: int = 1) -> None:
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise RunnerError(f"{self.onnx_path}: ONNX model not found; export it first (see docs/inference.md)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # No busy-waiting: in a chain the detector's idle threads would spin while the pose model
        # runs, and on shared CPUs spinning doubled the 2-thread latency (measured: yolov5n 111 -> 64 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises several private exception types
            raise RunnerError(f"{self.onnx_path}: onnxruntime cannot load this model ({exc})") from exc
        model_input = self.session.get_inputs()[0]
        self.input_name: str = model_input.name
        self.input_shape: list = list(model_input.shape)
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def static_batch(self) -> int | None:
        """The fixed batch size of the input, or ``None`` when the batch dimension is dynamic."""
        dim = self.input_shape[0] if self.input_shape else None
        return dim if isinstance(dim, int) and dim > 0 else None

    def model_input_hw(self) -> tuple[int | None, int | None]:
        h, w = self.input_shape[2:4] if len(self.input_shape) == 4 else (None, None)
        return (h if isinstance(h, int) else None, w if isinstance(w, int) else None)

    def infer(self, input_nchw: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: input_nchw})
