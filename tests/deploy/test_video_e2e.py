"""inference_e2e.py on videos: inputs, records, truncated files, rendered output, pipelining, Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import inference_e2e
from litehrnet.deploy import TopDownSolution
from litehrnet.deploy.inputs import InputSource, source_kind


def write_video(path: Path, frames_bgr: list[np.ndarray], fps: float = 10.0, fourcc: str = "MJPG") -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, frames_bgr[0].shape[1::-1])
    for frame in frames_bgr:
        writer.write(frame)
    writer.release()
    return path


def moving_dot_frames(count: int, hw=(96, 128)) -> list[np.ndarray]:
    """A bright square crossing a dark noisy background (the analytic pose model follows it)."""
    rng = np.random.default_rng(0)
    frames = []
    for t in range(count):
        img = rng.integers(0, 40, (*hw, 3), dtype=np.uint8)
        x = 20 + 5 * t
        img[40:52, x:x + 12] = 255
        frames.append(img)
    return frames


def _chain(paths: dict, detector: bool = False) -> list[str]:
    args = ["--rsn_affine_params", str(paths["affine"]), "--lite_hrnet_params", str(paths["pose"]), "--threads", "1"]
    return args + (["--yolov5_params", str(paths["yolov5"])] if detector else ["--whole-image"])


def test_source_kinds_and_lazy_reading(tmp_path):
    video = write_video(tmp_path / "clip.avi", moving_dot_frames(6))
    assert [source_kind(s) for s in ("0", "rtsp://cam/1", str(video), str(tmp_path))] == \
        ["camera", "stream", "video", "folder"]
    frames = iter(InputSource(video))
    first = next(frames)  # a generator: nothing beyond the first frame has been decoded
    assert (first.frame_index, first.timestamp_ms, first.img_path) == (0, 0.0, f"{video}#000000")
    assert [f.timestamp_ms for f in frames] == [100.0, 200.0, 300.0, 400.0, 500.0]
    unopenable = list(InputSource("file:///nonexistent/clip.mp4"))
    assert [(f.img_bgr, f.reason) for f in unopenable] == [(None, "cannot open stream")]


def test_video_records_and_truncated_video_reports_unread_frames(tmp_path, yaml_set, capsys):
    full = write_video(tmp_path / "full.avi", moving_dot_frames(20))
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 11 // 20])
    out, skipped = tmp_path / "out.json", tmp_path / "skipped.json"
    assert inference_e2e.main(["--img-path", str(cut), *_chain(yaml_set()), "--save-path", str(out),
                               "--skipped-out", str(skipped)]) == 0
    records = json.loads(out.read_text())
    read = len(records)
    assert 5 <= read < 20
    assert [r["frame_index"] for r in records] == list(range(read))
    assert [r["timestamp_ms"] for r in records] == [100.0 * i for i in range(read)]
    assert "track_id" not in records[0]
    report = json.loads(skipped.read_text())
    assert len(report) == 1 and f"{20 - read} of 20 announced frames could not be read" in report[0]["reason"]
    assert report[0]["img_path"] == f"{cut}#{read:06d}"
    assert f"{20 - read} of 20 announced frames" in capsys.readouterr().err


def test_det_interval_1_with_tracking_gives_todays_outputs_plus_ids(tmp_path, yaml_set):
    video = write_video(tmp_path / "clip.avi", moving_dot_frames(8))
    plain, tracked = tmp_path / "plain.json", tmp_path / "tracked.json"
    assert inference_e2e.main(["--img-path", str(video), *_chain(yaml_set()), "--save-path", str(plain),
                               "--sequential"]) == 0
    assert inference_e2e.main(["--img-path", str(video), *_chain(yaml_set()), "--save-path", str(tracked),
                               "--track", "--det-interval", "1"]) == 0
    plain_records, tracked_records = json.loads(plain.read_text()), json.loads(tracked.read_text())
    assert [r.pop("track_id") for r in tracked_records] == [[1]] * 8
    assert plain_records == tracked_records
    # the dot moves 35 px in 7 frames: so do the keypoints (analytic model: every keypoint on the dot;
    # one heatmap pixel is 6.7 image pixels here)
    xs = [np.asarray(r["lmk_coco_body_17pts"])[0, :, 0].mean() for r in plain_records]
    assert xs[-1] - xs[0] == pytest.approx(35, abs=6.7) and (np.diff(xs) >= 0).all()


def test_vis_out_video_and_png_folder(tmp_path, yaml_set):
    video = write_video(tmp_path / "clip.avi", moving_dot_frames(5))
    for target in (tmp_path / "vis.mp4", tmp_path / "frames"):
        assert inference_e2e.main(["--img-path", str(video), *_chain(yaml_set()), "--save-path",
                                   str(tmp_path / "o.json"), "--track", "--vis-out", str(target)]) == 0
    capture = cv2.VideoCapture(str(tmp_path / "vis.mp4"))
    drawn = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        drawn.append(frame)
    assert len(drawn) == 5 and drawn[0].shape == (96, 128, 3)
    pngs = sorted((tmp_path / "frames").glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:06d}.png" for i in range(5)]
    original = moving_dot_frames(5)[0]
    assert np.abs(cv2.imread(str(pngs[0])).astype(int) - original).max() > 100  # box and skeleton drawn
    assert not list(tmp_path.glob(".*tmp*"))


def test_bad_vis_out_is_one_line_before_work(tmp_path, yaml_set, capsys):
    video = write_video(tmp_path / "clip.avi", moving_dot_frames(2))
    rc = inference_e2e.main(["--img-path", str(video), *_chain(yaml_set()), "--save-path", str(tmp_path / "o.json"),
                             "--vis-out", str(tmp_path / "out.webm")])
    assert rc == 2 and "out.webm" in capsys.readouterr().err and not (tmp_path / "o.json").exists()


def test_pipelined_equals_sequential_with_the_real_detector(tmp_path, yaml_set, yolov5n_onnx, shared_data):
    """Panning over a real COCO image with people; YOLOv5n + tracking + interval 3 + smoothing; also with
    two pose sessions running the crops at once (--pose-workers 2)."""
    img = cv2.imread(str(shared_data / "coco_val2017_dev" / "val2017" / "000000000785.jpg"))
    h, w = img.shape[:2]
    frames = [cv2.resize(img[:, 6 * t: 6 * t + w - 60], (320, 240)) for t in range(8)]
    video = write_video(tmp_path / "pan.avi", frames)
    outs = {}
    modes = {"sequential": ["--sequential"], "pipelined": [], "pipelined_2_pose_workers": ["--pose-workers", "2"]}
    for mode, options in modes.items():
        out = tmp_path / f"{mode}.json"
        args = ["--img-path", str(video), *_chain(yaml_set(yolov5n_onnx), detector=True), "--save-path", str(out),
                "--det-interval", "3", "--smooth", "one-euro"]
        assert inference_e2e.main(args + options) == 0
        outs[mode] = json.loads(out.read_text())
    assert outs["sequential"] == outs["pipelined"] == outs["pipelined_2_pose_workers"]
    assert sum(len(r["bbox"]) > 0 for r in outs["pipelined"]) >= 3  # the skier is found on the detector frames
    assert all(len(r["track_id"]) == len(r["bbox"]) for r in outs["pipelined"])


def test_pose_workers_default_is_2_only_in_the_pipelined_interval_chain(yaml_set, monkeypatch):
    """--pose-workers wins; else a YAML ``workers`` decides; else 2 where the detector thread idles
    (pipelined, --det-interval > 1) on a 2+ core machine, 1 otherwise."""
    import argparse

    from litehrnet.deploy.cli import pose_threads, pose_workers

    monkeypatch.setattr("os.cpu_count", lambda: 2)
    auto = yaml_set()["pose"]

    def args(yaml_path, **kw):
        return argparse.Namespace(**{"lite_hrnet_params": yaml_path, "pose_workers": None, **kw})

    assert pose_workers(args(auto, det_interval=5, sequential=False)) == 2
    assert pose_workers(args(auto, det_interval=5, sequential=True)) == 2
    assert pose_workers(args(auto, det_interval=1, sequential=False)) == 1  # the detector holds the other core
    assert pose_workers(args(auto)) == 2  # inference.py: images, no video options
    assert pose_workers(args(auto, det_interval=5, sequential=False, pose_workers=1)) == 1
    # several pose workers run one intra-op thread each; one worker keeps the chain's thread count
    assert pose_threads(args(auto, threads=None), 2) == 1
    assert pose_threads(args(auto, threads=None), 1) == 2                               # images: 2
    assert pose_threads(args(auto, threads=None, det_interval=1, sequential=False), 1) == 1  # pipelined: 1
    assert pose_threads(args(auto, threads=3), 2) == 3                                  # --threads wins
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert pose_workers(args(auto, det_interval=5, sequential=False)) == 1
    assert pose_workers(args(auto)) == 1
    fixed = yaml_set(workers=3)["pose"]  # (rewrites the same file)
    assert pose_workers(args(fixed, det_interval=5, sequential=False)) is None  # the YAML's 3 decides
    assert pose_threads(args(fixed, threads=None), None) == 1                  # 3 workers from the YAML


def test_ctrl_c_keeps_records_says_how_to_resume_and_resume_completes(tmp_path, yaml_set, monkeypatch, capsys):
    video = write_video(tmp_path / "clip.avi", moving_dot_frames(6))
    args = ["--img-path", str(video), *_chain(yaml_set()), "--save-path", str(tmp_path / "out.json"), "--track",
            "--smooth", "one-euro", "--det-interval", "2"]
    reference = tmp_path / "reference.json"
    assert inference_e2e.main([str(reference) if a == str(tmp_path / "out.json") else a for a in args]) == 0
    original, calls = TopDownSolution.estimate, []

    def interrupted(self, img_bgr, boxes):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return original(self, img_bgr, boxes)

    monkeypatch.setattr(TopDownSolution, "estimate", interrupted)
    assert inference_e2e.main(args) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("interrupted (Ctrl-C): 3 record(s) kept in") and "--resume" in err[-1]
    assert not (tmp_path / "out.json").exists()
    monkeypatch.setattr(TopDownSolution, "estimate", original)
    assert inference_e2e.main(args) == 2  # the side file is there: refuse to start over silently
    assert "--resume" in capsys.readouterr().err
    assert inference_e2e.main(args + ["--resume"]) == 0
    assert json.loads((tmp_path / "out.json").read_text()) == json.loads(reference.read_text())
    assert not list(tmp_path.glob("*.partial.jsonl"))
