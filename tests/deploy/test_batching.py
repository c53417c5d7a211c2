"""Batched pose inference: batch-N and dynamic-batch exports, chunked runners equal to batch 1,
memory bounded by the chunk, and the refusals (Kneron path, bad batch options, missing CUDA)."""

from __future__ import annotations

import json
import threading
import tracemalloc

import numpy as np
import onnx
import pytest
import torch

from deploy_helpers import POSE_HW, affine_params, pose_metadata_for, pose_params
from litehrnet.deploy import AffineCropRunner, NetworkInput, ParamsError, PoseRunner, RunnerError, TopDownSolution
from litehrnet.export import ExportError, export_onnx
from litehrnet.export.onnx_export import batch_label
from prepostprocess import read_image_bgr

STATIC_BATCH = 4


@pytest.fixture(scope="module")
def crowd(shared_data):
    """The three COCO dev images with the most people (13 + 12 + 12) and their ground-truth boxes."""
    coco_dir = shared_data / "coco_val2017_dev"
    coco = json.loads((coco_dir / "annotations" / "person_keypoints_val2017.json").read_text())
    files = {img["id"]: img["file_name"] for img in coco["images"]}
    boxes: dict[int, list] = {}
    for ann in coco["annotations"]:
        if not ann.get("iscrowd") and ann["bbox"][2] > 1 and ann["bbox"][3] > 1:
            boxes.setdefault(ann["image_id"], []).append([*ann["bbox"], 1.0])
    busiest = sorted(boxes, key=lambda i: (-len(boxes[i]), i))[:3]
    return [(read_image_bgr(coco_dir / "val2017" / files[i]), np.asarray(boxes[i], np.float32)) for i in busiest]


@pytest.fixture(scope="module")
def lhr18_exports(crowd, tmp_path_factory):
    """litehrnet_18 at 128x96 with trained-like weights (heatmaps peak near 1 on real crops), exported
    at batch 1, static batch 4 and dynamic batch."""
    from litehrnet.export.synthetic import synthetic_trained_weights
    from litehrnet.models import build_model

    torch.manual_seed(0)
    cropper = AffineCropRunner(affine_params(), NetworkInput(POSE_HW, "kneron", "rgb"))
    crops = np.concatenate([cropper(img, boxes[:4, :4]).inputs_nchw for img, boxes in crowd])
    model = synthetic_trained_weights(build_model("litehrnet_18"), torch.from_numpy(crops))
    folder = tmp_path_factory.mktemp("batching")
    paths = {}
    for name, options in {"1": {}, str(STATIC_BATCH): {"batch": STATIC_BATCH}, "dynamic": {"dynamic_batch": True}}.items():
        paths[name] = folder / f"lhr18_{name}.onnx"
        export_onnx(model, paths[name], POSE_HW, metadata=pose_metadata_for("litehrnet_18"), verify_input=crops[:1],
                    **options)
    return paths


def _solution(onnx_path, **pose_overrides) -> TopDownSolution:
    pose = PoseRunner(pose_params(onnx_path, **pose_overrides))
    return TopDownSolution(None, AffineCropRunner(affine_params(), pose.network_input), pose)


def _record_rows(runner) -> list[int]:
    rows: list[int] = []
    infer = runner.infer
    runner.infer = lambda x: rows.append(len(x)) or infer(x)
    return rows


def test_exports_carry_their_batch_in_shape_and_metadata(lhr18_exports):
    for name, path in lhr18_exports.items():
        proto = onnx.load(str(path))
        dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
        assert {p.key: p.value for p in proto.metadata_props}["batch"] == name
        assert (dim0.dim_param if name == "dynamic" else str(dim0.dim_value)) == ("batch" if name == "dynamic" else name)
        assert PoseRunner(pose_params(path)).static_batch == (None if name == "dynamic" else int(name))


@pytest.mark.parametrize("model,batch_size,decode", [(str(STATIC_BATCH), None, "default"), ("dynamic", 5, "dark")])
def test_chunked_chain_equals_batch1_on_real_images(crowd, lhr18_exports, model, batch_size, decode):
    reference = _solution(lhr18_exports["1"], flip_test=True, decode=decode)
    chunked = _solution(lhr18_exports[model], flip_test=True, decode=decode, batch_size=batch_size)
    chunk = batch_size or STATIC_BATCH
    assert chunked.pose.chunk_size == chunk
    reference_rows, chunked_rows = _record_rows(reference.pose), _record_rows(chunked.pose)
    for img, boxes in crowd:
        expected, got = reference(img, boxes), chunked(img, boxes)
        assert got.keypoints_nk3.shape == (len(boxes), 17, 3)
        np.testing.assert_allclose(got.keypoints_nk3[..., :2], expected.keypoints_nk3[..., :2], rtol=0, atol=1e-3)
        np.testing.assert_allclose(got.keypoints_nk3[..., 2], expected.keypoints_nk3[..., 2], rtol=0, atol=1e-4)
        crops = reference.cropper(img, boxes[:, :4])
        heatmaps_1, heatmaps_n = reference.pose.heatmaps(crops.inputs_nchw), chunked.pose.heatmaps(crops.inputs_nchw)
        assert heatmaps_1.max() > 0.3  # trained-like weights: a comparison of real signal, not of ~0
        assert np.abs(heatmaps_n - heatmaps_1).max() <= 1e-4
    assert set(reference_rows) == {1}
    if model == "dynamic":  # crops and their mirrors together, never more than one chunk
        assert max(chunked_rows) == 2 * chunk and len(chunked_rows) < len(reference_rows) / chunk
    else:  # static batch 4: every call full, the last piece of a chunk zero-padded
        assert set(chunked_rows) == {STATIC_BATCH}
    assert sum(len(b) for _, b in crowd) == 37


def _record_threads(runner) -> list[tuple[str, int]]:
    """(thread name, rows) of every ``infer`` call, and the session each call ran on (by id)."""
    calls: list[tuple[str, int]] = []
    infer = runner.infer

    def recorded(x):
        session = getattr(runner._worker, "session", runner.session)
        calls.append((threading.current_thread().name, len(x), runner.sessions.index(session)))
        return infer(x)

    runner.infer = recorded
    return calls


@pytest.mark.parametrize("model,batch_size", [("1", None), (str(STATIC_BATCH), None), ("dynamic", 5)])
def test_pose_workers_give_identical_outputs_and_share_the_crops(crowd, lhr18_exports, model, batch_size):
    """``workers`` sessions run a chunk's pieces at once; every piece is computed as one session
    computes it, so the keypoints equal the one-worker chain's exactly."""
    one = _solution(lhr18_exports[model], flip_test=True, batch_size=batch_size)
    several = {w: _solution(lhr18_exports[model], flip_test=True, batch_size=batch_size, workers=w) for w in (2, 3)}
    calls = {w: _record_threads(s.pose) for w, s in several.items()}
    for img, boxes in crowd:
        expected = one(img, boxes)
        for solution in several.values():
            got = solution(img, boxes)
            np.testing.assert_array_equal(got.keypoints_nk3, expected.keypoints_nk3)
            np.testing.assert_array_equal(got.bboxes_xywhs, expected.bboxes_xywhs)
    for workers, made in calls.items():
        assert len(several[workers].pose.sessions) == workers
        # every session ran pieces (static batch 4: a chunk of 4 people and mirrors is 2 pieces)
        used = min(workers, 2) if model == str(STATIC_BATCH) else workers
        assert {session for _, _, session in made} == set(range(used))
        assert len({thread for thread, _, _ in made}) == used  # each on its own thread
        if model == "dynamic":  # a chunk of 5 people with mirrors = 10 rows, shared out equally
            assert max(rows for _, rows, _ in made) == -(-10 // workers)


def test_pose_workers_are_checked(analytic_pose_onnx):
    with pytest.raises(ParamsError, match="workers"):
        PoseRunner(pose_params(analytic_pose_onnx, workers=0))
    with pytest.raises(RunnerError, match="workers"):
        PoseRunner(pose_params(analytic_pose_onnx), workers=0)
    assert PoseRunner(pose_params(analytic_pose_onnx, workers=2)).workers == 2
    assert PoseRunner(pose_params(analytic_pose_onnx, workers=2), workers=1).workers == 1  # argument over YAML


def test_memory_is_bounded_by_one_chunk(analytic_pose_onnx_dynamic):
    """Python-side peak (crops, heatmaps) for 400 people stays that of one chunk, not 400 crops."""
    img = np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8)
    boxes = np.tile(np.array([[100, 50, 90, 180, 0.9]], np.float32), (400, 1))
    solution = _solution(analytic_pose_onnx_dynamic, flip_test=True, batch_size=8)
    rows = _record_rows(solution.pose)
    peaks = {}
    for people in (8, 400):
        solution(img, boxes[:people])  # warm
        tracemalloc.start()
        result = solution(img, boxes[:people])
        peaks[people] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert result.keypoints_nk3.shape == (people, 17, 3)
    one_crop = 3 * POSE_HW[0] * POSE_HW[1] * 4
    assert peaks[400] - peaks[8] < 20 * one_crop  # all 400 crops at once would be 400 x one_crop
    assert max(rows) == 16
    single = _solution(analytic_pose_onnx_dynamic, flip_test=True, batch_size=1)(img, boxes[:40])
    np.testing.assert_allclose(solution(img, boxes[:40]).keypoints_nk3, single.keypoints_nk3, atol=1e-5)


def test_static_batch_pads_the_last_piece_and_drops_it(lhr18_exports):
    runner = PoseRunner(pose_params(lhr18_exports[str(STATIC_BATCH)]))
    reference = PoseRunner(pose_params(lhr18_exports["1"]))
    x = np.random.default_rng(3).uniform(-0.5, 0.5, (STATIC_BATCH + 1, 3, *POSE_HW)).astype(np.float32)
    rows = _record_rows(runner)
    got = runner.infer_rows(x, max_rows=100)
    assert rows == [STATIC_BATCH, STATIC_BATCH] and got.shape[0] == STATIC_BATCH + 1
    np.testing.assert_allclose(got, reference.infer_rows(x, max_rows=1), atol=1e-5)


def test_bad_batch_options_are_refused_before_export():
    with pytest.raises(ExportError, match="positive integer"):
        batch_label(0, False)
    with pytest.raises(ExportError, match="not both"):
        batch_label(4, True)
    with pytest.raises(ExportError, match="drop --no-simplify"):
        export_onnx(torch.nn.Identity(), "unused.onnx", POSE_HW, metadata={}, simplify=False, dynamic_batch=True)


@pytest.mark.parametrize("option,kneron", [(["--batch", "8"], "--check-npu"), (["--dynamic-batch"], "--check-npu"),
                                           (["--batch", "2"], "--kneron-bundle")])
def test_kneron_path_refuses_batch_options_in_one_line(option, kneron, tmp_path, capsys):
    import export2onnx

    path_option = [kneron, "KL720" if kneron == "--check-npu" else str(tmp_path / "bundle")]
    code = export2onnx.main(["configs/coco/litehrnet_18_npu_coco_256x192.yaml", "none", "-o",
                             str(tmp_path / "x.onnx"), *path_option, *option])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "needs a static batch-1 graph" in err and " ".join(option) in err and kneron in err
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "bundle").exists()


def test_runner_batch_size_and_device_are_checked(analytic_pose_onnx):
    with pytest.raises(ParamsError, match="batch_size"):
        PoseRunner(pose_params(analytic_pose_onnx, batch_size=0))
    with pytest.raises(RunnerError, match="not supported"):
        PoseRunner(pose_params(analytic_pose_onnx), device="tpu")
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(RunnerError, match="onnxruntime-gpu"):
            PoseRunner(pose_params(analytic_pose_onnx), device="cuda")


class _BatchBakedIn(torch.nn.Module):
    """A graph whose batch size ends up in a constant that free_batch_axis cannot rewrite."""

    def forward(self, images_nchw: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.avg_pool2d(images_nchw, 4)
        return pooled + torch.ones(images_nchw.shape[0], 1, 1, 1)


def test_dynamic_export_that_cannot_be_freed_is_refused_and_not_written(tmp_path):
    out = tmp_path / "baked.onnx"
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 3, *POSE_HW)).astype(np.float32)
    with pytest.raises(ExportError, match="static --batch N"):
        export_onnx(_BatchBakedIn(), out, POSE_HW, metadata={}, verify_input=x, dynamic_batch=True)
    assert not out.exists()
    export_onnx(_BatchBakedIn(), out, POSE_HW, metadata={}, verify_input=x, batch=3)  # static batch: fine
    assert onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3
