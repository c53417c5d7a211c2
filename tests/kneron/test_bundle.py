"""The Kneron handoff bundle: calibration = deploy preprocessing bit for bit, golden vectors that
onnxruntime reproduces from the bundle alone, the contract, bad input, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from torch import nn

from litehrnet.deploy.affine_runner import AffineCropRunner, Crops, NetworkInput
from litehrnet.deploy.pose_runner import PoseRunner
from litehrnet.export import export_onnx, pose_metadata, run_onnxruntime
from litehrnet.keypoints import get_keypoint_info
from litehrnet.kneron.bundle import BundleError, plan_calibration, write_bundle

REPO = Path(__file__).resolve().parents[2]
COCO = get_keypoint_info("coco")


class TinyPose(nn.Module):
    """1x3x64x64 -> 1x17x16x16 heatmaps (stride 4): enough graph for the bundle's contract."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 17, 3, 2, 1))

    def forward(self, x):
        return self.body(x)


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    torch.manual_seed(0)
    meta = pose_metadata("tiny", (64, 64), "kneron", "rgb", COCO.keypoint_names, COCO.flip_pairs, heatmap_stride=4)
    export_onnx(TinyPose(), path, (64, 64), metadata=meta)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in range(6):
        cv2.imwrite(str(folder / f"img_{i}.png"), rng.integers(0, 256, (50 + 7 * i, 40 + 5 * i, 3), np.uint8))
    return folder


def test_bundle_contents_match_the_deploy_chain(tmp_path, tiny_onnx, images):
    out = tmp_path / "bundle"
    summary = write_bundle(tiny_onnx, out, plan_calibration(images, num=5), num_calib=5, num_golden=3, target="KL630")
    assert summary["calibration"] == 5 and summary["golden"] == 3 and summary["target"] == "KL630"
    assert sorted(p.name for p in out.iterdir()) == ["calibration", "contract.json", "golden",
                                                     "kneron_toolchain.py", "model.onnx"]
    # calibration = the deploy crop runner (built from the shipped YAML) on the same image and box, bit for bit
    runner = AffineCropRunner.from_yaml(REPO / "utils/rsn_affine_init_params.yaml",
                                        NetworkInput((256, 192), "kneron", "rgb"))
    params = dict(runner.params, input_w=64, input_h=64)
    runner = AffineCropRunner(params, NetworkInput((64, 64), "kneron", "rgb"))
    sources = json.loads((out / "calibration" / "sources.json").read_text())
    for i, rec in enumerate(sources):
        img = cv2.imread(rec["image"])
        expected = runner(img, np.array([[0, 0, img.shape[1], img.shape[0]]], float)).inputs_nchw
        calib = np.load(out / "calibration" / f"{i:04d}.npy")
        assert calib.shape == (1, 3, 64, 64) and calib.dtype == np.float32
        np.testing.assert_array_equal(calib, expected)
        # kneron norm: every value is an exact int8 / 2^8
        q = calib * 256
        assert np.array_equal(q, np.round(q)) and q.min() >= -128 and q.max() <= 127
    # golden: onnxruntime on the bundle's model alone reproduces heatmaps; the deploy decode the keypoints
    contract = json.loads((out / "contract.json").read_text())
    golden = json.loads((out / "golden" / "keypoints.json").read_text())
    pose = PoseRunner({"onnx_path": str(out / "model.onnx"), "input_w": 64, "input_h": 64, "norm": "kneron",
                       "channel_order": "rgb", "decode": contract["decode"]["method"], "flip_test": False})
    for i, rec in enumerate(golden):
        x = np.load(out / "golden" / f"input_{i:03d}.npy")
        np.testing.assert_array_equal(x, np.load(out / rec["calibration_file"]))
        heatmaps = run_onnxruntime(str(out / "model.onnx"), x)
        np.testing.assert_array_equal(heatmaps, np.load(out / "golden" / f"heatmaps_{i:03d}.npy"))
        crops = Crops(x, np.array([rec["center_xy"]]), np.array([rec["scale_wh_px"]]))
        np.testing.assert_allclose(pose(crops)[0], rec["keypoints_xy_score"], rtol=0, atol=1e-4)
    # the contract
    assert contract["input"] == {"name": "input", "shape": [1, 3, 64, 64], "layout": "NCHW", "dtype": "float32",
                                 "channel_order": "rgb", "norm": "kneron", "float_formula": "x / 256 - 0.5",
                                 "plus_normalize_mode": "KP_NORMALIZE_KNERON", "hardware_input": "x - 128",
                                 "radix": 8}
    assert contract["output"] == {"name": "heatmaps", "shape": [1, 17, 16, 16], "heatmap_stride": 4}
    assert contract["keypoints"]["flip_pairs"][0] == [1, 2] and len(contract["keypoints"]["names"]) == 17
    assert contract["crop"]["box_padding"] == 1.25 and contract["decode"]["flip_test"] is False
    table = contract["npu_operator_table"]
    assert "v0.33.1" in table["table"] and table["target"] == "KL630"
    assert table["chips"]["KL720"] == {"verdict": "supported", "cpu_nodes": 0, "ambiguous_nodes": 0}
    script = (out / "kneron_toolchain.py").read_text()
    compile(script, "kneron_toolchain.py", "exec")   # valid Python (it runs only in Kneron's container)
    for step in ("kneronnxopt.optimize", "ktc.ModelConfig", ".evaluate()", ".analysis(", "ktc.compile(",
                 "ktc.kneron_inference(", 'default="630"'):
        assert step in script


def test_bundle_with_coco_people(tmp_path, tiny_onnx, shared_data):
    root = shared_data / "coco_val2017_dev"
    sources = plan_calibration(root / "val2017", root / "annotations/person_keypoints_val2017.json", num=6)
    write_bundle(tiny_onnx, tmp_path / "b", sources, num_calib=6, num_golden=2)
    records = json.loads((tmp_path / "b" / "calibration" / "sources.json").read_text())
    ann = json.loads((root / "annotations/person_keypoints_val2017.json").read_text())
    boxes = {tuple(a["bbox"]) for a in ann["annotations"]}
    assert len(records) == 6 and all(tuple(r["bbox_xywh"]) in boxes for r in records)


def test_bad_calibration_input_is_one_clear_line(tmp_path, tiny_onnx, images):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BundleError, match=r"empty: 0 image file\(s\).*no calibration images"):
        plan_calibration(empty, num=5)
    with pytest.raises(BundleError, match=r"6 image file\(s\).*fewer than the 100 .* --calib-num 6"):
        plan_calibration(images, num=100)
    with pytest.raises(BundleError, match="calibration image folder not found"):
        plan_calibration(tmp_path / "missing", num=5)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BundleError, match="bad.json: not a readable COCO keypoint annotation file"):
        plan_calibration(images, tmp_path / "bad.json", num=1)
    # unreadable images: skipped and counted; too few left -> nothing written, no temporary folder left
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for name in ("a.png", "b.png"):
        (mixed / name).write_bytes((images / "img_0.png").read_bytes())
    for name in ("0c.jpg", "0d.jpg"):          # sorted first: read (and skipped) before the good ones
        (mixed / name).write_bytes(b"not an image")
    with pytest.raises(BundleError, match=r"only 2 of 4 calibration crops .* 2 unreadable image\(s\) \(first: .*0c.jpg\)"):
        write_bundle(tiny_onnx, tmp_path / "out", plan_calibration(mixed, num=4), num_calib=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "empty", "mixed"]
    summary = write_bundle(tiny_onnx, tmp_path / "out", plan_calibration(mixed, num=2), num_calib=2, num_golden=1)
    assert summary["calibration"] == 2 and [Path(p).name for p in summary["skipped"]] == ["0c.jpg", "0d.jpg"]
    with pytest.raises(BundleError, match="exists and is not empty"):
        write_bundle(tiny_onnx, tmp_path / "out", plan_calibration(mixed, num=2), num_calib=2)


def test_bundle_refuses_batched_exports(tmp_path, images, capsys):
    torch.manual_seed(0)
    meta = pose_metadata("tiny", (64, 64), "kneron", "rgb", COCO.keypoint_names, COCO.flip_pairs, heatmap_stride=4)
    path = tmp_path / "b2.onnx"
    export_onnx(TinyPose(), path, (64, 64), metadata=meta, batch=2)
    with pytest.raises(BundleError, match=r"is not batch 1; .* without --batch/--dynamic-batch"):
        write_bundle(path, tmp_path / "out", plan_calibration(images, num=2), num_calib=2)
    assert not (tmp_path / "out").exists()
    import export2onnx

    cfg = str(REPO / "configs/coco/litehrnet_18_npu_coco_256x192.yaml")
    for option in (["--batch", "2"], ["--dynamic-batch"]):
        rc = export2onnx.main([cfg, "none", "--kneron-bundle", str(tmp_path / "kb"), *option])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and "--kneron-bundle" in err[0] and "batch-1" in err[0]
    rc = export2onnx.main([cfg, "none", "--kneron-bundle", str(tmp_path / "kb"), "--joint-upsampling"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--joint-upsampling is for CPU/GPU files" in err[0]
    assert not (tmp_path / "kb").exists()


def test_plus_float_modes_in_the_contract(tmp_path, images):
    torch.manual_seed(0)
    meta = pose_metadata("tiny", (64, 64), "tf", "bgr", COCO.keypoint_names, COCO.flip_pairs, heatmap_stride=4)
    path = tmp_path / "tf.onnx"
    export_onnx(TinyPose(), path, (64, 64), metadata=meta)
    write_bundle(path, tmp_path / "b", plan_calibration(images, num=2), num_calib=2, num_golden=1)
    contract = json.loads((tmp_path / "b" / "contract.json").read_text())
    assert contract["input"]["float_formula"] == "x / 127.5 - 1"
    assert contract["input"]["plus_normalize_mode"] == "KP_NORMALIZE_TENSOR_FLOW"
    assert (contract["input"]["radix"], contract["input"]["channel_order"]) == (7, "bgr")
    calib = np.load(tmp_path / "b" / "calibration" / "0000.npy")
    assert -1.0 <= calib.min() and calib.max() <= 1.0 and onnx.load(str(path)).graph.input[0].name == "input"


def test_export2onnx_writes_the_bundle(tmp_path, shared_data, capsys):
    import export2onnx

    root = shared_data / "coco_val2017_dev"
    cfg = str(REPO / "configs/coco/litehrnet_18_npu_coco_256x192.yaml")
    out = tmp_path / "kb"
    rc = export2onnx.main([cfg, "none", "-o", str(tmp_path / "m.onnx"), "--shape", "128", "96",
                           "--kneron-bundle", str(out), "--target", "KL730", "--calib-images", str(root / "val2017"),
                           "--calib-ann", str(root / "annotations/person_keypoints_val2017.json"),
                           "--calib-num", "3", "--golden-num", "1"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    assert f"Kneron bundle for KL730: {out} (3 calibration inputs, 1 golden vectors)" in printed.out
    contract = json.loads((out / "contract.json").read_text())
    assert contract["input"]["shape"] == [1, 3, 128, 96] and contract["input"]["radix"] == 8
    assert contract["npu_operator_table"]["chips"]["KL730"]["cpu_nodes"] == 0
    assert (out / "model.onnx").read_bytes() == (tmp_path / "m.onnx").read_bytes()
    assert 'default="730"' in (out / "kneron_toolchain.py").read_text()
