"""Datasets, pipeline assembly and the heatmap codec.

``build_dataset(cfg, split, codec)`` -> :class:`TopDownDataset` (COCO, MPII, COCO-format custom
sets); ``collate`` for ``DataLoader``; :class:`HeatmapCodec` (``codec_for_model``) for targets and
decoding; ``synthetic`` makes a self-generated COCO-format set (owned by training).

Names are imported on first use, so ``litehrnet.data.codec`` (numpy only, used by the deploy
runners) does not pull in torch through the dataset module.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "HeatmapCodec": ".codec",
    "TopDownDataset": ".dataset",
    "build_dataset": ".dataset",
    "build_records": ".dataset",
    "collate": ".dataset",
    "build_topdown_pipeline": ".pipeline",
    "codec_for_model": ".pipeline",
    "AnnotationError": ".records",
    "load_coco_det_records": ".records",
    "load_coco_records": ".records",
    "load_mpii_records": ".records",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
