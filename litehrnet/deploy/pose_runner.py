"""Top-down pose network on onnxruntime: network-ready crops -> heatmaps -> image keypoints.

The YAML (``utils/lite_hrnet_init_params.yaml``) and the model's ``metadata_props`` (written by
:func:`litehrnet.export.export_onnx`) must agree on input size, normalisation and channel order;
a mismatch is refused. A model without metadata (another exporter) runs with the YAML's values;
a dynamic spatial size takes the YAML's. The crops come network-ready from
:class:`~litehrnet.deploy.affine_runner.AffineCropRunner`, built for this runner's
:attr:`PoseRunner.network_input`.

Batching: people are handled in chunks of :attr:`PoseRunner.chunk_size` (YAML ``batch_size``;
default the model's static batch N, else :data:`DEFAULT_CHUNK`), so memory is bounded by one chunk
whatever the number of people. Inside a chunk a dynamic-batch model runs in one call, a static
batch-N model in calls of N (last one zero-padded), a batch-1 model (the Kneron export) once per
crop. Outputs do not depend on the chunking. ``workers`` (the constructor's argument, else the
YAML's, else 1) sessions run a chunk's pieces at once, each with ``num_threads`` intra-op threads: on a
multi-core CPU whole crops run side by side, which costs less CPU per crop than onnxruntime's
intra-op threads on Lite-HRNet's ~1000 small kernels (+7% vs +35% for 2; docs/inference.md). A
dynamic-batch model then gets pieces of ``ceil(rows / workers)`` rows (at most ``batch_size``, x2
with flip test) so every worker has one. Flip test feeds the mirrored crops, flips the heatmaps
back (with the official 1-px shift) and averages. Decoding is the
:class:`~litehrnet.data.codec.HeatmapCodec` of training and ``test.py``, with the stride from the
metadata ``heatmap_stride`` (else from the output shape) and the YAML's ``decode``/``dark_kernel``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from litehrnet.data.codec import HeatmapCodec
from litehrnet.keypoints import COCO_BODY_17
from prepostprocess.heatmap import flip_back

from .affine_runner import Crops, NetworkInput
from .base import OnnxRunner, RunnerError
from .params import load_params, validate_params

DEFAULT_CHUNK = 4  # people per chunk for dynamic-batch and batch-1 models (bench/crowd_speed.py)


class PoseRunner(OnnxRunner):
    """``runner(crops) -> (N, K, 3)`` float32 ``x, y, score`` in original image pixels."""

    def __init__(self, params: dict, num_threads: int = 1, device: str = "cpu", workers: int | None = None) -> None:
        params = validate_params(params, "pose", "pose params")
        super().__init__(params["onnx_path"], num_threads, device,
                         workers if workers is not None else params["workers"] or 1)
        self.params = params
        self.input_hw = (params["input_h"], params["input_w"])
        self._check_model()
        self.network_input = NetworkInput(self.input_hw, params["norm"], params["channel_order"])
        model_batch = self.static_batch or 1  # a batch-1 model still gets a few crops at a time, run one by one
        self.chunk_size: int = params["batch_size"] or (model_batch if model_batch > 1 else DEFAULT_CHUNK)
        channels = self.session.get_outputs()[0].shape[1]
        self.num_keypoints = channels if isinstance(channels, int) else int(self.metadata.get("num_keypoints", 17))
        if "num_keypoints" in self.metadata and int(self.metadata["num_keypoints"]) != self.num_keypoints:
            raise RunnerError(f"{self.onnx_path}: metadata says {self.metadata['num_keypoints']} keypoints but the "
                              f"output has {self.num_keypoints} channels")
        self.flip_pairs = self._flip_pairs()
        self.codec = self._codec(self.session.get_outputs()[0].shape)  # None: dynamic output, no metadata

    @classmethod
    def from_yaml(cls, path: str | Path, num_threads: int = 1, device: str = "cpu",
                  workers: int | None = None) -> "PoseRunner":
        return cls(load_params(path, "pose"), num_threads, device, workers)

    def _check_model(self) -> None:
        where, meta = self.onnx_path, self.metadata
        if any(m is not None and m != y for m, y in zip(self.model_input_hw(), self.input_hw)):
            raise RunnerError(f"{where}: ONNX input is {self.model_input_hw()} (h, w) but the YAML says input_h="
                              f"{self.input_hw[0]}, input_w={self.input_hw[1]}; fix the YAML or re-export")
        if "input_hw" in meta and meta["input_hw"].replace(" ", "") != f"{self.input_hw[0]},{self.input_hw[1]}":
            raise RunnerError(f"{where}: metadata input_hw={meta['input_hw']} differs from the YAML {self.input_hw}")
        for key in ("norm", "channel_order"):
            if key in meta and meta[key] != self.params[key]:
                raise RunnerError(f"{where}: model was trained/exported with {key}={meta[key]!r} but the YAML says "
                                  f"{self.params[key]!r}; set {key}: {meta[key]} in the YAML")
        outputs = self.session.get_outputs()
        if len(outputs[0].shape) != 4:
            raise RunnerError(f"{where}: expected one N x K x H x W heatmap output, got shape {outputs[0].shape}")

    def _codec(self, output_shape) -> HeatmapCodec | None:
        """The decode codec: metadata ``heatmap_stride``, else input / heatmap size of ``output_shape``."""
        out_h = output_shape[2] if isinstance(output_shape[2], int) and output_shape[2] > 0 else None
        if "heatmap_stride" in self.metadata:
            stride = int(self.metadata["heatmap_stride"])
        elif out_h is not None:
            stride = self.input_hw[0] // out_h
        else:
            return None
        try:
            codec = HeatmapCodec(self.input_hw, stride, decode_method=self.params["decode"],
                                 dark_kernel=self.params["dark_kernel"])
        except ValueError as exc:
            raise RunnerError(f"{self.onnx_path}: {exc}") from None
        if out_h is not None and isinstance(output_shape[3], int) and tuple(output_shape[2:]) != codec.heatmap_hw:
            raise RunnerError(f"{self.onnx_path}: output heatmaps {tuple(output_shape[2:])} do not match input "
                              f"{self.input_hw} at heatmap_stride {stride}; re-export the model")
        return codec

    def _flip_pairs(self) -> list[tuple[int, int]]:
        if "flip_pairs" in self.metadata:
            return [tuple(p) for p in json.loads(self.metadata["flip_pairs"])]
        if self.num_keypoints == COCO_BODY_17.num_keypoints:
            return list(COCO_BODY_17.flip_pairs)
        if self.params["flip_test"]:
            raise RunnerError(f"{self.onnx_path}: no flip_pairs metadata for {self.num_keypoints} keypoints; "
                              "set flip_test: false or re-export with metadata")
        return []

    def run_batched(self, inputs_nchw: np.ndarray) -> np.ndarray:
        """Heatmaps for every input row, in calls the model accepts (see the module docstring)."""
        rows_per_chunk = self.chunk_size * (2 if self.params["flip_test"] else 1)
        return self.infer_rows(inputs_nchw, rows_per_chunk)

    def heatmaps(self, inputs_nchw: np.ndarray) -> np.ndarray:
        """Network heatmaps, averaged with the flipped pass when ``flip_test`` is on."""
        if not self.params["flip_test"]:
            return self.run_batched(inputs_nchw)
        n = len(inputs_nchw)
        both = self.run_batched(np.concatenate([inputs_nchw, inputs_nchw[..., ::-1]], 0))  # one call if dynamic
        return 0.5 * (both[:n] + flip_back(both[n:], self.flip_pairs, self.params["shift_heatmap"]))

    def postprocess(self, heatmaps_nkhw: np.ndarray, crops: Crops) -> np.ndarray:
        codec = self.codec or self._codec(heatmaps_nkhw.shape)
        keypoints_xy, scores = codec.decode_to_image(heatmaps_nkhw, crops.center_xy, crops.scale_wh_px)
        return np.concatenate([keypoints_xy, scores[..., None]], -1).astype(np.float32)

    def empty(self) -> np.ndarray:
        """The result for no person: ``(0, K, 3)``."""
        return np.zeros((0, self.num_keypoints, 3), np.float32)

    def __call__(self, crops: Crops) -> np.ndarray:
        if len(crops) == 0:
            return self.empty()
        return self.postprocess(self.heatmaps(crops.inputs_nchw), crops)
