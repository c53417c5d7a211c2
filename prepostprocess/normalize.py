"""Channel order, normalisation modes and int8 quantisation of the network input.

Modes (input: 8-bit pixel values ``x`` in the network's channel order). The first three are the
float formulas of Kneron PLUS ``kp.NormalizeMode`` (:data:`PLUS_NORMALIZE_MODE`); the chip's input
path feeds int8 ``x - 128`` (KNERON, TENSOR_FLOW) or ``x >> 1`` (YOLO) (:data:`HARDWARE_INPUT`),
and the ``*_hw`` modes are exactly what that int8 input represents at its radix:

===========  =======================================  =====  ============================
mode         normalised value                         radix  PLUS name
===========  =======================================  =====  ============================
``kneron``   ``x / 256 - 0.5`` (= hardware, exact)    8      ``KP_NORMALIZE_KNERON``
``tf``       ``x / 127.5 - 1``                        7      ``KP_NORMALIZE_TENSOR_FLOW``
``yolo``     ``x / 255``                              7      ``KP_NORMALIZE_YOLO``
``tf_hw``    ``(x - 128) / 128`` = ``x / 128 - 1``    7      ``KP_NORMALIZE_TENSOR_FLOW``
``yolo_hw``  ``(x >> 1) / 128``                       7      ``KP_NORMALIZE_YOLO``
``torch``    ``(x / 255 - mean) / std`` (ImageNet,    none   none (float only)
             mean/std given in RGB order)
===========  =======================================  =====  ============================

Quantisation: ``q = clip(round_half_away_from_zero(v * 2**radix), -128, 127)`` as int8;
dequantisation ``v = q / 2**radix``. In ``kneron`` and ``tf_hw`` modes ``q = x - 128`` exactly, in ``yolo_hw`` ``q = x >> 1``.
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
NORM_MODES = ("kneron", "tf", "yolo", "tf_hw", "yolo_hw", "torch")
DEFAULT_RADIX = {"kneron": 8, "tf": 7, "yolo": 7, "tf_hw": 7, "yolo_hw": 7}
# float value = x * multiplier + offset (``yolo_hw`` drops the low bit of x first)
PIXEL_AFFINE = {"kneron": (1 / 256, -0.5), "tf": (1 / 127.5, -1.0), "yolo": (1 / 255, 0.0),
                "tf_hw": (1 / 128, -1.0), "yolo_hw": (1 / 128, 0.0)}
PLUS_NORMALIZE_MODE = {"kneron": "KP_NORMALIZE_KNERON", "tf": "KP_NORMALIZE_TENSOR_FLOW",
                       "yolo": "KP_NORMALIZE_YOLO", "tf_hw": "KP_NORMALIZE_TENSOR_FLOW",
                       "yolo_hw": "KP_NORMALIZE_YOLO"}
HARDWARE_INPUT = {"kneron": "x - 128", "tf": "x - 128", "yolo": "x >> 1",
                  "tf_hw": "x - 128", "yolo_hw": "x >> 1"}
CHANNEL_ORDERS = ("rgb", "bgr")


def check_norm(norm: str) -> str:
    if norm not in NORM_MODES:
        raise ValueError(f"unknown normalisation mode {norm!r}; use one of {', '.join(NORM_MODES)}")
    return norm


def check_channel_order(channel_order: str) -> str:
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"unknown channel order {channel_order!r}; use 'rgb' or 'bgr'")
    return channel_order


def bgr_to_channel_order(img_bgr: np.ndarray, channel_order: str) -> np.ndarray:
    """Reorder the last axis of a BGR image to ``channel_order`` (a view for ``rgb``)."""
    check_channel_order(channel_order)
    return img_bgr[..., ::-1] if channel_order == "rgb" else img_bgr


def normalize(img_hwc: np.ndarray, norm: str, channel_order: str = "rgb", channel_axis: int = -1) -> np.ndarray:
    """Normalise an 8-bit ``HxWx3`` image already in ``channel_order``; returns float32 ``HxWx3``.

    ``channel_order`` only matters for ``torch`` mode (the mean/std are per RGB channel), and
    ``channel_axis`` says where the channels are (``0`` for a ``3xHxW`` array; same layout out).
    """
    check_norm(norm)
    if norm == "yolo_hw":
        img_hwc = np.right_shift(np.asarray(img_hwc).astype(np.int32), 1)
    x = np.asarray(img_hwc).astype(np.float32)
    if norm in PIXEL_AFFINE:
        multiplier, offset = PIXEL_AFFINE[norm]
        return x * np.float32(multiplier) + np.float32(offset)
    mean = np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)
    std = np.asarray(IMAGENET_STD_RGB, dtype=np.float32)
    if check_channel_order(channel_order) == "bgr":
        mean, std = mean[::-1], std[::-1]
    shape = [1] * x.ndim
    shape[channel_axis] = 3
    return (x * np.float32(1 / 255) - mean.reshape(shape)) / std.reshape(shape)


def denormalize(x_hwc: np.ndarray, norm: str, channel_order: str = "rgb") -> np.ndarray:
    """Inverse of :func:`normalize`, back to float pixel values (for drawing and checks)."""
    check_norm(norm)
    x = np.asarray(x_hwc, dtype=np.float32)
    if norm in PIXEL_AFFINE:
        multiplier, offset = PIXEL_AFFINE[norm]
        return (x - np.float32(offset)) / np.float32(multiplier) * np.float32(2 if norm == "yolo_hw" else 1)
    mean = np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)
    std = np.asarray(IMAGENET_STD_RGB, dtype=np.float32)
    if check_channel_order(channel_order) == "bgr":
        mean, std = mean[::-1], std[::-1]
    return (x * std + mean) * 255


def _radix_for(norm_or_radix: str | int | np.ndarray):
    """A mode name -> its hardware radix; an int or an integer array (per-channel radix) as is."""
    if isinstance(norm_or_radix, str):
        check_norm(norm_or_radix)
        if norm_or_radix not in DEFAULT_RADIX:
            raise ValueError(f"mode {norm_or_radix!r} has no hardware radix; pass radix explicitly")
        return DEFAULT_RADIX[norm_or_radix]
    if np.ndim(norm_or_radix) == 0:
        return int(norm_or_radix)
    return np.asarray(norm_or_radix, dtype=np.int64)


def round_half_away(v: np.ndarray) -> np.ndarray:
    """The one rounding rule of the int8 scheme: nearest integer, halves away from zero (float64)."""
    v = np.asarray(v, dtype=np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def quantize(x: np.ndarray, radix: int | str | np.ndarray, bits: int = 8) -> np.ndarray:
    """Float -> int8: round half away from zero of ``x * 2**radix``, saturated to [-128, 127].

    ``radix`` may be a mode name (``kneron``/``tf``/``yolo``) to use its hardware radix, or an
    integer array broadcastable against ``x`` (one radix per channel). ``bits=32`` gives the int32
    accumulator format used for biases (saturated to the int32 range).
    """
    r = _radix_for(radix)
    q = round_half_away(np.asarray(x, dtype=np.float64) * np.exp2(r))
    if bits == 8:
        return np.clip(q, -128, 127).astype(np.int8)
    if bits == 32:
        return np.clip(q, -(2**31), 2**31 - 1).astype(np.int32)
    raise ValueError(f"bits must be 8 or 32, got {bits}")


def dequantize(q: np.ndarray, radix: int | str | np.ndarray) -> np.ndarray:
    """int8 (or int32) -> float32 ``q / 2**radix``; ``radix`` as in :func:`quantize`."""
    scale = np.exp2(-np.asarray(_radix_for(radix), dtype=np.float64)).astype(np.float32)
    return np.asarray(q, dtype=np.float32) * scale
