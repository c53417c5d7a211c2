"""Memory and time against the number of people in one image: 1 vs 100 vs 1000 person boxes.

    python bench/crowd_memory.py [--people 1 100 1000] [--no-flip] [--with-unchunked]

Each measurement runs in a fresh process (peak resident memory, ``VmHWM``, cannot be reset inside
one): the detector-free chain (:class:`litehrnet.deploy.TopDownSolution`) on one 1280x720 frame
with N seeded random person boxes, flip test on (as ``utils/lite_hrnet_init_params.yaml``).
Models as in ``bench/crowd_speed.py`` (``litehrnet_18`` 256x192, trained-like synthetic weights):
the static batch-1 file (the chip's, the default YAML's) and the dynamic-batch file, each with the
runner's default chunk size. The reference in the same run is the 1-box process:
``crowd_memory_delta_mb`` = peak(1000 boxes) - peak(1 box) (goal: <= 300 MB), and
``crowd_time_linearity`` = (seconds per person at 1000) / (seconds per person at 100) (1.0 =
linear). ``--with-unchunked`` adds the old behaviour for comparison: all 1000 crops made at once
(batch-1 file, run one by one; with a dynamic-batch file the old runner also sent all 2000 rows in
one call: 11 GB measured, not repeated here).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
FRAME_WH = (1280, 720)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (``VmHWM``), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def random_boxes(people: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    w, h = rng.uniform(40, 300, people), rng.uniform(80, 600, people)
    left, top = rng.uniform(0, FRAME_WH[0] - w), rng.uniform(0, FRAME_WH[1] - h)
    return np.stack([left, top, w, h, np.ones(people)], 1).astype(np.float32)


def child(onnx_path: str, people: int, flip: bool, batch_size: int | None) -> dict:
    """One measurement (runs in its own process)."""
    from crowd_speed import make_solution  # sibling script: bench/ is on sys.path when run as a script

    solution = make_solution(Path(onnx_path), flip, 1, batch_size)
    img = np.random.default_rng(1).integers(0, 256, (FRAME_WH[1] // 8, FRAME_WH[0] // 8, 3), np.uint8)
    img = img.repeat(8, 0).repeat(8, 1)
    boxes = random_boxes(people)
    start = time.perf_counter()
    result = solution(img, boxes)
    seconds = time.perf_counter() - start
    assert result.keypoints_nk3.shape == (people, 17, 3)
    return {"people": people, "seconds": seconds, "peak_mb": peak_rss_mb(), "chunk": solution.pose.chunk_size}


def measure(onnx_path: Path, people: int, flip: bool, batch_size: int | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__)), "--child", str(onnx_path), str(people), str(int(flip)),
           str(batch_size or 0)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=BENCH.parent).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        onnx_path, people, flip, batch_size = sys.argv[2], int(sys.argv[3]), bool(int(sys.argv[4])), int(sys.argv[5])
        print(json.dumps(child(onnx_path, people, flip, batch_size or None)))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1, 100, 1000])
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--with-unchunked", action="store_true",
                        help="also run the largest count as one chunk (the behaviour before chunking)")
    args = parser.parse_args(argv)
    if min(args.people) < 1:
        parser.error("--people: counts must be >= 1")

    from crowd_speed import make_pose_models, read_video_frames, SHARED

    video = SHARED / "data" / "mmpose_samples" / "demo.mp4"
    calibration = read_video_frames(video) if video.is_file() else [
        np.random.default_rng(2).integers(0, 256, (540, 960, 3), np.uint8)]
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_pose_models(Path(tmp), calibration, {"batch1": {}, "dynamic": {"dynamic_batch": True}})
        for name, path in paths.items():
            rows[name] = {n: measure(path, n, args.flip) for n in sorted(set(args.people))}
        if args.with_unchunked:
            most = max(args.people)
            rows["unchunked"] = {n: measure(paths["batch1"], n, args.flip, batch_size=n) for n in (1, most)}

    print(f"one 1280x720 frame, flip test {'on' if args.flip else 'off'}; a fresh process per row")
    print(f"{'model':10s}{'chunk':>7s}{'people':>8s}{'peak MB':>10s}{'seconds':>10s}{'ms/person':>11s}")
    for name, by_n in rows.items():
        for n, r in by_n.items():
            print(f"{name:10s}{r['chunk']:7d}{n:8d}{r['peak_mb']:10.1f}{r['seconds']:10.2f}"
                  f"{1000 * r['seconds'] / n:11.2f}")
    lo, hi = min(args.people), max(args.people)
    mid = sorted(set(args.people))[-2] if len(set(args.people)) > 2 else lo
    for name in ("batch1", "dynamic"):
        r = rows[name]
        suffix = "" if name == "batch1" else "_dynamic"
        print(f"RESULT crowd_memory_delta_mb{suffix}={r[hi]['peak_mb'] - r[lo]['peak_mb']:.1f}")
        linearity = (r[hi]["seconds"] / hi) / (r[mid]["seconds"] / mid)
        print(f"RESULT crowd_time_linearity{suffix}={linearity:.3f}")
    if "unchunked" in rows:
        r = rows["unchunked"]
        print(f"RESULT crowd_memory_delta_mb_unchunked={r[hi]['peak_mb'] - r[1]['peak_mb']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
