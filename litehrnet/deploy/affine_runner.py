"""The "rsn affine" step: person boxes -> centre/scale -> affine crops -> the pose network's input.

This runner owns the whole top-down preprocessing, so nothing downstream touches pixels: box ->
centre/scale (:func:`prepostprocess.geometry.bbox_xywh_to_center_scale`), warp, channel order and
normalisation (:func:`prepostprocess.topdown.preprocess_topdown`, the function training uses). The
channel order and normalisation are the pose model's contract (:class:`NetworkInput`, read from the
pose runner), never a second setting here. Crops are made for the boxes it is given; callers bound
memory by passing one chunk of boxes at a time (:meth:`AffineCropRunner.chunks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from prepostprocess.geometry import bbox_xywh_to_center_scale
from prepostprocess.topdown import preprocess_topdown

from .base import RunnerError
from .params import load_params, validate_params


@dataclass(frozen=True)
class NetworkInput:
    """What a pose network takes: input size, normalisation mode and channel order."""

    input_hw: tuple[int, int]
    norm: str
    channel_order: str


@dataclass
class Crops:
    """Network-ready person crops and the geometry needed to map keypoints back."""

    inputs_nchw: np.ndarray  # (N, 3, H, W) float32, normalised, in the model's channel order
    center_xy: np.ndarray  # (N, 2) float64
    scale_wh_px: np.ndarray  # (N, 2) float64

    def __len__(self) -> int:
        return len(self.inputs_nchw)


class AffineCropRunner:
    """``runner(img_bgr, bboxes_xywh) -> Crops`` with the aspect of the pose input and ``padding``."""

    def __init__(self, params: dict, network_input: NetworkInput) -> None:
        self.params = validate_params(params, "affine", "affine params")
        self.input_hw = (self.params["input_h"], self.params["input_w"])
        if self.input_hw != tuple(network_input.input_hw):
            raise RunnerError(f"affine crop size {self.input_hw} (h, w) differs from the pose input "
                              f"{tuple(network_input.input_hw)}; make input_w/input_h equal in the two YAML files")
        self.network_input = network_input
        self.aspect_wh = self.params["input_w"] / self.params["input_h"]

    @classmethod
    def from_yaml(cls, path: str | Path, network_input: NetworkInput) -> "AffineCropRunner":
        return cls(load_params(path, "affine"), network_input)

    def __call__(self, img_bgr: np.ndarray, bboxes_xywh: np.ndarray) -> Crops:
        boxes = np.asarray(bboxes_xywh, np.float64).reshape(-1, 4)
        centers, scales = bbox_xywh_to_center_scale(boxes, self.aspect_wh, self.params["padding"])
        centers, scales = centers.reshape(-1, 2), scales.reshape(-1, 2)
        net = self.network_input
        inputs = np.empty((len(boxes), 3, *self.input_hw), np.float32)
        for i, (center, scale) in enumerate(zip(centers, scales)):
            inputs[i] = preprocess_topdown(img_bgr, center, scale, self.input_hw, net.norm, net.channel_order)
        return Crops(inputs, centers, scales)

    def chunks(self, img_bgr: np.ndarray, bboxes_xywh: np.ndarray, chunk_size: int) -> Iterator[Crops]:
        """Crops of ``chunk_size`` boxes at a time (the last chunk may be shorter): memory stays
        bounded by one chunk however many people the image holds."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        boxes = np.asarray(bboxes_xywh, np.float64).reshape(-1, 4)
        for start in range(0, len(boxes), chunk_size):
            yield self(img_bgr, boxes[start:start + chunk_size])
