"""COCO keypoint evaluation: rescoring, OKS-NMS, results JSON, AP/AR through pycocotools.

The top-down test recipe turns per-person predictions into COCO results in three steps:

1. **rescoring**: a person's score = box score x mean of its keypoint scores above
   ``kpt_score_thr`` (0.2); 0 when no keypoint passes;
2. **OKS-NMS** per image (threshold 0.9), areas = padded box areas;
3. **pycocotools** ``COCOeval(iouType="keypoints")`` with the layout's OKS sigmas.

A *person prediction* ("people" below) is a dict with at least ``image_id`` (int), ``keypoints``
(``(K, 3)`` array-like ``[x, y, score]`` in image pixels), ``bbox_score`` (float) and ``area``
(float, px^2; the padded box area ``scale_w * scale_h``). Other keys are ignored.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from litehrnet.evaluation.gt_checks import report_invalid, split_annotations
from litehrnet.evaluation.oks import oks_nms, soft_oks_nms
from litehrnet.keypoints import COCO_BODY_17

COCO_STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
NMS_METHODS = ("oks", "soft_oks", "none")


class EvaluationError(ValueError):
    """Evaluation inputs are missing or inconsistent (message names the file and the fix)."""


def rescore(keypoints_kx3: np.ndarray, bbox_score: float, kpt_score_thr: float = 0.2) -> float:
    """Person score = ``bbox_score`` x mean of the keypoint scores above ``kpt_score_thr`` (0 if none)."""
    scores_k = np.asarray(keypoints_kx3, dtype=np.float64)[:, 2]
    valid = scores_k[scores_k > kpt_score_thr]
    kpt_score = float(valid.mean()) if valid.size else 0.0
    return kpt_score * float(bbox_score)


def _nms_one_image(
    poses_nkx3: np.ndarray, scores_n: np.ndarray, areas_n: np.ndarray,
    sigmas_k: Sequence[float], method: str, thr: float,
) -> tuple[list[int], np.ndarray]:
    if method == "none":
        return list(range(len(scores_n))), scores_n
    if method == "oks":
        keep = oks_nms(poses_nkx3, scores_n, areas_n, sigmas_k, thr)
        return keep, scores_n[keep]
    if method == "soft_oks":
        return soft_oks_nms(poses_nkx3, scores_n, areas_n, sigmas_k, thr)
    raise ValueError(f"unknown nms method {method!r}; choose one of {NMS_METHODS}")


def people_to_coco_results(
    people: Iterable[dict],
    sigmas_k: Sequence[float] = COCO_BODY_17.sigmas,
    kpt_score_thr: float = 0.2,
    nms: str = "oks",
    nms_thr: float = 0.9,
    category_id: int = 1,
) -> list[dict]:
    """Rescore, NMS per image and format as a COCO keypoint results list (plain JSON types)."""
    by_image: dict[int, list[dict]] = defaultdict(list)
    for person in people:
        by_image[int(person["image_id"])].append(person)
    results: list[dict] = []
    for image_id in sorted(by_image):
        group = by_image[image_id]
        poses = np.stack([np.asarray(p["keypoints"], dtype=np.float64) for p in group])
        scores = np.array([rescore(pose, p["bbox_score"], kpt_score_thr) for pose, p in zip(poses, group)])
        areas = np.array([float(p["area"]) for p in group])
        keep, kept_scores = _nms_one_image(poses, scores, areas, sigmas_k, nms, nms_thr)
        for idx, score in zip(keep, kept_scores):
            results.append({
                "image_id": image_id,
                "category_id": category_id,
                "keypoints": [round(float(v), 4) for v in poses[idx].reshape(-1)],
                "score": float(score),
            })
    return results


def write_results_json(results: list[dict], path: str | os.PathLike) -> Path:
    """Write a results list as JSON atomically (tmp file + ``os.replace``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(results, f, allow_nan=False)
    os.replace(tmp, path)
    return path


def load_coco_gt(ann_file: str | os.PathLike):
    """Load a COCO keypoint annotation file with pycocotools (quietly), with a clear error if bad.

    Invalid annotations (NaN/inf, negative sizes, missing fields: :mod:`.gt_checks`) are left out
    and reported in one line on stderr; their ids are kept in ``coco.invalid_annotations``.
    """
    from pycocotools.coco import COCO

    ann_file = Path(ann_file)
    if not ann_file.is_file():
        raise EvaluationError(f"{ann_file}: annotation file not found; set data.val_ann (relative to data.root)")
    try:
        with open(ann_file, "r", encoding="utf-8") as f:
            data = json.load(f)
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise TypeError("top level must be a dict with an 'annotations' list")
        data["annotations"], invalid = split_annotations(data["annotations"], need_area=True)
        coco = COCO()
        coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError) as exc:
        raise EvaluationError(f"{ann_file}: not a COCO annotation file ({exc.__class__.__name__}: {exc})") from None
    report_invalid(ann_file, invalid)
    coco.invalid_annotations = invalid
    return coco


def _read_results(results: list[dict] | str | os.PathLike) -> list[dict]:
    if isinstance(results, (str, os.PathLike)):
        try:
            with open(results, "r", encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            raise EvaluationError(f"{results}: results file not found") from None
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{results}: not valid JSON ({exc}); re-run test.py --out") from None
    return list(results)


def evaluate_coco_keypoints(
    results: list[dict] | str | os.PathLike,
    ann_file,
    sigmas_k: Sequence[float] = COCO_BODY_17.sigmas,
    image_ids: Iterable[int] | None = None,
    verbose: bool = False,
) -> dict[str, float]:
    """COCO keypoint AP/AR (fractions) of ``results`` against ``ann_file`` via pycocotools.

    ``ann_file``: a path or an already loaded ``pycocotools.coco.COCO``. ``image_ids``: restrict the
    evaluation to these images (default: every image of the annotation file). ``verbose`` prints
    pycocotools' summary table. Empty results give all-zero metrics.
    """
    from pycocotools.cocoeval import COCOeval

    coco_gt = ann_file if hasattr(ann_file, "loadRes") else load_coco_gt(ann_file)
    results = _read_results(results)
    if not results:
        return {name: 0.0 for name in COCO_STAT_NAMES}
    unknown = {int(r["image_id"]) for r in results} - set(coco_gt.getImgIds())
    if unknown:
        raise EvaluationError(
            f"results name {len(unknown)} image ids absent from the annotation file "
            f"(e.g. {sorted(unknown)[:3]}); evaluate against the annotation file the predictions came from"
        )
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        coco_dt = coco_gt.loadRes(results)
        coco_eval = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas_k, dtype=np.float64)
        if image_ids is not None:
            coco_eval.params.imgIds = sorted({int(i) for i in image_ids})
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return {name: float(value) for name, value in zip(COCO_STAT_NAMES, coco_eval.stats)}
