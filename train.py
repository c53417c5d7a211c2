"""Train a pose network from a YAML config.

    python train.py CONFIG [--work-dir DIR] [--resume-from CKPT|auto] [--load-from CKPT] [--seed N]
        [--deterministic] [--no-validate] [--cfg-options key=value ...] [--autoscale-lr] [--amp]
        [--device cpu|cuda]
    torchrun --nproc_per_node N train.py CONFIG ...      # DistributedDataParallel, gloo on CPU / nccl on CUDA

The resolved config is saved as WORK_DIR/config.yaml, the JSON-lines log as WORK_DIR/log.jsonl,
checkpoints as WORK_DIR/epoch_N.pth (newest train.max_keep_checkpoints kept) and
WORK_DIR/best_<metric>_epoch_N.pth. See docs/training.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from litehrnet.config import ConfigError, load_config, parse_cli_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="YAML config (configs/...)")
    parser.add_argument("--work-dir", help="output folder (default: work_dirs/<config name>)")
    parser.add_argument("--resume-from", help="training checkpoint to continue from, or 'auto' for the newest "
                                              "one in the work dir (restores weights, optimiser, schedule, RNG)")
    parser.add_argument("--load-from", help="initial weights only (official mmpose or our checkpoints)")
    parser.add_argument("--seed", type=int, help="overrides train.seed")
    parser.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower)")
    parser.add_argument("--no-validate", action="store_true", help="skip validation during training")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. train.epochs=20 model.input_hw=[384,288]")
    parser.add_argument("--autoscale-lr", action="store_true",
                        help="scale lr by total batch / train.autoscale_base_batch (linear rule)")
    parser.add_argument("--amp", action="store_true", help="mixed precision (fp16 on CUDA, bf16 on CPU)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        overrides = parse_cli_options(args.cfg_options)
        if args.seed is not None:
            overrides.setdefault("train", {})["seed"] = args.seed
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from litehrnet.training import TrainingError
    from litehrnet.training.distributed import shutdown_distributed
    from litehrnet.training.trainer import TrainOptions, train

    work_dir = args.work_dir or str(Path("work_dirs") / Path(args.config).stem)
    opts = TrainOptions(work_dir=work_dir, resume_from=args.resume_from, load_from=args.load_from,
                        validate=not args.no_validate, deterministic=args.deterministic,
                        autoscale_lr=args.autoscale_lr, amp=args.amp, device=args.device,
                        show_progress=not args.no_progress)
    try:
        result = train(cfg, opts)
    except (TrainingError, FileNotFoundError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank fails alike; say it once
            print(f"error: {message}", file=sys.stderr)
        return 1
    finally:
        shutdown_distributed()
    best = f", best {result.best_metric:.4f} in {result.best_checkpoint}" if result.best_metric is not None else ""
    if result.last_checkpoint is not None:
        print(f"done: {result.epochs_done} epochs, {result.iters_done} iterations; "
              f"last checkpoint {result.last_checkpoint}{best}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
