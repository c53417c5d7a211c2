"""Top-down pose datasets: ``build_dataset(cfg, split)`` and ``collate``.

Items are dicts: ``img`` (float32 tensor 3xHxW, normalised per ``data.norm`` / ``channel_order``),
``target`` (float32 tensor Kxhxw), ``target_weight`` (float32 tensor Kx1) and meta ``image_id``,
``image_file``, ``center_xy`` (2,), ``scale_wh_px`` (2,), ``bbox_score``, ``rotation``, ``flipped``,
``index`` and ``skipped`` (corrupt images skipped to produce this item).

Randomness: each item draws from ``numpy.random.default_rng([seed, epoch, index])``, so a run is
reproducible whatever the number of workers; call ``set_epoch`` every epoch.

A corrupt or missing image does not stop an epoch: it is reported once with ``warnings.warn``,
remembered, counted in ``num_skipped`` (of this process) and the next sample is used instead; the
batch from :func:`collate` carries ``num_skipped``. More than ``max_consecutive_bad`` bad images in a
row is an error (the image folder is probably wrong).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from mmpose_replacement import Compose, ImageLoadError

from litehrnet.keypoints import KeypointInfo, get_keypoint_info

from .pipeline import build_topdown_pipeline
from .records import AnnotationError, load_coco_det_records, load_coco_records, load_mpii_records

SPLITS = ("train", "val")
DATASETS = ("coco", "mpii", "coco_custom")
TENSOR_KEYS = ("img", "target", "target_weight")


class TopDownDataset(Dataset):
    """Person records + a transform pipeline."""

    def __init__(
        self,
        records: list[dict],
        pipeline: Compose,
        info: KeypointInfo,
        seed: int = 0,
        max_consecutive_bad: int = 20,
        name: str = "dataset",
    ) -> None:
        if not records:
            raise AnnotationError(f"{name}: no usable person annotations; check the annotation file and filters")
        self.records, self.pipeline, self.info = records, pipeline, info
        self.seed, self.epoch, self.name = seed, 0, name
        self.max_consecutive_bad = max_consecutive_bad
        self.bad_files: set[str] = set()
        self.num_skipped = 0
        self._threads_set = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def load(self, index: int) -> dict:
        """Run the pipeline on one record (raises ``ImageLoadError`` for a bad image)."""
        results = dict(self.records[index])
        results["rng"] = np.random.default_rng([self.seed, self.epoch, index])
        results.setdefault("rotation", 0.0)
        results.setdefault("flipped", False)
        return self.pipeline(results)

    def __getitem__(self, index: int) -> dict:
        if not self._threads_set:  # one OpenCV thread per DataLoader worker: workers are the parallelism
            if get_worker_info() is not None:
                cv2.setNumThreads(1)
            self._threads_set = True
        skipped = 0
        for attempt in range(self.max_consecutive_bad + 1):
            i = (index + attempt) % len(self.records)
            image_file = self.records[i]["image_file"]
            if image_file in self.bad_files:
                skipped += 1
                continue
            try:
                results = self.load(i)
            except ImageLoadError as exc:
                self.bad_files.add(image_file)
                self.num_skipped += 1
                skipped += 1
                warnings.warn(f"{self.name}: skipping unreadable image ({exc})", RuntimeWarning, stacklevel=2)
                continue
            return self._to_item(results, i, skipped)
        raise RuntimeError(
            f"{self.name}: {self.max_consecutive_bad + 1} unreadable images in a row from index {index} "
            f"(last: {image_file}); check the image folder"
        )

    @staticmethod
    def _to_item(results: dict, index: int, skipped: int) -> dict:
        return {
            "img": torch.from_numpy(results["img"]),
            "target": torch.from_numpy(results["target"]),
            "target_weight": torch.from_numpy(results["target_weight"]),
            "image_id": int(results["image_id"]),
            "image_file": results["image_file"],
            "center_xy": np.asarray(results["center_xy"], dtype=np.float64),
            "scale_wh_px": np.asarray(results["scale_wh_px"], dtype=np.float64),
            "bbox_score": float(results["bbox_score"]),
            "rotation": float(results["rotation"]),
            "flipped": bool(results["flipped"]),
            "index": index,
            "skipped": skipped,
        }


def collate(items: list[dict]) -> dict:
    """Stack items: tensors -> stacked tensors, numeric meta -> numpy arrays, strings -> lists;
    ``skipped`` is summed into ``num_skipped``."""
    batch: dict = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if key == "skipped":
            batch["num_skipped"] = int(sum(values))
        elif key in TENSOR_KEYS:
            batch[key] = torch.stack(values)
        elif isinstance(values[0], str):
            batch[key] = values
        else:
            batch[key] = np.stack([np.asarray(v) for v in values])
    return batch


def _split_paths(data: dict, split: str) -> tuple[Path, Path]:
    root = Path(data["root"])
    return root / data[f"{split}_ann"], root / data[f"{split}_img_dir"]


def build_records(cfg: dict, split: str, info: KeypointInfo) -> list[dict]:
    """Records for ``split`` per ``cfg["data"]`` (GT boxes, or detections for val when configured)."""
    data = cfg["data"]
    ann_file, img_dir = _split_paths(data, split)
    if data["dataset"] == "mpii":
        return load_mpii_records(ann_file, img_dir, info.num_keypoints)
    if split == "val" and not data["use_gt_bbox"]:
        if not data["det_file"]:
            raise AnnotationError("config: data.use_gt_bbox is false but data.det_file is not set")
        det_file = Path(data["root"]) / data["det_file"]
        return load_coco_det_records(det_file, ann_file, img_dir, info.num_keypoints, data["det_score_thr"])
    return load_coco_records(ann_file, img_dir, info.num_keypoints)


def build_dataset(cfg: dict, split: str, codec=None) -> TopDownDataset:
    """The ``train`` (with augmentation) or ``val`` dataset of a resolved config.

    ``codec``: the model's :class:`~litehrnet.data.codec.HeatmapCodec` for the targets (default:
    :func:`~litehrnet.data.pipeline.codec_for_model` of the config)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    data = cfg["data"]
    if data["dataset"] not in DATASETS:
        raise ValueError(f"config: data.dataset {data['dataset']!r} unknown; use one of {', '.join(DATASETS)}")
    info = get_keypoint_info(data["keypoint_layout"])
    if cfg["model"]["num_keypoints"] != info.num_keypoints:
        raise ValueError(
            f"config: model.num_keypoints={cfg['model']['num_keypoints']} but data.keypoint_layout "
            f"{data['keypoint_layout']!r} has {info.num_keypoints}"
        )
    records = build_records(cfg, split, info)
    has_bbox = "bbox_xywh" in records[0] if records else True
    pipeline = build_topdown_pipeline(cfg, split == "train", has_bbox, info, codec)
    ann_file, _ = _split_paths(data, split)
    return TopDownDataset(records, pipeline, info, seed=cfg["train"]["seed"], name=f"{ann_file} ({split})")
