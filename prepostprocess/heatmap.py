"""Heatmap decoding, flip-back and mapping keypoints back to image coordinates (vectorised).

All functions take batches ``heatmaps_nkhw`` (N samples, K keypoints) and avoid Python loops over
N x K, so the deploy runners stay fast.

- ``"default"`` decode (Kneron's and mmpose's): integer argmax, then 0.25 px towards the higher
  neighbour on each axis (only where both neighbours exist on that axis: ``0 < x < W - 1``);
  the score is the heatmap maximum. A map whose maximum is <= 0 keeps its argmax, score <= 0.
- ``"dark"`` decode (Zhang et al., "Distribution-Aware Coordinate Representation"): the maps are
  modulated by a Gaussian blur (kernel ``dark_kernel``, default 11, zero border) rescaled to keep
  each map's maximum, then the log-heatmap's second-order Taylor expansion at the argmax gives a
  Newton step (clipped to +-1 px; skipped where the Hessian is not negative definite).
"""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import ArrayLike

DECODE_METHODS = ("default", "dark")


def _check_nkhw(heatmaps: np.ndarray) -> np.ndarray:
    hm = np.asarray(heatmaps)
    if hm.ndim != 4:
        raise ValueError(f"heatmaps must be N x K x H x W, got shape {hm.shape}")
    return hm


def argmax_keypoints(heatmaps_nkhw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer argmax ``(N, K, 2)`` as float64 ``x, y`` and the maxima ``(N, K)``."""
    hm = _check_nkhw(heatmaps_nkhw)
    n, k, h, w = hm.shape
    flat = hm.reshape(n, k, h * w)
    idx = flat.argmax(axis=2)
    maxvals = np.take_along_axis(flat, idx[..., None], axis=2)[..., 0]
    coords = np.stack([idx % w, idx // w], axis=-1).astype(np.float64)
    return coords, maxvals


def _gather(maps_nkhw: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    n, k = xs.shape
    return maps_nkhw[np.arange(n)[:, None], np.arange(k)[None, :], ys, xs]


def _quarter_shift(hm: np.ndarray, coords: np.ndarray) -> np.ndarray:
    h, w = hm.shape[2:]
    x = coords[..., 0].astype(np.intp)
    y = coords[..., 1].astype(np.intp)
    out = coords.copy()
    inner_x = (x > 0) & (x < w - 1)
    inner_y = (y > 0) & (y < h - 1)
    xr, xl = np.minimum(x + 1, w - 1), np.maximum(x - 1, 0)
    yd, yu = np.minimum(y + 1, h - 1), np.maximum(y - 1, 0)
    dx = _gather(hm, xr, y).astype(np.float64) - _gather(hm, xl, y)
    dy = _gather(hm, x, yd).astype(np.float64) - _gather(hm, x, yu)
    out[..., 0] += np.where(inner_x, np.sign(dx) * 0.25, 0.0)
    out[..., 1] += np.where(inner_y, np.sign(dy) * 0.25, 0.0)
    return out


def modulate_heatmaps(heatmaps_nkhw: np.ndarray, kernel: int = 11) -> np.ndarray:
    """Gaussian-blur every map (zero border, sigma from the kernel size) keeping its maximum."""
    hm = _check_nkhw(heatmaps_nkhw).astype(np.float32)
    n, k, h, w = hm.shape
    kern = cv2.getGaussianKernel(kernel, 0).astype(np.float32)  # sigma 0.3*((k-1)/2-1)+0.8
    one = np.ones((1, 1), np.float32)

    def blur_rows(rows: np.ndarray) -> np.ndarray:  # 1-D blur along the last axis, rows independent
        return cv2.sepFilter2D(rows, -1, kern, one, borderType=cv2.BORDER_CONSTANT)

    blurred = blur_rows(hm.reshape(-1, w)).reshape(n, k, h, w)
    cols = np.ascontiguousarray(blurred.transpose(0, 1, 3, 2)).reshape(-1, h)
    blurred = blur_rows(cols).reshape(n, k, w, h).transpose(0, 1, 3, 2)
    orig_max = hm.reshape(n, k, -1).max(axis=2)
    new_max = blurred.reshape(n, k, -1).max(axis=2)
    ratio = np.where(new_max > 0, orig_max / np.where(new_max > 0, new_max, 1), 1.0)
    return blurred * ratio[..., None, None].astype(np.float32)


def _dark_shift(hm: np.ndarray, coords: np.ndarray, kernel: int) -> np.ndarray:
    log = np.log(np.clip(modulate_heatmaps(hm, kernel), 1e-3, None)).astype(np.float64)
    pad = np.pad(log, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    x = coords[..., 0].astype(np.intp) + 1
    y = coords[..., 1].astype(np.intp) + 1

    def at(dx: int, dy: int) -> np.ndarray:
        return _gather(pad, x + dx, y + dy)

    c = at(0, 0)
    gx = 0.5 * (at(1, 0) - at(-1, 0))
    gy = 0.5 * (at(0, 1) - at(0, -1))
    hxx = at(1, 0) - 2 * c + at(-1, 0)
    hyy = at(0, 1) - 2 * c + at(0, -1)
    hxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = hxx * hyy - hxy * hxy
    ok = (det > 1e-12) & (hxx < 0)
    safe = np.where(ok, det, 1.0)
    ox = -(hyy * gx - hxy * gy) / safe
    oy = -(hxx * gy - hxy * gx) / safe
    offset = np.clip(np.stack([ox, oy], axis=-1), -1.0, 1.0)
    return coords + np.where(ok[..., None], offset, 0.0)


def decode_heatmaps(
    heatmaps_nkhw: np.ndarray, method: str = "default", dark_kernel: int = 11
) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps -> keypoints ``(N, K, 2)`` float32 in heatmap pixels and scores ``(N, K)`` float32."""
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r}; use one of {', '.join(DECODE_METHODS)}")
    hm = _check_nkhw(heatmaps_nkhw)
    coords, maxvals = argmax_keypoints(hm)
    if method == "default":
        coords = _quarter_shift(hm, coords)
    else:
        coords = _dark_shift(hm, coords, dark_kernel)
    return coords.astype(np.float32), maxvals.astype(np.float32)


def flip_permutation(flip_pairs, num_keypoints: int) -> np.ndarray:
    """Index permutation swapping each left/right pair."""
    perm = np.arange(num_keypoints)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm


def flip_back(heatmaps_nkhw: np.ndarray, flip_pairs, shift: bool = True) -> np.ndarray:
    """Undo a horizontal input flip on the network output.

    Mirrors the maps, swaps left/right channels and, with ``shift`` (the official test setting),
    moves the maps one pixel to the right (column ``x`` takes column ``x - 1``; column 0 is kept),
    which compensates the half-pixel misalignment of flipping at stride 4.
    """
    hm = _check_nkhw(heatmaps_nkhw)
    perm = flip_permutation(flip_pairs, hm.shape[1])
    out = np.ascontiguousarray(hm[:, perm, :, ::-1])
    if shift:
        out[..., 1:] = out[..., :-1].copy()
    return out


def keypoints_to_image(
    keypoints_hm: np.ndarray,
    center_xy: ArrayLike,
    scale_wh_px: ArrayLike,
    heatmap_hw: tuple[int, int],
    input_hw: tuple[int, int],
    rot_deg: ArrayLike = 0.0,
) -> np.ndarray:
    """Heatmap-pixel keypoints ``(N, K, 2)`` -> original image pixels (float64).

    Scales by the stride (``input / heatmap`` per axis) and applies the inverse of the crop affine
    (:func:`prepostprocess.geometry.get_affine_matrix`) of each sample, rotation included.
    """
    kp = np.asarray(keypoints_hm, dtype=np.float64)
    c = np.asarray(center_xy, dtype=np.float64).reshape(-1, 1, 2)
    s = np.asarray(scale_wh_px, dtype=np.float64).reshape(-1, 1, 2)
    theta = np.deg2rad(np.broadcast_to(np.asarray(rot_deg, dtype=np.float64), (kp.shape[0],)))
    in_h, in_w = input_hw
    stride = np.array([in_w / heatmap_hw[1], in_h / heatmap_hw[0]])
    d = kp * stride - np.array([in_w * 0.5, in_h * 0.5])
    inv_zoom = s[..., 0] / in_w  # (N, 1)
    cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
    x = c[..., 0] + inv_zoom * (cos * d[..., 0] - sin * d[..., 1])
    y = c[..., 1] + inv_zoom * (sin * d[..., 0] + cos * d[..., 1])
    return np.stack([x, y], axis=-1)


def decode_topdown(
    heatmaps_nkhw: np.ndarray,
    center_xy: ArrayLike,
    scale_wh_px: ArrayLike,
    input_hw: tuple[int, int],
    method: str = "default",
    dark_kernel: int = 11,
    rot_deg: ArrayLike = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode + map back: keypoints ``(N, K, 2)`` in image pixels (float64) and scores ``(N, K)``."""
    kp_hm, scores = decode_heatmaps(heatmaps_nkhw, method, dark_kernel)
    heatmap_hw = np.asarray(heatmaps_nkhw).shape[2:]
    return keypoints_to_image(kp_hm, center_xy, scale_wh_px, heatmap_hw, input_hw, rot_deg), scores
