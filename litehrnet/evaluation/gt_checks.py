"""Which COCO ground-truth annotations are usable: one rule for training, ``test.py`` and ``eval_e2e.py``.

An annotation is *invalid* (skipped, counted and named, never scored or trained on) when:

* a field is missing: ``image_id`` and ``bbox`` always, ``keypoints`` for non-crowd people,
  ``area`` when ``need_area`` (pycocotools' evaluation reads it);
* ``bbox`` is not four finite numbers, or its width or height is negative;
* ``keypoints`` is not a flat list of finite numbers in ``[x, y, v]`` triples (of ``num_keypoints``
  triples when given), or a visibility ``v`` is negative;
* ``area`` or ``num_keypoints`` is present but not a finite number >= 0.

Why it matters: pycocotools compares OKS values with ``<``; a NaN OKS (from a NaN keypoint or area)
is never "below the threshold", so any prediction *matches* that person and an untrained model's
AP rises (measured 0.000 -> 0.083). Zero-size boxes and people without labelled keypoints are not
invalid: the usual filters (``litehrnet/data/records.py``) drop them as before.
"""

from __future__ import annotations

import math
import os
import sys
from numbers import Real
from typing import Iterable

MAX_NAMED = 5  # annotation ids named in the one-line report


def _finite_numbers(values, n: int | None = None) -> bool:
    if not isinstance(values, (list, tuple)) or (n is not None and len(values) != n):
        return False
    return all(isinstance(v, Real) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _finite_nonneg(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def annotation_problem(ann, num_keypoints: int | None = None, need_area: bool = False) -> str | None:
    """Why ``ann`` cannot be used as ground truth (rules in the module docstring), or ``None``."""
    if not isinstance(ann, dict):
        return "not a JSON object"
    crowd = bool(ann.get("iscrowd", 0))
    required = ("image_id", "bbox") + (() if crowd else ("keypoints",)) + (("area",) if need_area else ())
    missing = [key for key in required if key not in ann]
    if missing:
        return f"no '{missing[0]}' field"
    if not _finite_numbers(ann["bbox"], 4):
        return "bbox is not 4 finite numbers"
    if ann["bbox"][2] < 0 or ann["bbox"][3] < 0:
        return "bbox has a negative width or height"
    if "keypoints" in ann:
        kps = ann["keypoints"]
        if not _finite_numbers(kps) or len(kps) % 3:
            return "keypoints are not finite [x, y, v] triples (NaN, inf or not numbers)"
        if num_keypoints is not None and len(kps) != 3 * num_keypoints:
            return f"{len(kps) // 3} keypoints, expected {num_keypoints}"
        if any(v < 0 for v in kps[2::3]):
            return "a keypoint visibility is negative"
    for key in ("area", "num_keypoints"):
        if key in ann and not _finite_nonneg(ann[key]):
            return f"{key} is not a finite number >= 0"
    return None


def detection_problem(det) -> str | None:
    """Why a COCO detection result ``{"image_id", "bbox", "score"}`` cannot be used as a person box, or ``None``."""
    if not isinstance(det, dict):
        return "not a JSON object"
    if not _finite_numbers(det.get("bbox"), 4):
        return "bbox is not 4 finite numbers"
    if det["bbox"][2] <= 0 or det["bbox"][3] <= 0:
        return "bbox has no area (width or height <= 0)"
    if not _finite_numbers([det.get("score", 1.0)]):
        return "score is not a finite number"
    return None


def split_annotations(anns: Iterable, num_keypoints: int | None = None,
                      need_area: bool = False) -> tuple[list, list[tuple[object, str]]]:
    """``(valid annotations, [(annotation id or index, reason), ...])``."""
    valid, invalid = [], []
    for i, ann in enumerate(anns):
        problem = annotation_problem(ann, num_keypoints, need_area)
        if problem is None:
            valid.append(ann)
        else:
            ann_id = ann.get("id") if isinstance(ann, dict) and "id" in ann else f"#{i}"
            invalid.append((ann_id, problem))
    return valid, invalid


def describe_invalid(source: str | os.PathLike, invalid: list[tuple[object, str]],
                     what: str = "ground-truth annotation") -> str:
    """One line: the file, the count and the first few annotation ids (``#i``: list index) with their reason."""
    named = "; ".join(f"id {ann_id}: {reason}" for ann_id, reason in invalid[:MAX_NAMED])
    more = f"; ... {len(invalid) - MAX_NAMED} more" if len(invalid) > MAX_NAMED else ""
    return (f"{source}: skipped {len(invalid)} invalid {what}(s) ({named}{more}); "
            "fix or remove them in the file")


_reported: set[tuple[str, str, int]] = set()


def report_invalid(source: str | os.PathLike, invalid: list[tuple[object, str]],
                   what: str = "ground-truth annotation") -> None:
    """Print :func:`describe_invalid` on stderr when anything was skipped (once per file and process:
    the training set, the validation loader and the evaluator read the same file)."""
    key = (os.path.abspath(source), what, len(invalid))
    if invalid and key not in _reported:
        _reported.add(key)
        print(f"warning: {describe_invalid(source, invalid, what)}", file=sys.stderr)
