"""Output records of the chain: Kneron-style JSON, COCO keypoint results, atomic writes, resume log.

Record per image (Kneron's end-to-end format, extended with the boxes)::

    {"img_path": "...", "lmk_coco_body_17pts": [[[x, y, score] x 17] per person],
     "bbox": [[l, t, w, h, score] per person, same order]}

Frames of a video, camera or stream add ``"frame_index"`` (0-based) and ``"timestamp_ms"``; with
tracking every record adds ``"track_id": [id per person, same order]``.

:class:`ResultLog` is the side file that makes a batch resumable: every record is appended to
``<save-path>.partial.jsonl`` (JSON Lines, flushed per image) as soon as it exists, so a killed
run keeps everything it computed and ``--resume`` continues after the last complete line.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from litehrnet.evaluation import people_to_coco_results
from litehrnet.evaluation.scoring import records_to_people

from .solution import PoseResult


def make_record(img_path: str, result: PoseResult, frame_index: int | None = None, timestamp_ms: float | None = None,
                track_ids: np.ndarray | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "img_path": img_path,
        "lmk_coco_body_17pts": np.round(result.keypoints_nk3.astype(np.float64), 3).tolist(),
        "bbox": np.round(result.bboxes_xywhs.astype(np.float64), 3).tolist(),
    }
    if frame_index is not None:
        record["frame_index"] = int(frame_index)
        record["timestamp_ms"] = None if timestamp_ms is None else round(float(timestamp_ms), 3)
    if track_ids is not None:
        record["track_id"] = [int(t) for t in track_ids]
    return record


def write_json_atomic(obj: Any, path: str | Path) -> None:
    """Write JSON to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "w") as fh:
            json.dump(obj, fh, allow_nan=False)  # strict JSON: NaN/Infinity are refused, never written
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


def coco_results(records: list[dict[str, Any]], nms: str = "oks") -> list[dict[str, Any]]:
    """COCO keypoint results of the records, image ids from the file names (:func:`coco_image_id`).

    Rescored (box score x mean keypoint score above 0.2) and OKS-NMSed per image exactly as the
    evaluation package does for the top-down test (:func:`litehrnet.evaluation.people_to_coco_results`).
    """
    people, _ = records_to_people(records, coco_image_id)
    return people_to_coco_results(people, nms=nms)


class ResumeError(ValueError):
    """The side file of an interrupted run cannot be used as asked (message: file, problem, fix)."""


def partial_path(save_path: str | Path) -> Path:
    """Where the results of a run on its way to ``save_path`` accumulate."""
    save_path = Path(save_path)
    return save_path.with_name(save_path.name + ".partial.jsonl")


class ResultLog:
    """Append-only JSON Lines side file of a batch run (one line per input, flushed at once).

    Line 1 is ``{"header": {...}}`` (what the run was started with); then one line per processed
    input: ``{"record": {...}}`` or ``{"skipped": {"img_path", "reason"}}``, with ``"state"``
    (the video chain's temporal state after that frame) when tracking. A line is written in one
    piece and flushed before the next input starts, so a killed run loses at most the input in
    flight; a torn last line (killed mid-write) is dropped on resume.
    """

    def __init__(self, path: str | Path, header: dict[str, Any], resume: bool) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self.skipped: list[dict[str, Any]] = []
        self.done: list[str] = []  # img_path of every logged input, in input order
        self.state: dict[str, Any] | None = None
        self.resumed = 0
        if self.path.exists() and not resume:
            raise ResumeError(f"{self.path}: results of an interrupted run are here; add --resume to continue it, "
                              "or delete the file to start again")
        if resume and self.path.exists():
            self._load(header)
            self._fh = open(self.path, "a", encoding="utf-8")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "w", encoding="utf-8")
            self._write({"header": header})

    def _load(self, header: dict[str, Any]) -> None:
        text = self.path.read_text(encoding="utf-8")
        lines, good_chars = [], 0
        for line in text.splitlines(keepends=True):
            if not line.endswith("\n"):
                break  # torn last line: the input it belonged to is redone
            try:
                lines.append(json.loads(line))
            except ValueError:
                break
            good_chars += len(line.encode("utf-8"))
        if good_chars < len(text.encode("utf-8")):
            with open(self.path, "r+b") as fh:
                fh.truncate(good_chars)
        if not lines or "header" not in lines[0]:
            raise ResumeError(f"{self.path}: not a results side file of this tool; delete it to start again")
        if lines[0]["header"] != header:
            old = lines[0]["header"]
            diff = sorted(k for k in set(old) | set(header) if old.get(k) != header.get(k))
            raise ResumeError(f"{self.path}: was written with other settings ({', '.join(diff)} differ); resume with "
                              "the same command line, or delete the file to start again")
        for entry in lines[1:]:
            if "record" in entry:
                self.records.append(entry["record"])
                self.done.append(entry["record"]["img_path"])
            else:
                self.skipped.append(entry["skipped"])
                self.done.append(entry["skipped"]["img_path"])
            self.state = entry.get("state", self.state)
        self.resumed = len(lines) - 1

    def _write(self, entry: dict[str, Any]) -> None:
        self._fh.write(json.dumps(entry, allow_nan=False) + "\n")
        self._fh.flush()

    def add_record(self, record: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        self._write({"record": record} if state is None else {"record": record, "state": state})
        self.records.append(record)

    def add_skipped(self, img_path: str, reason: str, state: dict[str, Any] | None = None) -> None:
        item = {"img_path": img_path, "reason": reason}
        self._write({"skipped": item} if state is None else {"skipped": item, "state": state})
        self.skipped.append(item)

    def close(self) -> None:
        self._fh.close()

    def finish(self) -> None:
        """The final outputs are written: the side file has served its purpose."""
        self.close()
        self.path.unlink(missing_ok=True)
