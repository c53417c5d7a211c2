"""Heatmap codec: one object for target generation (encode) and decoding, so they cannot drift.

Encoding is :func:`prepostprocess.gaussian_heatmaps` (MSRA Gaussian, 3-sigma window; ``subpixel``
True centres it at the exact position, False at the rounded one like mmpose 0.x) applied at
``keypoint_input_px / stride``. Decoding is :func:`prepostprocess.decode_heatmaps` (argmax +
0.25 px by default, or DARK) multiplied back by the stride, so both sides share one geometry.
"""

from __future__ import annotations

import numpy as np

from prepostprocess import decode_heatmaps, gaussian_heatmaps


class HeatmapCodec:
    """Encode keypoints (network-input pixels) to heatmaps and decode them back."""

    def __init__(
        self,
        input_hw: tuple[int, int],
        heatmap_hw: tuple[int, int],
        sigma: float = 2.0,
        subpixel: bool = True,
        use_visibility: bool = True,
        decode_method: str = "default",
        dark_kernel: int = 11,
    ) -> None:
        if sigma <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))
        self.heatmap_hw = (int(heatmap_hw[0]), int(heatmap_hw[1]))
        self.sigma = float(sigma)
        self.subpixel = subpixel
        self.use_visibility = use_visibility
        self.decode_method = decode_method
        self.dark_kernel = dark_kernel
        # input pixels per heatmap pixel, (x, y)
        self.stride_xy = np.array(
            [self.input_hw[1] / self.heatmap_hw[1], self.input_hw[0] / self.heatmap_hw[0]]
        )

    def encode(self, keypoints_xy: np.ndarray, visible: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(K, 2)`` input-pixel keypoints (+ ``(K,)`` visibility) -> ``(K, h, w)`` maps, ``(K, 1)`` weights."""
        kp_hm = np.asarray(keypoints_xy, dtype=np.float64).reshape(-1, 2) / self.stride_xy
        return gaussian_heatmaps(kp_hm, visible, self.heatmap_hw, self.sigma, self.subpixel, self.use_visibility)

    def decode(self, heatmaps_nkhw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, K, h, w)`` maps -> keypoints ``(N, K, 2)`` in input pixels (float32), scores ``(N, K)``."""
        kp_hm, scores = decode_heatmaps(heatmaps_nkhw, self.decode_method, self.dark_kernel)
        return (kp_hm * self.stride_xy).astype(np.float32), scores
