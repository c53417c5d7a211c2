"""Top-down pose network on onnxruntime: crops -> normalised input -> heatmaps -> image keypoints.

The YAML (``utils/lite_hrnet_init_params.yaml``) and the model's ``metadata_props`` (written by
:func:`litehrnet.export.export_onnx`) must agree on input size, normalisation and channel order;
a mismatch is refused. A model without metadata (another exporter) runs with the YAML's values;
a dynamic spatial size takes the YAML's. Person crops run as one batch when the ONNX batch dimension is dynamic,
else one by one (our exports are static batch 1, as the Kneron toolchain wants). Flip test feeds
the mirrored crop, flips the heatmaps back (with the official 1-px shift) and averages.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from litehrnet.keypoints import COCO_BODY_17
from prepostprocess.heatmap import decode_topdown, flip_back
from prepostprocess.topdown import to_network_input

from .affine_runner import Crops
from .base import OnnxRunner, RunnerError
from .params import load_params, validate_params


class PoseRunner(OnnxRunner):
    """``runner(crops) -> (N, K, 3)`` float32 ``x, y, score`` in original image pixels."""

    def __init__(self, params: dict, num_threads: int = 1) -> None:
        params = validate_params(params, "pose", "pose params")
        super().__init__(params["onnx_path"], num_threads)
        self.params = params
        self.input_hw = (params["input_h"], params["input_w"])
        self._check_model()
        channels = self.session.get_outputs()[0].shape[1]
        self.num_keypoints = channels if isinstance(channels, int) else int(self.metadata.get("num_keypoints", 17))
        if "num_keypoints" in self.metadata and int(self.metadata["num_keypoints"]) != self.num_keypoints:
            raise RunnerError(f"{self.onnx_path}: metadata says {self.metadata['num_keypoints']} keypoints but the "
                              f"output has {self.num_keypoints} channels")
        self.flip_pairs = self._flip_pairs()

    @classmethod
    def from_yaml(cls, path: str | Path, num_threads: int = 1) -> "PoseRunner":
        return cls(load_params(path, "pose"), num_threads)

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

    def _flip_pairs(self) -> list[tuple[int, int]]:
        if "flip_pairs" in self.metadata:
            return [tuple(p) for p in json.loads(self.metadata["flip_pairs"])]
        if self.num_keypoints == COCO_BODY_17.num_keypoints:
            return list(COCO_BODY_17.flip_pairs)
        if self.params["flip_test"]:
            raise RunnerError(f"{self.onnx_path}: no flip_pairs metadata for {self.num_keypoints} keypoints; "
                              "set flip_test: false or re-export with metadata")
        return []

    def preprocess(self, crops_bgr: np.ndarray) -> np.ndarray:
        """uint8 ``(N, H, W, 3)`` BGR crops -> normalised float32 ``(N, 3, H, W)``."""
        norm, order = self.params["norm"], self.params["channel_order"]
        out = np.empty((len(crops_bgr), 3, *self.input_hw), np.float32)
        for i, crop in enumerate(crops_bgr):
            out[i] = to_network_input(crop, norm, order)
        return out

    def run_batched(self, inputs_nchw: np.ndarray) -> np.ndarray:
        """Heatmaps for every input row: one call when the batch is dynamic, else one call per row."""
        batch = self.static_batch
        if batch is None:
            return self.infer(inputs_nchw)[0]
        if batch != 1:
            raise RunnerError(f"{self.onnx_path}: static batch {batch} is not supported; export with batch 1 or dynamic")
        return np.concatenate([self.infer(x[None])[0] for x in inputs_nchw], 0)

    def heatmaps(self, inputs_nchw: np.ndarray) -> np.ndarray:
        """Network heatmaps, averaged with the flipped pass when ``flip_test`` is on."""
        if not self.params["flip_test"]:
            return self.run_batched(inputs_nchw)
        n = len(inputs_nchw)
        both = self.run_batched(np.concatenate([inputs_nchw, inputs_nchw[..., ::-1]], 0))  # one call if dynamic
        return 0.5 * (both[:n] + flip_back(both[n:], self.flip_pairs, self.params["shift_heatmap"]))

    def postprocess(self, heatmaps_nkhw: np.ndarray, crops: Crops) -> np.ndarray:
        keypoints_xy, scores = decode_topdown(heatmaps_nkhw, crops.center_xy, crops.scale_wh_px, self.input_hw,
                                              self.params["decode"], self.params["dark_kernel"])
        return np.concatenate([keypoints_xy, scores[..., None]], -1).astype(np.float32)

    def __call__(self, crops: Crops) -> np.ndarray:
        if len(crops.crops_bgr) == 0:
            return np.zeros((0, self.num_keypoints, 3), np.float32)
        return self.postprocess(self.heatmaps(self.preprocess(crops.crops_bgr)), crops)
