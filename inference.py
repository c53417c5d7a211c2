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

from litehrnet import cli_checks
from litehrnet.deploy import ParamsError, RunnerError
from litehrnet.deploy.cli import add_chain_arguments, run_one, solution_from_args
from litehrnet.deploy.inputs import read_image
from litehrnet.deploy.drawing import below_threshold_note, draw_result, write_image_atomic
from litehrnet.deploy.records import make_record, write_json_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--img-path", type=Path, required=True, help="input image")
    add_chain_arguments(parser, Path(__file__).resolve().parent / "utils")
    parser.add_argument("--save-path", type=Path, help="write the record as JSON here")
    parser.add_argument("--vis", type=Path, help="write a drawing (boxes + skeletons) here, e.g. out.png")
    parser.add_argument("--kpt-thr", type=float, default=0.3, help="draw keypoints scoring at least this (default 0.3)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # outputs and inputs first: one line, exit 2, before the models load
        if args.boxes is not None:
            cli_checks.input_file(args.boxes, "boxes file (--boxes)", "pass a JSON of person boxes")
        if args.save_path:
            cli_checks.output_file(args.save_path, "record file (--save-path)")
        if args.vis:
            cli_checks.output_file(args.vis, "drawing (--vis)", extensions=cli_checks.IMAGE_EXTENSIONS)
    except cli_checks.PathCheckError as exc:
        return cli_checks.report(exc)
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
    print(json.dumps(record, allow_nan=False))
    print(f"{len(result.bboxes_xywhs)} person(s) in {args.img_path}", file=sys.stderr)
    if boxes is not None:
        boxes.report_missing(str(args.img_path))
    note = below_threshold_note(result.keypoints_nk3, args.kpt_thr)
    if note:
        print(f"note: {note} (--kpt-thr {args.kpt_thr:g}); is the pose model trained?", file=sys.stderr)
    if args.save_path:
        write_json_atomic(record, args.save_path)
    if args.vis:
        write_image_atomic(draw_result(img_bgr, result, args.kpt_thr), args.vis)
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "nothing was written (outputs are written at the end, atomically)",
                                 "run the same command again"))
