"""Train a pose network from a YAML config.

    python train.py CONFIG [--work-dir DIR] [--resume-from CKPT|auto] [--load-from CKPT] [--seed N]
        [--deterministic] [--no-validate] [--cfg-options key=value ...] [--autoscale-lr]
        [--device cpu|cuda] [--amp [fp16|bf16]] [--compile] [--threads N]
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

from litehrnet import cli_checks
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
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--amp", nargs="?", const="auto", choices=("auto", "fp16", "bf16"),
                        help="mixed precision on CUDA: bf16, or fp16 with loss scaling; 'auto' (the bare flag) "
                             "picks bf16 where the GPU supports it (not on CPU: slower there)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step (on a 2-core CPU: ~3-4 CPU-minutes of compile per "
                             "input shape for no gain over the eager step; see docs/training.md)")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: chosen from free cores, see docs/training.md)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still written)")
    parser.add_argument("--qat", action="store_true", help="quantisation-aware fine-tuning (int8, power-of-two "
                        "scales) of a float model: use with --load-from FLOAT.pth; see docs/quantization.md")
    return parser.parse_args(argv)


def check_paths(args: argparse.Namespace, cfg: dict, work_dir: str) -> None:
    """Output folder, data files (val too when validating), checkpoints: before any work."""
    cli_checks.output_dir(work_dir, "work dir (--work-dir)")
    cli_checks.config_data_paths(cfg, ("train", "val") if not args.no_validate else ("train",))
    if args.load_from:
        cli_checks.input_file(args.load_from, "checkpoint (--load-from)", "pass an existing .pth file")
    if args.qat and not (args.load_from or args.resume_from):
        raise cli_checks.PathCheckError("--qat: fine-tunes a trained float model; add --load-from FLOAT.pth "
                                        "(or --resume-from a QAT run)")
    if args.resume_from and args.resume_from != "auto":
        cli_checks.input_file(args.resume_from, "checkpoint (--resume-from)",
                              "pass an existing epoch_N.pth, or 'auto' for the newest in the work dir")


def resolve_amp(amp: str | None, device: str) -> str | None:
    """``--amp auto``: bf16 where the GPU supports it (no loss scaling needed), else fp16."""
    if amp != "auto":
        return amp
    import torch

    return "bf16" if device == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp16"


def interrupted_note(args: argparse.Namespace, work_dir: str) -> str:
    """What a stop keeps (the newest checkpoint and the log) and the command that resumes."""
    ckpts = [p for p in Path(work_dir).glob("epoch_*.pth") if p.stem[len("epoch_"):].isdigit()]
    newest = max(ckpts, key=lambda p: int(p.stem[len("epoch_"):]), default=None)
    again = f"python train.py {args.config} --work-dir {work_dir}"
    if newest is None:
        return f"no checkpoint yet (one is written after each epoch); start again with: {again}"
    return f"kept {newest} and {Path(work_dir) / 'log.jsonl'}; resume with: {again} --resume-from auto"


def option_error(args: argparse.Namespace) -> str | None:
    """Switches that cannot work together, found before any work."""
    if args.amp and args.device != "cuda":
        return ("--amp needs --device cuda: on CPU bf16 autocast made training steps slower "
                "(docs/training.md); drop --amp")
    if args.threads is not None and args.threads < 1:
        return f"--threads must be at least 1, got {args.threads}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = option_error(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        overrides = parse_cli_options(args.cfg_options)
        if args.seed is not None:
            overrides.setdefault("train", {})["seed"] = args.seed
        cfg = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    work_dir = args.work_dir or str(Path("work_dirs") / Path(args.config).stem)
    try:  # every path before the first iteration: one line, exit 2
        check_paths(args, cfg, work_dir)
    except cli_checks.PathCheckError as exc:
        if os.environ.get("RANK", "0") == "0":
            cli_checks.report(exc)
        return cli_checks.EXIT_BAD_INPUT

    from litehrnet.training import TrainingError
    from litehrnet.training.distributed import shutdown_distributed
    from litehrnet.training.trainer import TrainOptions, train

    opts = TrainOptions(work_dir=work_dir, resume_from=args.resume_from, load_from=args.load_from,
                        validate=not args.no_validate, deterministic=args.deterministic,
                        autoscale_lr=args.autoscale_lr, amp=resolve_amp(args.amp, args.device), device=args.device,
                        show_progress=not args.no_progress, qat=args.qat, compile=args.compile,
                        threads=args.threads)
    try:
        result = train(cfg, opts)
    except KeyboardInterrupt:
        if os.environ.get("RANK", "0") == "0":
            print(f"interrupted (Ctrl-C): {interrupted_note(args, work_dir)}", file=sys.stderr)
        return cli_checks.EXIT_INTERRUPTED
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
    sys.exit(cli_checks.run_main(main, "nothing was written yet", "run the same command again"))
