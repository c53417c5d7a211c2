"""Generate the synthetic COCO-format stick-figure keypoint set.

    python tools/make_synthetic.py --out data/synthetic [--train 64] [--val 16] [--seed 0]
        [--image-hw 160 128] [--figure-height 64 140]

The configs under ``configs/synthetic/`` read ``data/synthetic`` (relative to the working directory).
"""

from __future__ import annotations

import argparse
import sys
import time

from litehrnet import cli_checks
from litehrnet.data.synthetic import SyntheticSpec, make_synthetic_coco


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/synthetic", help="output root (default: data/synthetic)")
    parser.add_argument("--train", type=int, default=SyntheticSpec.num_train, help="training images")
    parser.add_argument("--val", type=int, default=SyntheticSpec.num_val, help="held-out validation images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-hw", type=int, nargs=2, default=list(SyntheticSpec.image_hw), metavar=("H", "W"))
    parser.add_argument("--figure-height", type=int, nargs=2, default=list(SyntheticSpec.figure_height_px),
                        metavar=("MIN", "MAX"), help="figure height range in pixels")
    parser.add_argument("--max-figures", type=int, default=SyntheticSpec.max_figures, help="figures per image (1..N)")
    args = parser.parse_args(argv)
    if args.train < 1 or args.val < 1 or args.max_figures < 1:
        parser.error("--train, --val and --max-figures must be >= 1")
    if args.figure_height[0] < 16 or args.figure_height[0] > args.figure_height[1]:
        parser.error("--figure-height MIN MAX needs 16 <= MIN <= MAX")
    try:
        cli_checks.output_dir(args.out, "output root (--out)")
    except cli_checks.PathCheckError as exc:
        return cli_checks.report(exc)
    spec = SyntheticSpec(num_train=args.train, num_val=args.val, image_hw=tuple(args.image_hw),
                         figure_height_px=tuple(args.figure_height), max_figures=args.max_figures, seed=args.seed)
    start = time.perf_counter()
    paths = make_synthetic_coco(args.out, spec)
    print(f"wrote {args.train} train + {args.val} val images to {args.out} in {time.perf_counter() - start:.1f}s "
          f"({', '.join(str(p) for p in paths.values())})")
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "a partial set may be left in the output folder",
                                 "run the same command again (files are rewritten)"))
