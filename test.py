"""Evaluate a pose checkpoint: COCO keypoint AP/AR or MPII PCKh (thin shell over the library).

    python test.py CONFIG CKPT [--out results.json] [--eval mAP|PCKh] [--det-file DETS.json]
                   [--use-gt-bbox] [--decode default|dark] [--no-flip] [--no-shift]
                   [--cfg-options key=value ...] [--device cpu|cuda] [--batch-size N]

Defaults follow the official test recipe (flip test, 1-px heatmap shift, default decode,
OKS-NMS 0.9, keypoint score threshold 0.2); ``--det-file`` switches from GT boxes to person
detections (a COCO results JSON). MPII is scored against the official ``mpii_gt_val.mat`` when it
lies next to ``data.val_ann`` (or ``data.val_gt_mat`` names it), else against per-entry head boxes
in the JSON (docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import os
import sys

from litehrnet import cli_checks
from litehrnet.config import ConfigError, load_config, parse_cli_options
from prepostprocess.heatmap import DECODE_METHODS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="experiment YAML under configs/")
    parser.add_argument("checkpoint", help="model checkpoint (.pth): ours, mmpose 0.x or 1.x")
    parser.add_argument("--out", help="write the COCO results JSON here (atomic)")
    parser.add_argument("--eval", choices=("mAP", "PCKh"), help="metric (default: test.metric of the config)")
    parser.add_argument("--det-file", help="person detections (COCO results JSON); implies detector boxes")
    parser.add_argument("--use-gt-bbox", action="store_true", help="use ground-truth boxes (overrides the config)")
    parser.add_argument("--decode", choices=DECODE_METHODS, help="heatmap decode (default: test.decode)")
    parser.add_argument("--no-flip", action="store_true", help="disable the flip test")
    parser.add_argument("--no-shift", action="store_true", help="disable the 1-px shift of flipped heatmaps")
    parser.add_argument("--batch-size", type=int, help="test batch size (default: test.batch_size)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. data.root=/data/coco test.decode=dark")
    return parser.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict:
    over = parse_cli_options(args.cfg_options)
    data, test = over.setdefault("data", {}), over.setdefault("test", {})
    if args.det_file:
        data["det_file"] = os.path.abspath(args.det_file)  # relative to the working directory
        data["use_gt_bbox"] = False
    if args.use_gt_bbox:
        if args.det_file:
            raise ConfigError("--use-gt-bbox and --det-file exclude each other; pick one box source")
        data["use_gt_bbox"] = True
    if args.eval:
        test["metric"] = args.eval
    if args.decode:
        test["decode"] = args.decode
    if args.no_flip:
        test["flip_test"] = False
    if args.no_shift:
        test["shift_heatmap"] = False
    if args.batch_size:
        test["batch_size"] = args.batch_size
    return over


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = load_config(args.config, _overrides(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:  # every path before the first image: one line, exit 2
        cli_checks.input_file(args.checkpoint, "checkpoint", "pass the .pth file to evaluate")
        cli_checks.config_data_paths(cfg, ("val",))
        if args.out:
            cli_checks.output_file(args.out, "results file (--out)")
    except cli_checks.PathCheckError as exc:
        return cli_checks.report(exc)

    from litehrnet.training.predict import run_test

    try:
        metrics = run_test(cfg, args.checkpoint, out_json=args.out, device=args.device, progress=True)
    except (ValueError, OSError, KeyError) as exc:  # data, checkpoint and config errors: one line
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 1
    width = max(len(k) for k in metrics)
    for name, value in metrics.items():
        print(f"{name:<{width}}  {value:.4f}")
    if args.out:
        print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "nothing was written (--out is written at the end, atomically)",
                                 "run the same command again"))
