"""MSRA Gaussian heatmap targets (vectorised over keypoints, limited to 3-sigma windows).

For keypoint ``k`` at heatmap position ``mu`` the target is ``exp(-|p - c|^2 / (2 sigma^2))`` for
pixels ``p`` inside the square window ``|p - round(mu)| <= int(3 sigma)`` and 0 elsewhere, where
``c = mu`` with ``subpixel=True`` (unbiased encoding) or ``c = round(mu)`` (mmpose 0.x classic
MSRA). ``round`` is half up. Weight: visible (or all, when ``use_visibility`` is off) and the window
overlaps the map; maps with weight 0 are all zero.
"""

from __future__ import annotations

import numpy as np


def _gaussian_1d(length: int, centre: np.ndarray, window_centre: np.ndarray, sigma: float, radius: int) -> np.ndarray:
    grid = np.arange(length, dtype=np.float64)[None, :]
    d = grid - centre[:, None]
    g = np.exp(-(d * d) / (2.0 * sigma * sigma))
    return np.where(np.abs(grid - window_centre[:, None]) <= radius, g, 0.0)


def gaussian_heatmaps(
    keypoints_hm: np.ndarray,
    visible: np.ndarray | None,
    heatmap_hw: tuple[int, int],
    sigma: float,
    subpixel: bool = True,
    use_visibility: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(K, 2)`` heatmap-pixel keypoints -> ``(K, h, w)`` float32 maps and ``(K, 1)`` float32 weights."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    mu = np.asarray(keypoints_hm, dtype=np.float64).reshape(-1, 2)
    num_k = mu.shape[0]
    vis = np.ones(num_k) if visible is None else np.asarray(visible, dtype=np.float64).reshape(-1)
    h, w = heatmap_hw
    radius = int(3 * sigma)
    finite = np.isfinite(mu).all(axis=1)
    mu = np.where(finite[:, None], mu, -1e6)
    mu_int = np.floor(mu + 0.5)
    inside = (mu_int[:, 0] - radius < w) & (mu_int[:, 1] - radius < h)
    inside &= (mu_int[:, 0] + radius >= 0) & (mu_int[:, 1] + radius >= 0)
    weight = ((vis > 0) if use_visibility else np.ones(num_k, bool)) & inside & finite
    centre = mu if subpixel else mu_int
    gx = _gaussian_1d(w, centre[:, 0], mu_int[:, 0], sigma, radius)
    gy = _gaussian_1d(h, centre[:, 1], mu_int[:, 1], sigma, radius)
    maps = (gy * weight[:, None])[:, :, None] * gx[:, None, :]
    return maps.astype(np.float32), weight.astype(np.float32)[:, None]
