"""Score ``inference_e2e.py`` output against ground truth.

    python tools/eval_e2e.py --gt person_keypoints_val2017.json --pred out.json   # COCO AP/AR
    python tools/eval_e2e.py --gt kneron_gt.json --pred out.json                  # l1 / l2 / MAE

The kind of ground truth is recognised from its content (COCO ``images``/``annotations`` dict vs
a Kneron list of ``{"img_path", "lmk_coco_body_17pts"}``). Path matching rules:
``litehrnet/evaluation/scoring.py`` and docs/inference.md.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from litehrnet import cli_checks
from litehrnet.deploy.params import ParamsError
from litehrnet.deploy.records import write_json_atomic
from litehrnet.evaluation.coco import EvaluationError
from litehrnet.evaluation.scoring import (
    is_coco_keypoints,
    read_json,
    score_records_coco,
    score_records_landmarks,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", type=Path, required=True, help="COCO keypoints JSON or Kneron-style landmark JSON")
    parser.add_argument("--pred", type=Path, required=True, help="output of inference_e2e.py")
    parser.add_argument("--out", type=Path, help="also write the metrics as JSON")
    parser.add_argument("--nms", choices=("oks", "soft_oks", "none"), default="oks",
                        help="per-image pose NMS before COCO scoring (default: oks, threshold 0.9, as the official test)")
    args = parser.parse_args(argv)
    try:  # paths first: one line, exit 2
        cli_checks.input_file(args.gt, "ground truth (--gt)", "pass a COCO keypoints JSON or a Kneron landmark JSON")
        cli_checks.input_file(args.pred, "predictions (--pred)", "pass the --save-path JSON of inference_e2e.py")
        if args.out:
            cli_checks.output_file(args.out, "metrics file (--out)")
    except cli_checks.PathCheckError as exc:
        return cli_checks.report(exc)
    try:
        gt, records = read_json(args.gt, "ground truth"), read_json(args.pred, "predictions")
        if not isinstance(records, list) or any(not isinstance(r, dict) or "img_path" not in r for r in records):
            raise ParamsError(f"{args.pred}: expected the list of records written by inference_e2e.py")
        if is_coco_keypoints(gt):
            metrics = score_records_coco(records, args.gt, args.nms)
        elif isinstance(gt, list):
            metrics = score_records_landmarks(records, gt)
        else:
            raise ParamsError(f"{args.gt}: neither a COCO keypoints file nor a Kneron-style list of records")
    except (ParamsError, EvaluationError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, value in metrics.items():
        print(f"{name:>24s}: {value:.4f}")
    if args.out:  # strict JSON: an undefined metric (NaN, e.g. nothing matched) is written as null
        write_json_atomic({k: v if math.isfinite(v) else None for k, v in metrics.items()}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "nothing was written", "run the same command again"))
