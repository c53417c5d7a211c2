"""Output records of the chain: Kneron-style JSON, COCO keypoint results, atomic writes, drawing.

Record per image (Kneron's end-to-end format, extended with the boxes)::

    {"img_path": "...", "lmk_coco_body_17pts": [[[x, y, score] x 17] per person],
     "bbox": [[l, t, w, h, score] per person, same order]}
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from litehrnet.evaluation import people_to_coco_results
from litehrnet.keypoints import COCO_BODY_17

from .solution import PoseResult


def make_record(img_path: str, result: PoseResult) -> dict[str, Any]:
    return {
        "img_path": img_path,
        "lmk_coco_body_17pts": np.round(result.keypoints_nk3.astype(np.float64), 3).tolist(),
        "bbox": np.round(result.bboxes_ltwhs.astype(np.float64), 3).tolist(),
    }


def write_json_atomic(obj: Any, path: str | Path) -> None:
    """Write JSON to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as fh:
            json.dump(obj, fh)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def coco_image_id(img_path: str) -> int | None:
    """COCO image id from the file name: ``000000000139.jpg`` -> 139, ``COCO_val2014_000000000139.jpg`` -> 139.

    The stem must be all digits, or end in ``_<digits>``; other names have no id (``None``).
    """
    stem = Path(img_path.split("#")[0]).stem
    match = re.fullmatch(r"(?:.*_)?(\d+)", stem)
    return int(match.group(1)) if match else None


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


def coco_results(records: list[dict[str, Any]], nms: str = "oks") -> list[dict[str, Any]]:
    """COCO keypoint results of the records, image ids from the file names (:func:`coco_image_id`).

    Rescored (box score x mean keypoint score above 0.2) and OKS-NMSed per image exactly as the
    evaluation package does for the top-down test (:func:`litehrnet.evaluation.people_to_coco_results`).
    """
    people, _ = records_to_people(records, coco_image_id)
    return people_to_coco_results(people, nms=nms)


def draw_result(img_bgr: np.ndarray, result: PoseResult, kpt_thres: float = 0.3) -> np.ndarray:
    """Boxes (green), skeleton limbs (orange) and keypoints (red) drawn on a copy of the image."""
    canvas = img_bgr.copy()
    thick = max(1, round(max(canvas.shape[:2]) / 400))
    skeleton = COCO_BODY_17.skeleton if result.keypoints_nk3.shape[1] == COCO_BODY_17.num_keypoints else ()
    for box, kpts in zip(result.bboxes_ltwhs, result.keypoints_nk3):
        l, t, w, h = (int(round(v)) for v in box[:4])
        cv2.rectangle(canvas, (l, t), (l + w, t + h), (0, 200, 0), thick)
        cv2.putText(canvas, f"{box[4]:.2f}", (l, max(t - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, (0, 200, 0), thick)
        for a, b in skeleton:
            if kpts[a, 2] > kpt_thres and kpts[b, 2] > kpt_thres:
                pa, pb = tuple(int(round(v)) for v in kpts[a, :2]), tuple(int(round(v)) for v in kpts[b, :2])
                cv2.line(canvas, pa, pb, (0, 140, 255), thick)
        for x, y, s in kpts:
            if s > kpt_thres:
                cv2.circle(canvas, (int(round(x)), int(round(y))), thick + 1, (0, 0, 255), -1)
    return canvas


def write_image_atomic(img_bgr: np.ndarray, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix or ".png", img_bgr)
    if not ok:
        raise ValueError(f"{path}: cannot encode an image with this extension; use .png or .jpg")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)
