"""The chain: detector (or given boxes) -> affine crops -> pose network, with per-stage timings.

Stages timed: ``detector`` (letterbox, ONNX, decode, NMS), ``crop`` (affine warp + channel order +
normalisation: the top-down preprocessing), ``pose`` (ONNX runs, flip test included), ``decode``
(heatmaps -> image keypoints).

``TopDownSolution(detector, cropper, pose)(img_bgr)`` returns a :class:`PoseResult` holding the
person boxes ``[l, t, w, h, score]`` and keypoints ``(N, K, 3)``. ``detector=None`` is the
detector-free mode: pass ``bboxes_ltwh`` explicitly, or get the whole image as one box.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .affine_runner import AffineCropRunner
from .base import RunnerError
from .pose_runner import PoseRunner
from .yolov5_runner import YoloV5Runner

STAGES = ("detector", "crop", "pose", "decode")


@dataclass
class PoseResult:
    bboxes_ltwhs: np.ndarray  # (N, 5) float32: l, t, w, h, score
    keypoints_nk3: np.ndarray  # (N, K, 3) float32: x, y, score in image pixels


@dataclass
class StageTimer:
    """Accumulated wall time per stage (milliseconds) and counts of images and persons."""

    total_ms: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    images: int = 0
    persons: int = 0

    def add(self, stage: str, start_s: float) -> float:
        now = time.perf_counter()
        self.total_ms[stage] += (now - start_s) * 1000.0
        return now


def whole_image_box(img_hw: tuple[int, int]) -> np.ndarray:
    """Detector-free default: one person box covering the image, score 1."""
    return np.array([[0.0, 0.0, float(img_hw[1]), float(img_hw[0]), 1.0]], np.float32)


class TopDownSolution:
    """Detector -> affine crop -> pose, in ~15 lines of logic."""

    def __init__(self, detector: YoloV5Runner | None, cropper: AffineCropRunner, pose: PoseRunner) -> None:
        if cropper.input_hw != pose.input_hw:
            raise RunnerError(f"affine crop size {cropper.input_hw} (h, w) differs from the pose input {pose.input_hw}; "
                              "make input_w/input_h equal in the two YAML files")
        self.detector, self.cropper, self.pose = detector, cropper, pose
        self.timer = StageTimer()

    @classmethod
    def from_yaml(cls, yolov5_params: str | Path | None, affine_params: str | Path, pose_params: str | Path,
                  num_threads: int = 1) -> "TopDownSolution":
        detector = YoloV5Runner.from_yaml(yolov5_params, num_threads) if yolov5_params else None
        return cls(detector, AffineCropRunner.from_yaml(affine_params), PoseRunner.from_yaml(pose_params, num_threads))

    def detect(self, img_bgr: np.ndarray) -> np.ndarray:
        """``(N, 5)`` person boxes ``l, t, w, h, score`` (whole image when there is no detector)."""
        if self.detector is None:
            return whole_image_box(img_bgr.shape[:2])
        return self.detector(img_bgr)[:, :5]

    def __call__(self, img_bgr: np.ndarray, bboxes_ltwhs: np.ndarray | None = None) -> PoseResult:
        t = time.perf_counter()
        if bboxes_ltwhs is None:
            boxes = self.detect(img_bgr)
        else:
            boxes = np.asarray(bboxes_ltwhs, np.float32).reshape(-1, 5)
        t = self.timer.add("detector", t)
        crops = self.cropper(img_bgr, boxes[:, :4])
        inputs_nchw = self.pose.preprocess(crops.crops_bgr)  # crop stage = the whole top-down preprocessing
        t = self.timer.add("crop", t)
        keypoints = np.zeros((0, self.pose.num_keypoints, 3), np.float32)
        if len(boxes):
            heatmaps = self.pose.heatmaps(inputs_nchw)
            t = self.timer.add("pose", t)
            keypoints = self.pose.postprocess(heatmaps, crops)
        self.timer.add("decode", t)
        self.timer.images += 1
        self.timer.persons += len(boxes)
        return PoseResult(boxes.astype(np.float32), keypoints)
