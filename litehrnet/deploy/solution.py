"""The chain: detector (or given boxes) -> affine crops -> pose network, with per-stage timings.

Stages timed: ``detector`` (letterbox, ONNX, decode, NMS), ``crop`` (affine warp + channel order +
normalisation: the top-down preprocessing), ``pose`` (ONNX runs, flip test included), ``decode``
(heatmaps -> image keypoints).

``TopDownSolution(detector, cropper, pose)(img_bgr)`` returns a :class:`PoseResult` holding the
person boxes ``[l, t, w, h, score]`` and keypoints ``(N, K, 3)``. ``detector=None`` is the
detector-free mode: pass ``bboxes_xywh`` explicitly, or get the whole image as one box.

:class:`VideoChain` composes the same two stages (``detect``, ``estimate``) with the temporal
parts of a video: detector interval, tracking, smoothing, and the pipelined run.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from .affine_runner import AffineCropRunner
from .base import RunnerError
from .boxes import split_valid_boxes
from .inputs import Frame
from .pose_runner import PoseRunner
from .smoothing import KeypointSmoother
from .tracking import PoseTracker
from .yolov5_runner import YoloV5Runner

if TYPE_CHECKING:
    from .boxes import BoxTable

STAGES = ("detector", "crop", "pose", "decode")


@dataclass
class PoseResult:
    bboxes_xywhs: np.ndarray  # (N, 5) float32: l, t, w, h, score
    keypoints_nk3: np.ndarray  # (N, K, 3) float32: x, y, score in image pixels


@dataclass
class StageTimer:
    """Accumulated wall time per stage (milliseconds) and counts of images and persons."""

    total_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    images: int = 0
    persons: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # the pipelined chain times the detector from its own thread

    def add(self, stage: str, start_s: float) -> float:
        now = time.perf_counter()
        with self._lock:
            self.total_ms[stage] += (now - start_s) * 1000.0
        return now

    def count(self, images: int, persons: int) -> None:
        with self._lock:
            self.images += images
            self.persons += persons


def whole_image_box(img_hw: tuple[int, int]) -> np.ndarray:
    """Detector-free default: one person box covering the image, score 1."""
    return np.array([[0.0, 0.0, float(img_hw[1]), float(img_hw[0]), 1.0]], np.float32)


class TopDownSolution:
    """Detector -> affine crop -> pose, in ~15 lines of logic."""

    def __init__(self, detector: YoloV5Runner | None, cropper: AffineCropRunner, pose: PoseRunner) -> None:
        if cropper.network_input != pose.network_input:
            raise RunnerError(f"the affine cropper makes {cropper.network_input} but the pose model takes "
                              f"{pose.network_input}; build the cropper with pose.network_input")
        self.detector, self.cropper, self.pose = detector, cropper, pose
        self.timer = StageTimer()

    @classmethod
    def from_yaml(cls, yolov5_params: str | Path | None, affine_params: str | Path, pose_params: str | Path,
                  num_threads: int = 1, pose_workers: int | None = None,
                  pose_threads: int | None = None) -> "TopDownSolution":
        """``pose_workers``: pose sessions run at once (default: the pose YAML's ``workers``);
        ``pose_threads``: intra-op threads of each pose session (default ``num_threads``)."""
        detector = YoloV5Runner.from_yaml(yolov5_params, num_threads) if yolov5_params else None
        pose = PoseRunner.from_yaml(pose_params, num_threads if pose_threads is None else pose_threads,
                                    workers=pose_workers)
        return cls(detector, AffineCropRunner.from_yaml(affine_params, pose.network_input), pose)

    def detect(self, img_bgr: np.ndarray) -> np.ndarray:
        """``(N, 5)`` person boxes ``l, t, w, h, score`` (whole image when there is no detector); timed."""
        t = time.perf_counter()
        boxes = whole_image_box(img_bgr.shape[:2]) if self.detector is None else self.detector(img_bgr)[:, :5]
        self.timer.add("detector", t)
        return boxes

    def estimate(self, img_bgr: np.ndarray, bboxes_xywhs: np.ndarray) -> np.ndarray:
        """Keypoints ``(N, K, 3)`` of the people in ``bboxes_xywhs``: crop -> pose -> decode, timed."""
        boxes = np.asarray(bboxes_xywhs, np.float32).reshape(-1, 5)
        t = time.perf_counter()
        keypoints = [self.pose.empty()]
        for crops in self.cropper.chunks(img_bgr, boxes[:, :4], self.pose.chunk_size):  # memory: one chunk
            t = self.timer.add("crop", t)
            heatmaps = self.pose.heatmaps(crops.inputs_nchw)
            t = self.timer.add("pose", t)
            keypoints.append(self.pose.postprocess(heatmaps, crops))
            t = self.timer.add("decode", t)
        self.timer.count(1, len(boxes))
        return np.concatenate(keypoints, 0)

    def __call__(self, img_bgr: np.ndarray, bboxes_xywhs: np.ndarray | None = None) -> PoseResult:
        if bboxes_xywhs is None:
            boxes = self.detect(img_bgr)
        else:
            boxes = np.asarray(bboxes_xywhs, np.float32).reshape(-1, 5)
        boxes, _ = split_valid_boxes(boxes)  # non-finite, empty or absurd boxes are never cropped
        return PoseResult(boxes.astype(np.float32), self.estimate(img_bgr, boxes))


# ---------------------------------------------------------------------------------------------
# Video: detector interval, tracking, smoothing and the pipelined chain.

BOX_MARGIN = 0.09  # person box = keypoint extent + 9% of its longer side per edge (COCO val median: 0.088)
BOX_KPT_THR = 0.3  # keypoints that shape the next frame's box; fewer than BOX_MIN_KEYPOINTS -> track lost
BOX_MIN_KEYPOINTS = 3
BOX_MIN_EXTENT_PX = 4.0  # keypoints spanning less than this (longer side) count as lost
NO_TIMESTAMP_FPS = 30.0  # frame rate assumed for smoothing when frames carry no timestamp (image folders)


def keypoints_to_box(keypoints_k3: np.ndarray, kpt_thr: float = BOX_KPT_THR, margin: float = BOX_MARGIN,
                     min_keypoints: int = BOX_MIN_KEYPOINTS) -> np.ndarray | None:
    """A detector-like person box ``[l, t, w, h]`` around the confident keypoints.

    ``None`` (the person is lost) with fewer than ``min_keypoints`` confident keypoints or when they
    span less than ``BOX_MIN_EXTENT_PX``.

    Keypoints mark joints, not the body's outline (head top, feet and hands lie beyond them), so
    the extent grows by ``margin`` x its longer side on every edge: the median gap between COCO
    ground-truth boxes and their keypoint extent (people with 12+ labelled keypoints in the dev
    set). The affine runner then applies its own ``padding`` as it does to detector boxes.
    """
    confident = keypoints_k3[keypoints_k3[:, 2] >= kpt_thr, :2]
    if len(confident) < max(min_keypoints, 1):
        return None
    lo, hi = confident.min(0), confident.max(0)
    if float((hi - lo).max()) < BOX_MIN_EXTENT_PX:  # collapsed keypoints: no body left to follow
        return None
    grow = margin * float((hi - lo).max())
    return np.array([lo[0] - grow, lo[1] - grow, hi[0] - lo[0] + 2 * grow, hi[1] - lo[1] + 2 * grow], np.float32)


@dataclass
class FrameResult:
    """One frame through the video chain; ``result is None`` when the frame was unreadable or failed."""

    frame: Frame
    result: PoseResult | None
    track_ids: np.ndarray | None = None  # (N,) when tracking
    detected: bool = False  # the detector (or box file) ran on this frame
    error: str = ""


_END = object()


class VideoChain:
    """Frames -> poses with the temporal parts of a video chain (all optional, composable).

    * ``det_interval = N``: the detector runs on frames 0, N, 2N, ... (counting readable frames)
      and on the frame after a followed track was lost (or when nobody is tracked; a track the
      detector itself did not find again is not looked for on the next frame); in between, each
      tracked person's box comes from its keypoints of the previous frame
      (:func:`keypoints_to_box`), and a person whose new pose has fewer than
      ``box_min_keypoints`` keypoints scoring ``box_kpt_thr`` is dropped from that frame as lost.
      People entering the scene are found at the next detector frame. ``N = 1`` detects on every
      frame: exactly the image chain.
    * ``tracker``: a :class:`~litehrnet.deploy.tracking.PoseTracker` giving each person a track ID
      (needed by ``det_interval > 1`` and smoothing, which use one automatically).
    * ``smoother``: :class:`~litehrnet.deploy.smoothing.KeypointSmoother` on the output keypoints
      (the next frame's boxes use the raw keypoints, so smoothing adds no lag to the crops).

    :meth:`run` is sequential, or pipelined (``pipelined=True``): a thread reads the frames and
    runs the detector on the scheduled frames ahead (frame t+1 while the pose model works on frame
    t), through a queue of at most ``queue_size`` frames; detections triggered by a lost track are
    made in order by the main thread, so both modes give identical outputs.
    """

    def __init__(self, detect: Callable[[Frame], np.ndarray], estimate: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 det_interval: int = 1, tracker: PoseTracker | None = None, smoother: KeypointSmoother | None = None,
                 box_min_keypoints: int = BOX_MIN_KEYPOINTS, box_kpt_thr: float = BOX_KPT_THR) -> None:
        if det_interval < 1:
            raise ValueError(f"det_interval must be >= 1, got {det_interval}")
        if tracker is None and (det_interval > 1 or smoother is not None):
            tracker = PoseTracker()
        self.detect, self.estimate = detect, estimate
        self.det_interval, self.tracker, self.smoother = det_interval, tracker, smoother
        self.box_min_keypoints, self.box_kpt_thr = box_min_keypoints, box_kpt_thr
        self.position = 0  # readable frames processed so far
        self.redetect = True  # the next frame must be detected (start, lost track, nobody tracked)

    @classmethod
    def from_solution(cls, solution: TopDownSolution, boxes: "BoxTable | None" = None, **kwargs) -> "VideoChain":
        """The chain's detector (or a box table looked up by ``img_path``) and pose stages."""
        def detect(frame: Frame) -> np.ndarray:
            if boxes is not None:
                return boxes.lookup(frame.img_path)
            return solution.detect(frame.img_bgr)

        return cls(detect, solution.estimate, **kwargs)

    def _follow_box(self, keypoints_k3: np.ndarray) -> np.ndarray | None:
        return keypoints_to_box(keypoints_k3, self.box_kpt_thr, min_keypoints=self.box_min_keypoints)

    def scheduled(self, position: int) -> bool:
        """Whether frame ``position`` is a detector frame by the interval alone."""
        return position % self.det_interval == 0

    def step(self, frame: Frame, detections: np.ndarray | Exception | None = None) -> FrameResult:
        """Process one frame; ``detections`` are the detector's boxes (or its error) when already computed."""
        if frame.img_bgr is None:
            return FrameResult(frame, None, error=frame.reason)
        position = self.position
        self.position += 1  # counted first: a frame that fails still takes its place in the schedule
        detect_now = self.scheduled(position) or self.redetect or self.tracker is None
        known_ids = None
        if isinstance(detections, Exception):  # the reader thread's detector failed on this frame
            raise detections
        if detect_now:
            boxes = np.asarray(self.detect(frame) if detections is None else detections, np.float32).reshape(-1, 5)
        else:
            tracks = [(t, self._follow_box(t.keypoints_k3)) for t in self.tracker.active]
            tracks = [(t, box) for t, box in tracks if box is not None]
            boxes = np.array([[*box, t.bbox_xywhs[4]] for t, box in tracks], np.float32).reshape(-1, 5)
            known_ids = np.array([t.track_id for t, _ in tracks], np.int64)
        keypoints = self.estimate(frame.img_bgr, boxes)
        if known_ids is not None:  # a follower whose pose faded has left its box: lost, not reported
            kept = np.array([self._follow_box(k) is not None for k in keypoints], bool).reshape(-1)
            boxes, keypoints, known_ids = boxes[kept], keypoints[kept], known_ids[kept]
        result = PoseResult(boxes.astype(np.float32), keypoints)
        if self.tracker is None:
            return FrameResult(frame, result, detected=True)
        ids = self.tracker.update(boxes, keypoints, known_ids)
        # A track lost on a followed frame may still be in view: detect on the next frame. One lost on
        # a detector frame was not found by the detector on this very frame: detecting again on the
        # next frame would only repeat that (its ID waits ``max_lost`` frames for the next detection).
        self.redetect = (bool(self.tracker.newly_lost) and not detect_now) or not len(ids)
        if self.smoother is not None:
            stamp = frame.timestamp_ms if frame.timestamp_ms is not None else position * 1000.0 / NO_TIMESTAMP_FPS
            result.keypoints_nk3 = self.smoother(ids, keypoints, stamp)
            self.smoother.keep_only(t.track_id for t in self.tracker.tracks)
        return FrameResult(frame, result, ids, detected=detect_now)

    def _safe_step(self, frame: Frame, detections) -> FrameResult:
        try:
            return self.step(frame, detections)
        except Exception as exc:  # one bad frame must not end the run; reported by the caller
            return FrameResult(frame, None, error=f"processing failed: {type(exc).__name__}: {exc}")

    def run(self, frames: Iterable[Frame], pipelined: bool = False, queue_size: int = 4) -> Iterator[FrameResult]:
        """Results in frame order (see the class docstring for the pipelined mode)."""
        if not pipelined:
            for frame in frames:
                yield self._safe_step(frame, None)
            return
        ready: queue.Queue = queue.Queue(maxsize=queue_size)
        stop = threading.Event()

        def read_and_detect() -> None:
            position = self.position
            try:
                for frame in frames:
                    detections = None
                    if frame.img_bgr is not None:
                        if self.scheduled(position):
                            try:
                                detections = self.detect(frame)
                            except Exception as exc:  # handed to the frame's step, reported there
                                detections = exc
                        position += 1
                    while not stop.is_set():
                        try:
                            ready.put((frame, detections), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                ready.put(_END)
            except BaseException as exc:  # reading failed: end the run with this error
                ready.put(exc)

        worker = threading.Thread(target=read_and_detect, name="detector", daemon=True)
        worker.start()
        try:
            while True:
                item = ready.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield self._safe_step(*item)
        finally:
            stop.set()
            while worker.is_alive():  # unblock a full queue, then let the reader see ``stop``
                try:
                    ready.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()

    def state(self) -> dict:
        """JSON-able temporal state after the last frame (resuming a killed run continues exactly)."""
        return {"position": self.position, "redetect": self.redetect,
                "tracker": self.tracker.state() if self.tracker else None,
                "smoother": self.smoother.state() if self.smoother else None}

    def load_state(self, state: dict) -> None:
        self.position, self.redetect = int(state["position"]), bool(state["redetect"])
        if self.tracker is not None and state.get("tracker"):
            self.tracker.load_state(state["tracker"])
        if self.smoother is not None and state.get("smoother"):
            self.smoother.load_state(state["smoother"])
