"""It learns on real data: litehrnet_18 trained on CPU on ../shared/data/coco_train2017_mini.

    python bench/learn_real.py [--minutes 25] [--input-hw 128 96] [--batch 8] [--lr 0.004] [--threads 1]

The 80 COCO train2017 images (86 people with keypoints) are both the training set and the
evaluation set: the benchmark shows that the training path (data pipeline, loss, optimiser,
schedule, checkpoints) fits real images, measured by COCO keypoint AP with ground-truth boxes,
flip test and the official decode (litehrnet.training.predict.evaluate_model).

Time budget: one epoch is timed, then half of the epochs that seem to fit are run at constant lr,
then (re-timed) the rest that fit into ``--minutes``, with x0.1 lr steps at 75% and 90% of the final
epoch count; each phase resumes from the previous one's checkpoint. The input size is
reduced (128x96 by default) to fit a CPU budget; augmentation is the recipe's flip plus milder
scale/rotation (the target is memorising these images, not generalising).

Prints the figures and ends with ``RESULT ap_before=...``, ``RESULT ap_after=...``,
``RESULT ap_gain=...``, ``RESULT train_minutes=...``, ``RESULT train_iters=...``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import torch

from litehrnet.config import load_config, parse_cli_options
from litehrnet.models import build_model_from_config
from litehrnet.training.predict import evaluate_model
from litehrnet.training.rng import seed_everything
from litehrnet.training.trainer import TrainOptions, train

REPO = Path(__file__).resolve().parents[1]
BASE_CONFIG = REPO / "configs" / "coco" / "litehrnet_18_coco_256x192.yaml"


def bench_config(args: argparse.Namespace, epochs: int, steps_at: int | None) -> dict:
    """Config for ``epochs`` epochs; lr steps at 75% / 90% of ``steps_at`` epochs (none when None)."""
    ann = "annotations/person_keypoints_train2017.json"
    steps = [int(steps_at * 0.75), int(steps_at * 0.9)] if steps_at else [10**6, 10**6]
    options = [
        f"data.root={args.data}", f"data.train_ann={ann}", "data.train_img_dir=train2017",
        f"data.val_ann={ann}", "data.val_img_dir=train2017", "data.det_file=null", f"data.workers={args.workers}",
        "data.aug.rot_prob=0.3", "data.aug.rot_factor=20", "data.aug.scale_factor=0.15",
        "data.aug.half_body_prob=0.0",
        f"model.input_hw=[{args.input_hw[0]},{args.input_hw[1]}]",
        f"train.epochs={epochs}", f"train.batch_size={args.batch}", f"train.optimizer.lr={args.lr}",
        "train.lr_schedule.warmup_iters=30", f"train.lr_schedule.steps=[{steps[0]},{steps[1]}]",
        "train.log_interval=5", "train.validate_interval=1000", "train.max_keep_checkpoints=1",
        f"train.seed={args.seed}", f"test.batch_size={args.batch}",
    ]
    return load_config(BASE_CONFIG, parse_cli_options(options))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "coco_train2017_mini"))
    parser.add_argument("--minutes", type=float, default=25.0, help="training time budget (evaluation excluded)")
    parser.add_argument("--input-hw", type=int, nargs=2, default=[128, 96], metavar=("H", "W"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster on a busy machine)")
    parser.add_argument("--workers", type=int, default=0, help="data-loader worker processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", help="default: a temporary folder")
    args = parser.parse_args(argv)
    if not (Path(args.data) / "annotations" / "person_keypoints_train2017.json").is_file():
        print(f"error: {args.data}: coco_train2017_mini not found; pass --data", file=sys.stderr)
        return 1
    torch.set_num_threads(args.threads)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="learn_real_"))

    cfg = bench_config(args, 1, steps_at=None)
    seed_everything(args.seed)               # the trainer seeds the same way: same initial weights
    start = time.perf_counter()
    ap_before = evaluate_model(build_model_from_config(cfg), cfg, "val")["AP"]
    eval_s = time.perf_counter() - start
    print(f"AP before training: {ap_before:.4f} ({eval_s:.0f}s to evaluate)", flush=True)

    start = time.perf_counter()
    budget_s = args.minutes * 60
    # phase 1: one epoch, timed; phase 2: half of what then seems to fit, at constant lr; phase 3: the
    # rest, with the lr steps placed at 75% / 90% of the final epoch count. The schedule is a pure
    # function of (iteration, epoch), so this equals one run that knew the final count in advance.
    result = train(bench_config(args, 1, steps_at=None), TrainOptions(work_dir=str(work), validate=False,
                                                                      show_progress=False, threads=args.threads))
    mid = max(2, int(budget_s / (time.perf_counter() - start) / 2))
    result = train(bench_config(args, mid, steps_at=None),
                   TrainOptions(work_dir=str(work), resume_from=str(result.last_checkpoint), validate=False,
                                show_progress=False, threads=args.threads))
    per_epoch_s = (time.perf_counter() - start) / mid
    epochs = max(mid + 1, int(budget_s / per_epoch_s))
    print(f"{mid} epochs in {(time.perf_counter() - start) / 60:.1f} min ({per_epoch_s:.1f} s/epoch) -> "
          f"{epochs} epochs in {args.minutes} min", flush=True)
    cfg = bench_config(args, epochs, steps_at=epochs)
    result = train(cfg, TrainOptions(work_dir=str(work), resume_from=str(result.last_checkpoint), validate=False,
                                     show_progress=False, threads=args.threads))
    train_min = (time.perf_counter() - start) / 60

    model = build_model_from_config(cfg)
    model.load_state_dict(torch.load(result.last_checkpoint, weights_only=True)["state_dict"])
    metrics = evaluate_model(model, cfg, "val")
    ap_after = metrics["AP"]
    print(f"trained {result.epochs_done} epochs, {result.iters_done} iterations of batch {args.batch} at "
          f"{args.input_hw[0]}x{args.input_hw[1]} in {train_min:.1f} min; work dir {work}")
    print("after: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)
                                and math.isfinite(v)))
    print(f"RESULT ap_before={ap_before:.4f}")
    print(f"RESULT ap_after={ap_after:.4f}")
    print(f"RESULT ap_gain={ap_after - ap_before:.4f}")
    print(f"RESULT train_minutes={train_min:.2f}")
    print(f"RESULT train_iters={result.iters_done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
