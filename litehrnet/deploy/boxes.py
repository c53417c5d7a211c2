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

Boxes are validated as they are read (:func:`split_valid_boxes`): non-finite values, empty boxes
(width or height <= 0) and absurd ones (a side or corner beyond :data:`MAX_BOX_PX`) are skipped, and
one line on stderr gives the count and the first few with their reason. After a run,
:meth:`BoxTable.unmatched_keys` lists the file's keys that matched no input image
(:meth:`BoxTable.report_unmatched` prints the counts).
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from litehrnet.evaluation.gt_checks import report_invalid, split_annotations
from prepostprocess.geometry import clip_bbox_xywh_coco

from .params import ParamsError


MAX_BOX_PX = 1e5  # larger than any camera frame; a box beyond this is a unit or parsing error
MAX_NAMED = 3


def box_problem(box_xywhs) -> str | None:
    """Why a ``[l, t, w, h, score]`` box cannot be cropped, or ``None``."""
    box = np.asarray(box_xywhs, np.float64)
    if not np.isfinite(box).all():
        return "non-finite value (NaN or inf)"
    if box[2] <= 0 or box[3] <= 0:
        return "empty box (width or height <= 0)"
    if np.abs(box[:4]).max() > MAX_BOX_PX:
        return f"absurd size or position (beyond {MAX_BOX_PX:g} px)"
    return None


def split_valid_boxes(boxes_n5: np.ndarray) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """``(valid boxes (M, 5) float32, [(row index, reason), ...])`` for an ``(N, 5)`` array."""
    boxes_n5 = np.asarray(boxes_n5, np.float64).reshape(-1, 5)
    problems = [(i, box_problem(b)) for i, b in enumerate(boxes_n5)]
    bad = [(i, p) for i, p in problems if p is not None]
    keep = np.array([p is None for _, p in problems], bool)
    return boxes_n5[keep].astype(np.float32).reshape(-1, 5), bad


def _as_boxes(rows: list, source: str) -> np.ndarray:
    out = []
    if not isinstance(rows, (list, tuple)):
        raise ParamsError(f"{source}: boxes of an image must be a list of [l, t, w, h(, score)], got {rows!r}")
    for row in rows:
        if not isinstance(row, (list, tuple)) or len(row) not in (4, 5):
            raise ParamsError(f"{source}: each box must be [l, t, w, h] or [l, t, w, h, score], got {row!r}")
        try:
            out.append([*map(float, row[:4]), float(row[4]) if len(row) == 5 else 1.0])
        except (TypeError, ValueError):
            raise ParamsError(f"{source}: box values must be numbers, got {row!r}") from None
    return np.asarray(out, np.float64).reshape(-1, 5)


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
        self.path = path
        self.skipped = self._drop_invalid()
        self._used: set[str | int] = set()
        if self.skipped:
            named = "; ".join(f"{key!s} box {i}: {why}" for key, i, why in self.skipped[:MAX_NAMED])
            more = f"; ... {len(self.skipped) - MAX_NAMED} more" if len(self.skipped) > MAX_NAMED else ""
            print(f"warning: {path}: skipped {len(self.skipped)} invalid box(es) ({named}{more})", file=sys.stderr)

    def _drop_invalid(self) -> list[tuple[str | int, int, str]]:
        """Keep only valid boxes per key; returns ``(key, row, reason)`` of the skipped ones
        (a key that aliases another's array, e.g. the file name, is counted once)."""
        skipped, cleaned = [], {}
        for key, boxes in self.by_key.items():
            if id(boxes) not in cleaned:
                kept, bad = split_valid_boxes(boxes)
                cleaned[id(boxes)] = kept
                skipped += [(key, i, why) for i, why in bad]
            self.by_key[key] = cleaned[id(boxes)]
        return skipped

    @staticmethod
    def _from_coco_annotations(data: dict, source: str) -> dict[str | int, np.ndarray]:
        images = {img["id"]: img for img in data["images"]}
        grouped: dict[str | int, list] = {img["file_name"]: [] for img in images.values()}
        valid, invalid = split_annotations(data["annotations"])  # the evaluation's rule
        report_invalid(source, invalid)
        for ann in valid:
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
        from .records import coco_image_id  # here: records -> solution -> boxes would be an import cycle

        for key in (img_path, Path(img_path).name, coco_image_id(img_path)):
            if key is not None and key in self.by_key:
                self._used.add(key)
                return self.by_key[key]
        return np.zeros((0, 5), np.float32)

    def unmatched_keys(self) -> list[str | int]:
        """Keys with boxes that no :meth:`lookup` has matched so far (file-name aliases counted once)."""
        used_arrays = {id(self.by_key[k]) for k in self._used}
        seen, out = set(), []
        for key, boxes in self.by_key.items():
            if len(boxes) and id(boxes) not in used_arrays and id(boxes) not in seen:
                seen.add(id(boxes))
                out.append(key)
        return out

    def report_missing(self, img_path: str) -> bool:
        """One image: warn on stderr when no key of the file matches ``img_path``; returns True if it warned."""
        from .records import coco_image_id

        if any(key in self.by_key for key in (img_path, Path(img_path).name, coco_image_id(img_path))):
            return False
        keys = [k for k, b in self.by_key.items() if len(b)][:MAX_NAMED]
        print(f"warning: {self.path}: no key matches {img_path} (keys are image paths, file names or COCO "
              f"image ids, e.g. {', '.join(repr(k) for k in keys)}); no person was cropped", file=sys.stderr)
        return True

    def report_unmatched(self, num_inputs: int) -> int:
        """Warn on stderr when keys of the file matched none of the ``num_inputs`` images; returns their count."""
        unmatched = self.unmatched_keys()
        total = len({id(b) for b in self.by_key.values() if len(b)})
        if unmatched:
            example = ", ".join(repr(k) for k in unmatched[:MAX_NAMED])
            hint = ("no key matched any input: keys must be the image paths as given, their file names, "
                    "or COCO image ids" if len(unmatched) == total else "their boxes were not used")
            print(f"warning: {self.path}: {len(unmatched)} of {total} image key(s) matched none of the "
                  f"{num_inputs} input image(s) (e.g. {example}); {hint}", file=sys.stderr)
        return len(unmatched)
