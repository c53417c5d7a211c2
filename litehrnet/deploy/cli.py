"""Arguments shared by ``inference.py``, ``inference_e2e.py`` and ``bench/e2e_speed.py``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .boxes import BoxTable
from .solution import TopDownSolution

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PARAMS = {
    "yolov5_params": REPO_ROOT / "utils" / "yolov5_init_params.yaml",
    "rsn_affine_params": REPO_ROOT / "utils" / "rsn_affine_init_params.yaml",
    "lite_hrnet_params": REPO_ROOT / "utils" / "lite_hrnet_init_params.yaml",
}


def add_chain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--yolov5_params", type=Path, default=DEFAULT_PARAMS["yolov5_params"],
                        help="detector YAML (default: utils/yolov5_init_params.yaml)")
    parser.add_argument("--rsn_affine_params", type=Path, default=DEFAULT_PARAMS["rsn_affine_params"],
                        help="affine crop YAML (default: utils/rsn_affine_init_params.yaml)")
    parser.add_argument("--lite_hrnet_params", type=Path, default=DEFAULT_PARAMS["lite_hrnet_params"],
                        help="pose YAML (default: utils/lite_hrnet_init_params.yaml)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--boxes", type=Path,
                        help="detector-free: person boxes JSON (COCO annotations, COCO detections or {img: boxes})")
    source.add_argument("--whole-image", action="store_true", help="detector-free: one box = the whole image")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads per model (default 2)")


def solution_from_args(args: argparse.Namespace) -> tuple[TopDownSolution, BoxTable | None]:
    """Build the chain; with ``--boxes`` or ``--whole-image`` the detector YAML is not read."""
    detector_free = args.boxes is not None or args.whole_image
    solution = TopDownSolution.from_yaml(None if detector_free else args.yolov5_params, args.rsn_affine_params,
                                         args.lite_hrnet_params, args.threads)
    return solution, (BoxTable(args.boxes) if args.boxes is not None else None)


def run_one(solution: TopDownSolution, boxes: BoxTable | None, img_path: str, img_bgr: np.ndarray):
    """Run the chain on one image with the boxes of ``img_path`` when a box table is given."""
    return solution(img_bgr, boxes.lookup(img_path) if boxes is not None else None)
