"""Heatmap codec: the one object behind target generation and every decode path.

Training targets (``mmpose_replacement.TopDownGenerateTarget`` in the pipeline), validation and
``test.py`` (:mod:`litehrnet.training.predict`) and the ONNX pose runner
(:mod:`litehrnet.deploy.pose_runner`) all build a :class:`HeatmapCodec`, so the heatmap stride,
sigma, target centring and decode rule cannot drift between them.

The stride is never written here: it comes from the model (``PoseModel.heatmap_stride``, 4 halved
by each deconv layer of the head) or, in deployment, from the ONNX metadata the export wrote from
that same property. :meth:`HeatmapCodec.from_config` takes the rest from a resolved config.

Encoding is :func:`prepostprocess.gaussian_heatmaps` (MSRA Gaussian, 3-sigma window; ``subpixel``
True centres it at the exact position, False at the rounded one like mmpose 0.x) applied at
``keypoint_input_px / stride``. Decoding is :func:`prepostprocess.decode_heatmaps` (argmax +
0.25 px, or DARK) times the stride, and :meth:`decode_to_image` maps through the inverse crop
affine (:func:`prepostprocess.decode_topdown`) after checking the maps have this codec's size.
This module is numpy-only (the deploy runners import it without torch).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from prepostprocess import DECODE_METHODS, decode_heatmaps, decode_topdown, gaussian_heatmaps


class HeatmapCodec:
    """Encode network-input keypoints to heatmaps and decode heatmaps back to input/image pixels.

    ``input_hw``: network input (height, width); ``stride``: input pixels per heatmap pixel (an
    integer dividing both sides). Defaults match the config schema (``data.subpixel_target: true``,
    ``test.decode: default``).
    """

    def __init__(
        self,
        input_hw: Sequence[int],
        stride: int,
        sigma: float = 2.0,
        subpixel: bool = True,
        use_visibility: bool = True,
        decode_method: str = "default",
        dark_kernel: int = 11,
    ) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if int(stride) != stride or stride < 1:
            raise ValueError(f"heatmap stride must be a positive integer, got {stride}")
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.stride = int(stride)
        if self.input_hw[0] % self.stride or self.input_hw[1] % self.stride:
            raise ValueError(f"input {self.input_hw[0]}x{self.input_hw[1]} is not divisible by the heatmap "
                             f"stride {self.stride}")
        if decode_method not in DECODE_METHODS:
            raise ValueError(f"unknown decode method {decode_method!r}; use one of {', '.join(DECODE_METHODS)}")
        self.heatmap_hw = (self.input_hw[0] // self.stride, self.input_hw[1] // self.stride)
        self.sigma = float(sigma)
        self.subpixel = bool(subpixel)
        self.use_visibility = bool(use_visibility)
        self.decode_method = decode_method
        self.dark_kernel = int(dark_kernel)
        self.stride_xy = np.array([self.stride, self.stride], dtype=np.float64)  # (x, y)

    @classmethod
    def from_config(cls, cfg: dict, stride: int) -> "HeatmapCodec":
        """Codec of a resolved config (``model.input_hw``, ``data.sigma/subpixel_target/
        target_weight_by_visibility``, ``test.decode/dark_kernel``) and the model's ``stride``."""
        data, test = cfg["data"], cfg["test"]
        return cls(cfg["model"]["input_hw"], stride, sigma=data["sigma"], subpixel=data["subpixel_target"],
                   use_visibility=data["target_weight_by_visibility"], decode_method=test["decode"],
                   dark_kernel=test["dark_kernel"])

    def __repr__(self) -> str:
        return (f"HeatmapCodec(input_hw={self.input_hw}, stride={self.stride}, sigma={self.sigma}, "
                f"subpixel={self.subpixel}, decode_method={self.decode_method!r})")

    def encode(self, keypoints_xy: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(K, 2)`` input-pixel keypoints (+ ``(K,)`` visibility) -> ``(K, h, w)`` maps, ``(K, 1)`` weights."""
        kp_hm = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2) / self.stride_xy
        return gaussian_heatmaps(kp_hm, visible, self.heatmap_hw, self.sigma, self.subpixel, self.use_visibility)

    def _check(self, heatmaps_nkhw: np.ndarray) -> np.ndarray:
        hm = np.asarray(heatmaps_nkhw)
        if hm.ndim != 4 or tuple(hm.shape[2:]) != self.heatmap_hw:
            raise ValueError(f"heatmaps of shape {hm.shape} do not fit this codec: input {self.input_hw} at stride "
                             f"{self.stride} gives N x K x {self.heatmap_hw[0]} x {self.heatmap_hw[1]} maps; "
                             "build the codec from the model that produced them")
        return hm

    def decode(self, heatmaps_nkhw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, K, h, w)`` maps -> keypoints ``(N, K, 2)`` in input pixels (float32), scores ``(N, K)``."""
        kp_hm, scores = decode_heatmaps(self._check(heatmaps_nkhw), self.decode_method, self.dark_kernel)
        return (kp_hm * self.stride_xy).astype(np.float32), scores

    def decode_to_image(
        self, heatmaps_nkhw: np.ndarray, center_xy, scale_wh_px, rot_deg=0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode top-down crops and map back: keypoints ``(N, K, 2)`` in original image pixels
        (float64) and scores ``(N, K)``; ``center_xy``/``scale_wh_px`` ``(N, 2)``, ``rot_deg`` ``(N,)``
        describe each crop."""
        return decode_topdown(self._check(heatmaps_nkhw), center_xy, scale_wh_px, self.input_hw, self.decode_method,
                              self.dark_kernel, rot_deg)
