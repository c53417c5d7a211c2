"""PyTorch CPU forward latency of every model variant, relative to Lite-HRNet-18.

    python bench/model_speed.py [--variants litehrnet_18 hrnet_w32] [--runs 50] [--warmup 5]
                                [--threads 1 2] [--shape 256 192]

For each thread count: build every model (17 keypoints, eval mode), run ``--warmup`` forward
passes each (synthetic trained-like weights, ``litehrnet.export.synthetic``), then ``--runs`` timed rounds of a 1x3xHxW input in which every variant runs once
(interleaved, so background load affects all alike); report the median (and the 25th/75th
percentiles) in milliseconds and the ratio of medians to ``litehrnet_18`` (always measured, in
the same rounds). On a shared machine absolute numbers are noisy; the ratios are the comparable
figure. Ends with ``RESULT`` lines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from litehrnet.export.synthetic import synthetic_trained_weights
from litehrnet.models import VARIANTS, build_model

REFERENCE = "litehrnet_18"


def time_interleaved_ms(models: dict[str, torch.nn.Module], input_hw: tuple[int, int], runs: int,
                        warmup: int) -> dict[str, list[float]]:
    """Per variant, wall-clock milliseconds of ``runs`` forward passes after ``warmup`` untimed
    ones. Runs are interleaved round-robin over the variants, so load from other processes on a
    shared machine hits every variant alike and the ratios stay meaningful."""
    x = torch.randn(1, 3, *input_hw)
    times: dict[str, list[float]] = {v: [] for v in models}
    with torch.inference_mode():
        for model in models.values():
            for _ in range(warmup):
                model(x)
        for _ in range(runs):
            for v, model in models.items():
                start = time.perf_counter()
                model(x)
                times[v].append((time.perf_counter() - start) * 1e3)
    return times


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], statistics.median(values), q[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), help="default: every row of VARIANTS")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--shape", nargs=2, type=int, default=[256, 192], metavar=("H", "W"))
    args = parser.parse_args(argv)
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    if args.runs < 2:
        parser.error("--runs must be >= 2")
    variants = [REFERENCE] + [v for v in args.variants if v != REFERENCE]
    input_hw = tuple(args.shape)
    # realistic activation ranges, as every benchmark uses (random init gives ~1e-18 outputs)
    calib = torch.randn(2, 3, *input_hw, generator=torch.Generator().manual_seed(0))
    models = {v: synthetic_trained_weights(build_model(v), calib) for v in variants}
    results: dict[tuple[str, int], float] = {}
    print(f"input 1x3x{input_hw[0]}x{input_hw[1]}, {args.warmup} warm-up + {args.runs} timed runs, "
          f"torch {torch.__version__}")
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\nthreads={threads}")
        print(f"{'variant':<28}{'median ms':>11}{'p25':>9}{'p75':>9}{'x ' + REFERENCE:>18}")
        times = time_interleaved_ms(models, input_hw, args.runs, args.warmup)
        for v in variants:
            q1, med, q3 = quartiles(times[v])
            results[(v, threads)] = med
            ratio = med / results[(REFERENCE, threads)]
            print(f"{v:<28}{med:>11.2f}{q1:>9.2f}{q3:>9.2f}{ratio:>18.2f}", flush=True)
    print()
    for (v, threads), med in results.items():
        print(f"RESULT latency_ms_{v}_t{threads}={med:.2f}")
        print(f"RESULT ratio_{v}_vs_{REFERENCE}_t{threads}={med / results[(REFERENCE, threads)]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
