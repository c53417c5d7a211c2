"""Datasets, pipeline assembly and the heatmap codec.

``build_dataset(cfg, split)`` -> :class:`TopDownDataset` (COCO, MPII, COCO-format custom sets);
``collate`` for ``DataLoader``; ``HeatmapCodec`` for targets/decoding; ``synthetic`` makes a
self-generated COCO-format set (owned by training).
"""

from .codec import HeatmapCodec
from .dataset import TopDownDataset, build_dataset, build_records, collate
from .pipeline import build_topdown_pipeline, heatmap_hw_for
from .records import AnnotationError, load_coco_det_records, load_coco_records, load_mpii_records

__all__ = [
    "AnnotationError",
    "HeatmapCodec",
    "TopDownDataset",
    "build_dataset",
    "build_records",
    "build_topdown_pipeline",
    "collate",
    "heatmap_hw_for",
    "load_coco_det_records",
    "load_coco_records",
    "load_mpii_records",
]
