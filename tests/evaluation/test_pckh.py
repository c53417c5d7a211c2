"""MPII PCKh with hand-computed numbers and the MPII conventions (head box x0.6, excluded joints)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from litehrnet.evaluation import PCKhError, evaluate_pckh, head_size_from_headbox, load_mpii_gt, pckh_correct


def test_head_size_is_point_six_times_box_diagonal():
    np.testing.assert_allclose(head_size_from_headbox([[[10, 20], [40, 60]], [[0, 0], [6, 8]]]), [30.0, 6.0])


def _two_people():
    """Person 0: head size 30; person 1: head size 6. Errors chosen around the 0.1 / 0.5 boundaries."""
    gt = np.zeros((2, 16, 2))
    pred = gt.copy()
    vis = np.ones((2, 16))
    head = head_size_from_headbox([[[0, 0], [30, 40]], [[0, 0], [6, 8]]])
    # person 0: error 2 px (<= 3 = 0.1*30) on joints 0-3, 10 px (<= 15) on 4-7, 20 px (> 15) on 8-15
    pred[0, 0:4, 0] = 2.0
    pred[0, 4:8, 1] = 10.0
    pred[0, 8:16, 0] = 20.0
    # person 1: error exactly 3 px = 0.5*6 (counts, <=) on every joint; joint 15 unannotated
    pred[1, :, 1] = 3.0
    vis[1, 15] = 0
    return pred, gt, vis, head


def test_pckh_correct_boundaries():
    pred, gt, vis, head = _two_people()
    hit05 = pckh_correct(pred, gt, vis, head, 0.5)
    assert hit05[0].tolist() == [True] * 8 + [False] * 8
    assert hit05[1].tolist() == [True] * 15 + [False]  # unannotated never counts
    hit01 = pckh_correct(pred, gt, vis, head, 0.1)
    assert hit01[0].tolist() == [True] * 4 + [False] * 12
    assert not hit01[1].any()


def test_evaluate_pckh_known_numbers():
    pred, gt, vis, head = _two_people()
    out = evaluate_pckh(pred, gt, vis, head)
    # per joint @0.5: joints 0-7 2/2 hits -> 100; joints 8-14 1/2 -> 50; joint 15: 0 of 1 annotated -> 0
    assert out["PCKh_right_ankle"] == 100.0 and out["PCKh_head_top"] == 50.0 and out["PCKh_left_wrist"] == 0.0
    assert out["Head"] == 50.0
    assert out["Ankle"] == 100.0 and out["Knee"] == 100.0 and out["Hip"] == 100.0
    assert out["Wrist"] == pytest.approx((50.0 + 0.0) / 2)
    # mean over annotated joints except pelvis (6) and thorax (7): hits = 12 (joints 0-5) + 7 (8-14)
    # out of 12 + 8*2 - 1 = 27 annotated
    assert out["PCKh"] == pytest.approx(100.0 * (12 + 7) / 27)
    # @0.1: joints 0-3 of person 0 only -> 4 hits / 27
    assert out["PCKh@0.1"] == pytest.approx(100.0 * 4 / 27)


def test_pelvis_and_thorax_do_not_change_the_mean():
    pred, gt, vis, head = _two_people()
    before = evaluate_pckh(pred, gt, vis, head)["PCKh"]
    pred[:, 6:8] += 1000.0
    after = evaluate_pckh(pred, gt, vis, head)
    assert after["PCKh"] == before and after["PCKh_pelvis"] == 0.0


def test_pckh_input_errors():
    pred, gt, vis, head = _two_people()
    with pytest.raises(PCKhError, match="head sizes are <= 0"):
        evaluate_pckh(pred, gt, vis, np.array([30.0, 0.0]))
    with pytest.raises(PCKhError, match="16 joints"):
        evaluate_pckh(pred[:, :10], gt[:, :10], vis[:, :10], head)
    with pytest.raises(PCKhError, match="shape mismatch"):
        evaluate_pckh(pred[:1], gt, vis, head)


def test_load_mpii_gt_real_sample_needs_head_boxes(shared_data, tmp_path):
    sample = shared_data / "mmpose_samples/mpii/test_mpii.json"
    with pytest.raises(PCKhError, match=r"test_mpii.json: record 0 .* no 'headbox' or 'head_size'"):
        load_mpii_gt(sample)
    records = json.loads(sample.read_text())
    records[0]["headbox"] = [[900.0, 50.0], [1020.0, 210.0]]  # 120 x 160 -> 200 * 0.6 = 120
    for r in records[1:]:
        r["head_size"] = 50.0
    fixed = tmp_path / "mpii_with_heads.json"
    fixed.write_text(json.dumps(records))
    gt = load_mpii_gt(fixed)
    assert gt["head_size_n"][0] == pytest.approx(120.0) and gt["head_size_n"][1] == 50.0
    assert gt["joints_xy_nk2"].shape == (len(records), 16, 2)
    assert evaluate_pckh(gt["joints_xy_nk2"], gt["joints_xy_nk2"], gt["visible_nk"], gt["head_size_n"])["PCKh"] == 100.0
    with pytest.raises(PCKhError, match="not found"):
        load_mpii_gt(tmp_path / "missing.json")
