"""The "rsn affine" step: person boxes -> centre/scale -> affine crops at the pose input size.

No second copy of the geometry: the box -> centre/scale rule and the warp are the ones training
uses (:func:`prepostprocess.geometry.bbox_xywh_to_center_scale`,
:func:`prepostprocess.topdown.warp_topdown`). The crops stay uint8 BGR; the pose runner applies
its own channel order and normalisation (:func:`prepostprocess.topdown.to_network_input`), so
``to_network_input(warp_topdown(...))`` is exactly ``preprocess_topdown(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prepostprocess.geometry import bbox_xywh_to_center_scale
from prepostprocess.topdown import warp_topdown

from .params import load_params, validate_params


@dataclass
class Crops:
    """Per-person crops and the geometry needed to map keypoints back."""

    crops_bgr: np.ndarray  # (N, H, W, 3) uint8
    center_xy: np.ndarray  # (N, 2) float64
    scale_wh_px: np.ndarray  # (N, 2) float64


class AffineCropRunner:
    """``runner(img_bgr, bboxes_ltwh) -> Crops`` with the aspect of the pose input and ``padding``."""

    def __init__(self, params: dict) -> None:
        self.params = validate_params(params, "affine", "affine params")
        self.input_hw = (self.params["input_h"], self.params["input_w"])
        self.aspect_wh = self.params["input_w"] / self.params["input_h"]

    @classmethod
    def from_yaml(cls, path: str | Path) -> "AffineCropRunner":
        return cls(load_params(path, "affine"))

    def __call__(self, img_bgr: np.ndarray, bboxes_ltwh: np.ndarray) -> Crops:
        boxes = np.asarray(bboxes_ltwh, np.float64).reshape(-1, 4)
        centers, scales = bbox_xywh_to_center_scale(boxes, self.aspect_wh, self.params["padding"])
        h, w = self.input_hw
        crops = np.empty((len(boxes), h, w, 3), np.uint8)
        for i, (center, scale) in enumerate(zip(centers, scales)):
            crops[i] = warp_topdown(img_bgr, center, scale, self.input_hw)
        return Crops(crops, centers.reshape(-1, 2), scales.reshape(-1, 2))
