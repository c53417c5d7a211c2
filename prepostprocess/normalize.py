"""Channel order, normalisation modes and int8 quantisation of the network input.

Modes (input: 8-bit pixel values ``x`` in the network's channel order):

==========  =======================================  ===============
mode        normalised value                         default radix
==========  =======================================  ===============
``kneron``  ``x / 256 - 0.5``                        8
``tf``      ``x / 128 - 1``                          7
``yolo``    ``x / 256``                              7
``torch``   ``(x / 255 - mean) / std`` (ImageNet,    none (float
            mean/std given in RGB order)             only)
==========  =======================================  ===============

Quantisation: ``q = clip(round_half_away_from_zero(v * 2**radix), -128, 127)`` as int8;
dequantisation ``v = q / 2**radix``. In ``kneron`` and ``tf`` modes ``q = x - 128`` exactly.
"""

from __future__ import annotations

import numpy as np

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
NORM_MODES = ("kneron", "tf", "yolo", "torch")
DEFAULT_RADIX = {"kneron": 8, "tf": 7, "yolo": 7}
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


def normalize(img_hwc: np.ndarray, norm: str, channel_order: str = "rgb") -> np.ndarray:
    """Normalise an 8-bit ``HxWx3`` image already in ``channel_order``; returns float32 ``HxWx3``.

    ``channel_order`` only matters for ``torch`` mode (the mean/std are per RGB channel).
    """
    check_norm(norm)
    x = np.asarray(img_hwc).astype(np.float32)
    if norm == "kneron":
        return x * np.float32(1 / 256) - np.float32(0.5)
    if norm == "tf":
        return x * np.float32(1 / 128) - np.float32(1.0)
    if norm == "yolo":
        return x * np.float32(1 / 256)
    mean = np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)
    std = np.asarray(IMAGENET_STD_RGB, dtype=np.float32)
    if check_channel_order(channel_order) == "bgr":
        mean, std = mean[::-1], std[::-1]
    return (x * np.float32(1 / 255) - mean) / std


def denormalize(x_hwc: np.ndarray, norm: str, channel_order: str = "rgb") -> np.ndarray:
    """Inverse of :func:`normalize`, back to float pixel values (for drawing and checks)."""
    check_norm(norm)
    x = np.asarray(x_hwc, dtype=np.float32)
    if norm == "kneron":
        return (x + 0.5) * 256
    if norm == "tf":
        return (x + 1.0) * 128
    if norm == "yolo":
        return x * 256
    mean = np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)
    std = np.asarray(IMAGENET_STD_RGB, dtype=np.float32)
    if check_channel_order(channel_order) == "bgr":
        mean, std = mean[::-1], std[::-1]
    return (x * std + mean) * 255


def _radix_for(norm_or_radix: str | int) -> int:
    if isinstance(norm_or_radix, str):
        check_norm(norm_or_radix)
        if norm_or_radix not in DEFAULT_RADIX:
            raise ValueError(f"mode {norm_or_radix!r} has no hardware radix; pass radix explicitly")
        return DEFAULT_RADIX[norm_or_radix]
    return int(norm_or_radix)


def quantize(x: np.ndarray, radix: int | str) -> np.ndarray:
    """Float -> int8: round half away from zero of ``x * 2**radix``, saturated to [-128, 127].

    ``radix`` may be a mode name (``kneron``/``tf``/``yolo``) to use its hardware radix.
    """
    r = _radix_for(radix)
    v = np.asarray(x, dtype=np.float64) * (2.0**r)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5)
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize(q: np.ndarray, radix: int | str) -> np.ndarray:
    """int8 -> float32 ``q / 2**radix``."""
    return np.asarray(q, dtype=np.float32) * np.float32(2.0 ** -_radix_for(radix))
