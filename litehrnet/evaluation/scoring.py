"""Scoring the end-to-end chain's output records against ground truth (``tools/eval_e2e.py``).

Records are the chain's per-image output (``litehrnet.deploy.records``: ``img_path``,
``lmk_coco_body_17pts`` per person, ``bbox`` ``[l, t, w, h, score]`` per person). Two kinds of
ground truth:

* **COCO keypoints file** (``{"images", "annotations", "categories"}``): records are turned into
  COCO results (rescored and OKS-NMSed by :func:`litehrnet.evaluation.people_to_coco_results`)
  and scored with pycocotools (AP, AP50, ..., AR). A record's image is found by its file name
  (``Path(img_path).name``) among the GT ``images[].file_name``; records of other images are
  counted in ``images_unmatched`` and the score covers only the matched GT images.
* **Kneron-style JSON** (a list of ``{"img_path", "lmk_coco_body_17pts"}``): landmark distances.
  Records are matched to GT entries by ``img_path`` exactly as Kneron requires; when no path
  matches exactly, the normalised path, then the file name (when unique) are tried, and the
  number of images matched each way is reported. Inside an image, each GT person is paired with
  the unused predicted person of smallest mean distance (greedy). Over the GT keypoints that are
  labelled (third value > 0, or all when only x, y are given):
  ``l1`` = mean ``|dx| + |dy|``, ``l2`` = mean Euclidean distance, ``mae`` = mean ``|d|`` per
  coordinate, all in pixels; GT people with no prediction are counted in ``missed_persons``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from .coco import EvaluationError, evaluate_coco_keypoints, load_coco_gt, people_to_coco_results


def records_to_people(records: list[dict[str, Any]], image_id_of) -> tuple[list[dict[str, Any]], int]:
    """Per-person dicts for :func:`litehrnet.evaluation.people_to_coco_results`.

    ``image_id_of(img_path) -> int | None``; returns the people and the number of records without an id.
    """
    people, unmatched = [], 0
    for rec in records:
        image_id = image_id_of(rec["img_path"])
        if image_id is None:
            unmatched += 1
            continue
        for kpts, box in zip(rec["lmk_coco_body_17pts"], rec["bbox"]):
            people.append({"image_id": image_id, "keypoints": kpts, "bbox_score": box[4], "area": box[2] * box[3]})
    return people, unmatched


def read_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EvaluationError(f"{path}: {what} file not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{path}: {what} is not valid JSON ({exc})") from None


def is_coco_keypoints(gt: Any) -> bool:
    return isinstance(gt, dict) and {"images", "annotations"} <= set(gt)


def _file_name(img_path: str) -> str:
    return Path(img_path.split("#")[0]).name


def score_records_coco(records: list[dict], gt_path: str | Path, nms: str = "oks") -> dict[str, float]:
    """COCO keypoint AP/AR over the GT images that the records cover (matched by file name)."""
    coco_gt = load_coco_gt(gt_path)
    file_to_id = {img["file_name"]: img["id"] for img in coco_gt.dataset["images"]}
    people, unmatched = records_to_people(records, lambda p: file_to_id.get(_file_name(p)))
    matched_ids = {file_to_id[_file_name(r["img_path"])] for r in records if _file_name(r["img_path"]) in file_to_id}
    results = people_to_coco_results(people, nms=nms)
    metrics = evaluate_coco_keypoints(results, coco_gt, image_ids=matched_ids or None)
    return {**metrics, "images_scored": float(len(matched_ids)), "images_unmatched": float(unmatched)}


def _match_paths(pred_paths: list[str], gt_paths: list[str]) -> tuple[dict[str, str], Counter]:
    """GT path -> prediction path: exact, else normalised, else unique file name."""
    how: Counter = Counter()
    exact = set(pred_paths)
    norm = {os.path.normpath(p): p for p in pred_paths}
    names = Counter(Path(p).name for p in pred_paths)
    by_name = {Path(p).name: p for p in pred_paths}
    mapping = {}
    for gt in gt_paths:
        if gt in exact:
            mapping[gt], kind = gt, "exact"
        elif os.path.normpath(gt) in norm:
            mapping[gt], kind = norm[os.path.normpath(gt)], "normalised"
        elif names.get(Path(gt).name) == 1:
            mapping[gt], kind = by_name[Path(gt).name], "file_name"
        else:
            kind = "unmatched"
        how[kind] += 1
    return mapping, how


def _persons(lmk: Any) -> np.ndarray:
    arr = np.asarray(lmk, np.float64)
    if arr.size == 0:
        return np.zeros((0, 17, 3))
    if arr.ndim == 2:  # one person written without the person axis
        arr = arr[None]
    if arr.shape[-1] == 2:
        arr = np.concatenate([arr, np.ones(arr.shape[:-1] + (1,))], -1)
    return arr


def _pair_persons(gt: np.ndarray, pred: np.ndarray) -> list[tuple[int, int]]:
    """Greedy pairing by mean Euclidean distance over labelled GT keypoints."""
    if not len(gt) or not len(pred):
        return []
    labelled = gt[:, None, :, 2] > 0
    dist = np.linalg.norm(gt[:, None, :, :2] - pred[None, :, :, :2], axis=-1)
    cost = np.where(labelled, dist, 0).sum(-1) / np.maximum(labelled.sum(-1), 1)
    pairs, used_g, used_p = [], set(), set()
    for flat in np.argsort(cost, axis=None):
        g, p = np.unravel_index(flat, cost.shape)
        if g not in used_g and p not in used_p:
            pairs.append((int(g), int(p)))
            used_g.add(g)
            used_p.add(p)
    return pairs


def score_records_landmarks(records: list[dict], gt: list[dict], key: str = "lmk_coco_body_17pts") -> dict[str, float]:
    preds = {r["img_path"]: _persons(r[key]) for r in records}
    gts = {g["img_path"]: _persons(g[key]) for g in gt}
    mapping, how = _match_paths(list(preds), list(gts))
    dx, dy, missed, total = [], [], 0, 0
    for gt_path, gt_persons in gts.items():
        total += len(gt_persons)
        if gt_path not in mapping:
            missed += len(gt_persons)
            continue
        pred_persons = preds[mapping[gt_path]]
        pairs = _pair_persons(gt_persons, pred_persons)
        missed += len(gt_persons) - len(pairs)
        for g, p in pairs:
            labelled = gt_persons[g, :, 2] > 0
            diff = np.abs(gt_persons[g, labelled, :2] - pred_persons[p, labelled, :2])
            dx.extend(diff[:, 0])
            dy.extend(diff[:, 1])
    dx_a, dy_a = np.asarray(dx), np.asarray(dy)
    nan = float("nan")
    return {
        "l1": float((dx_a + dy_a).mean()) if dx else nan,
        "l2": float(np.hypot(dx_a, dy_a).mean()) if dx else nan,
        "mae": float(np.concatenate([dx_a, dy_a]).mean()) if dx else nan,
        "keypoints_scored": float(len(dx)),
        "gt_persons": float(total),
        "missed_persons": float(missed),
        **{f"images_matched_{k}": float(v) for k, v in how.items()},
    }
