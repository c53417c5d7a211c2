"""Video chain speed: sequential vs pipelined, every-frame detection vs ``--det-interval 5``.

    python bench/video_speed.py [--frames 120] [--video CLIP.mp4] [--detector-onnx D] [--pose-onnx P]

The clip is real footage made from real images: the first ``--images`` COCO dev images showing
people, each panned and zoomed over for ``--frames / --images`` frames at 640x480, written as an
MJPG video and decoded back (``--video`` uses your own clip instead). Models: yolov5n 640 and
litehrnet_18 256x192 made by the project's export commands as ``bench/e2e_speed.py`` makes them
(not timed). The decoded frames are held in memory so every mode times the chain alone.

Modes, all in one run on the same frames, each after a short warm-up, taking turns over blocks of
``--block`` frames (so the load of a shared machine weighs on every mode alike):

* ``sequential`` - detector then pose on every frame, each model with ``--threads`` threads
  (1 and 2 are measured; the faster is the reference);
* ``pipelined`` - the detector of frame t+1 in a second thread while the pose model works on
  frame t, each session with 1 intra-op thread (:meth:`litehrnet.deploy.solution.VideoChain.run`);
* ``pipelined_interval5`` - the same with the detector on every 5th frame and boxes following the
  keypoints in between; ``pipelined_interval5_<N>w`` (``--pose-workers``, default 2) runs each
  frame's crops on N pose sessions at once (pose ``workers``: the detector thread is idle 4 frames
  of 5). A random-weights pose model's keypoints carry no information, so for these
  modes the follow rule is relaxed (any keypoint counts) and people are tracked by box IoU (the
  detector's boxes are real) to time the schedule a trained model gets; persons per frame are
  printed to show the modes handle about the same number of people, and the share of frames the
  detector ran on (1/5 plus the frames after a followed track was lost).

Per-stage milliseconds per frame (``detector``, ``crop``, ``pose``, ``decode``; they overlap in
the pipelined modes), frames/s, CPU milliseconds per frame (all threads of this process) and
``cores_busy`` = CPU time / wall time: near 2 for a pipelined mode that found two free cores, near
1 when the machine's other jobs left it one. Ends with ``RESULT pipelined_speedup`` and
``RESULT det_interval5_speedup`` (frames/s over the reference sequential frames/s; one
``RESULT det_interval5_speedup_<N>workers`` per ``--pose-workers``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from e2e_speed import SHARED, make_models
from litehrnet.deploy import AffineCropRunner, PoseRunner, TopDownSolution, YoloV5Runner
from litehrnet.deploy.inputs import Frame, InputSource
from litehrnet.deploy.solution import STAGES, VideoChain
from litehrnet.deploy.tracking import PoseTracker

OUT_WH = (640, 480)


def make_clip(path: Path, num_frames: int, num_images: int) -> Path:
    """Pan-and-zoom footage over COCO dev images with people, written as MJPG."""
    dev = SHARED / "data" / "coco_val2017_dev"
    ann = json.loads((dev / "annotations" / "person_keypoints_val2017.json").read_text())
    with_people = sorted({a["image_id"] for a in ann["annotations"] if a.get("num_keypoints", 0) >= 8})
    names = {img["id"]: img["file_name"] for img in ann["images"]}
    folder = dev / "val2017"
    per_image = max(num_frames // num_images, 1)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, OUT_WH)
    for image_id in with_people[:num_images]:
        img = cv2.imread(str(folder / names[image_id]))
        h, w = img.shape[:2]
        for k in range(per_image):
            s = k / max(per_image - 1, 1)
            zoom = 1.0 - 0.25 * s  # window shrinks to 75%: a slow zoom-in while panning right
            win_w, win_h = w * zoom, h * zoom
            x0, y0 = (w - win_w) * s, (h - win_h) * 0.5
            src = np.float32([[x0, y0], [x0 + win_w, y0], [x0, y0 + win_h]])
            dst = np.float32([[0, 0], [OUT_WH[0], 0], [0, OUT_WH[1]]])
            writer.write(cv2.warpAffine(img, cv2.getAffineTransform(src, dst), OUT_WH, flags=cv2.INTER_LINEAR))
    writer.release()
    return path


def build_solution(detector_onnx: Path, pose_onnx: Path, threads: int, pose_workers: int = 1) -> TopDownSolution:
    detector = YoloV5Runner(dict(onnx_path=str(detector_onnx), input_w=640, input_h=640, conf_thres=0.25,
                                 iou_thres=0.45, top_k_num=100, classes=[0], preprocess="official"), threads)
    pose = PoseRunner(dict(onnx_path=str(pose_onnx), input_w=192, input_h=256, norm="torch", channel_order="rgb",
                           decode="default", flip_test=False), threads, workers=pose_workers)
    return TopDownSolution(detector, AffineCropRunner(dict(input_w=192, input_h=256, padding=1.25),
                                                      pose.network_input), pose)


def make_chain(solution: TopDownSolution, det_interval: int) -> VideoChain:
    relaxed = dict(box_kpt_thr=0.0, box_min_keypoints=1) if det_interval > 1 else {}
    return VideoChain.from_solution(solution, None, det_interval=det_interval,
                                    tracker=PoseTracker("iou") if det_interval > 1 else None, **relaxed)


def time_modes(frames: list[Frame], modes: dict[str, tuple[TopDownSolution, bool, int]], block: int,
               ) -> dict[str, dict[str, float]]:
    """Run the modes in turns over blocks of ``block`` frames, so load swings of a shared machine
    hit every mode alike; each block starts a fresh chain (detector on its first frame)."""
    for solution, pipelined, interval in modes.values():  # warm-up, not timed
        for _ in make_chain(solution, interval).run(frames[:3], pipelined=pipelined):
            pass
        solution.timer.__init__()
    wall = {name: 0.0 for name in modes}
    cpu = {name: 0.0 for name in modes}
    persons = {name: 0 for name in modes}
    detected = {name: 0 for name in modes}
    for start in range(0, len(frames), block):
        chunk = frames[start:start + block]
        for name, (solution, pipelined, interval) in modes.items():
            begin, begin_cpu = time.perf_counter(), time.process_time()
            for out in make_chain(solution, interval).run(chunk, pipelined=pipelined):
                persons[name] += len(out.result.bboxes_xywhs)
                detected[name] += out.detected
            wall[name] += time.perf_counter() - begin
            cpu[name] += time.process_time() - begin_cpu
    n = len(frames)
    return {name: {"frames_per_s": n / wall[name], "persons_per_frame": persons[name] / n,
                   "detector_runs_per_frame": detected[name] / n, "cpu_ms_per_frame": cpu[name] * 1000 / n,
                   "cores_busy": cpu[name] / wall[name],
                   **{f"{s}_ms_per_frame": solution.timer.total_ms[s] / n for s in STAGES}}
            for name, (solution, _, _) in modes.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, help="your own clip (default: pan/zoom footage over COCO images)")
    parser.add_argument("--frames", type=int, default=120, help="frames of the generated clip (default 120)")
    parser.add_argument("--images", type=int, default=6, help="COCO images the generated clip pans over (default 6)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="sequential thread counts (default 1 2)")
    parser.add_argument("--block", type=int, default=20, help="frames per turn of each mode (default 20)")
    parser.add_argument("--pose-workers", type=int, nargs="*", default=[2],
                        help="extra pipelined_interval5 modes with this many pose sessions at once (default 2)")
    parser.add_argument("--detector-onnx", type=Path)
    parser.add_argument("--pose-onnx", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.video or make_clip(Path(tmp) / "pan_zoom.avi", args.frames, args.images)
        frames = [f for f in InputSource(clip) if f.img_bgr is not None]
        if args.detector_onnx is None or args.pose_onnx is None:
            made = make_models(Path(tmp))
            args.detector_onnx = args.detector_onnx or made[0]
            args.pose_onnx = args.pose_onnx or made[1]
        modes = {f"sequential_{t}thr": (build_solution(args.detector_onnx, args.pose_onnx, t), False, 1)
                 for t in args.threads}
        modes["pipelined"] = (build_solution(args.detector_onnx, args.pose_onnx, 1), True, 1)
        modes["pipelined_interval5"] = (build_solution(args.detector_onnx, args.pose_onnx, 1), True, 5)
        for workers in args.pose_workers:
            modes[f"pipelined_interval5_{workers}w"] = (build_solution(args.detector_onnx, args.pose_onnx, 1, workers),
                                                        True, 5)
        load_before = os.getloadavg()[0]
        results = time_modes(frames, modes, args.block)
        load_after = os.getloadavg()[0]
    print(f"{len(frames)} frames {frames[0].img_bgr.shape[1]}x{frames[0].img_bgr.shape[0]} from "
          f"{args.video or 'pan/zoom over COCO dev images'}; detector {args.detector_onnx.name}, "
          f"pose {args.pose_onnx.name}; {os.cpu_count()} CPUs, load average {load_before:.1f} -> {load_after:.1f}")
    keys = list(next(iter(results.values())))
    print(f"{'':22s}" + "".join(f"{mode:>24s}" for mode in results))
    for key in keys:
        print(f"{key:22s}" + "".join(f"{results[mode][key]:24.2f}" for mode in results))
    reference = max((m for m in results if m.startswith("sequential")), key=lambda m: results[m]["frames_per_s"])
    ref_fps = results[reference]["frames_per_s"]
    print(f"reference: {reference} ({ref_fps:.2f} frames/s)")
    print(f"RESULT sequential_fps={ref_fps:.2f}")
    print(f"RESULT pipelined_fps={results['pipelined']['frames_per_s']:.2f}")
    print(f"RESULT pipelined_interval5_fps={results['pipelined_interval5']['frames_per_s']:.2f}")
    print(f"RESULT pipelined_speedup={results['pipelined']['frames_per_s'] / ref_fps:.2f}")
    print(f"RESULT det_interval5_speedup={results['pipelined_interval5']['frames_per_s'] / ref_fps:.2f}")
    for workers in args.pose_workers:
        fps = results[f"pipelined_interval5_{workers}w"]["frames_per_s"]
        print(f"RESULT det_interval5_speedup_{workers}workers={fps / ref_fps:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
