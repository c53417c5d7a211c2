"""Crowded scenes: per-person pose cost at batch 1 vs in chunks, with 1 and 2 threads.

    python bench/crowd_speed.py [--threads 1 2] [--chunks 2 4 8 16 32] [--no-flip] [--repeats 3]
        [--video ../shared/data/mmpose_samples/demo.mp4]

Scenes: the frames of ``demo.mp4`` with the people YOLOv5n finds in them (conf 0.25, made from
``../shared/weights/yolov5n.pt``; without it the scene is skipped), and a synthetic 1280x720 frame
with 32 person boxes in a grid. Pose model: ``litehrnet_18`` 256x192 with trained-like synthetic
weights (random-init weights are ~1e-20 and hit slow denormal paths), exported by
:func:`litehrnet.export.export_onnx` twice before timing: static batch 1 (the chip's file) and
``dynamic_batch=True``. The same boxes go through the detector-free chain
(:class:`litehrnet.deploy.TopDownSolution`) with the batch-1 file and with the dynamic file at each
chunk size, interleaved so machine load hits all alike; the figure per person is crop + pose +
decode (the chain's stage timer), median over ``--repeats``. With T >= 2 threads the chunked
configurations are measured both ways of using T cores: one session with T intra-op threads
(``chunkN``) and T one-thread sessions running a chunk's crops at once (``chunkN_wT``, pose
``workers``); ``batch1_wT`` is the batch-1 file run the second way (printed, not a candidate).
``crowd_per_person_ratio`` = best chunked / batch 1 (one session, same threads) in the same run
(1 thread; one ``crowd_per_person_ratio_<T>threads`` line per further thread count).
``crowd_frames_per_s``: whole chain (detector + best chunked pose) on the video frames. When
onnxruntime has the CUDA execution provider the same comparison runs on the GPU as well.
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

from litehrnet.deploy import AffineCropRunner, PoseRunner, TopDownSolution, YoloV5Runner

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
POSE_HW = (256, 192)
NORM = "torch"


def read_video_frames(path: Path) -> list[np.ndarray]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def grid_frame(people: int = 32, size_wh: tuple[int, int] = (1280, 720), seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured 1280x720 frame and ``people`` person boxes ``[l, t, w, h, 1]`` in an 8-column grid."""
    rng = np.random.default_rng(seed)
    w, h = size_wh
    img = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    cols = 8
    rows = -(-people // cols)
    cell_w, cell_h = w / cols, h / rows
    boxes = [[c * cell_w + 0.2 * cell_w, r * cell_h + 0.05 * cell_h, 0.6 * cell_w, 0.9 * cell_h, 1.0]
             for r in range(rows) for c in range(cols)][:people]
    return img, np.asarray(boxes, np.float32)


def make_pose_models(folder: Path, calibration_bgr: list[np.ndarray], batches: dict[str, dict]) -> dict[str, Path]:
    """Export ``litehrnet_18`` 256x192 with synthetic trained-like weights once per batch setting."""
    import torch

    from litehrnet.export import export_onnx, pose_metadata
    from litehrnet.export.synthetic import synthetic_trained_weights
    from litehrnet.keypoints import COCO_BODY_17
    from litehrnet.models import build_model
    from prepostprocess.topdown import preprocess_topdown

    torch.manual_seed(0)
    model = build_model("litehrnet_18")
    crops = np.stack([preprocess_topdown(img, (img.shape[1] / 2, img.shape[0] / 2), (img.shape[0] * 0.75,
                                         img.shape[0]), POSE_HW, NORM, "rgb") for img in calibration_bgr])
    synthetic_trained_weights(model, torch.from_numpy(crops))
    info = COCO_BODY_17
    metadata = pose_metadata("litehrnet_18", POSE_HW, NORM, "rgb", info.keypoint_names, info.flip_pairs,
                             heatmap_stride=model.heatmap_stride)
    paths = {}
    for name, options in batches.items():
        paths[name] = folder / f"litehrnet_18_{name}.onnx"
        export_onnx(model, paths[name], POSE_HW, metadata=metadata, verify_input=crops[:1], **options)
    return paths


def pose_params(onnx_path: Path, flip_test: bool, batch_size: int | None = None) -> dict:
    return dict(onnx_path=str(onnx_path), input_w=POSE_HW[1], input_h=POSE_HW[0], norm=NORM, channel_order="rgb",
                decode="default", flip_test=flip_test, batch_size=batch_size)


def make_solution(onnx_path: Path, flip_test: bool, threads: int, batch_size: int | None = None,
                  detector: YoloV5Runner | None = None, device: str = "cpu", workers: int = 1) -> TopDownSolution:
    pose = PoseRunner(pose_params(onnx_path, flip_test, batch_size), threads, device, workers)
    cropper = AffineCropRunner(dict(input_w=POSE_HW[1], input_h=POSE_HW[0], padding=1.25), pose.network_input)
    return TopDownSolution(detector, cropper, pose)


def pose_ms_per_person(solution: TopDownSolution, scenes: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """crop + pose + decode milliseconds per person over all scenes (one pass)."""
    solution.timer.__init__()
    for img, boxes in scenes:
        solution(img, boxes)
    timer = solution.timer
    return sum(timer.total_ms[s] for s in ("crop", "pose", "decode")) / max(timer.persons, 1)


def make_detector(detector_pt: Path, folder: Path) -> Path:
    """YOLOv5n ONNX from the official checkpoint (the project's own converter)."""
    onnx_path = folder / "yolov5n.onnx"
    subprocess.run([sys.executable, "tools/yolov5_to_onnx.py", str(detector_pt), "--imgsz", "640", "-o",
                    str(onnx_path)], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
    return onnx_path


def detector_runner(onnx_path: Path, threads: int) -> YoloV5Runner:
    return YoloV5Runner(dict(onnx_path=str(onnx_path), input_w=640, input_h=640, conf_thres=0.25, iou_thres=0.45,
                             top_k_num=100, classes=[0], preprocess="official"), threads)


def configurations(threads: int, chunks: list[int], device: str = "cpu") -> dict[str, tuple[str, int | None, int, int]]:
    """name -> (file, batch_size, intra-op threads, workers) for ``threads`` cores.

    ``batch1`` is the chain of the batch-1 file with ``threads`` intra-op threads (the reference);
    ``chunkN``: the dynamic file in chunks of N people, ``threads`` intra-op threads; with 2+ threads
    on the CPU also ``chunkN_wT``: T = ``threads`` sessions with 1 thread each running a chunk's
    crops at once (``workers``), and ``batch1_wT``, the batch-1 file run the same way."""
    configs = {"batch1": ("batch1", None, threads, 1)}
    for chunk in chunks:
        configs[f"chunk{chunk}"] = ("dynamic", chunk, threads, 1)
    if threads > 1 and device == "cpu":
        configs[f"batch1_w{threads}"] = ("batch1", None, 1, threads)
        for chunk in chunks:
            configs[f"chunk{chunk}_w{threads}"] = ("dynamic", chunk, 1, threads)
    return configs


def config_solution(paths: dict[str, Path], config: tuple, flip: bool, detector: YoloV5Runner | None = None,
                    device: str = "cpu") -> TopDownSolution:
    name, batch_size, threads, workers = config
    return make_solution(paths[name], flip, threads, batch_size, detector, device, workers)


def compare(paths: dict[str, Path], scenes, args, threads: int, device: str = "cpu") -> dict[str, float]:
    """Median ms/person for batch 1 and each chunked configuration, interleaved frame by frame (a load
    swing on a shared machine hits every configuration alike)."""
    configs = {name: config_solution(paths, config, args.flip, device=device)
               for name, config in configurations(threads, args.chunks, device).items()}
    for solution in configs.values():  # warm-up: arenas sized, kernels chosen
        pose_ms_per_person(solution, scenes[-1:])
    samples: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.repeats):
        spent_ms = dict.fromkeys(configs, 0.0)
        for scene in scenes:
            for name, solution in configs.items():
                spent_ms[name] += pose_ms_per_person(solution, [scene]) * len(scene[1])
        for name in configs:
            samples[name].append(spent_ms[name] / sum(len(boxes) for _, boxes in scenes))
    return {name: float(np.median(v)) for name, v in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=SHARED / "data" / "mmpose_samples" / "demo.mp4")
    parser.add_argument("--detector-pt", type=Path, default=SHARED / "weights" / "yolov5n.pt")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunks", type=int, nargs="+", default=[2, 4, 8, 16, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-flip", dest="flip", action="store_false", help="one pose run per person")
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"error: {args.video}: video not found; pass --video", file=sys.stderr)
        return 2

    frames = read_video_frames(args.video)
    grid_img, grid_boxes = grid_frame(32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_pose_models(folder, frames, {"batch1": {}, "dynamic": {"dynamic_batch": True}})
        detector_onnx = None
        video_scenes: list = []
        if args.detector_pt.is_file():
            detector_onnx = make_detector(args.detector_pt, folder)
            detector = detector_runner(detector_onnx, 1)
            video_scenes = [(frame, detector(frame)[:, :5]) for frame in frames]
        else:
            print(f"note: {args.detector_pt} not found: the video scene is skipped")
        scenes = video_scenes + [(grid_img, grid_boxes)]
        persons = sum(len(b) for _, b in scenes)
        results = {t: compare(paths, scenes, args, t) for t in args.threads}

        print(f"{len(video_scenes)} video frames ({sum(len(b) for _, b in video_scenes)} people) + 1 grid frame "
              f"(32 people) = {persons} people; litehrnet_18 {POSE_HW[0]}x{POSE_HW[1]}, "
              f"flip test {'on' if args.flip else 'off'}; ms per person (crop + pose + decode), median of "
              f"{args.repeats}")
        print(f"{'':12s}" + "".join(f"{t:>9d} thr" for t in results))
        names = list(dict.fromkeys(name for r in results.values() for name in r))
        for name in names:
            print(f"{name:12s}" + "".join(f"{results[t][name]:13.2f}" if name in results[t] else f"{'-':>13s}"
                                          for t in results))
        ratios = {}
        for t, r in results.items():
            best = min((k for k in r if k.startswith("chunk")), key=r.get)
            ratios[t] = (best, r[best] / r["batch1"])
            print(f"{t} thread(s): best {best} {r[best]:.2f} ms/person vs batch 1 {r['batch1']:.2f}: "
                  f"ratio {ratios[t][1]:.3f}")

        fps = {}
        if detector_onnx is not None:
            for t in args.threads:
                detector = detector_runner(detector_onnx, t)
                configs = configurations(t, args.chunks)
                for name, config in (("batch1", configs["batch1"]), ("best", configs[ratios[t][0]])):
                    chain = config_solution(paths, config, args.flip, detector)
                    chain(frames[0])
                    start = time.perf_counter()
                    for frame in frames:
                        chain(frame)
                    fps[(t, name)] = len(frames) / (time.perf_counter() - start)
                print(f"{t} thread(s): whole chain on the video: {fps[(t, 'batch1')]:.2f} frames/s at batch 1, "
                      f"{fps[(t, 'best')]:.2f} frames/s chunked ({ratios[t][0]})")

        import onnxruntime as ort

        gpu = None
        if "CUDAExecutionProvider" in ort.get_available_providers():
            gpu = compare(paths, scenes, args, 1, device="cuda")
            print("GPU (CUDA execution provider), ms per person: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in gpu.items()))
        else:
            print("GPU: onnxruntime has no CUDAExecutionProvider here; CPU figures only")

    if args.json:
        args.json.write_text(json.dumps({"cpu_ms_per_person": {str(t): r for t, r in results.items()},
                                         "gpu_ms_per_person": gpu,
                                         "frames_per_s": {f"{t}_{n}": v for (t, n), v in fps.items()}},
                                        indent=1, allow_nan=False))
    first = min(results)
    print(f"RESULT crowd_per_person_ratio={ratios[first][1]:.3f}")
    for t in sorted(results)[1:]:
        print(f"RESULT crowd_per_person_ratio_{t}threads={ratios[t][1]:.3f}")
    if fps:
        best_t = max(args.threads, key=lambda t: fps[(t, "best")])
        print(f"RESULT crowd_frames_per_s={fps[(best_t, 'best')]:.2f}")
        print(f"RESULT crowd_frames_per_s_batch1={fps[(best_t, 'batch1')]:.2f}")
    if gpu:
        best = min((k for k in gpu if k != "batch1"), key=gpu.get)
        print(f"RESULT crowd_gpu_per_person_ratio={gpu[best] / gpu['batch1']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
