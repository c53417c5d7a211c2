"""Object keypoint similarity (OKS) and OKS-based non-maximum suppression.

OKS between two poses of the same person layout is the COCO keypoint metric's similarity:

    OKS = mean_k exp(-d_k^2 / (2 * s^2 * (2 sigma_k)^2)),

with ``d_k`` the distance between keypoint ``k`` of the two poses and ``s^2`` an object area. For
NMS between two *predictions* the area is the mean of their two areas (the top-down recipe uses the
padded box area ``scale_w * scale_h`` in px^2), as in the official evaluation code.

Poses are ``(K, 3)`` arrays ``[x, y, score]`` in image pixels.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def oks_iou(
    pose_kx3: np.ndarray,
    others_nkx3: np.ndarray,
    area: float,
    other_areas_n: np.ndarray,
    sigmas_k: Sequence[float],
    vis_thr: float | None = None,
) -> np.ndarray:
    """OKS between one pose and ``N`` others; returns ``(N,)``.

    ``vis_thr``: when set, only keypoints whose score exceeds it in *both* poses count (the mean is
    over those; a pair with none scores 0).
    """
    pose_kx3 = np.asarray(pose_kx3, dtype=np.float64)
    others_nkx3 = np.asarray(others_nkx3, dtype=np.float64).reshape(-1, *pose_kx3.shape)
    variances_k = (2.0 * np.asarray(sigmas_k, dtype=np.float64)) ** 2
    d2_nk = ((others_nkx3[:, :, :2] - pose_kx3[None, :, :2]) ** 2).sum(axis=2)
    mean_area_n = (float(area) + np.asarray(other_areas_n, dtype=np.float64)) / 2.0
    e_nk = d2_nk / variances_k[None] / (mean_area_n[:, None] + np.spacing(1)) / 2.0
    sim_nk = np.exp(-e_nk)
    if vis_thr is None:
        return sim_nk.mean(axis=1)
    used_nk = (pose_kx3[None, :, 2] > vis_thr) & (others_nkx3[:, :, 2] > vis_thr)
    counts_n = used_nk.sum(axis=1)
    sums_n = (sim_nk * used_nk).sum(axis=1)
    return np.where(counts_n > 0, sums_n / np.maximum(counts_n, 1), 0.0)


def oks_nms(
    poses_nkx3: np.ndarray,
    scores_n: np.ndarray,
    areas_n: np.ndarray,
    sigmas_k: Sequence[float],
    thr: float = 0.9,
    vis_thr: float | None = None,
) -> list[int]:
    """Greedy OKS-NMS: keep the best-scoring pose, drop every other with OKS > ``thr``, repeat.

    Returns kept indices, best score first.
    """
    poses_nkx3 = np.asarray(poses_nkx3, dtype=np.float64)
    scores_n = np.asarray(scores_n, dtype=np.float64)
    areas_n = np.asarray(areas_n, dtype=np.float64)
    order = np.argsort(-scores_n, kind="stable")
    keep: list[int] = []
    while order.size > 0:
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        if rest.size == 0:
            break
        overlap = oks_iou(poses_nkx3[best], poses_nkx3[rest], areas_n[best], areas_n[rest], sigmas_k, vis_thr)
        order = rest[overlap <= thr]
    return keep


def soft_oks_nms(
    poses_nkx3: np.ndarray,
    scores_n: np.ndarray,
    areas_n: np.ndarray,
    sigmas_k: Sequence[float],
    thr: float = 0.3,
    max_dets: int = 20,
    method: str = "gaussian",
    gaussian_sigma: float = 0.5,
    vis_thr: float | None = None,
) -> tuple[list[int], np.ndarray]:
    """Soft OKS-NMS: instead of dropping overlapping poses, lower their scores.

    ``method="linear"``: a pose with OKS >= ``thr`` to the current best is scaled by ``1 - OKS``;
    ``method="gaussian"``: every remaining pose is scaled by ``exp(-OKS^2 / gaussian_sigma)``.
    Returns ``(kept indices in pick order, their rescored scores)``; at most ``max_dets`` are kept.
    """
    if method not in ("linear", "gaussian"):
        raise ValueError(f"soft_oks_nms: method must be 'linear' or 'gaussian', got {method!r}")
    poses_nkx3 = np.asarray(poses_nkx3, dtype=np.float64)
    scores = np.asarray(scores_n, dtype=np.float64).copy()
    areas_n = np.asarray(areas_n, dtype=np.float64)
    remaining = np.arange(len(scores))
    keep: list[int] = []
    kept_scores: list[float] = []
    while remaining.size > 0 and len(keep) < max_dets:
        pos = int(np.argmax(scores[remaining]))
        best = int(remaining[pos])
        keep.append(best)
        kept_scores.append(float(scores[best]))
        remaining = np.delete(remaining, pos)
        if remaining.size == 0:
            break
        overlap = oks_iou(poses_nkx3[best], poses_nkx3[remaining], areas_n[best], areas_n[remaining],
                          sigmas_k, vis_thr)
        if method == "linear":
            factor = np.where(overlap >= thr, 1.0 - overlap, 1.0)
        else:
            factor = np.exp(-(overlap ** 2) / gaussian_sigma)
        scores[remaining] *= factor
    return keep, np.asarray(kept_scores)
