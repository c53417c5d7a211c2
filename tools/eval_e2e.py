"""Score ``inference_e2e.py`` output against ground truth.

    python tools/eval_e2e.py --gt person_keypoints_val2017.json --pred out.json   # COCO AP/AR
    python tools/eval_e2e.py --gt kneron_gt.json --pred out.json                  # l1 / l2 / MAE

The kind of ground truth is recognised from its content (COCO ``images``/``annotations`` dict vs
a Kneron list of ``{"img_path", "lmk_coco_body_17pts"}``). Path matching rules:
``litehrnet/deploy/scoring.py`` and docs/inference.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from litehrnet.deploy.params import ParamsError  # noqa: E402
from litehrnet.deploy.records import write_json_atomic  # noqa: E402
from litehrnet.deploy.scoring import is_coco_keypoints, read_json, score_coco, score_landmarks  # noqa: E402
from litehrnet.evaluation.coco import EvaluationError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gt", type=Path, required=True, help="COCO keypoints JSON or Kneron-style landmark JSON")
    parser.add_argument("--pred", type=Path, required=True, help="output of inference_e2e.py")
    parser.add_argument("--out", type=Path, help="also write the metrics as JSON")
    parser.add_argument("--nms", choices=("oks", "soft_oks", "none"), default="oks",
                        help="per-image pose NMS before COCO scoring (default: oks, threshold 0.9, as the official test)")
    args = parser.parse_args(argv)
    try:
        gt, records = read_json(args.gt, "ground truth"), read_json(args.pred, "predictions")
        if not isinstance(records, list) or any(not isinstance(r, dict) or "img_path" not in r for r in records):
            raise ParamsError(f"{args.pred}: expected the list of records written by inference_e2e.py")
        if is_coco_keypoints(gt):
            metrics = score_coco(records, args.gt, args.nms)
        elif isinstance(gt, list):
            metrics = score_landmarks(records, gt)
        else:
            raise ParamsError(f"{args.gt}: neither a COCO keypoints file nor a Kneron-style list of records")
    except (ParamsError, EvaluationError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, value in metrics.items():
        print(f"{name:>24s}: {value:.4f}")
    if args.out:
        write_json_atomic(metrics, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
