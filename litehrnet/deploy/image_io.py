"""Robust input reading for the deploy scripts: images, folders, list files and videos.

Every input item becomes ``(img_path, img_bgr | None, reason)``: readable images come back as
8-bit 3-channel BGR whatever they were on disk (grayscale, alpha, 16-bit), and anything
unreadable (missing, a folder, a dangling link, empty, truncated, not an image) comes back with
``None`` and a one-line reason, so a batch never stops on one bad file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from prepostprocess.image_io import ImageLoadError, decode_image_bgr

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


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


def iter_video(path: Path) -> Iterator[tuple[str, np.ndarray | None, str]]:
    """Frames of a video as ``("<video>#<frame:06d>", img_bgr, "")``; an unopenable video is one skipped item."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        yield str(path), None, "cannot open video"
        return
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield f"{path}#{index:06d}", frame, ""  # OpenCV video frames are uint8 BGR
            index += 1
    finally:
        capture.release()
    if index == 0:
        yield str(path), None, "video has no readable frames"


def iter_inputs(spec: str | Path) -> Iterator[tuple[str, np.ndarray | None, str]]:
    """Items of a folder (sorted, hidden files ignored), a ``.txt`` list, a video or a single image."""
    spec = Path(spec)
    if spec.is_dir():
        for entry in sorted(p for p in spec.iterdir() if not p.name.startswith(".")):
            yield (str(entry), *read_image(entry))
    elif spec.suffix.lower() == ".txt" and spec.is_file():
        for recorded, candidate in _list_file_entries(spec):
            yield (recorded, *read_image(candidate))
    elif spec.suffix.lower() in VIDEO_SUFFIXES and spec.is_file():
        yield from iter_video(spec)
    else:
        yield (str(spec), *read_image(spec))


def count_inputs(spec: str | Path) -> int | None:
    """Number of items for the progress bar (``None`` for videos without a frame count)."""
    spec = Path(spec)
    if spec.is_dir():
        return sum(1 for p in spec.iterdir() if not p.name.startswith("."))
    if spec.suffix.lower() == ".txt" and spec.is_file():
        return sum(1 for _ in _list_file_entries(spec))
    if spec.suffix.lower() in VIDEO_SUFFIXES and spec.is_file():
        capture = cv2.VideoCapture(str(spec))
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
        capture.release()
        return frames or None
    return 1
