"""The one drawing module: boxes, skeletons, track IDs and frames/s on images and videos.

``inference.py --vis`` and ``inference_e2e.py --vis-out`` both draw with :func:`draw_poses`.
Keypoints whose score is below ``kpt_thr`` are not drawn, nor limbs touching them. Without track
IDs everything is drawn in fixed colours (boxes green, limbs orange, keypoints red); with track
IDs each person gets the colour of its ID (same person, same colour across frames) and its box is
labelled ``#ID score``. Everything is OpenCV drawing on a copy: no window, works headless.

:class:`VisWriter` writes rendered frames to a video file (``.mp4``/``.avi``/...) or to a folder of
PNGs; the video goes to a temporary file that replaces the target only when complete.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from litehrnet.keypoints import COCO_BODY_17

from .inputs import VIDEO_SUFFIXES

BOX_BGR, LIMB_BGR, KEYPOINT_BGR = (0, 200, 0), (0, 140, 255), (0, 0, 255)
VIDEO_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


def track_colour(track_id: int) -> tuple[int, int, int]:
    """A saturated BGR colour per ID (golden-ratio hue steps, so neighbours differ)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 180)
    bgr = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(c) for c in bgr)


def _pt(xy) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def draw_poses(img_bgr: np.ndarray, bboxes_xywhs: np.ndarray, keypoints_nk3: np.ndarray, kpt_thr: float = 0.3,
               track_ids: np.ndarray | None = None, fps: float | None = None) -> np.ndarray:
    """Boxes, skeleton limbs and keypoints (and track IDs, frames/s) drawn on a copy of the image."""
    canvas = img_bgr.copy()
    thick = max(1, round(max(canvas.shape[:2]) / 400))
    font = 0.4 * thick
    skeleton = COCO_BODY_17.skeleton if keypoints_nk3.shape[-2:-1] == (COCO_BODY_17.num_keypoints,) else ()
    for i, (box, kpts) in enumerate(zip(bboxes_xywhs, keypoints_nk3)):
        tid = None if track_ids is None else int(track_ids[i])
        box_c, limb_c, kpt_c = (BOX_BGR, LIMB_BGR, KEYPOINT_BGR) if tid is None else (track_colour(tid),) * 3
        l, t, w, h = (float(v) for v in box[:4])
        cv2.rectangle(canvas, _pt((l, t)), _pt((l + w, t + h)), box_c, thick)
        label = f"{box[4]:.2f}" if tid is None else f"#{tid} {box[4]:.2f}"
        cv2.putText(canvas, label, (int(round(l)), max(int(round(t)) - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, font,
                    box_c, thick)
        for a, b in skeleton:
            if kpts[a, 2] >= kpt_thr and kpts[b, 2] >= kpt_thr:
                cv2.line(canvas, _pt(kpts[a]), _pt(kpts[b]), limb_c, thick)
        for x, y, s in kpts:
            if s >= kpt_thr:
                cv2.circle(canvas, _pt((x, y)), thick + 1, kpt_c if tid is None else (255, 255, 255), -1)
                if tid is not None:
                    cv2.circle(canvas, _pt((x, y)), thick + 1, kpt_c, 1)
    note = below_threshold_note(keypoints_nk3, kpt_thr)
    if note:  # say why nothing is drawn instead of an empty-looking picture
        org = (5, canvas.shape[0] - 8)
        cv2.putText(canvas, note, org, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), thick + 2)
        cv2.putText(canvas, note, org, cv2.FONT_HERSHEY_SIMPLEX, font, (0, 255, 255), thick)
    if fps is not None:
        text = f"{fps:.1f} frames/s"
        org = (5, 5 + int(round(20 * font)))
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font * 1.2, (0, 0, 0), thick + 2)
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font * 1.2, (255, 255, 255), thick)
    return canvas


def below_threshold_note(keypoints_nk3: np.ndarray, kpt_thr: float) -> str | None:
    """A short note when people were found but every keypoint scores below ``kpt_thr`` (nothing is
    drawn: typically random or barely-trained weights), else ``None``."""
    scores = np.asarray(keypoints_nk3, np.float64)[..., 2].ravel()
    if scores.size == 0 or np.nanmax(scores, initial=-np.inf) >= kpt_thr:
        return None
    return f"all keypoint scores < {kpt_thr:g} (max {np.nanmax(scores, initial=0.0):.2f}): nothing drawn"


def draw_result(img_bgr: np.ndarray, result, kpt_thr: float = 0.3, track_ids: np.ndarray | None = None,
                fps: float | None = None) -> np.ndarray:
    """:func:`draw_poses` of a :class:`~litehrnet.deploy.solution.PoseResult`."""
    return draw_poses(img_bgr, result.bboxes_xywhs, result.keypoints_nk3, kpt_thr, track_ids, fps)


def write_image_atomic(img_bgr: np.ndarray, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(path.suffix or ".png", img_bgr)
    if not ok:
        raise ValueError(f"{path}: cannot encode an image with this extension; use .png or .jpg")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)


class VisWriter:
    """Rendered frames to ``path``: a video when it ends in a video suffix, else a folder of PNGs.

    Video: codec from the suffix (``.mp4`` mp4v, ``.avi`` MJPG), size from the first frame, written
    to a hidden temporary file beside the target and moved into place by :meth:`close`. Folder:
    one ``<frame name>.png`` per frame (the ``#000123`` frame number or the image file name).
    """

    def __init__(self, path: str | Path, fps: float = 25.0) -> None:
        self.path = Path(path)
        self.fps = fps if fps and fps > 0 else 25.0
        self.is_video = self.path.suffix.lower() in VIDEO_SUFFIXES
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None
        self._tmp = self.path.with_name(f".{self.path.stem}.tmp{os.getpid()}{self.path.suffix}")
        if self.is_video and self.path.suffix.lower() not in VIDEO_FOURCC:
            raise ValueError(f"{self.path}: cannot write {self.path.suffix} videos; use .mp4 or .avi, or a folder")
        if self.is_video and self.path.is_dir():
            raise ValueError(f"{self.path}: is a folder; give a video file name or a folder without a video suffix")
        if not self.is_video and self.path.exists() and not self.path.is_dir():
            raise ValueError(f"{self.path}: exists and is not a folder; give out.mp4 or a folder for PNG frames")

    def write(self, canvas_bgr: np.ndarray, img_path: str) -> None:
        if not self.is_video:
            self.path.mkdir(parents=True, exist_ok=True)
            name = img_path.rsplit("#", 1)[-1] if "#" in img_path else Path(img_path).stem
            write_image_atomic(canvas_bgr, self.path / f"{name}.png")
        else:
            if self._writer is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._size_wh = (canvas_bgr.shape[1], canvas_bgr.shape[0])
                fourcc = cv2.VideoWriter_fourcc(*VIDEO_FOURCC[self.path.suffix.lower()])
                self._writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, self._size_wh)
                if not self._writer.isOpened():
                    raise ValueError(f"{self.path}: OpenCV cannot write this video; try .avi or a PNG folder")
            if (canvas_bgr.shape[1], canvas_bgr.shape[0]) != self._size_wh:  # a video has one frame size
                canvas_bgr = cv2.resize(canvas_bgr, self._size_wh, interpolation=cv2.INTER_AREA)
            self._writer.write(canvas_bgr)
        self.frames += 1

    def close(self) -> None:
        """Finish the video and move it into place (nothing to do for a PNG folder)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            os.replace(self._tmp, self.path)

    def abandon(self) -> None:
        """Stop without replacing the target (an interrupted run keeps any previous video intact)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
            self._tmp.unlink(missing_ok=True)
