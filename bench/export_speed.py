"""ONNX latency, op histogram and Kneron checker verdicts: official Lite-HRNet-18 vs NPU versions.

    python bench/export_speed.py [--runs 200] [--warmup 20] [--threads 1 2] [--hw 256 192]

Exports (random "trained-like" weights, litehrnet.export.synthetic) official ``litehrnet_18``,
its exact NPU rewrite, the trainable ``litehrnet_18_npu`` and ``hrnet_w32`` (plus the two NPU graphs
with ``--joint-upsampling``: 2-D Resizes, CPU/GPU-only files); measures onnxruntime
CPU latency (median and p90 of ``--runs`` runs after ``--warmup``) at each thread count, with the
models interleaved run by run so machine load hits all of them alike; prints each latency as a
ratio to official ``litehrnet_18`` from the same run. Ends with ``RESULT`` lines (1 thread, median).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from litehrnet.kneron.checker import check_model, op_histogram
from litehrnet.kneron.operators import CHIPS
from litehrnet.export import export_onnx, pose_metadata
from litehrnet.export.synthetic import synthetic_trained_weights
from litehrnet.keypoints import get_keypoint_info
from litehrnet.models import build_model
from litehrnet.export.npu_rewrite import to_npu_rewrite
from litehrnet.models.separable_resize import set_separable_upsampling

MODELS = ("litehrnet_18", "litehrnet_18_npu_rewrite", "litehrnet_18_npu", "hrnet_w32",
          "litehrnet_18_npu_rewrite_joint", "litehrnet_18_npu_joint")   # _joint: --joint-upsampling
REFERENCE = "litehrnet_18"


def build(name: str, input_hw: tuple[int, int]) -> torch.nn.Module:
    if name.endswith("_joint"):   # 2-D Resizes (CPU/GPU-only files): same function, fewer nodes
        return set_separable_upsampling(build(name[: -len("_joint")], input_hw), False)
    calib = torch.randn(2, 3, *input_hw, generator=torch.Generator().manual_seed(0))
    if name.endswith("_npu_rewrite"):
        official = synthetic_trained_weights(build_model(name[: -len("_npu_rewrite")]), calib)
        return to_npu_rewrite(official, input_hw)
    return synthetic_trained_weights(build_model(name), calib)


def export_all(out_dir: Path, input_hw: tuple[int, int]) -> dict[str, Path]:
    coco = get_keypoint_info("coco")
    paths = {}
    for name in MODELS:
        start = time.perf_counter()
        model = build(name, input_hw)
        meta = pose_metadata(name, input_hw, "torch", "rgb", coco.keypoint_names, coco.flip_pairs,
                             heatmap_stride=model.heatmap_stride)
        report = export_onnx(model, out_dir / f"{name}.onnx", input_hw, metadata=meta)
        print(f"exported {name}: {report.num_nodes} nodes, max|ort - torch| = {report.max_abs_diff:.2g}, "
              f"{time.perf_counter() - start:.1f} s")
        paths[name] = report.path
    return paths


def measure(paths: dict[str, Path], threads: int, runs: int, warmup: int,
            input_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """Latency in ms per model; models run interleaved (one run of each per round)."""
    import onnxruntime as ort

    x = np.random.default_rng(0).standard_normal((1, 3, *input_hw)).astype(np.float32)
    sessions = {}
    ort.disable_telemetry_events()
    for name, path in paths.items():
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    times = {name: [] for name in paths}
    for i in range(warmup + runs):
        for name, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, {"input": x})
            if i >= warmup:
                times[name].append((time.perf_counter() - start) * 1e3)
    return {name: np.asarray(t) for name, t in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--hw", type=int, nargs=2, default=[256, 192])
    args = p.parse_args()
    torch.set_num_threads(1)
    input_hw = tuple(args.hw)

    with tempfile.TemporaryDirectory() as tmp:
        paths = export_all(Path(tmp), input_hw)
        print("\n## Kneron operator table (toolchain v0.33.1), CPU nodes by a literal reading")
        for name, path in paths.items():
            verdicts = []
            for target in CHIPS:
                r = check_model(path, target)
                amb = f", {r.num_ambiguous_nodes} ambiguous" if r.num_ambiguous_nodes else ""
                verdicts.append(f"{target} {r.verdict} ({r.num_cpu_nodes} CPU{amb})")
            print(f"{name:26s} " + "; ".join(verdicts))
        print("\n## op histograms")
        import onnx

        for name, path in paths.items():
            hist = op_histogram(onnx.load(str(path)))
            print(f"{name:26s} " + ", ".join(f"{op} {n}" for op, n in sorted(hist.items())))

        results = {}
        print(f"\n## onnxruntime CPU latency, input 1x3x{input_hw[0]}x{input_hw[1]}, "
              f"{args.runs} runs after {args.warmup} warm-up, models interleaved")
        print(f"{'model':26s} {'threads':>7s} {'median ms':>10s} {'p90 ms':>8s} {'ratio':>6s}")
        for threads in args.threads:
            lat = measure(paths, threads, args.runs, args.warmup, input_hw)
            ref = float(np.median(lat[REFERENCE]))
            for name, t in lat.items():
                med, p90 = float(np.median(t)), float(np.percentile(t, 90))
                results[(name, threads)] = med / ref
                print(f"{name:26s} {threads:7d} {med:10.2f} {p90:8.2f} {med / ref:6.2f}")
    t1 = args.threads[0]
    print(f"RESULT latency_ratio_npu_variant={results[('litehrnet_18_npu', t1)]:.3f}")
    print(f"RESULT latency_ratio_npu_rewrite={results[('litehrnet_18_npu_rewrite', t1)]:.3f}")
    print(f"RESULT latency_ratio_hrnet_w32={results[('hrnet_w32', t1)]:.3f}")
    print(f"RESULT latency_ratio_npu_variant_joint={results[('litehrnet_18_npu_joint', t1)]:.3f}")
    print(f"RESULT latency_ratio_npu_rewrite_joint={results[('litehrnet_18_npu_rewrite_joint', t1)]:.3f}")


if __name__ == "__main__":
    main()
