"""Official MPII evaluation: ``mpii_gt_val.mat`` written here in the official structure (scipy),
ground truth as predictions gives 100 %, a known perturbation gives hand-computed numbers, and
``test.py`` on an MPII config picks the .mat up next to the annotation JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy.io import savemat

from litehrnet.evaluation import PCKhError, evaluate_pckh, load_mpii_gt_mat
from litehrnet.evaluation.pckh import MPII_MAT_JOINTS, MPII_SUMMARY
from litehrnet.models import build_model
from litehrnet.training.predict import score_pckh

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_official_mat(path: Path, pos_nk2: np.ndarray, visible_nk: np.ndarray, headboxes_n22: np.ndarray) -> Path:
    """The variables and layouts of the official file: joints x coords x people, MATLAB cellstr names."""
    names = np.empty((1, 16), dtype=object)
    for k, name in enumerate(MPII_MAT_JOINTS):
        names[0, k] = np.array([name])
    pos = np.asarray(pos_nk2, dtype=np.float64).transpose(1, 2, 0)  # 16 x 2 x N
    savemat(str(path), {
        "dataset_joints": names,
        "jnt_missing": (1.0 - np.asarray(visible_nk, dtype=np.float64)).T,  # 16 x N
        "pos_gt_src": pos,
        "pos_pred_src": np.zeros_like(pos),  # present in the official file, unused
        "headboxes_src": np.asarray(headboxes_n22, dtype=np.float64).transpose(1, 2, 0),  # 2 x 2 x N
    })
    return path


def _two_people(rng):
    pos = rng.uniform(50, 400, (2, 16, 2)).round(1) + 1.0  # 1-based pixels
    visible = np.ones((2, 16))
    visible[1, 5] = 0  # person 1: left ankle not annotated
    # head boxes (top-left, bottom-right): 30 x 40 -> 0.6 * 50 = 30 px; 60 x 80 -> 0.6 * 100 = 60 px
    boxes = np.array([[[100.0, 100.0], [130.0, 140.0]], [[10.0, 20.0], [70.0, 100.0]]])
    return pos, visible, boxes


def test_official_mat_ground_truth_scores_one_hundred(tmp_path):
    pos, visible, boxes = _two_people(np.random.default_rng(0))
    gt = load_mpii_gt_mat(write_official_mat(tmp_path / "mpii_gt_val.mat", pos, visible, boxes))
    np.testing.assert_allclose(gt["joints_xy_nk2"], pos)
    np.testing.assert_array_equal(gt["visible_nk"], visible)
    np.testing.assert_allclose(gt["head_size_n"], [30.0, 60.0])
    out = evaluate_pckh(gt["joints_xy_nk2"], gt["joints_xy_nk2"], gt["visible_nk"], gt["head_size_n"])
    for key in ("PCKh", "PCKh@0.1", *MPII_SUMMARY, *(f"{g}@0.1" for g in MPII_SUMMARY)):
        assert out[key] == pytest.approx(100.0, abs=1e-9), key


def test_official_mat_known_perturbation(tmp_path):
    pos, visible, boxes = _two_people(np.random.default_rng(1))
    gt = load_mpii_gt_mat(write_official_mat(tmp_path / "mpii_gt_val.mat", pos, visible, boxes))
    pred = pos.copy()
    pred[0, 15, 0] += 10.0  # left wrist: 10 / 30 = 0.33 -> hit @0.5, miss @0.1
    pred[0, 10, 1] += 20.0  # right wrist: 20 / 30 = 0.67 -> miss
    pred[0, 9] += [1.2, 1.6]  # head top: 2 / 30 = 0.07 -> hit at both
    pred[1, 1, 0] -= 45.0  # person 1 right knee: 45 / 60 = 0.75 -> miss
    pred[1, 5] += 500.0  # not annotated: never counts
    pred[:, 6:8] += 300.0  # pelvis and thorax: outside the mean
    out = evaluate_pckh(pred, gt["joints_xy_nk2"], gt["visible_nk"], gt["head_size_n"])
    # 14 joints x 2 people - 1 unannotated = 27 in the mean; @0.5 two misses, @0.1 three
    assert out["PCKh"] == pytest.approx(100.0 * 25 / 27)
    assert out["PCKh@0.1"] == pytest.approx(100.0 * 24 / 27)
    assert out["Wrist"] == 75.0 and out["Wrist@0.1"] == 50.0  # right 1/2, left 2/2 | right 1/2, left 1/2
    assert out["Knee"] == 75.0 and out["Head"] == 100.0 and out["Head@0.1"] == 100.0
    assert out["Ankle"] == 100.0  # left ankle: 1 of 1 annotated
    assert out["PCKh_pelvis"] == 0.0 and out["Shoulder"] == 100.0


def test_score_pckh_compares_in_the_mat_one_based_pixels(tmp_path):
    """Our 0-based predictions are shifted by +1 for the .mat; with 1 px head sizes a missing shift fails."""
    pos, visible, _ = _two_people(np.random.default_rng(2))
    tiny = np.array([[[0.0, 0.0], [0.6, 0.8]]] * 2) / 0.6  # head size 1 px: @0.1 allows 0.1 px
    mat = write_official_mat(tmp_path / "mpii_gt_val.mat", pos, visible, tiny)
    records = [{"joints_xy": pos[i] - 1.0, "joints_visible": visible[i]} for i in range(2)]
    people = [{"index": i, "keypoints": np.c_[pos[i] - 1.0, np.ones(16)]} for i in (1, 0)]
    out = score_pckh(people, SimpleNamespace(records=records), tmp_path / "mpii_val.json", gt_mat=mat)
    assert out["PCKh@0.1"] == pytest.approx(100.0) and out["PCKh"] == pytest.approx(100.0)
    with pytest.raises(ValueError, match="2 people but"):
        score_pckh(people, SimpleNamespace(records=records * 2), tmp_path / "mpii_val.json", gt_mat=mat)
    shuffled = [records[1], records[0]]
    with pytest.raises(ValueError, match="same split in the same order"):
        score_pckh(people, SimpleNamespace(records=shuffled), tmp_path / "mpii_val.json", gt_mat=mat)


def test_bad_mat_files_name_the_problem(tmp_path):
    with pytest.raises(PCKhError, match="not found"):
        load_mpii_gt_mat(tmp_path / "none.mat")
    savemat(str(tmp_path / "other.mat"), {"jnt_missing": np.zeros((16, 3))})
    with pytest.raises(PCKhError, match="no 'pos_gt_src'"):
        load_mpii_gt_mat(tmp_path / "other.mat")
    pos, visible, boxes = _two_people(np.random.default_rng(3))
    path = write_official_mat(tmp_path / "reordered.mat", pos, visible, boxes)
    from scipy.io import loadmat

    data = loadmat(str(path))
    data["dataset_joints"] = data["dataset_joints"][:, ::-1]
    savemat(str(path), {k: v for k, v in data.items() if not k.startswith("__")})
    with pytest.raises(PCKhError, match="not the MPII order"):
        load_mpii_gt_mat(path)


@pytest.fixture(scope="module")
def mpii_setup(shared_data, tmp_path_factory):
    """MPII config on the 5-person mmpose sample (no head boxes in its JSON) + a random checkpoint."""
    tmp = tmp_path_factory.mktemp("mpii")
    sample = shared_data / "mmpose_samples/mpii"
    (tmp / "annotations").mkdir()
    ann = tmp / "annotations" / "mpii_val.json"
    ann.write_text((sample / "test_mpii.json").read_text())
    cfg = tmp / "mpii.yaml"
    cfg.write_text(f"_base_: {REPO_ROOT / 'configs/_base_/mpii.yaml'}\n"
                   "model:\n  input_hw: [64, 64]\n"
                   f"data:\n  root: {tmp}\n  val_ann: annotations/mpii_val.json\n  val_img_dir: {sample}\n"
                   "  workers: 0\n")
    torch.manual_seed(0)
    ckpt = tmp / "random.pth"
    torch.save({"state_dict": build_model("litehrnet_18", 16).state_dict()}, ckpt)
    return tmp, cfg, ckpt, json.loads(ann.read_text())


def _test_script():
    spec = importlib.util.spec_from_file_location("litehrnet_test_script_mpii", REPO_ROOT / "test.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_test_script_reads_the_official_mat_beside_the_json(mpii_setup, capsys):
    tmp, cfg, ckpt, records = mpii_setup
    script = _test_script()
    assert script.main([str(cfg), str(ckpt)]) == 1  # JSON without head boxes and no .mat: one clear line
    assert "headbox" in capsys.readouterr().err

    pos = np.array([r["joints"] for r in records], dtype=np.float64)  # the JSON's 1-based joints
    visible = np.array([r["joints_vis"] for r in records], dtype=np.float64)
    visible[:, 0] = 0  # right ankle marked missing in the .mat only
    huge = np.array([[[0.0, 0.0], [6000.0, 8000.0]]] * len(records))  # head size 6000 px: every joint hits @0.5
    write_official_mat(tmp / "annotations" / "mpii_gt_val.mat", pos, visible, huge)
    assert script.main([str(cfg), str(ckpt)]) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines() if line.strip())
    assert float(printed["PCKh"]) == pytest.approx(100.0) and float(printed["Head"]) == 100.0
    assert float(printed["PCKh_right_ankle"]) == 0.0  # no annotated right ankle left in the .mat's ground truth
    assert {"Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "PCKh@0.1", "Wrist@0.1"} <= set(printed)

    assert script.main([str(cfg), str(ckpt), "--cfg-options", f"data.val_gt_mat={tmp / 'missing.mat'}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.mat" in err[0]
