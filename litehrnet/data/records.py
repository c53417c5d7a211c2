"""Annotation files -> lists of per-person records (plain dicts), validated at start.

A record holds ``image_file`` (path), ``image_id``, ``bbox_xywh`` (or ``center_xy`` and
``scale_wh_px`` when the format gives them, as MPII does), ``joints_xy`` (K, 2) float64,
``joints_visible`` (K,) float32 (0/1) and ``bbox_score``.

Formats:

- COCO / COCO-format custom sets, ground-truth boxes with mmpose's filters: non-crowd, box clipped to
  the image (``x2 = min(W - 1, x1 + max(0, w - 1))``), kept when ``x2 > x1``, ``y2 > y1`` and
  ``area > 0``, and the person has at least one labelled keypoint. Visibility = ``min(1, v)``.
- COCO person detections (results JSON: ``image_id``, ``category_id``, ``bbox``, ``score``):
  category 1 only, ``score >= det_score_thr``; image names come from the GT file.
- MPII in mmpose's JSON layout (a list of ``{"image", "center", "scale", "joints", "joints_vis"}``;
  MATLAB 1-based coordinates, ``scale`` in 200-px units): centre moved down by ``15 * scale`` px,
  scale x 1.25, then centre and joints minus 1 (mmpose 0.x's conversion).

A malformed file raises :class:`AnnotationError` naming the file and the problem. Single invalid
annotations (NaN/inf, negative sizes, missing fields; :mod:`litehrnet.evaluation.gt_checks`, the
rule evaluation applies too) and invalid detections (non-finite or empty boxes) are skipped and
reported in one line with their count and ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from prepostprocess.geometry import clip_bbox_xywh_coco

from litehrnet.evaluation.gt_checks import annotation_problem, detection_problem, report_invalid

MPII_PIXEL_STD = 200.0  # MPII's scale unit (the mmpose 0.x convention)


class AnnotationError(ValueError):
    """An annotation or detection file is missing or malformed."""


def _read_json(path: str | os.PathLike, what: str = "annotation file", hint: str = "check data.root and the *_ann keys"):
    try:
        with open(path, "r", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise AnnotationError(f"{path}: {what} not found; {hint}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: not valid JSON ({exc}); re-download or regenerate the file") from None


def _require(cond: bool, path, message: str) -> None:
    if not cond:
        raise AnnotationError(f"{path}: {message}")


def _coco_images(data: dict, path) -> dict[int, dict]:
    _require(isinstance(data, dict), path, "top level must be a COCO dict with 'images' and 'annotations'")
    for key in ("images", "annotations"):
        _require(isinstance(data.get(key), list), path, f"missing COCO list '{key}'")
    images = {}
    for i, img in enumerate(data["images"]):
        ok = isinstance(img, dict) and all(k in img for k in ("id", "file_name", "width", "height"))
        _require(ok, path, f"images[{i}] needs id, file_name, width, height")
        images[img["id"]] = img
    return images


def _keypoint_categories(data: dict) -> set:
    cats = data.get("categories") or []
    ids = {c["id"] for c in cats if isinstance(c, dict) and c.get("keypoints")}
    return ids or {1}


def load_coco_records(ann_file, img_dir, num_keypoints: int) -> list[dict]:
    """Ground-truth person records of a COCO-format keypoint file (filters in the module docstring)."""
    data = _read_json(ann_file)
    images = _coco_images(data, ann_file)
    cat_ids = _keypoint_categories(data)
    records, invalid = [], []
    for i, ann in enumerate(data["annotations"]):
        _require(isinstance(ann, dict) and "image_id" in ann, ann_file, f"annotations[{i}] has no image_id")
        if ann.get("iscrowd", 0) or ann.get("category_id", 1) not in cat_ids:
            continue
        problem = annotation_problem(ann)  # the evaluation's rule (NaN/inf, negative sizes, missing fields)
        if problem is not None:
            invalid.append((ann.get("id", f"#{i}"), problem))
            continue
        kps = np.asarray(ann["keypoints"], dtype=np.float64)
        _require(
            kps.size == 3 * num_keypoints, ann_file,
            f"annotations[{i}] (id {ann.get('id')}) has {kps.size // 3} keypoints, expected {num_keypoints}; "
            "check data.keypoint_layout",
        )
        if kps.max(initial=0) <= 0 or ann.get("num_keypoints", 1) == 0:
            continue
        img = images.get(ann["image_id"])
        _require(img is not None, ann_file, f"annotations[{i}] refers to unknown image_id {ann['image_id']}")
        box = clip_bbox_xywh_coco(ann["bbox"], img["width"], img["height"])
        if box is None or ann.get("area", 1) <= 0:
            continue
        kps = kps.reshape(num_keypoints, 3)
        records.append({
            "image_file": str(Path(img_dir) / img["file_name"]),
            "image_id": int(img["id"]),
            "bbox_xywh": box,
            "joints_xy": kps[:, :2].copy(),
            "joints_visible": np.minimum(1.0, kps[:, 2]).astype(np.float32),
            "bbox_score": 1.0,
        })
    report_invalid(ann_file, invalid)
    return records


def load_coco_det_records(det_file, ann_file, img_dir, num_keypoints: int, score_thr: float = 0.0) -> list[dict]:
    """Person detections (COCO results JSON) as records; image names from the GT ``ann_file``."""
    images = _coco_images(_read_json(ann_file), ann_file)
    dets = _read_json(det_file, "detection file", "check data.det_file (or pass --det-file)")
    _require(isinstance(dets, list), det_file, "detections must be a JSON list of {image_id, bbox, score, category_id}")
    records, invalid = [], []
    for i, det in enumerate(dets):
        ok = isinstance(det, dict) and all(k in det for k in ("image_id", "bbox", "score"))
        _require(ok, det_file, f"entry {i} needs image_id, bbox and score")
        problem = detection_problem(det)
        if problem is not None:
            invalid.append((f"#{i}", problem))
            continue
        if det.get("category_id", 1) != 1 or det["score"] < score_thr:
            continue
        img = images.get(det["image_id"])
        _require(img is not None, det_file, f"entry {i}: image_id {det['image_id']} is not in {ann_file}")
        records.append({
            "image_file": str(Path(img_dir) / img["file_name"]),
            "image_id": int(det["image_id"]),
            "bbox_xywh": np.asarray(det["bbox"][:4], dtype=np.float64),
            "joints_xy": np.zeros((num_keypoints, 2)),
            "joints_visible": np.zeros(num_keypoints, np.float32),
            "bbox_score": float(det["score"]),
        })
    report_invalid(det_file, invalid, what="detection")
    return records


def load_mpii_records(ann_file, img_dir, num_keypoints: int = 16) -> list[dict]:
    """Records of an MPII annotation file in mmpose's JSON layout (conversion in the module docstring)."""
    data = _read_json(ann_file)
    _require(isinstance(data, list), ann_file, "MPII annotations must be a JSON list of person entries")
    records = []
    for i, ann in enumerate(data):
        ok = isinstance(ann, dict) and all(k in ann for k in ("image", "center", "scale", "joints", "joints_vis"))
        _require(ok, ann_file, f"entry {i} needs image, center, scale, joints, joints_vis")
        joints = np.asarray(ann["joints"], dtype=np.float64)
        _require(joints.shape == (num_keypoints, 2), ann_file, f"entry {i}: joints shape {joints.shape}, expected ({num_keypoints}, 2)")
        center = np.asarray(ann["center"], dtype=np.float64)
        scale_px = np.full(2, float(ann["scale"]) * MPII_PIXEL_STD)
        if center[0] != -1:
            center[1] += 15 * float(ann["scale"])
            scale_px *= 1.25
        records.append({
            "image_file": str(Path(img_dir) / ann["image"]),
            "image_id": i,
            "center_xy": center - 1,
            "scale_wh_px": scale_px,
            "joints_xy": joints - 1,
            "joints_visible": np.minimum(1.0, np.asarray(ann["joints_vis"], dtype=np.float32)),
            "bbox_score": 1.0,
        })
    return records
