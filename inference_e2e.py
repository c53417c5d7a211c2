"""Pose estimation over a folder, a list file or a video; writes one record per image.

    python inference_e2e.py --img-path DIR|LIST.txt|VIDEO --yolov5_params Y --rsn_affine_params A \
        --lite_hrnet_params L --save-path out.json [--coco-out coco_results.json]

Output: a JSON list of ``{"img_path", "lmk_coco_body_17pts": [[[x, y, score] x 17] per person],
"bbox": [[l, t, w, h, score] per person]}`` (``[]`` when nobody is found), written atomically.
Unreadable inputs are skipped and listed with their reason (stderr and ``--skipped-out``); an
image that fails inside the chain is listed the same way and makes the exit status 1.
``img_path`` is the path as found (folder + name) or as written in the list file; frames of a
video are ``VIDEO#000123``. See docs/inference.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from litehrnet.deploy import ParamsError, RunnerError
from litehrnet.deploy.cli import add_chain_arguments, run_one, solution_from_args
from litehrnet.deploy.image_io import count_inputs, iter_inputs
from litehrnet.deploy.records import coco_results, make_record, write_json_atomic


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--img-path", type=Path, required=True, help="folder, .txt list of images, or video")
    add_chain_arguments(parser)
    parser.add_argument("--save-path", type=Path, required=True, help="output JSON (list of records)")
    parser.add_argument("--coco-out", type=Path, help="also write COCO keypoint results (image id from the file name, OKS-NMSed)")
    parser.add_argument("--skipped-out", type=Path, help="write the skipped inputs and reasons as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.img_path.exists():
        print(f"error: {args.img_path}: input not found (give a folder, a .txt list or a video)", file=sys.stderr)
        return 2
    try:
        solution, boxes = solution_from_args(args)
    except (ParamsError, RunnerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    records, skipped, failures = [], [], 0
    items = tqdm(iter_inputs(args.img_path), total=count_inputs(args.img_path), unit="img", file=sys.stderr)
    for img_path, img_bgr, reason in items:
        if img_bgr is None:
            skipped.append({"img_path": img_path, "reason": reason})
            continue
        try:
            records.append(make_record(img_path, run_one(solution, boxes, img_path, img_bgr)))
        except Exception as exc:  # one bad image must not lose the batch; reported and counted
            failures += 1
            skipped.append({"img_path": img_path, "reason": f"processing failed: {type(exc).__name__}: {exc}"})
    write_json_atomic(records, args.save_path)
    if args.coco_out:
        write_json_atomic(coco_results(records), args.coco_out)
    if args.skipped_out:
        write_json_atomic(skipped, args.skipped_out)
    for item in skipped:
        print(f"skipped {item['img_path']}: {item['reason']}", file=sys.stderr)
    persons = sum(len(r["bbox"]) for r in records)
    print(f"wrote {args.save_path}: {len(records)} image(s), {persons} person(s), {len(skipped)} skipped",
          file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
