"""Affine crop + pose runners: geometry end to end, flip test, batching, parity with torch, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deploy_helpers import POSE_HW, affine_params, pose_params
from litehrnet.deploy import AffineCropRunner, NetworkInput, PoseRunner, RunnerError, TopDownSolution
from litehrnet.keypoints import COCO_BODY_17
from prepostprocess.topdown import preprocess_topdown

BOXES_XYWHS = np.array([[200, 100, 90, 180, 0.9], [20, 250, 160, 120, 0.8], [400, 20, 120, 240, 0.7]], np.float32)
DOTS_XY = np.array([[250.0, 170.0], [95.0, 320.0], [470.0, 150.0]])


def _dots_image(dots_xy: np.ndarray, sigma_px: float = 10.0) -> np.ndarray:
    yy, xx = np.mgrid[0:480, 0:640]
    img = np.zeros((480, 640), np.float64)
    for x, y in dots_xy:
        img = np.maximum(img, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma_px**2)))
    return np.repeat((img * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def _solution(onnx_path, **pose_overrides) -> TopDownSolution:
    pose = PoseRunner(pose_params(onnx_path, **pose_overrides))
    return TopDownSolution(None, AffineCropRunner(affine_params(), pose.network_input), pose)


@pytest.mark.parametrize("decode,tolerance_px", [("default", 3.0), ("dark", 0.05)])
def test_keypoints_land_on_the_dot_in_image_pixels(analytic_pose_onnx, decode, tolerance_px):
    result = _solution(analytic_pose_onnx, decode=decode)(_dots_image(DOTS_XY), BOXES_XYWHS)
    assert result.keypoints_nk3.shape == (3, 17, 3)
    np.testing.assert_array_equal(result.bboxes_xywhs, BOXES_XYWHS)
    errors = np.linalg.norm(result.keypoints_nk3[..., :2] - DOTS_XY[:, None, :], axis=-1)
    assert errors.max() < tolerance_px
    assert (result.keypoints_nk3[..., 2] > 0.8).all()  # heatmap maximum at a bright dot


@pytest.mark.parametrize("shift,crop_px_offset", [(False, -1.5), (True, 0.5)])
def test_flip_test_offsets_follow_the_stride4_flip_geometry(analytic_pose_onnx, shift, crop_px_offset):
    """Mirroring a 96-px crop maps heatmap column j to input x = 92 - 4j instead of 95 - 4j: 3 crop px.

    Averaged with the unflipped pass that leaves -1.5 crop px in x; the official 1-px heatmap shift
    (+4 px) turns it into +0.5. Exact with DARK decoding on this analytic model; y is untouched.
    """
    solution = _solution(analytic_pose_onnx, decode="dark", flip_test=True, shift_heatmap=shift)
    result = solution(_dots_image(DOTS_XY), BOXES_XYWHS)
    crop_px_to_image = solution.cropper(_dots_image(DOTS_XY), BOXES_XYWHS[:, :4]).scale_wh_px[:, 0] / POSE_HW[1]
    error_xy = result.keypoints_nk3[..., :2] - DOTS_XY[:, None, :]
    expected_x = np.broadcast_to((crop_px_offset * crop_px_to_image)[:, None], error_xy.shape[:2])
    np.testing.assert_allclose(error_xy[..., 0], expected_x, atol=0.1)
    assert np.abs(error_xy[..., 1]).max() < 0.05


def test_dynamic_batch_runs_once_and_matches_static(analytic_pose_onnx, analytic_pose_onnx_dynamic):
    img = _dots_image(DOTS_XY)
    static = _solution(analytic_pose_onnx)
    dynamic = _solution(analytic_pose_onnx_dynamic)
    assert static.pose.static_batch == 1 and dynamic.pose.static_batch is None
    calls = []
    original = dynamic.pose.infer
    dynamic.pose.infer = lambda x: calls.append(len(x)) or original(x)
    np.testing.assert_allclose(dynamic(img, BOXES_XYWHS).keypoints_nk3, static(img, BOXES_XYWHS).keypoints_nk3, atol=1e-5)
    assert calls == [3]


def test_no_person_gives_empty_arrays(analytic_pose_onnx):
    result = _solution(analytic_pose_onnx)(_dots_image(DOTS_XY), np.zeros((0, 5), np.float32))
    assert result.keypoints_nk3.shape == (0, 17, 3) and result.bboxes_xywhs.shape == (0, 5)


def test_runner_matches_torch_model_on_the_shared_crop(litehrnet18_model, litehrnet18_onnx):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    runner = PoseRunner(pose_params(litehrnet18_onnx))
    crops = AffineCropRunner(affine_params(), runner.network_input)(img, BOXES_XYWHS[:2, :4])
    got = runner.heatmaps(crops.inputs_nchw)
    inputs = np.stack([preprocess_topdown(img, c, s, POSE_HW, "kneron", "rgb")
                       for c, s in zip(crops.center_xy, crops.scale_wh_px)])
    with torch.no_grad():
        expected = litehrnet18_model(torch.from_numpy(inputs)).numpy()
    assert got.shape == (2, 17, 32, 24)
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("override,message", [
    ({"input_w": 128}, r"ONNX input is \(128, 96\)"),
    ({"norm": "torch"}, "norm='kneron'"),
    ({"channel_order": "bgr"}, "channel_order='rgb'"),
])
def test_pose_runner_refuses_mismatch_with_the_model(analytic_pose_onnx, override, message):
    with pytest.raises(RunnerError, match=message):
        PoseRunner(pose_params(analytic_pose_onnx, **override))


def test_crop_size_must_equal_pose_input(analytic_pose_onnx):
    pose = PoseRunner(pose_params(analytic_pose_onnx))
    with pytest.raises(RunnerError, match="affine crop size"):
        AffineCropRunner(affine_params(input_w=64), pose.network_input)


def test_cropper_must_be_built_for_the_pose_model(analytic_pose_onnx, tmp_path):
    pose = PoseRunner(pose_params(analytic_pose_onnx))
    other = NetworkInput(POSE_HW, "torch", "rgb")
    with pytest.raises(RunnerError, match="build the cropper with pose.network_input"):
        TopDownSolution(None, AffineCropRunner(affine_params(), other), pose)


def test_missing_onnx_is_a_clear_error(tmp_path):
    with pytest.raises(RunnerError, match="ONNX model not found"):
        PoseRunner(pose_params(tmp_path / "nope.onnx"))
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(RunnerError, match="onnxruntime cannot load"):
        PoseRunner(pose_params(bad))


def test_model_without_metadata_runs_with_the_yaml_values(analytic_pose_onnx, tmp_path):
    import onnx

    proto = onnx.load(str(analytic_pose_onnx))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    onnx.save(proto, str(bare))
    runner = PoseRunner(pose_params(bare, flip_test=True))
    assert runner.metadata == {} and runner.flip_pairs == [tuple(p) for p in COCO_BODY_17.flip_pairs]
    solution = TopDownSolution(None, AffineCropRunner(affine_params(), runner.network_input), runner)
    reference = _solution(analytic_pose_onnx, flip_test=True)(_dots_image(DOTS_XY), BOXES_XYWHS)
    np.testing.assert_allclose(solution(_dots_image(DOTS_XY), BOXES_XYWHS).keypoints_nk3, reference.keypoints_nk3)


def test_stage_timer_counts_images_persons_and_every_stage(analytic_pose_onnx):
    solution = _solution(analytic_pose_onnx)
    solution(_dots_image(DOTS_XY), BOXES_XYWHS)
    assert set(solution.timer.total_ms) == {"crop", "pose", "decode"}  # boxes given: no detector stage
    solution(_dots_image(DOTS_XY))  # detector-free: the whole image is the one box (the detector stage)
    timer = solution.timer
    assert (timer.images, timer.persons) == (2, 4)
    assert set(timer.total_ms) == {"detector", "crop", "pose", "decode"} and min(timer.total_ms.values()) > 0


def test_flip_test_with_dynamic_batch_is_one_call(analytic_pose_onnx, analytic_pose_onnx_dynamic):
    img = _dots_image(DOTS_XY)
    dynamic = _solution(analytic_pose_onnx_dynamic, flip_test=True)
    calls = []
    original = dynamic.pose.infer
    dynamic.pose.infer = lambda x: calls.append(len(x)) or original(x)
    expected = _solution(analytic_pose_onnx, flip_test=True)(img, BOXES_XYWHS).keypoints_nk3
    np.testing.assert_allclose(dynamic(img, BOXES_XYWHS).keypoints_nk3, expected, atol=1e-5)
    assert calls == [6]  # 3 crops + their mirrors
