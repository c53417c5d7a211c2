"""End-to-end CPU speed: YOLOv5 -> affine crop -> pose, per stage, with 1 and 2 threads.

    python bench/e2e_speed.py [--images ../shared/data/coco_val2017_dev/val2017] [--threads 1 2] [--pose-workers N]
        [--detector-onnx yolov5n.onnx] [--pose-onnx litehrnet_18_256x192.onnx] [--flip-test]

Without model paths the models are made first (not timed): YOLOv5n from
``../shared/weights/yolov5n.pt`` via ``tools/yolov5_to_onnx.py``, and a random-init
``litehrnet_18`` 256x192 via ``export2onnx.py ... none``, which gives the network synthetic
trained-like weights (realistic activation ranges, as every benchmark uses; ``bench/weights_speed.py``
compares them with mmpose's random init on the same graph in one run).
References measured in the same run: the ``session.run`` calls made inside the chain (timed one
by one) and, separately, the bare latency of each model on a fixed input. The runner overhead
ratio is (crop + pose + decode time per person) / (in-chain ``session.run`` time x runs per
person): numerator and denominator come from the same calls, so load changes on a shared machine
cancel; ``pose_ratio_vs_bare`` uses the separate bare latency instead. Ends with ``RESULT`` lines
for the largest thread count.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from litehrnet.deploy import AffineCropRunner, PoseRunner, TopDownSolution, YoloV5Runner
from litehrnet.deploy.inputs import iter_inputs
from litehrnet.deploy.solution import STAGES

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


def make_models(folder: Path) -> tuple[Path, Path]:
    detector, pose = folder / "yolov5n.onnx", folder / "litehrnet_18_256x192.onnx"
    subprocess.run([sys.executable, "tools/yolov5_to_onnx.py", str(SHARED / "weights" / "yolov5n.pt"),
                    "--imgsz", "640", "-o", str(detector)], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "export2onnx.py", "configs/coco/litehrnet_18_coco_256x192.yaml", "none",
                    "-o", str(pose)], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    return detector, pose


def bare_latency_ms(runner, repeats: int = 20) -> float:
    """Median ``session.run`` time on a fixed input of the model's shape (the reference)."""
    shape = [d if isinstance(d, int) else 1 for d in runner.input_shape]
    x = np.random.default_rng(0).uniform(-0.5, 0.5, shape).astype(np.float32)
    runner.infer(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.infer(x)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times))


def _time_calls(runner) -> list[float]:
    """Record the duration (ms) of every ``runner.infer`` call (the bare ``session.run`` inside the chain)."""
    durations: list[float] = []
    infer = runner.infer

    def timed(x):
        start = time.perf_counter()
        out = infer(x)
        durations.append((time.perf_counter() - start) * 1000.0)
        return out

    runner.infer = timed
    return durations


def run_chain(args, images, threads: int) -> dict[str, float]:
    detector = YoloV5Runner(dict(onnx_path=str(args.detector_onnx), input_w=640, input_h=640, conf_thres=0.25,
                                 iou_thres=0.45, top_k_num=100, classes=[0], preprocess="official"), threads)
    # --pose-workers N: N one-thread pose sessions (the CLI's default on 2+ cores), the detector at ``threads``
    pose = PoseRunner(dict(onnx_path=str(args.pose_onnx), input_w=192, input_h=256, norm=args.norm,
                           channel_order="rgb", decode="default", flip_test=args.flip_test),
                      1 if args.pose_workers > 1 else threads, "cpu", args.pose_workers)
    cropper = AffineCropRunner(dict(input_w=192, input_h=256, padding=1.25), pose.network_input)
    solution = TopDownSolution(detector, cropper, pose)
    for img in images[:2]:  # warm-up, not timed
        solution(img)
    solution.timer.__init__()
    infer_ms = _time_calls(pose)
    start = time.perf_counter()
    for img in images:
        solution(img)
    wall_s = time.perf_counter() - start
    in_chain_ms = sum(infer_ms) / max(len(infer_ms), 1)  # before the bare runs below add to the list
    timer = solution.timer
    runs_per_person = 2 if args.flip_test else 1
    pose_ref_ms = bare_latency_ms(pose)
    det_ref_ms = bare_latency_ms(detector)
    per_person_ms = sum(timer.total_ms[s] for s in ("crop", "pose", "decode")) / max(timer.persons, 1)
    return {
        "images_per_s": len(images) / wall_s,
        **{f"{s}_ms_per_image": timer.total_ms[s] / len(images) for s in STAGES},
        "persons": timer.persons,
        "pose_stage_ms_per_person": per_person_ms,
        "bare_pose_ms": pose_ref_ms,
        "bare_detector_ms": det_ref_ms,
        "pose_run_ms_in_chain": in_chain_ms,
        "pose_overhead_ratio": per_person_ms / (in_chain_ms * runs_per_person),
        "pose_ratio_vs_bare": per_person_ms / (pose_ref_ms * runs_per_person),
        "detector_overhead_ratio": timer.total_ms["detector"] / len(images) / det_ref_ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=SHARED / "data" / "coco_val2017_dev" / "val2017")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--detector-onnx", type=Path)
    parser.add_argument("--pose-onnx", type=Path)
    parser.add_argument("--norm", default="torch", help="norm recorded in the pose ONNX metadata (default torch)")
    parser.add_argument("--flip-test", action="store_true", help="two pose runs per person")
    parser.add_argument("--pose-workers", type=int, default=1,
                        help="pose sessions of 1 thread each running an image's crops at once (default 1: one pose "
                             "session with --threads threads; the per-call overhead figures assume 1)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N images")
    args = parser.parse_args(argv)
    images = [img for _, img, _ in iter_inputs(args.images) if img is not None]
    images = images[: args.limit] if args.limit else images
    with tempfile.TemporaryDirectory() as tmp:
        if args.detector_onnx is None or args.pose_onnx is None:
            made = make_models(Path(tmp))
            args.detector_onnx = args.detector_onnx or made[0]
            args.pose_onnx = args.pose_onnx or made[1]
        results = {t: run_chain(args, images, t) for t in args.threads}
    print(f"{len(images)} images from {args.images}; detector {args.detector_onnx.name}, pose {args.pose_onnx.name}"
          f"{' (flip test)' if args.flip_test else ''}")
    keys = list(next(iter(results.values())))
    print(f"{'':28s}" + "".join(f"{t:>10d} thr" for t in results))
    for key in keys:
        print(f"{key:28s}" + "".join(f"{results[t][key]:14.2f}" for t in results))
    best = results[max(results)]
    print(f"RESULT e2e_images_per_s={best['images_per_s']:.2f}")
    print(f"RESULT pose_overhead_ratio={best['pose_overhead_ratio']:.3f}")
    print(f"RESULT pose_stage_ms_per_person={best['pose_stage_ms_per_person']:.2f}")
    for threads, result in results.items():  # the bare pose model (synthetic trained-like weights)
        print(f"RESULT bare_pose_ms_{threads}thread={result['bare_pose_ms']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
