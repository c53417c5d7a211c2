"""Training data throughput of one worker, full augmentation, JPEG decode included.

Runs the ``train`` dataset of ``coco_train2017_mini`` (``../shared/data`` by default) for a few
epochs in this process with OpenCV limited to one thread (= one DataLoader worker), times every
pipeline stage, and compares with a decode-only reference (``prepostprocess.read_image_bgr`` on
the same files, measured in the same run). Wall-clock and CPU-time figures are both printed: on a
shared machine the CPU-time rate is what one dedicated core would deliver.

    python bench/data_speed.py [--root ../shared/data/coco_train2017_mini] [--epochs 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from litehrnet.config import SCHEMA, merge
from litehrnet.data import build_dataset
from prepostprocess import read_image_bgr

REPO = Path(__file__).resolve().parents[1]


class Timed:
    """Wrap a transform and accumulate its wall time."""

    def __init__(self, transform) -> None:
        self.transform, self.seconds = transform, 0.0
        self.name = type(transform).__name__

    def __call__(self, results):
        t0 = time.perf_counter()
        out = self.transform(results)
        self.seconds += time.perf_counter() - t0
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO.parent / "shared/data/coco_train2017_mini"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--norm", default="kneron")
    args = parser.parse_args()
    cv2.setNumThreads(1)

    cfg = merge(SCHEMA, {"data": {
        "root": args.root, "train_ann": "annotations/person_keypoints_train2017.json",
        "train_img_dir": "train2017", "norm": args.norm,
    }})
    dataset = build_dataset(cfg, "train")
    files = sorted({r["image_file"] for r in dataset.records})

    # reference: decode only, same files, same run
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    for _ in range(args.epochs):
        for f in files:
            read_image_bgr(f)
    ref_n = args.epochs * len(files)
    ref_wall, ref_cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu

    timed = [Timed(t) for t in dataset.pipeline.transforms]
    dataset.pipeline.transforms = timed
    n = 0
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            dataset[i]
            n += 1
    wall, cpu = time.perf_counter() - t_wall, time.process_time() - t_cpu

    print(f"dataset: {len(dataset)} people on {len(files)} images, {args.epochs} epochs, norm={args.norm}, "
          f"input {cfg['model']['input_hw']}, full training augmentation, 1 worker (cv2 1 thread)")
    print(f"{'stage':32s} {'ms/sample':>10s} {'share':>7s}")
    staged = sum(t.seconds for t in timed)
    for t in timed:
        print(f"{t.name:32s} {t.seconds / n * 1e3:10.3f} {t.seconds / wall:7.1%}")
    print(f"{'(item assembly, torch, rng)':32s} {(wall - staged) / n * 1e3:10.3f} {(wall - staged) / wall:7.1%}")
    rate_wall, rate_cpu = n / wall, n / cpu
    ref_rate_wall, ref_rate_cpu = ref_n / ref_wall, ref_n / ref_cpu
    print(f"pipeline:  {rate_wall:7.1f} samples/s wall, {rate_cpu:7.1f} samples/s per CPU-second")
    print(f"reference: {ref_rate_wall:7.1f} decodes/s wall, {ref_rate_cpu:7.1f} decodes/s per CPU-second (decode only)")
    print(f"ratio pipeline/decode-only: {rate_cpu / ref_rate_cpu:.2f} (CPU time), {rate_wall / ref_rate_wall:.2f} (wall)")
    print(f"load average now: {open('/proc/loadavg').read().split()[0]} (shared machine; wall figures vary)")
    print(f"RESULT samples_per_s_per_worker={rate_cpu:.1f}")
    print(f"RESULT samples_per_s_wall={rate_wall:.1f}")
    print(f"RESULT pipeline_to_decode_ratio={rate_cpu / ref_rate_cpu:.3f}")


if __name__ == "__main__":
    main()
