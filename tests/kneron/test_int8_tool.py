"""tools/quantize.py on real COCO crops: refusals, the int8 ONNX, its report, and the deploy chain running it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import quantize as quantize_tool  # noqa: E402

CONFIG = REPO / "configs" / "coco" / "litehrnet_18_npu_coco_256x192.yaml"


@pytest.fixture(scope="module")
def coco(shared_data):
    train = shared_data / "coco_train2017_mini" / "annotations" / "person_keypoints_train2017.json"
    val = shared_data / "coco_val2017_dev" / "annotations" / "person_keypoints_val2017.json"
    return train, val


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, coco):
    out = tmp_path_factory.mktemp("int8") / "npu_int8.onnx"
    rc = quantize_tool.main([str(CONFIG), "none", "--calib", str(coco[0]), "--num-calib", "6", "--eval", str(coco[1]),
                             "--num-eval", "4", "--shape", "64", "64", "-o", str(out)])
    assert rc == 0
    return out


def test_refusals_are_one_line_before_work(tmp_path, coco, capsys):
    base = [str(CONFIG), "none", "--shape", "64", "64", "-o", str(tmp_path / "x.onnx")]
    assert quantize_tool.main(base + ["--calib", str(coco[1]), "--eval", str(coco[1]), "--num-calib", "4",
                                      "--num-eval", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "also in the evaluation set" in err[0] and str(coco[1]) in err[0]
    assert quantize_tool.main(base + ["--calib", str(coco[0]), "--num-calib", "100000"]) == 2
    err = capsys.readouterr().err.strip()
    assert "100000 asked" in err and "person crops available" in err
    assert quantize_tool.main(base + ["--calib", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    for bad in ("0.5", "inf", "wide"):
        assert quantize_tool.main(base + ["--calib", str(coco[0]), "--outlier-factor", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"--outlier-factor {bad}" in err[0] and "'auto'" in err[0]
    assert not (tmp_path / "x.onnx").exists()


def test_int8_onnx_metadata_and_report(quantized):
    model = onnx.load(str(quantized))
    meta = {p.key: p.value for p in model.metadata_props}
    scheme = json.loads(meta["quantization"])
    assert scheme["scheme"] == "kneron-int8-scaled" and scheme["input_radix"] == 8 and scheme["num_calib"] == 6
    assert scheme["calib_method"] == "percentile" and scheme["percentile"] == 0.999
    assert "per channel" in scheme["activations"] and "scale * 2**radix" in scheme["activations"]
    # --outlier-factor auto (the default) tried every candidate on held-out calibration crops and kept one
    assert set(scheme["outlier_factor_trials_px"]) == {"1", "1.25", "1.5", "2", "3"}
    best = min(scheme["outlier_factor_trials_px"].items(), key=lambda kv: (round(kv[1], 3), float(kv[0])))
    assert float(best[0]) == scheme["outlier_factor"]
    # per-channel activation radices and scales: one per channel, scale in [1, 2)
    radix, scales = json.loads(meta["int8_radix"]), json.loads(meta["int8_scale"])
    per_channel = [n for n, r in radix.items() if isinstance(r, list)]
    assert per_channel and all(len(scales[n]) == len(radix[n]) for n in per_channel)
    assert all(1.0 <= v < 2.0 for n in per_channel for v in scales[n])
    assert meta["norm"] == "kneron" and meta["input_hw"] == "64,64"  # the runners' contract is kept
    # weights are int8 initializers with power-of-two scales
    ints = [i for i in model.graph.initializer if i.name.endswith("::int8")]
    assert ints and all(i.data_type == onnx.TensorProto.INT8 for i in ints)
    report = json.loads(quantized.with_name(quantized.stem + "_fidelity.json").read_text())
    assert report["num_crops"] >= 4 and report["layers"][0]["name"] == "input"
    assert report["layers"][0]["exact"] is True            # kneron input at radix 8 is exact
    assert 0.0 <= report["self_ap"] <= 1.0 and report["ap_float"] is not None
    flagged = [layer["name"] for layer in report["layers"] if layer["below_floor"]]
    md = quantized.with_name(quantized.stem + "_fidelity.md").read_text()
    assert "Layers under 20 dB" in md and all(f"`{name}`" in md for name in flagged[:5])
    assert quantized.with_name(quantized.stem + "_fidelity.png").stat().st_size > 1000


def test_deploy_chain_runs_the_int8_model(quantized, coco, tmp_path, shared_data):
    import yaml

    import inference_e2e

    pose_yaml = tmp_path / "pose.yaml"
    pose = yaml.safe_load((REPO / "utils" / "lite_hrnet_init_params.yaml").read_text())
    pose.update({"onnx_path": str(quantized), "input_w": 64, "input_h": 64, "norm": "kneron", "channel_order": "rgb",
                 "flip_test": False})
    pose_yaml.write_text(yaml.safe_dump(pose))
    affine_yaml = tmp_path / "affine.yaml"
    affine = yaml.safe_load((REPO / "utils" / "rsn_affine_init_params.yaml").read_text())
    affine.update({"input_w": 64, "input_h": 64})
    affine_yaml.write_text(yaml.safe_dump(affine))
    coco_json = json.loads(coco[1].read_text())
    first = sorted(coco_json["images"], key=lambda i: i["id"])[:2]
    listing = tmp_path / "imgs.txt"
    listing.write_text("\n".join(str(shared_data / "coco_val2017_dev" / "val2017" / i["file_name"]) for i in first))
    out = tmp_path / "out.json"
    rc = inference_e2e.main(["--img-path", str(listing), "--boxes", str(coco[1]), "--lite_hrnet_params", str(pose_yaml),
                             "--rsn_affine_params", str(affine_yaml), "--threads", "1", "--save-path", str(out)])
    assert rc == 0
    records = json.loads(out.read_text())
    assert len(records) == 2
    kpts = np.array([p for r in records for p in r["lmk_coco_body_17pts"]], dtype=np.float64)
    assert kpts.ndim == 3 and kpts.shape[1:] == (17, 3) and np.isfinite(kpts).all()


def test_folder_of_crops_and_renamed_copies_are_caught(tmp_path, coco, shared_data):
    import shutil

    from litehrnet.kneron.calibration import CalibrationError, check_disjoint, coco_person_crops, person_crops

    evaluation = coco_person_crops(coco[1], (64, 48))
    folder = tmp_path / "crops"
    folder.mkdir()
    shutil.copy(evaluation[0].image_path, folder / "renamed.jpg")  # same bytes, another name
    crops = person_crops(folder, (64, 48))
    assert len(crops) == 1 and crops[0].bbox_xywh[:2] == (0.0, 0.0)
    with pytest.raises(CalibrationError, match="also in the evaluation set"):
        check_disjoint(crops, evaluation, folder, coco[1])
    train = coco_person_crops(coco[0], (64, 48))
    check_disjoint(train, evaluation, coco[0], coco[1])  # train2017 vs val2017: disjoint, no error
