"""OKS similarity and (soft) OKS-NMS against pycocotools and hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from litehrnet.evaluation import oks_iou, oks_nms, soft_oks_nms
from litehrnet.keypoints import COCO_BODY_17

SIGMAS = np.array(COCO_BODY_17.sigmas)


def _shifted(pose_kx3: np.ndarray, dx: float) -> np.ndarray:
    out = pose_kx3.copy()
    out[:, 0] += dx
    return out


def _oks_for_shift(dx: float, area: float) -> float:
    """Closed form: every keypoint moved by dx, both areas equal."""
    return float(np.mean(np.exp(-dx**2 / ((2 * SIGMAS) ** 2) / area / 2)))


def test_oks_iou_closed_form_and_vis_thr():
    rng = np.random.default_rng(0)
    pose = np.concatenate([rng.uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    other = _shifted(pose, 3.0)
    assert oks_iou(pose, other[None], 900.0, np.array([900.0]), SIGMAS)[0] == pytest.approx(
        _oks_for_shift(3.0, 900.0), rel=1e-9)
    # vis_thr: only keypoints confident in both poses count; here only keypoint 0
    other[1:, 2] = 0.1
    expected0 = math.exp(-9.0 / (2 * SIGMAS[0]) ** 2 / 900.0 / 2)
    assert oks_iou(pose, other[None], 900.0, np.array([900.0]), SIGMAS, vis_thr=0.2)[0] == pytest.approx(expected0)
    other[:, 2] = 0.1
    assert oks_iou(pose, other[None], 900.0, np.array([900.0]), SIGMAS, vis_thr=0.2)[0] == 0.0


def test_oks_iou_matches_pycocotools_compute_oks(shared_data):
    """Our OKS equals COCOeval.computeOks on real GT (pred area = GT area, GT-visible joints only)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ann_file = shared_data / "coco_val2017_dev/annotations/person_keypoints_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
    rng = np.random.default_rng(1)
    checked = 0
    for img_id in gt.getImgIds():
        anns = [a for a in gt.loadAnns(gt.getAnnIds(imgIds=img_id, iscrowd=False)) if a["num_keypoints"] > 0]
        if len(anns) < 2:
            continue
        dets = []
        for a in anns:
            kp = np.array(a["keypoints"], dtype=np.float64).reshape(17, 3)
            kp[:, :2] += rng.normal(0, 4, (17, 2))
            kp[:, 2] = 1.0
            dets.append({"image_id": img_id, "category_id": 1, "keypoints": kp.reshape(-1).tolist(), "score": 1.0})
        with contextlib.redirect_stdout(io.StringIO()):
            ev = COCOeval(gt, gt.loadRes(dets), iouType="keypoints")
            ev.params.imgIds = [img_id]
            ev.params.kpt_oks_sigmas = SIGMAS
            ev.evaluate()
        ref = ev.ious[(img_id, 1)]  # (num dets sorted by score, num gts)
        gts = ev._gts[img_id, 1]
        dts = sorted(ev._dts[img_id, 1], key=lambda d: -d["score"])
        for j, g in enumerate(gts):
            g_kx3 = np.array(g["keypoints"], dtype=np.float64).reshape(17, 3)
            if not np.any(g_kx3[:, 2] > 0):  # pycocotools falls back to box distances there
                continue
            d_nkx3 = np.array([d["keypoints"] for d in dts]).reshape(-1, 17, 3)
            ours = oks_iou(g_kx3, d_nkx3, g["area"], np.full(len(dts), g["area"]), SIGMAS, vis_thr=0.0)
            np.testing.assert_allclose(ours, ref[:, j], rtol=1e-9, atol=1e-12)
            checked += 1
    assert checked >= 10


def test_oks_nms_threshold_and_order():
    base = np.concatenate([np.random.default_rng(2).uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    area = 2500.0
    # find shifts giving OKS just above / below 0.9
    near, far = _shifted(base, 1.0), _shifted(base, 6.0)
    assert _oks_for_shift(1.0, area) > 0.9 > _oks_for_shift(6.0, area)
    distinct = _shifted(base, 300.0)
    poses = np.stack([near, base, far, distinct])
    scores = np.array([0.8, 0.9, 0.7, 0.5])
    keep = oks_nms(poses, scores, np.full(4, area), SIGMAS, thr=0.9)
    assert keep == [1, 2, 3]  # 'near' suppressed by the better 'base'; best first
    assert oks_nms(poses, scores, np.full(4, area), SIGMAS, thr=0.99) == [1, 0, 2, 3]
    assert oks_nms(poses[:1], scores[:1], np.full(1, area), SIGMAS) == [0]
    assert oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0), SIGMAS) == []


def test_soft_oks_nms_linear_and_gaussian():
    base = np.concatenate([np.random.default_rng(3).uniform(0, 100, (17, 2)), np.ones((17, 1))], axis=1)
    area = 2500.0
    near = _shifted(base, 1.0)
    o = _oks_for_shift(1.0, area)
    poses, scores, areas = np.stack([base, near]), np.array([0.9, 0.8]), np.full(2, area)
    keep, new = soft_oks_nms(poses, scores, areas, SIGMAS, thr=0.3, method="linear")
    assert keep == [0, 1]
    np.testing.assert_allclose(new, [0.9, 0.8 * (1 - o)])
    keep, new = soft_oks_nms(poses, scores, areas, SIGMAS, method="gaussian", gaussian_sigma=0.5)
    np.testing.assert_allclose(new, [0.9, 0.8 * math.exp(-o**2 / 0.5)])
    keep, _ = soft_oks_nms(poses, scores, areas, SIGMAS, max_dets=1)
    assert keep == [0]
    with pytest.raises(ValueError, match="method"):
        soft_oks_nms(poses, scores, areas, SIGMAS, method="hard")
