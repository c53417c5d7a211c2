"""Arguments shared by ``inference.py``, ``inference_e2e.py`` and the benchmarks, and the video options."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from .boxes import BoxTable
from .params import load_params
from .smoothing import KeypointSmoother, OneEuroParams
from .solution import TopDownSolution, VideoChain
from .tracking import PoseTracker

PARAM_FILES = {
    "yolov5_params": "yolov5_init_params.yaml",
    "rsn_affine_params": "rsn_affine_init_params.yaml",
    "lite_hrnet_params": "lite_hrnet_init_params.yaml",
}


def add_chain_arguments(parser: argparse.ArgumentParser, params_dir: Path) -> None:
    """The runner YAML options; defaults are the :data:`PARAM_FILES` in ``params_dir`` (the scripts'
    ``utils/``)."""
    params_dir = Path(params_dir)
    parser.add_argument("--yolov5_params", type=Path, default=params_dir / PARAM_FILES["yolov5_params"],
                        help="detector YAML (default: utils/yolov5_init_params.yaml)")
    parser.add_argument("--rsn_affine_params", type=Path, default=params_dir / PARAM_FILES["rsn_affine_params"],
                        help="affine crop YAML (default: utils/rsn_affine_init_params.yaml)")
    parser.add_argument("--lite_hrnet_params", type=Path, default=params_dir / PARAM_FILES["lite_hrnet_params"],
                        help="pose YAML (default: utils/lite_hrnet_init_params.yaml)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--boxes", type=Path,
                        help="detector-free: person boxes JSON (COCO annotations, COCO detections or {img: boxes})")
    source.add_argument("--whole-image", action="store_true", help="detector-free: one box = the whole image")
    parser.add_argument("--threads", type=int,
                        help="onnxruntime threads per model (default: detector 2, pose 1 per worker; 1 each in the "
                             "pipelined video chain, where the two models run at once)")
    parser.add_argument("--pose-workers", type=int, metavar="N",
                        help="pose sessions running a frame's crops at once, each with --threads threads "
                             "(default: the pose YAML's workers, else 2 on 2+ cores, except 1 in the pipelined "
                             "every-frame video chain, where the detector holds the other core); see docs/inference.md")


def threads_per_model(args: argparse.Namespace) -> int:
    """``--threads``, else 1 when the pipelined chain runs the two models at once, else 2."""
    if args.threads is not None:
        return args.threads
    pipelined = getattr(args, "sequential", True) is False
    return 1 if pipelined else 2


def pose_workers(args: argparse.Namespace) -> int | None:
    """``--pose-workers``, else ``None`` (the pose YAML's ``workers``) when the YAML sets it, else 2 on a
    machine with 2+ cores (images, the sequential video chain, and the pipelined chain with
    ``--det-interval > 1``, whose detector thread is idle most frames; measured in docs/inference.md),
    except 1 in the pipelined every-frame chain, where the detector keeps the other core busy."""
    if args.pose_workers is not None:
        return args.pose_workers
    if load_params(args.lite_hrnet_params, "pose")["workers"] is not None:
        return None
    pipelined_every_frame = getattr(args, "det_interval", 1) <= 1 and getattr(args, "sequential", True) is False
    return 1 if pipelined_every_frame else min(2, os.cpu_count() or 1)


def pose_threads(args: argparse.Namespace, workers: int | None) -> int:
    """``--threads``, else 1 per pose session when several workers share the cores, else the detector's."""
    if args.threads is not None:
        return args.threads
    if workers is None:
        workers = load_params(args.lite_hrnet_params, "pose")["workers"]
    return 1 if workers > 1 else threads_per_model(args)


def solution_from_args(args: argparse.Namespace) -> tuple[TopDownSolution, BoxTable | None]:
    """Build the chain; with ``--boxes`` or ``--whole-image`` the detector YAML is not read."""
    detector_free = args.boxes is not None or args.whole_image
    workers = pose_workers(args)
    solution = TopDownSolution.from_yaml(None if detector_free else args.yolov5_params, args.rsn_affine_params,
                                         args.lite_hrnet_params, threads_per_model(args), workers,
                                         pose_threads(args, workers))
    return solution, (BoxTable(args.boxes) if args.boxes is not None else None)


def run_one(solution: TopDownSolution, boxes: BoxTable | None, img_path: str, img_bgr: np.ndarray):
    """Run the chain on one image with the boxes of ``img_path`` when a box table is given."""
    return solution(img_bgr, boxes.lookup(img_path) if boxes is not None else None)


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Tracking, detector interval, smoothing, pipelining and drawing options (docs/inference.md, Video)."""
    video = parser.add_argument_group("video and sequences")
    video.add_argument("--track", action="store_true",
                       help="give each person a track_id stable across frames (on with --det-interval > 1 or --smooth)")
    video.add_argument("--track-metric", choices=("oks", "iou"), default="oks",
                       help="match people to tracks by pose OKS (default) or box IoU")
    video.add_argument("--track-max-lost", type=int, default=30, metavar="FRAMES",
                       help="frames a lost track keeps its ID for re-identification (default 30)")
    video.add_argument("--det-interval", type=int, default=1, metavar="N",
                       help="run the detector every N frames (and after a track is lost); in between, boxes "
                            "follow the previous keypoints (default 1 = every frame)")
    video.add_argument("--smooth", choices=("none", "one-euro"), default="none",
                       help="temporal smoothing of keypoints per track (parameters: smooth_* in the pose YAML)")
    video.add_argument("--sequential", action="store_true",
                       help="do not overlap the detector of frame t+1 with the pose model of frame t "
                            "(outputs are identical either way)")
    video.add_argument("--vis-out", type=Path,
                       help="draw every frame into a video (out.mp4, out.avi) or a folder of PNGs")
    video.add_argument("--kpt-thr", type=float, default=0.3,
                       help="drawing: keypoints scoring at least this (default 0.3)")


def video_chain_from_args(args: argparse.Namespace, solution: TopDownSolution, boxes: BoxTable | None) -> VideoChain:
    """The per-frame chain with the options of :func:`add_video_arguments`."""
    if args.det_interval < 1:
        raise ValueError(f"--det-interval must be >= 1, got {args.det_interval}")
    tracking = args.track or args.det_interval > 1 or args.smooth != "none"
    tracker = PoseTracker(args.track_metric, max_lost=args.track_max_lost) if tracking else None
    smoother = KeypointSmoother(OneEuroParams.from_pose_params(solution.pose.params)) if args.smooth != "none" else None
    return VideoChain.from_solution(solution, boxes, det_interval=args.det_interval, tracker=tracker, smoother=smoother)
