"""The one place that owns an onnxruntime session (every runner derives from :class:`OnnxRunner`).

A runner is ``preprocess -> infer -> postprocess``; the base class opens the session with a fixed
thread count on the CPU (or CUDA when asked and onnxruntime-gpu is installed), exposes the input
name/shape and the model's ``metadata_props``, and turns onnxruntime's load errors into one clear
line naming the file.

onnxruntime's telemetry is switched off before a session is created (:func:`quiet_onnxruntime`).
``workers > 1`` opens that many sessions of the file and runs the pieces of :meth:`infer_rows`
on them at once (the pose runner's crops; a frame's detector input is one piece).

A model whose metadata says ``weights`` is ``random`` or ``barely-trained`` (written by
``export2onnx.py``) gets one warning per file and process: its keypoints mean nothing.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort


class RunnerError(ValueError):
    """A runner cannot be built or used: wrong model file, metadata or parameters."""


DEVICES = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def execution_providers(device: str) -> list[str]:
    """onnxruntime providers for ``device`` (``cpu`` or ``cuda``); CUDA needs onnxruntime-gpu."""
    if device not in DEVICES:
        raise RunnerError(f"device {device!r} is not supported; use one of {sorted(DEVICES)}")
    if DEVICES[device][0] not in ort.get_available_providers():
        raise RunnerError(f"device {device!r}: this onnxruntime has no {DEVICES[device][0]} (available: "
                          f"{ort.get_available_providers()}); install onnxruntime-gpu or use device 'cpu'")
    return DEVICES[device]


WEAK_WEIGHTS = {"random": "random weights (exported without a checkpoint): keypoints and scores are meaningless",
                "barely-trained": "weights trained for only {train_iters} iterations: expect poor keypoints"}
_warned_weights: set[str] = set()


def quiet_onnxruntime() -> None:
    """Switch off onnxruntime's telemetry events (a no-op where the build has none); call before sessions."""
    disable = getattr(ort, "disable_telemetry_events", None)
    if disable is not None:
        disable()


def warn_weak_weights(onnx_path: str | Path, metadata: dict[str, str]) -> bool:
    """Warn once per file (stderr) when the metadata marks the weights as random or barely trained."""
    kind = metadata.get("weights")
    if kind not in WEAK_WEIGHTS or str(onnx_path) in _warned_weights:
        return False
    _warned_weights.add(str(onnx_path))
    what = WEAK_WEIGHTS[kind].format(train_iters=metadata.get("train_iters", "?"))
    print(f"warning: {onnx_path}: {what} (export a trained checkpoint; README: official weights)", file=sys.stderr)
    return True


class OnnxRunner:
    """Owns an ``onnxruntime.InferenceSession`` for one ONNX file (CPU by default)."""

    def __init__(self, onnx_path: str | Path, num_threads: int = 1, device: str = "cpu", workers: int = 1) -> None:
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise RunnerError(f"{self.onnx_path}: ONNX model not found; export it first (see docs/inference.md)")
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise RunnerError(f"{self.onnx_path}: workers must be a positive int, got {workers!r}")
        self.providers = execution_providers(device)
        self.device, self.num_threads, self.workers = device, num_threads, workers
        quiet_onnxruntime()
        self.session = self._open_session()
        # ``workers`` sessions of the same file: :meth:`infer_rows` runs pieces on them at once
        self.sessions = [self.session] + [self._open_session() for _ in range(workers - 1)]
        self._pool: ThreadPoolExecutor | None = None
        self._worker = threading.local()  # .session: the session of the worker running on this thread
        model_input = self.session.get_inputs()[0]
        self.input_name: str = model_input.name
        self.input_shape: list = list(model_input.shape)
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self.metadata: dict[str, str] = dict(self.session.get_modelmeta().custom_metadata_map)
        warn_weak_weights(self.onnx_path, self.metadata)

    def _open_session(self) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.num_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # No busy-waiting: in a chain the detector's idle threads would spin while the pose model
        # runs, and on shared CPUs spinning doubled the 2-thread latency (measured: yolov5n 111 -> 64 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            return ort.InferenceSession(str(self.onnx_path), options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises several private exception types
            raise RunnerError(f"{self.onnx_path}: onnxruntime cannot load this model ({exc})") from exc

    @property
    def static_batch(self) -> int | None:
        """The fixed batch size of the input, or ``None`` when the batch dimension is dynamic."""
        dim = self.input_shape[0] if self.input_shape else None
        return dim if isinstance(dim, int) and dim > 0 else None

    def model_input_hw(self) -> tuple[int | None, int | None]:
        h, w = self.input_shape[2:4] if len(self.input_shape) == 4 else (None, None)
        return (h if isinstance(h, int) else None, w if isinstance(w, int) else None)

    def infer(self, input_nchw: np.ndarray) -> list[np.ndarray]:
        """All outputs for one input (on this thread's worker session inside :meth:`infer_rows`)."""
        session = getattr(self._worker, "session", self.session)
        return session.run(self.output_names, {self.input_name: input_nchw})

    def piece_rows(self, rows: int, max_rows: int) -> int:
        """Rows per ``session.run`` in :meth:`infer_rows`: the static batch N, else at most ``max_rows``,
        and with several workers no more than an equal share of ``rows`` (so every worker gets a piece)."""
        if self.static_batch is not None:
            return self.static_batch
        return max(1, min(max_rows, -(-rows // self.workers)))

    def infer_rows(self, inputs_nchw: np.ndarray, max_rows: int) -> np.ndarray:
        """First output for every input row, run in pieces the model accepts.

        Static batch N: pieces of N, the last one zero-padded (the padded rows' outputs are dropped;
        rows do not interact in an inference graph). Dynamic batch: pieces of at most ``max_rows``
        (:meth:`piece_rows`). With ``workers > 1`` the pieces are dealt round-robin to the
        ``workers`` sessions, which run at once (onnxruntime releases the GIL); each piece is
        computed exactly as one worker would compute it, so the outputs do not depend on ``workers``
        for the same pieces.
        """
        rows = len(inputs_nchw)
        if rows == 0:
            dims = self.session.get_outputs()[0].shape[1:]
            return np.zeros((0, *(d if isinstance(d, int) else 0 for d in dims)), np.float32)
        piece = self.piece_rows(rows, max_rows)
        starts = list(range(0, rows, piece))

        def run(start: int) -> np.ndarray:
            x = inputs_nchw[start:start + piece]
            if self.static_batch is not None and len(x) < piece:
                x = np.concatenate([x, np.zeros((piece - len(x), *x.shape[1:]), x.dtype)], 0)
            return self.infer(np.ascontiguousarray(x))[0][: rows - start]

        def run_group(worker: int) -> list[np.ndarray]:
            self._worker.session = self.sessions[worker]
            try:
                return [run(start) for start in starts[worker::self.workers]]
            finally:
                del self._worker.session

        used = min(self.workers, len(starts))
        if used == 1:
            outputs = [run(start) for start in starts]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.workers - 1, thread_name_prefix=f"{self.onnx_path.stem}-worker")
            others = [self._pool.submit(run_group, worker) for worker in range(1, used)]
            groups = [run_group(0)] + [future.result() for future in others]  # this thread is worker 0
            outputs = [None] * len(starts)
            for worker, group in enumerate(groups):
                outputs[worker::self.workers] = group
        return outputs[0] if len(outputs) == 1 else np.concatenate(outputs, 0)
