"""Detector-free mode: person boxes given in a JSON file instead of YOLOv5.

Accepted layouts (boxes ``[l, t, w, h]`` or ``[l, t, w, h, score]`` in image pixels):

* a dict ``{"<img_path or file name>": [[l, t, w, h, score], ...], ...}``;
* a COCO detection list ``[{"image_id": 785, "bbox": [l, t, w, h], "score": 0.99,
  "category_id": 1}, ...]`` (``file_name`` may replace ``image_id``; only category 1 is kept),
  as the official top-down evaluation's detection files are;
* a COCO keypoint annotation file (``{"images", "annotations"}``): the ground-truth boxes of the
  non-crowd people with labelled keypoints (score 1), cleaned exactly as the evaluation dataset
  cleans them (:func:`prepostprocess.geometry.clip_bbox_xywh_coco`), looked up by ``file_name`` -
  top-down evaluation with GT boxes, identical crops to ``test.py --use-gt-bbox``.

:class:`BoxTable` looks images up by the exact recorded path, then by file name, then by the COCO
image id in the file name.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from prepostprocess.geometry import clip_bbox_xywh_coco

from .params import ParamsError
from .records import coco_image_id


def _as_boxes(rows: list, source: str) -> np.ndarray:
    out = []
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) not in (4, 5):
            raise ParamsError(f"{source}: each box must be [l, t, w, h] or [l, t, w, h, score], got {row!r}")
        out.append([*map(float, row[:4]), float(row[4]) if len(row) == 5 else 1.0])
    return np.asarray(out, np.float32).reshape(-1, 5)


class BoxTable:
    """Boxes per image from a JSON file (see module docstring)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ParamsError(f"{path}: cannot read the boxes JSON ({exc})") from exc
        self.by_key: dict[str | int, np.ndarray] = {}
        if isinstance(data, dict) and {"images", "annotations"} <= set(data):
            self.by_key = self._from_coco_annotations(data, str(path))
        elif isinstance(data, dict):
            for key, rows in data.items():
                boxes = _as_boxes(rows, str(path))
                self.by_key[key] = boxes
                self.by_key.setdefault(Path(key).name, boxes)
        elif isinstance(data, list):
            grouped: dict[str | int, list] = defaultdict(list)
            for det in data:
                if not isinstance(det, dict) or "bbox" not in det or not ({"image_id", "file_name"} & set(det)):
                    raise ParamsError(f"{path}: list entries need 'bbox' and 'image_id' or 'file_name', got {det!r}")
                if det.get("category_id", 1) != 1:
                    continue
                key = det["file_name"] if "file_name" in det else int(det["image_id"])
                grouped[key].append([*det["bbox"][:4], det.get("score", 1.0)])
            self.by_key = {k: _as_boxes(v, str(path)) for k, v in grouped.items()}
        else:
            raise ParamsError(f"{path}: expected a dict or a COCO detection list")

    @staticmethod
    def _from_coco_annotations(data: dict, source: str) -> dict[str | int, np.ndarray]:
        images = {img["id"]: img for img in data["images"]}
        grouped: dict[str | int, list] = {img["file_name"]: [] for img in images.values()}
        for ann in data["annotations"]:
            img = images.get(ann.get("image_id"))
            if img is None or ann.get("iscrowd", 0) or ann.get("category_id", 1) != 1:
                continue
            if "keypoints" in ann and (ann.get("num_keypoints", 1) == 0 or max(ann["keypoints"], default=0) <= 0):
                continue  # the evaluation's GT-box mode only crops people with labelled keypoints
            box = ann["bbox"][:4]
            if "width" in img and "height" in img:  # the same clean-up as the training/eval datasets
                box = clip_bbox_xywh_coco(box, img["width"], img["height"])
                if box is None:
                    continue
            grouped[img["file_name"]].append([*box, 1.0])
        return {k: _as_boxes(v, source) for k, v in grouped.items()}

    def lookup(self, img_path: str) -> np.ndarray:
        """Boxes for ``img_path``; an image absent from the file has no boxes."""
        for key in (img_path, Path(img_path).name, coco_image_id(img_path)):
            if key is not None and key in self.by_key:
                return self.by_key[key]
        return np.zeros((0, 5), np.float32)
