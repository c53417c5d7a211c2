"""Kneron-style int8 fixed point with power-of-two scales (numpy only).

A tensor is stored as int8 ``q`` with a *radix* ``r``: ``float = q / 2**r`` (Kneron's
``float = fixed / scale / 2**radix`` with ``scale = 1``). Rounding and saturation are the ones of
the network-input quantiser (:func:`prepostprocess.normalize.quantize`): round half away from zero,
then clip to [-128, 127]. Biases live at the accumulator scale ``r_in + r_w`` (int32 here).

The radix of a range ``[lo, hi]`` is the largest ``r`` for which nothing saturates:
``hi * 2**r <= 127`` and ``lo * 2**r >= -128``. Kneron's ``kneron`` input (``x/256 - 0.5`` in
[-0.5, 127/256]) gets radix 8 under this rule, exactly the radix the firmware uses.
"""

from __future__ import annotations

import math

import numpy as np

from prepostprocess.normalize import dequantize, quantize, round_half_away

INT8_MIN, INT8_MAX = -128, 127
ACCUMULATOR_BITS = 32
MAX_RADIX = 24  # for all-zero tensors (any radix is exact) and tiny ranges: keeps 2**-r a normal float32
MIN_RADIX = -24

__all__ = [
    "ACCUMULATOR_BITS", "INT8_MAX", "INT8_MIN", "bias_to_int32", "dequantize", "fake_quant", "multiplier_for_range",
    "quantize", "quantize_weight", "radix_for_range", "split_multiplier", "radix_per_channel", "radix_w_for_bias", "round_half_away", "scale_of",
    "snr_db", "snr_from_powers",
]


def radix_for_range(lo: float, hi: float) -> int:
    """Largest radix that represents ``[lo, hi]`` without saturation (clamped to [-24, 24])."""
    lo, hi = float(min(lo, 0.0)), float(max(hi, 0.0))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"range [{lo}, {hi}] is not finite; the calibration saw inf/nan activations")
    candidates = [MAX_RADIX]
    if hi > 0:
        candidates.append(math.floor(math.log2(INT8_MAX / hi)))
    if lo < 0:
        candidates.append(math.floor(math.log2(-INT8_MIN / -lo)))
    return int(max(MIN_RADIX, min(candidates)))


def multiplier_for_range(lo: float, hi: float, pow2: bool = True) -> float:
    """The int8 multiplier ``m`` (``float = q / m``) that represents ``[lo, hi]`` without saturation.

    ``pow2``: ``m = 2**radix_for_range(lo, hi)``. Otherwise Kneron's ``scale * 2**radix`` with the
    scale in [1, 2) that stretches the range over the whole int8 grid: ``m = min(127 / hi, 128 / -lo)``.
    """
    r = radix_for_range(lo, hi)
    if pow2:
        return float(2.0 ** r)
    lo, hi = float(min(lo, 0.0)), float(max(hi, 0.0))
    candidates = [v for v in ((INT8_MAX / hi) if hi > 0 else None, (-INT8_MIN / -lo) if lo < 0 else None) if v]
    m = min(candidates) if candidates else 2.0 ** r
    return float(min(max(m, 2.0 ** r), 2.0 ** (r + 1) * (1 - 2.0 ** -23)))  # scale in [1, 2): radix unchanged


def split_multiplier(m) -> tuple[np.ndarray, np.ndarray]:
    """``m = scale * 2**radix`` with the scale in [1, 2): (radix, scale), elementwise."""
    m = np.asarray(m, dtype=np.float64)
    radix = np.floor(np.log2(m)).astype(np.int64)
    return radix, m / np.exp2(radix)


def radix_per_channel(w: np.ndarray, axis: int = 0) -> np.ndarray:
    """One radix per slice along ``axis`` (the output channels of a conv weight), from its min/max."""
    w = np.moveaxis(np.asarray(w, dtype=np.float64), axis, 0).reshape(np.shape(w)[axis], -1)
    return np.array([radix_for_range(row.min(), row.max()) for row in w], dtype=np.int64)


def _along(radix: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    shape = [1] * ndim
    shape[axis] = -1
    return np.asarray(radix).reshape(shape)


def quantize_weight(w: np.ndarray, per_channel: bool = True, axis: int = 0,
                    radix: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Weight -> (int8 values, radix per channel); per-tensor gives the same radix to every channel.

    ``radix``: use these radices (e.g. capped by :func:`radix_w_for_bias`) instead of the min/max ones.
    """
    w = np.asarray(w, dtype=np.float64)
    if radix is not None:
        radix = np.asarray(radix, dtype=np.int64)
    elif per_channel and w.ndim > 1:
        radix = radix_per_channel(w, axis)
    else:
        radix = np.full(w.shape[axis] if w.ndim > 1 else 1, radix_for_range(w.min(), w.max()), np.int64)
    r = _along(radix, w.ndim, axis) if w.ndim > 1 else radix[0]
    return quantize(w, r), radix


def radix_w_for_bias(radix_w: np.ndarray, bias: np.ndarray, radix_in: int) -> np.ndarray:
    """Cap each channel's weight radix so its bias fits the int32 accumulator at ``r_in + r_w``.

    A channel with tiny weights gets a large weight radix; with a large input radix its bias would
    saturate int32 (``|b| * 2**(r_in + r_w) > 2**31 - 1``). The accumulator format must hold the
    bias, so the weight radix gives way (the weights lose the bits the bias needs).
    """
    b = np.abs(np.broadcast_to(np.asarray(bias, dtype=np.float64), np.shape(radix_w)))
    limit = np.where(b > 0, np.floor(np.log2((2.0**31 - 1) / np.maximum(b, 1e-30))) - int(radix_in), MAX_RADIX)
    return np.minimum(np.asarray(radix_w, dtype=np.int64), limit.astype(np.int64))


def bias_to_int32(bias: np.ndarray, radix_in: int, radix_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bias at the accumulator scale: int32 ``round(b * 2**(r_in + r_w))`` and its radix per channel."""
    radix = int(radix_in) + np.asarray(radix_w, dtype=np.int64)
    return quantize(bias, radix, bits=ACCUMULATOR_BITS), radix


def fake_quant(x: np.ndarray, radix) -> np.ndarray:
    """Quantise and dequantise (float32): what the chip's int8 tensor means in float."""
    return dequantize(quantize(x, radix), radix)


def scale_of(radix) -> np.ndarray:
    """The ONNX ``scale`` of a radix: ``2**-radix`` as float32 (exact)."""
    return np.exp2(-np.asarray(radix, dtype=np.float64)).astype(np.float32)


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """``10 log10(sum(ref^2) / sum((ref - test)^2))``; ``inf`` when identical, ``-inf`` for a zero reference."""
    ref = np.asarray(reference, dtype=np.float64)
    noise = float(np.sum((ref - np.asarray(test, dtype=np.float64)) ** 2))
    return snr_from_powers(float(np.sum(ref ** 2)), noise)


def snr_from_powers(signal: float, noise: float) -> float:
    """SNR in dB from accumulated signal and noise powers (see :func:`snr_db`)."""
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)
