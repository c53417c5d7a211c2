"""``ToTensor``, ``NormalizeTensor``, ``Compose``, ``Collect`` (mmpose 0.x ``shared_transform.py``).

This layer is torch-free: ``ToTensor`` produces a numpy ``CHW`` array (torch tensors are made by
``litehrnet.data.collate``). Normalisation uses :mod:`prepostprocess.normalize`, the same code as
the deploy runners, on the uint8 pixels, so training and deployment inputs are bit-identical.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np

import prepostprocess as pp
from prepostprocess.normalize import PIXEL_AFFINE, check_channel_order, check_norm

# mmpose-style (mean, std) on x/255 for each affine mode of prepostprocess.normalize.PIXEL_AFFINE
# (value = x * m + o  <=>  mean = -o / (255 m), std = 1 / (255 m)), as Kneron's configs write them
# (kneron: mean 128/255, std 256/255). ``yolo_hw`` drops a bit first: no mean/std expresses it.
_MEAN_STD_MODES = {
    **{name: ((-o / (255 * m),) * 3, (1 / (255 * m),) * 3)
       for name, (m, o) in PIXEL_AFFINE.items() if name != "yolo_hw"},
    "torch": (pp.IMAGENET_MEAN_RGB, pp.IMAGENET_STD_RGB),
}


def norm_from_mean_std(mean, std, tol: float = 1e-4) -> str:
    """Name the normalisation mode an mmpose ``NormalizeTensor(mean, std)`` (RGB, on x/255) means."""
    for name, (m, s) in _MEAN_STD_MODES.items():
        if np.allclose(mean, m, atol=tol) and np.allclose(std, s, atol=tol):
            return name
    raise ValueError(
        f"NormalizeTensor: mean={list(mean)} std={list(std)} is none of the modes {list(_MEAN_STD_MODES)}; "
        f"use norm= one of {', '.join(pp.NORM_MODES)}"
    )


class ToTensor:
    """Needs ``img`` (uint8 HxWx3 BGR); changes it to uint8 ``3xHxW`` in ``channel_order``;
    adds ``channel_order``."""

    def __init__(self, channel_order: str = "rgb") -> None:
        self.channel_order = check_channel_order(channel_order)

    def __call__(self, results: dict) -> dict:
        ordered = pp.bgr_to_channel_order(results["img"], self.channel_order)
        results["img"] = np.ascontiguousarray(ordered.transpose(2, 0, 1))
        results["channel_order"] = self.channel_order
        return results


class NormalizeTensor:
    """Needs ``img`` (uint8 3xHxW) and ``channel_order``; changes ``img`` to float32 normalised
    by ``norm`` (or the mode matching mmpose-style ``mean``/``std``); adds ``norm``."""

    def __init__(self, norm: str | None = None, mean=None, std=None) -> None:
        if norm is None:
            if mean is None or std is None:
                raise ValueError("NormalizeTensor: give norm=... or both mean and std")
            norm = norm_from_mean_std(mean, std)
        self.norm = check_norm(norm)

    def __call__(self, results: dict) -> dict:
        results["img"] = pp.normalize(results["img"], self.norm, results.get("channel_order", "rgb"), channel_axis=0)
        results["norm"] = self.norm
        return results


class Compose:
    """Run transforms in order; a transform returning ``None`` drops the sample (returns ``None``).

    Items may be callables or dicts ``{"type": "<mmpose name>", **kwargs}`` looked up in
    ``mmpose_replacement.TRANSFORMS``.
    """

    def __init__(self, transforms: Iterable[Callable | dict]) -> None:
        from . import build_transform  # late import: the name table lives in the package

        self.transforms = [t if callable(t) else build_transform(t) for t in transforms]

    def __call__(self, results: dict) -> dict | None:
        for t in self.transforms:
            results = t(results)
            if results is None:
                return None
        return results

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(type(t).__name__ for t in self.transforms) + ")"


class Collect:
    """Keep only ``keys`` + ``meta_keys`` (flat); a missing key is an error listing what exists."""

    def __init__(self, keys: Iterable[str], meta_keys: Iterable[str] = ()) -> None:
        self.keys, self.meta_keys = tuple(keys), tuple(meta_keys)

    def __call__(self, results: dict) -> dict:
        missing = [k for k in (*self.keys, *self.meta_keys) if k not in results]
        if missing:
            raise KeyError(f"Collect: missing keys {missing}; available: {sorted(results)}")
        return {k: results[k] for k in (*self.keys, *self.meta_keys)}
