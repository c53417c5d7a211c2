"""Small generated COCO-format sets for the data tests."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from litehrnet.config import SCHEMA, merge


def person(image_id: int, ann_id: int, bbox, n_visible: int = 17, **extra) -> dict:
    x, y, w, h = bbox
    rng = np.random.default_rng(ann_id)
    kps = []
    for k in range(17):
        if k < n_visible:
            kps += [float(x + rng.uniform(0.1, 0.9) * w), float(y + rng.uniform(0.1, 0.9) * h), 2]
        else:
            kps += [0, 0, 0]
    ann = {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": list(bbox),
           "area": float(w * h), "num_keypoints": n_visible, "keypoints": kps}
    ann.update(extra)
    return ann


def write_coco(root: Path, images: dict[int, tuple[int, int]], annotations: list[dict], corrupt=()) -> Path:
    """Write PNG images (``id -> (h, w)``) and ``annotations/train.json`` under ``root``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    entries = []
    for image_id, (h, w) in images.items():
        name = f"{image_id:06d}.png"
        if image_id in corrupt:
            (root / "images" / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
        else:
            img = np.random.default_rng(image_id).integers(0, 256, (h, w, 3), np.uint8)
            cv2.imwrite(str(root / "images" / name), img)
        entries.append({"id": image_id, "file_name": name, "height": h, "width": w})
    ann_file = root / "annotations" / "train.json"
    ann_file.write_text(json.dumps({"images": entries, "annotations": annotations,
                                    "categories": [{"id": 1, "name": "person", "keypoints": ["k"] * 17}]}))
    return ann_file


def coco_cfg(root, train_ann="annotations/train.json", img_dir="images", **data) -> dict:
    over = {"data": {"root": str(root), "train_ann": train_ann, "train_img_dir": img_dir,
                     "val_ann": train_ann, "val_img_dir": img_dir, **data}}
    return merge(SCHEMA, over)
