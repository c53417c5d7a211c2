"""mmpose 0.x ``core/post_processing/post_transforms.py`` names, delegating to :mod:`prepostprocess`.

These functions keep mmpose 0.x signatures, so ``scale`` here is in mmpose's **200-px unit**
(``scale_wh_px = scale * PIXEL_STD``) and sizes are ``(w, h)``: this is the one place that unit
exists. New code should call :mod:`prepostprocess` directly with pixel scales.

Difference from mmpose 0.x: ``transform_preds`` applies the exact inverse of the crop affine (zoom
set by the scale's width, as the warp does), so it equals mmpose whenever the scale's aspect ratio
equals the output's (always the case for boxes from ``bbox_xywh_to_center_scale``).
"""

from __future__ import annotations

import numpy as np

import prepostprocess as pp

PIXEL_STD = 200.0


def scale_to_px(scale) -> np.ndarray:
    """mmpose 0.x scale (200-px unit) -> pixels."""
    return np.asarray(scale, dtype=np.float64) * PIXEL_STD


def px_to_scale(scale_wh_px) -> np.ndarray:
    """Pixels -> mmpose 0.x scale (200-px unit)."""
    return np.asarray(scale_wh_px, dtype=np.float64) / PIXEL_STD


def get_affine_transform(center, scale, rot, output_size, shift=(0.0, 0.0), inv=False) -> np.ndarray:
    """2x3 crop matrix; ``scale`` in 200-px units, ``output_size`` = ``(w, h)``."""
    out_w, out_h = output_size
    return pp.get_affine_matrix(center, scale_to_px(scale), rot, (out_h, out_w), shift, inverse=inv)


def affine_transform(pt, trans_mat) -> np.ndarray:
    """Apply a 2x3 matrix to one point (or an ``(..., 2)`` array of points)."""
    return pp.affine_points(np.asarray(pt, dtype=np.float64)[..., :2], trans_mat)


def transform_preds(coords, center, scale, output_size, use_udp=False) -> np.ndarray:
    """Heatmap coordinates ``(K, >=2)`` -> image coordinates (200-px ``scale``, ``output_size`` (w, h))."""
    if use_udp:
        raise NotImplementedError("UDP is not supported by this project; use use_udp=False")
    coords = np.asarray(coords, dtype=np.float64)
    out_w, out_h = output_size
    target = coords.copy()
    target[:, :2] = pp.keypoints_to_image(
        coords[None, :, :2], np.asarray(center)[None], scale_to_px(scale)[None], (out_h, out_w), (out_h, out_w)
    )[0]
    return target


def fliplr_joints(joints_3d, joints_3d_visible, img_width, flip_pairs) -> tuple[np.ndarray, np.ndarray]:
    """Mirror joints ``x -> img_width - 1 - x`` and swap left/right pairs (visibility swapped too)."""
    joints = np.asarray(joints_3d, dtype=np.float64).copy()
    visible = np.asarray(joints_3d_visible).copy()
    perm = pp.flip_permutation(flip_pairs, joints.shape[0])
    joints, visible = joints[perm], visible[perm]
    joints[:, 0] = img_width - 1 - joints[:, 0]
    joints = joints * (visible > 0) if visible.ndim == joints.ndim else joints
    return joints, visible


def flip_back(output_flipped, flip_pairs, target_type="GaussianHeatmap", shift=False) -> np.ndarray:
    """Undo a horizontal flip on ``N x K x H x W`` heatmaps (``shift``: the 1-px test-time shift)."""
    if target_type != "GaussianHeatmap":
        raise ValueError(f"flip_back: unsupported target_type {target_type!r} (only 'GaussianHeatmap')")
    return pp.flip_back(output_flipped, flip_pairs, shift=shift)
