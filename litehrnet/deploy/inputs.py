"""Inputs of the deploy scripts: an image, a folder, a list file, a video, a camera or a stream.

:func:`open_source` turns what the user typed after ``--img-path`` into an :class:`InputSource`
whose items are :class:`Frame` objects, read lazily one at a time (memory does not grow with the
length of a video):

* a folder (sorted, hidden files ignored), a ``.txt`` list (one path per line, ``#`` comments), or
  a single image: ``img_path`` is the path as found or as written in the list;
* a video file (``.mp4 .avi .mov .mkv .webm .m4v .mpg .mpeg``): ``img_path`` is ``VIDEO#000123``,
  with ``frame_index`` and ``timestamp_ms`` (index / frame rate);
* a camera index (``0``, ``1``, ... when no file of that name exists) or a stream URL (anything
  with ``://``, e.g. ``rtsp://host/stream``): frames as for a video, ``timestamp_ms`` from the
  capture clock (wall clock since the first frame when the backend has none).

Readable images come back as 8-bit 3-channel BGR whatever they were on disk (grayscale, alpha,
16-bit); anything unreadable (missing, a folder, a dangling link, empty, truncated, not an image)
comes back with ``img_bgr=None`` and a one-line reason, so a batch never stops on one bad file.
A video whose container announces more frames than could be decoded (truncated or corrupt) ends
with one such item naming how many frames were not read and from which frame on.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from prepostprocess.image_io import ImageLoadError, decode_image_bgr

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
MAX_CONSECUTIVE_READ_FAILURES = 25  # a corrupt stretch longer than this ends a video early (reported)


@dataclass
class Frame:
    """One input item. ``img_bgr is None`` means unreadable, with ``reason`` saying why."""

    img_path: str
    img_bgr: np.ndarray | None
    reason: str = ""
    frame_index: int | None = None  # video, camera and stream frames only
    timestamp_ms: float | None = None


def read_image(path: str | Path) -> tuple[np.ndarray | None, str]:
    """``(img_bgr, "")`` or ``(None, reason)``; never raises for a bad file.

    Decoding is :func:`prepostprocess.decode_image_bgr`, the same function the training loader
    uses, so the chain sees exactly the pixels training saw (EXIF orientation, gray, alpha, 16-bit).
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        return None, "dangling symbolic link"
    if not path.exists():
        return None, "file not found"
    if path.is_dir():
        return None, "is a folder, not an image"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read file ({exc.strerror or exc})"
    if not data:
        return None, "empty file"
    try:
        img = decode_image_bgr(data, str(path))
    except ImageLoadError as exc:  # message is "<path>: <reason>"; the path is reported separately
        return None, f"not a decodable image ({str(exc).split(': ', 1)[-1]})"
    if img.size == 0:
        return None, "image has zero size"
    return img, ""


def _list_file_entries(list_path: Path) -> Iterator[tuple[str, Path]]:
    """Lines of a list file: the path as written (recorded in the output) and where to read it.

    Relative paths are looked up against the current folder first, then the list file's folder.
    """
    for line in list_path.read_text().splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        candidate = Path(entry)
        if not candidate.is_absolute() and not os.path.lexists(candidate):
            beside = list_path.parent / entry
            candidate = beside if os.path.lexists(beside) else candidate
        yield entry, candidate


def _folder_entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def source_kind(spec: str) -> str:
    """``folder``, ``list``, ``video``, ``camera``, ``stream`` or ``image`` (what ``spec`` names)."""
    path = Path(spec)
    if "://" in spec:
        return "stream"
    if re.fullmatch(r"\d+", spec) and not os.path.lexists(spec):
        return "camera"
    if path.is_dir():
        return "folder"
    if path.suffix.lower() == ".txt" and path.is_file():
        return "list"
    if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
        return "video"
    return "image"


class InputSource:
    """Lazy iterable of :class:`Frame` for one ``--img-path`` value (see the module docstring)."""

    def __init__(self, spec: str | Path) -> None:
        self.spec = str(spec)
        self.kind = source_kind(self.spec)

    @property
    def is_video(self) -> bool:
        """Frames of one timeline (video, camera, stream): records carry frame index and time."""
        return self.kind in ("video", "camera", "stream")

    def count(self) -> int | None:
        """Number of items for a progress bar (``None`` for a camera, a stream or an unknown length)."""
        if self.kind == "folder":
            return len(_folder_entries(Path(self.spec)))
        if self.kind == "list":
            return sum(1 for _ in _list_file_entries(Path(self.spec)))
        if self.kind == "video":
            capture = cv2.VideoCapture(self.spec)
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            capture.release()
            return frames or None
        return None if self.kind in ("camera", "stream") else 1

    def __iter__(self) -> Iterator[Frame]:
        if self.kind == "folder":
            for entry in _folder_entries(Path(self.spec)):
                yield Frame(str(entry), *read_image(entry))
        elif self.kind == "list":
            for recorded, candidate in _list_file_entries(Path(self.spec)):
                yield Frame(recorded, *read_image(candidate))
        elif self.is_video:
            yield from self._capture_frames()
        else:
            yield Frame(self.spec, *read_image(self.spec))

    def _capture_frames(self) -> Iterator[Frame]:
        target = int(self.spec) if self.kind == "camera" else self.spec
        capture = cv2.VideoCapture(target)
        if not capture.isOpened():
            what = {"camera": "cannot open camera", "stream": "cannot open stream"}.get(self.kind, "cannot open video")
            yield Frame(self.spec, None, what)
            return
        try:
            yield from self._read_capture(capture)
        finally:
            capture.release()

    def _read_capture(self, capture: cv2.VideoCapture) -> Iterator[Frame]:
        announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if self.kind == "video" else 0
        fps = capture.get(cv2.CAP_PROP_FPS) if self.kind == "video" else 0.0
        start_s = time.monotonic()
        index = read = failures_in_row = 0
        first_unread: int | None = None
        while True:
            ok, frame = capture.read()
            if not ok or frame is None:
                # A file video announcing more frames may have a corrupt stretch: try on a little.
                if self.kind != "video" or index >= announced or failures_in_row >= MAX_CONSECUTIVE_READ_FAILURES:
                    break
                first_unread = index if first_unread is None else first_unread
                failures_in_row += 1
                index += 1
                continue
            failures_in_row = 0
            if fps > 0:
                stamp_ms = index * 1000.0 / fps
            else:
                pos_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
                stamp_ms = pos_ms if pos_ms > 0 else (time.monotonic() - start_s) * 1000.0
            yield Frame(f"{self.spec}#{index:06d}", frame, "", index, round(stamp_ms, 3))  # uint8 BGR
            index += 1
            read += 1
        if read == 0:
            reason = "video has no readable frames" if self.kind == "video" else "no frames received"
            yield Frame(self.spec, None, reason)
        elif announced > read:
            first = first_unread if first_unread is not None else index
            yield Frame(f"{self.spec}#{first:06d}", None,
                        f"{announced - read} of {announced} announced frames could not be read, from frame {first} on "
                        "(truncated or corrupt video)", first)


def open_source(spec: str | Path) -> InputSource:
    return InputSource(spec)


def iter_inputs(spec: str | Path) -> Iterator[tuple[str, np.ndarray | None, str]]:
    """``(img_path, img_bgr | None, reason)`` for every item of ``spec`` (see :class:`InputSource`)."""
    for frame in InputSource(spec):
        yield frame.img_path, frame.img_bgr, frame.reason


def count_inputs(spec: str | Path) -> int | None:
    """Number of items for the progress bar (``None`` when unknown)."""
    return InputSource(spec).count()
