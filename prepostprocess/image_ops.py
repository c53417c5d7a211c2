"""Crop, resize and pad as the Kneron NPU input path does them (numpy + OpenCV).

Crop rounding rules (``rounding``):

- ``"outward"`` (default): ``x0 = floor(x0)``, ``y0 = floor(y0)``, ``x1 = ceil(x1)``, ``y1 = ceil(y1)``
  so the integer box covers the float box;
- ``"round"``: every edge rounded half up (``floor(v + 0.5)``).

Boxes are ``xyxy`` with exclusive right/bottom edges; the result is clipped to the image and is at
least 1x1 pixel, otherwise ``ValueError``.

Resize: ``resize_bilinear`` computes in float (half-pixel centres, edge clamp, like
``cv2.INTER_LINEAR``); ``resize_bilinear_fixed`` emulates the hardware's fixed-point bilinear: source
positions and weights carry ``frac_bits`` fractional bits (default :data:`FIXED_FRAC_BITS` = 8,
weights in 0..256), the horizontal pass keeps ``frac_bits`` extra bits and the vertical pass rounds
once at the end (add half, shift right by ``2 * frac_bits``). The bit width is *inferred* (Kneron
does not publish it); it is a parameter.

Pad: ``"one_side"`` pads right/bottom only (Kneron's default), ``"both_sides"`` centres the image
(the odd extra pixel goes to the right/bottom).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

FIXED_FRAC_BITS = 8


def crop_box_to_int(box_xyxy, img_hw: tuple[int, int], rounding: str = "outward") -> tuple[int, int, int, int]:
    """Integer ``(x0, y0, x1, y1)`` of a float box by the crop rounding rule, clipped to the image."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    if rounding == "outward":
        ix0, iy0, ix1, iy1 = math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)
    elif rounding == "round":
        ix0, iy0, ix1, iy1 = (math.floor(v + 0.5) for v in (x0, y0, x1, y1))
    else:
        raise ValueError(f"unknown crop rounding {rounding!r}; use 'outward' or 'round'")
    h, w = img_hw
    ix0, ix1 = max(0, ix0), min(w, ix1)
    iy0, iy1 = max(0, iy0), min(h, iy1)
    if ix1 <= ix0 or iy1 <= iy0:
        raise ValueError(f"crop box {tuple(box_xyxy)} is empty inside a {w}x{h} image")
    return ix0, iy0, ix1, iy1


def crop(img: np.ndarray, box_xyxy, rounding: str = "outward") -> np.ndarray:
    """Crop ``img`` (HxW or HxWxC) to the box after rounding (a view, no copy)."""
    x0, y0, x1, y1 = crop_box_to_int(box_xyxy, img.shape[:2], rounding)
    return img[y0:y1, x0:x1]


def _source_positions(out_len: int, in_len: int) -> np.ndarray:
    pos = (np.arange(out_len, dtype=np.float64) + 0.5) * (in_len / out_len) - 0.5
    return np.clip(pos, 0.0, in_len - 1)


def resize_bilinear(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Float bilinear resize; uint8 input is rounded half up back to uint8, float stays float32."""
    out_h, out_w = out_hw
    src = img.astype(np.float32)
    ys, xs = _source_positions(out_h, img.shape[0]), _source_positions(out_w, img.shape[1])
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, img.shape[0] - 1)
    x1 = np.minimum(x0 + 1, img.shape[1] - 1)
    wy = (ys - y0).astype(np.float32).reshape(-1, 1, *([1] * (img.ndim - 2)))
    wx = (xs - x0).astype(np.float32).reshape(1, -1, *([1] * (img.ndim - 2)))
    rows = src[y0] * (1 - wy) + src[y1] * wy
    out = rows[:, x0] * (1 - wx) + rows[:, x1] * wx
    if img.dtype == np.uint8:
        return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    return out.astype(np.float32)


def _fixed_positions(out_len: int, in_len: int, frac_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    one = 1 << frac_bits
    dst = np.arange(out_len, dtype=np.int64)
    # (dst + 0.5) * in / out - 0.5 in Q(frac_bits), floor division (integer hardware)
    pos = ((2 * dst + 1) * in_len * one) // (2 * out_len) - one // 2
    pos = np.clip(pos, 0, (in_len - 1) * one)
    i0 = pos >> frac_bits
    frac = pos & (one - 1)
    i1 = np.minimum(i0 + 1, in_len - 1)
    return i0, i1, frac


def resize_bilinear_fixed(img: np.ndarray, out_hw: tuple[int, int], frac_bits: int = FIXED_FRAC_BITS) -> np.ndarray:
    """Fixed-point bilinear resize of a uint8 image (see module docstring for the arithmetic)."""
    if img.dtype != np.uint8:
        raise ValueError(f"resize_bilinear_fixed needs a uint8 image, got {img.dtype}")
    one = 1 << frac_bits
    y0, y1, fy = _fixed_positions(out_hw[0], img.shape[0], frac_bits)
    x0, x1, fx = _fixed_positions(out_hw[1], img.shape[1], frac_bits)
    extra = [1] * (img.ndim - 2)
    fx = fx.reshape(1, -1, *extra)
    fy = fy.reshape(-1, 1, *extra)
    src = img.astype(np.int64)
    horiz = src[:, x0] * (one - fx) + src[:, x1] * fx  # frac_bits extra bits
    out = horiz[y0] * (one - fy) + horiz[y1] * fy  # 2 * frac_bits extra bits
    out = (out + (1 << (2 * frac_bits - 1))) >> (2 * frac_bits)
    return np.clip(out, 0, 255).astype(np.uint8)


def pad(img: np.ndarray, top: int, bottom: int, left: int, right: int, value: float = 0) -> np.ndarray:
    """Pad with a constant ``value`` (all channels)."""
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"padding must be >= 0, got top={top} bottom={bottom} left={left} right={right}")
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, widths, mode="constant", constant_values=value)


def pad_to(img: np.ndarray, out_hw: tuple[int, int], mode: str = "one_side", value: float = 0) -> np.ndarray:
    """Pad ``img`` to exactly ``out_hw``; ``mode`` is ``"one_side"`` (right/bottom) or ``"both_sides"``."""
    dh, dw = out_hw[0] - img.shape[0], out_hw[1] - img.shape[1]
    if dh < 0 or dw < 0:
        raise ValueError(f"image {img.shape[:2]} is larger than the padded size {tuple(out_hw)}")
    if mode == "one_side":
        return pad(img, 0, dh, 0, dw, value)
    if mode == "both_sides":
        return pad(img, dh // 2, dh - dh // 2, dw // 2, dw - dw // 2, value)
    raise ValueError(f"unknown pad mode {mode!r}; use 'one_side' or 'both_sides'")


def resize_keep_ratio_pad(
    img: np.ndarray,
    out_hw: tuple[int, int],
    pad_mode: str = "one_side",
    value: float = 0,
    fixed_point: bool = False,
) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize to fit ``out_hw`` keeping the aspect ratio, then pad.

    Returns ``(image, ratio, (pad_top, pad_left))``; an image point ``p`` lands at
    ``p * ratio + (pad_left, pad_top)``.
    """
    h, w = img.shape[:2]
    ratio = min(out_hw[0] / h, out_hw[1] / w)
    new_hw = (max(1, int(round(h * ratio))), max(1, int(round(w * ratio))))
    resized = resize_bilinear_fixed(img, new_hw) if fixed_point else resize_bilinear(img, new_hw)
    padded = pad_to(resized, out_hw, pad_mode, value)
    dh, dw = out_hw[0] - new_hw[0], out_hw[1] - new_hw[1]
    offset = (dh // 2, dw // 2) if pad_mode == "both_sides" else (0, 0)
    return padded, ratio, offset


def warp_affine(img: np.ndarray, mat: np.ndarray, output_hw: tuple[int, int], border_value: float = 0) -> np.ndarray:
    """``cv2.warpAffine`` with bilinear sampling and a constant border: the one warp we use."""
    return cv2.warpAffine(
        img,
        np.asarray(mat, dtype=np.float64),
        (int(output_hw[1]), int(output_hw[0])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border_value,) * 4,
    )
