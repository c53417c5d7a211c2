"""Video chain on moving synthetic figures: track IDs, re-identification, detector interval,
One-Euro smoothing, and the pipelined chain against the sequential one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from litehrnet.deploy.smoothing import KeypointSmoother, OneEuroParams
from litehrnet.deploy.solution import VideoChain, keypoints_to_box
from litehrnet.deploy.tracking import PoseTracker, box_iou_xywh
from video_helpers import Figure, Oracle, frames

REPO_ROOT = Path(__file__).resolve().parents[2]


def lanes(speed_px: float, hidden=range(0)) -> list[Figure]:
    """Three figures in separate lanes walking right at ``speed_px`` per frame (the middle one may hide)."""
    return [Figure(1, 120, (60, 100), (speed_px, 0.0)),
            Figure(2, 110, (260, 105), (speed_px, 0.3), hidden),
            Figure(3, 130, (460, 95), (-speed_px, 0.0))]


def ids_per_figure(oracle: Oracle, results) -> dict[int, list[int]]:
    """The track IDs given to each figure over the sequence (figure found by box overlap)."""
    seen: dict[int, list[int]] = {}
    for out in results:
        for box, tid in zip(out.result.bboxes_xywhs, out.track_ids):
            fig = oracle.figure_in(out.frame.frame_index, box)
            assert fig is not None, f"frame {out.frame.frame_index}: a box on nobody"
            seen.setdefault(fig, []).append(int(tid))
    return seen


@pytest.mark.parametrize("metric", ["oks", "iou"])
def test_no_id_switch_for_figures_that_do_not_cross(metric):
    oracle = Oracle(lanes(3.0), noise_px=1.0)
    chain = VideoChain(oracle.detect, oracle.estimate, tracker=PoseTracker(metric))
    seen = ids_per_figure(oracle, list(chain.run(frames(40))))
    assert sorted(seen) == [0, 1, 2]
    assert all(len(set(ids)) == 1 and len(ids) == 40 for ids in seen.values()), seen
    assert len({ids[0] for ids in seen.values()}) == 3


def test_reidentified_after_short_occlusion_new_id_after_lifetime():
    hidden = range(10, 18)  # 8 frames out of sight while walking on
    oracle = Oracle(lanes(1.5, hidden), noise_px=0.5)
    chain = VideoChain(oracle.detect, oracle.estimate, tracker=PoseTracker(max_lost=30))
    results = list(chain.run(frames(30)))
    seen = ids_per_figure(oracle, results)
    assert len(seen[1]) == 30 - len(hidden) and len(set(seen[1])) == 1  # the same ID before and after
    assert all(len(results[t].track_ids) == 2 for t in hidden)

    oracle = Oracle(lanes(1.5, hidden), noise_px=0.5)
    short_lived = VideoChain(oracle.detect, oracle.estimate, tracker=PoseTracker(max_lost=5))
    seen = ids_per_figure(oracle, list(short_lived.run(frames(30))))
    before, after = seen[1][:10], seen[1][10:]
    assert len(set(before)) == len(set(after)) == 1 and before[0] != after[0]  # lost longer than its lifetime
    assert after[0] == 4  # a fresh ID: IDs are never reused


def test_det_interval_5_boxes_follow_slow_motion():
    every = Oracle(lanes(1.0), noise_px=0.5)
    reference = list(VideoChain(every.detect, every.estimate, tracker=PoseTracker()).run(frames(30)))
    sparse = Oracle(lanes(1.0), noise_px=0.5)
    results = list(VideoChain(sparse.detect, sparse.estimate, det_interval=5).run(frames(30)))
    assert sparse.detected_frames == [0, 5, 10, 15, 20, 25]
    worst = 1.0
    for ref, out in zip(reference, results):
        assert len(out.result.bboxes_xywhs) == 3
        ious = box_iou_xywh(out.result.bboxes_xywhs, ref.result.bboxes_xywhs)
        worst = min(worst, float(ious.max(1).min()))
    assert worst >= 0.9, worst
    assert len(set(np.concatenate([o.track_ids for o in results]).tolist())) == 3


def test_det_interval_detects_again_after_a_track_is_lost():
    oracle = Oracle(lanes(1.0, hidden=range(7, 40)), noise_px=0.5)
    results = list(VideoChain(oracle.detect, oracle.estimate, det_interval=5).run(frames(15)))
    # frame 7: the middle figure's crop is empty (low scores) -> dropped as lost -> detector on frame 8
    assert oracle.detected_frames == [0, 5, 8, 10]
    assert [len(r.result.bboxes_xywhs) for r in results] == [3] * 7 + [2] * 8
    assert all(r.result.keypoints_nk3[:, :, 2].min() == pytest.approx(0.9) for r in results)


def test_a_track_the_detector_lost_is_not_detected_again_on_the_next_frame():
    """Lost on a detector frame (the detector did not find it there): the detector waits for its next
    scheduled frame, and the track's ID is kept for it meanwhile (max_lost)."""
    oracle = Oracle(lanes(1.0, hidden=range(5, 7)), noise_px=0.5)
    results = list(VideoChain(oracle.detect, oracle.estimate, det_interval=5).run(frames(15)))
    assert oracle.detected_frames == [0, 5, 10]  # not 6: the detector has just looked at frame 5
    assert [len(r.result.bboxes_xywhs) for r in results] == [3] * 5 + [2] * 5 + [3] * 5
    seen = ids_per_figure(oracle, results)
    assert len(set(seen[1])) == 1 and len(seen[1]) == 10  # found again at frame 10 under its old ID


def test_keypoints_to_box_matches_a_detector_box():
    fig = Figure(5, 150, (100, 100), (0, 0))
    kpts = np.concatenate([fig.keypoints(0), np.full((17, 1), 0.9)], 1)
    assert box_iou_xywh(keypoints_to_box(kpts)[None], fig.box(0)[None])[0, 0] > 0.9
    kpts[2:, 2] = 0.1
    assert keypoints_to_box(kpts) is None  # fewer than 3 confident keypoints: the track is lost


def _jitter(keypoints_tk2: np.ndarray) -> float:
    return float(np.abs(np.diff(keypoints_tk2, axis=0)).mean())


def test_pose_yaml_documents_the_one_euro_defaults():
    params = yaml.safe_load((REPO_ROOT / "utils" / "lite_hrnet_init_params.yaml").read_text())
    assert OneEuroParams.from_pose_params(params) == OneEuroParams()


def test_one_euro_halves_jitter_of_a_still_figure_and_lags_a_moving_one_by_at_most_a_frame():
    rng = np.random.default_rng(0)
    still = Figure(7, 150, (200, 150), (0.0, 0.0)).keypoints(0)
    raw, smooth = [], []
    smoother = KeypointSmoother()
    for t in range(90):
        noisy = np.concatenate([still + rng.normal(0, 2.0, still.shape), np.ones((17, 1))], 1)
        raw.append(noisy[:, :2])
        smooth.append(smoother(np.array([1]), noisy[None], t * 1000 / 30)[0, :, :2])
    reduction = 1 - _jitter(np.array(smooth[10:])) / _jitter(np.array(raw[10:]))
    assert reduction >= 0.5, reduction

    walker = Figure(7, 150, (50, 150), (4.0, 0.0))  # ~0.8 body heights per second at 30 frames/s
    smoother, lags = KeypointSmoother(), []
    for t in range(60):
        truth = walker.keypoints(t)
        noisy = np.concatenate([truth + rng.normal(0, 1.0, truth.shape), np.ones((17, 1))], 1)
        out = smoother(np.array([1]), noisy[None], t * 1000 / 30)[0]
        if t >= 15:
            lags.append((truth[:, 0] - out[:, 0]).mean() / 4.0)  # behind the truth, in frames
    assert 0 <= np.mean(lags) <= 1.0, np.mean(lags)


def _run(pipelined: bool, det_interval: int, smooth: bool):
    oracle = Oracle(lanes(1.5, hidden=range(9, 13)), noise_px=1.0, seed=3)
    chain = VideoChain(oracle.detect, oracle.estimate, det_interval=det_interval,
                       tracker=PoseTracker(), smoother=KeypointSmoother() if smooth else None)
    return list(chain.run(frames(24), pipelined=pipelined, queue_size=2)), oracle.detected_frames


@pytest.mark.parametrize("det_interval,smooth", [(1, False), (4, True)])
def test_pipelined_chain_equals_sequential(det_interval, smooth):
    sequential, seq_detected = _run(False, det_interval, smooth)
    pipelined, pipe_detected = _run(True, det_interval, smooth)
    assert sorted(seq_detected) == sorted(pipe_detected)  # the reader runs ahead: call order may differ
    assert len(sequential) == len(pipelined) == 24
    for a, b in zip(sequential, pipelined):
        assert a.frame.img_path == b.frame.img_path and a.detected == b.detected
        np.testing.assert_array_equal(a.result.bboxes_xywhs, b.result.bboxes_xywhs)
        np.testing.assert_array_equal(a.result.keypoints_nk3, b.result.keypoints_nk3)
        np.testing.assert_array_equal(a.track_ids, b.track_ids)


def test_pipelined_queue_is_bounded_and_reader_stops_when_consumer_stops():
    oracle = Oracle(lanes(1.0))
    read = []

    def source():
        for frame in frames(50):
            read.append(frame.frame_index)
            yield frame

    chain = VideoChain(oracle.detect, oracle.estimate)
    ahead = []
    for n, out in enumerate(chain.run(source(), pipelined=True, queue_size=3)):
        ahead.append(len(read) - (n + 1))
        if n == 9:
            break  # the generator is closed: the reader thread must stop, not read the whole video
    assert max(ahead) <= 3 + 1  # queue + the frame the reader holds
    assert len(read) <= 10 + 3 + 1


def test_a_failing_frame_is_reported_and_both_modes_stay_identical():
    def run(pipelined: bool):
        oracle = Oracle(lanes(1.0), noise_px=1.0)
        detect = oracle.detect

        def flaky(frame):
            if frame.frame_index == 6:
                raise RuntimeError("detector crashed")
            return detect(frame)

        chain = VideoChain(flaky, oracle.estimate, det_interval=3, tracker=PoseTracker())
        return list(chain.run(frames(12), pipelined=pipelined))

    sequential, pipelined = run(False), run(True)
    assert [r.error for r in sequential] == [r.error for r in pipelined]
    assert sequential[6].result is None and "detector crashed" in sequential[6].error
    for a, b in zip(sequential, pipelined):
        if a.result is not None:
            np.testing.assert_array_equal(a.result.keypoints_nk3, b.result.keypoints_nk3)
            np.testing.assert_array_equal(a.track_ids, b.track_ids)
    # the failed frame keeps its place in the schedule: detector frames stay 0, 3, (6), 9
    assert [r.detected for r in sequential] == [t in (0, 3, 9) for t in range(12)]
