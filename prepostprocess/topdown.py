"""The top-down crop shared by training and deployment (train/deploy parity by construction).

``preprocess_topdown`` = ``warp_topdown`` (affine crop of the full BGR image, uint8) followed by
``to_network_input`` (channel order + normalisation, HWC -> CHW float32). Training transforms
(``mmpose_replacement.TopDownAffine`` / ``NormalizeTensor``) and the deploy runners call these
same functions, so a given image, box and augmentation give bit-identical tensors.
"""

from __future__ import annotations

import numpy as np

from .geometry import compose_affine, get_affine_matrix, hflip_matrix
from .image_ops import warp_affine
from .normalize import bgr_to_channel_order, normalize


def topdown_matrix(
    center_xy,
    scale_wh_px,
    input_hw: tuple[int, int],
    rot_deg: float = 0.0,
    shift_xy=(0.0, 0.0),
    flip_img_w: int | None = None,
) -> np.ndarray:
    """Matrix from original image pixels to network-input pixels.

    ``flip_img_w``: when given, the image is first mirrored (``x -> img_w - 1 - x``) and
    ``center_xy`` is taken in the mirrored image, exactly as flipping the image then warping.
    """
    mat = get_affine_matrix(center_xy, scale_wh_px, rot_deg, input_hw, shift_xy)
    return compose_affine(mat, hflip_matrix(flip_img_w)) if flip_img_w is not None else mat


def warp_topdown(
    img_bgr: np.ndarray,
    center_xy,
    scale_wh_px,
    input_hw: tuple[int, int],
    rot_deg: float = 0.0,
    shift_xy=(0.0, 0.0),
) -> np.ndarray:
    """Affine crop (bilinear, zero border) of the region to ``input_hw``; uint8 ``HxWx3`` BGR."""
    mat = get_affine_matrix(center_xy, scale_wh_px, rot_deg, input_hw, shift_xy)
    return warp_affine(img_bgr, mat, input_hw)


def to_network_input(crop_bgr: np.ndarray, norm: str, channel_order: str) -> np.ndarray:
    """uint8 ``HxWx3`` BGR crop -> float32 ``3xHxW`` in ``channel_order``, normalised by ``norm``."""
    ordered = bgr_to_channel_order(crop_bgr, channel_order)
    return np.ascontiguousarray(normalize(ordered, norm, channel_order).transpose(2, 0, 1))


def preprocess_topdown(
    img_bgr: np.ndarray,
    center_xy,
    scale_wh_px,
    input_hw: tuple[int, int],
    norm: str,
    channel_order: str,
    rot_deg: float = 0.0,
) -> np.ndarray:
    """Full image + box centre/scale (pixels) -> network input ``3xHxW`` float32."""
    crop_bgr = warp_topdown(img_bgr, center_xy, scale_wh_px, input_hw, rot_deg)
    return to_network_input(crop_bgr, norm, channel_order)
