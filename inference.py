"""Pose estimation on one image: YOLOv5 -> affine crop -> Lite-HRNet (onnxruntime, no torch).

    python inference.py --img-path IMG --yolov5_params Y --rsn_affine_params A \
        --lite_hrnet_params L [--save-path out.json] [--vis out.png]

Prints the record ``{"img_path", "lmk_coco_body_17pts", "bbox"}``; ``--save-path`` writes it as
JSON (atomically), ``--vis`` draws boxes and skeletons. ``--boxes``/``--whole-image`` skip the
detector. See docs/inference.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from litehrnet.deploy import ParamsError, RunnerError
from litehrnet.deploy.cli import add_chain_arguments, run_one, solution_from_args
from litehrnet.deploy.image_io import read_image
from litehrnet.deploy.records import draw_result, make_record, write_image_atomic, write_json_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--img-path", type=Path, required=True, help="input image")
    add_chain_arguments(parser)
    parser.add_argument("--save-path", type=Path, help="write the record as JSON here")
    parser.add_argument("--vis", type=Path, help="write a drawing (boxes + skeletons) here, e.g. out.png")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    img_bgr, reason = read_image(args.img_path)
    if img_bgr is None:
        print(f"error: {args.img_path}: {reason}", file=sys.stderr)
        return 2
    try:
        solution, boxes = solution_from_args(args)
    except (ParamsError, RunnerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = run_one(solution, boxes, str(args.img_path), img_bgr)
    record = make_record(str(args.img_path), result)
    print(json.dumps(record))
    print(f"{len(result.bboxes_ltwhs)} person(s) in {args.img_path}", file=sys.stderr)
    if args.save_path:
        write_json_atomic(record, args.save_path)
    if args.vis:
        write_image_atomic(draw_result(img_bgr, result), args.vis)
    return 0


if __name__ == "__main__":
    sys.exit(main())
