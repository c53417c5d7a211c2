"""Box and affine geometry: the single copy used by training, evaluation and deployment.

Conventions (all coordinates in pixels of the image they refer to, origin at the top-left pixel's
centre, x to the right, y down):

- ``bbox_xywh``: left, top, width, height.
- ``center_xy``: box centre; ``scale_wh_px``: width/height of the region that is cropped, in
  pixels (the mmpose 0.x 200-px unit appears only in :mod:`mmpose_replacement`).
- Affine matrices are 2x3 ``float64`` arrays mapping *source* points to *destination* points, as
  ``cv2.warpAffine`` expects.

The crop affine follows mmpose 0.x's ``get_affine_transform`` (non-UDP): the region of width
``scale_wh_px[0]`` around ``center_xy`` is mapped isotropically onto the output width, rotated by
``rot_deg`` (counter-clockwise in the image as displayed), with the region centre landing on the
output point ``(out_w / 2, out_h / 2)``. It is computed in closed form instead of from three points.
"""

from __future__ import annotations

import numpy as np

ArrayLike = np.ndarray | list | tuple


def bbox_xywh_to_center_scale(
    bbox_xywh: ArrayLike, aspect_wh: float = 0.75, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Box ``(..., 4)`` -> ``center_xy (..., 2)``, ``scale_wh_px (..., 2)``.

    The box is grown to the aspect ratio ``aspect_wh`` (= input width / height; only the short
    side grows) and then both sides are multiplied by ``padding``. Centre is ``x + w/2, y + h/2``.
    """
    box = np.asarray(bbox_xywh, dtype=np.float64)
    x, y, w, h = (box[..., i] for i in range(4))
    center = np.stack([x + w * 0.5, y + h * 0.5], axis=-1)
    w_fit = np.where(w > aspect_wh * h, w, h * aspect_wh)
    h_fit = np.where(w > aspect_wh * h, w / aspect_wh, h)
    scale = np.stack([w_fit, h_fit], axis=-1) * padding
    return center, scale


def clip_bbox_xywh_coco(bbox_xywh: ArrayLike, img_w: float, img_h: float) -> np.ndarray | None:
    """The official COCO top-down clean-up of a ground-truth box, or ``None`` if nothing is left.

    COCO boxes are treated as inclusive pixel ranges: ``x2 = x1 + w - 1``, clipped to the image
    (``[0, img_w - 1]``), as mmpose 0.x / HRNet do before computing centre and scale. Used by the
    training/evaluation datasets and by the deploy chain's ground-truth-box mode, so both crop the
    same region.
    """
    x, y, w, h = (float(v) for v in np.asarray(bbox_xywh, dtype=np.float64)[:4])
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_w - 1.0, x1 + max(0.0, w - 1.0))
    y2 = min(img_h - 1.0, y1 + max(0.0, h - 1.0))
    if x2 > x1 and y2 > y1:
        return np.array([x1, y1, x2 - x1, y2 - y1])
    return None


def center_scale_to_bbox_xywh(
    center_xy: ArrayLike, scale_wh_px: ArrayLike, padding: float = 1.0
) -> np.ndarray:
    """Inverse of the box step: the ``(..., 4)`` box whose padded region is ``scale_wh_px``."""
    c = np.asarray(center_xy, dtype=np.float64)
    wh = np.asarray(scale_wh_px, dtype=np.float64) / padding
    return np.concatenate([c - wh * 0.5, wh], axis=-1)


def get_affine_matrix(
    center_xy: ArrayLike,
    scale_wh_px: ArrayLike,
    rot_deg: float,
    output_hw: tuple[int, int],
    shift_xy: ArrayLike = (0.0, 0.0),
    inverse: bool = False,
) -> np.ndarray:
    """2x3 matrix mapping the image region onto an output of ``output_hw`` (or back if ``inverse``).

    ``shift_xy`` moves the region centre by that fraction of ``scale_wh_px`` (mmpose's ``shift``).
    Only ``scale_wh_px[0]`` sets the zoom (mmpose 0.x behaviour); keep the scale's aspect equal to
    the output's (``bbox_xywh_to_center_scale`` does) so that height matches too.
    """
    out_h, out_w = output_hw
    scale = np.asarray(scale_wh_px, dtype=np.float64)
    src_c = np.asarray(center_xy, dtype=np.float64) + scale * np.asarray(shift_xy, dtype=np.float64)
    zoom = out_w / scale[0]
    theta = np.deg2rad(rot_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    lin = zoom * np.array([[cos, sin], [-sin, cos]])
    dst_c = np.array([out_w * 0.5, out_h * 0.5])
    mat = np.empty((2, 3), dtype=np.float64)
    mat[:, :2] = lin
    mat[:, 2] = dst_c - lin @ src_c
    return invert_affine(mat) if inverse else mat


def invert_affine(mat: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (raises ``ValueError`` when it is singular)."""
    lin = np.asarray(mat, dtype=np.float64)[:, :2]
    det = lin[0, 0] * lin[1, 1] - lin[0, 1] * lin[1, 0]
    if abs(det) < 1e-12:
        raise ValueError(f"affine matrix is singular (det={det:g}); cannot invert")
    inv_lin = np.array([[lin[1, 1], -lin[0, 1]], [-lin[1, 0], lin[0, 0]]]) / det
    out = np.empty((2, 3), dtype=np.float64)
    out[:, :2] = inv_lin
    out[:, 2] = -inv_lin @ np.asarray(mat, dtype=np.float64)[:, 2]
    return out


def compose_affine(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """Matrix of ``outer(inner(p))``."""
    a = np.vstack([np.asarray(outer, dtype=np.float64), [0.0, 0.0, 1.0]])
    b = np.vstack([np.asarray(inner, dtype=np.float64), [0.0, 0.0, 1.0]])
    return (a @ b)[:2]


def hflip_matrix(img_w: int) -> np.ndarray:
    """Matrix of the horizontal image flip ``x -> img_w - 1 - x`` (pixel centres map to pixel centres)."""
    return np.array([[-1.0, 0.0, img_w - 1.0], [0.0, 1.0, 0.0]])


def affine_points(points_xy: ArrayLike, mat: np.ndarray) -> np.ndarray:
    """Apply a 2x3 matrix to points ``(..., 2)``; returns ``float64`` of the same shape."""
    pts = np.asarray(points_xy, dtype=np.float64)
    m = np.asarray(mat, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]
