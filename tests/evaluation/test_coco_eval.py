"""COCO keypoint evaluation path: oracle AP 1.0 and equality with a direct pycocotools run."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from litehrnet.evaluation import (
    EvaluationError,
    evaluate_coco_keypoints,
    people_to_coco_results,
    rescore,
    write_results_json,
)
from litehrnet.keypoints import COCO_BODY_17

SIGMAS = np.array(COCO_BODY_17.sigmas)


@pytest.fixture(scope="module")
def ann_file(shared_data):
    return shared_data / "coco_val2017_dev/annotations/person_keypoints_val2017.json"


@pytest.fixture(scope="module")
def gt_people(ann_file):
    """Ground-truth people with keypoints, as predictions (unlabelled joints at the box centre, score 0)."""
    with open(ann_file, encoding="utf-8") as f:
        anns = json.load(f)["annotations"]
    people = []
    for a in anns:
        if a["iscrowd"] or a["num_keypoints"] == 0:
            continue
        kp = np.array(a["keypoints"], dtype=np.float64).reshape(17, 3)
        x, y, w, h = a["bbox"]
        labelled = kp[:, 2] > 0
        kp[~labelled, :2] = (x + w / 2, y + h / 2)
        kp[:, 2] = labelled.astype(np.float64)
        people.append({"image_id": a["image_id"], "keypoints": kp, "bbox_score": 1.0,
                       "area": w * h * 1.25**2})
    assert len(people) == 80  # documented content of coco_val2017_dev
    return people


def test_rescore_known_numbers():
    kp = np.zeros((17, 3))
    kp[:4, 2] = [0.9, 0.1, 0.5, 0.2]  # 0.1 and 0.2 are not above 0.2
    assert rescore(kp, 0.8) == pytest.approx(0.8 * 0.7)
    assert rescore(kp, 0.8, kpt_score_thr=0.6) == pytest.approx(0.8 * 0.9)
    assert rescore(np.zeros((17, 3)), 1.0) == 0.0


def test_ground_truth_as_predictions_gives_ap_one(gt_people, ann_file, tmp_path):
    results = people_to_coco_results(gt_people)  # rescoring + OKS-NMS 0.9
    assert len(results) == 80  # NMS removed no true person
    path = write_results_json(results, tmp_path / "results.json")
    assert not list(tmp_path.glob("*.tmp"))
    metrics = evaluate_coco_keypoints(path, ann_file)
    assert metrics["AP"] == pytest.approx(1.0)
    assert metrics["AR"] == pytest.approx(1.0)
    assert metrics["AP50"] == pytest.approx(1.0)


def _perturbed_people(gt_people, seed=0):
    """Noisy copies with random scores, near-duplicates (to be NMS-ed) and false positives."""
    rng = np.random.default_rng(seed)
    people = []
    for p in gt_people:
        kp = p["keypoints"].copy()
        kp[:, :2] += rng.normal(0.0, 0.03 * math.sqrt(p["area"]) / 1.25, (17, 2))
        kp[:, 2] = rng.uniform(0.05, 1.0, 17)
        person = dict(p, keypoints=kp, bbox_score=float(rng.uniform(0.3, 1.0)))
        people.append(person)
        if rng.uniform() < 0.5:  # duplicate with a slightly moved pose and a lower score
            dup = kp.copy()
            dup[:, :2] += rng.normal(0.0, 0.3, (17, 2))
            people.append(dict(person, keypoints=dup, bbox_score=person["bbox_score"] * 0.9))
        if rng.uniform() < 0.3:  # a false positive somewhere else in the image
            fp = kp.copy()
            fp[:, :2] += rng.uniform(80, 200, 2)
            people.append(dict(person, keypoints=fp, bbox_score=float(rng.uniform(0.3, 1.0))))
    return people


def _reference_results(people, thr=0.9, kpt_thr=0.2):
    """Independent loop-based rescoring + greedy OKS-NMS (written from the formulas)."""
    out = []
    for image_id in sorted({p["image_id"] for p in people}):
        group = [p for p in people if p["image_id"] == image_id]
        scored = []
        for p in group:
            s = [v for v in p["keypoints"][:, 2] if v > kpt_thr]
            scored.append((p["bbox_score"] * (sum(s) / len(s) if s else 0.0), p))
        scored.sort(key=lambda t: -t[0])
        kept = []
        for score, p in scored:
            suppressed = False
            for _, q in kept:
                sims = []
                for k in range(17):
                    d2 = (p["keypoints"][k, 0] - q["keypoints"][k, 0]) ** 2 + (p["keypoints"][k, 1] - q["keypoints"][k, 1]) ** 2
                    s2 = (q["area"] + p["area"]) / 2
                    sims.append(math.exp(-d2 / (2 * s2 * (2 * SIGMAS[k]) ** 2)))
                if sum(sims) / 17 > thr:
                    suppressed = True
                    break
            if not suppressed:
                kept.append((score, p))
        for score, p in kept:
            out.append({"image_id": image_id, "category_id": 1,
                        "keypoints": p["keypoints"].reshape(-1).tolist(), "score": score})
    return out


def _direct_pycocotools(results, ann_file):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        ev = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_our_ap_equals_direct_pycocotools(gt_people, ann_file):
    people = _perturbed_people(gt_people)
    ours = evaluate_coco_keypoints(people_to_coco_results(people), ann_file)
    ref_results = _reference_results(people)
    assert len(ref_results) < len(people)  # the duplicates were suppressed
    stats = _direct_pycocotools(ref_results, ann_file)
    assert 0.2 < ours["AP"] < 0.95  # a non-trivial operating point
    assert ours["AP"] == pytest.approx(stats[0], abs=1e-9)
    assert ours["AP50"] == pytest.approx(stats[1], abs=1e-9)
    assert ours["AR"] == pytest.approx(stats[5], abs=1e-9)
    # without NMS the duplicates become false positives: AP must drop
    no_nms = evaluate_coco_keypoints(people_to_coco_results(people, nms="none"), ann_file)
    assert no_nms["AP"] < ours["AP"] - 0.01


def test_image_subset_and_empty_results(gt_people, ann_file):
    first_image = gt_people[0]["image_id"]
    subset = [p for p in gt_people if p["image_id"] == first_image]
    # all images: the other images' people are missed; restricted to this image: perfect
    assert evaluate_coco_keypoints(people_to_coco_results(subset), ann_file)["AR"] < 0.5
    only = evaluate_coco_keypoints(people_to_coco_results(subset), ann_file, image_ids=[first_image])
    assert only["AP"] == pytest.approx(1.0)
    assert evaluate_coco_keypoints([], ann_file)["AP"] == 0.0


def test_clear_errors(ann_file, tmp_path):
    with pytest.raises(EvaluationError, match="annotation file not found"):
        evaluate_coco_keypoints([], tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EvaluationError, match="not a COCO annotation file"):
        evaluate_coco_keypoints([], bad)
    with pytest.raises(EvaluationError, match="not valid JSON"):
        evaluate_coco_keypoints(bad, ann_file)
    stray = [{"image_id": 123456789, "category_id": 1, "keypoints": [0.0] * 51, "score": 1.0}]
    with pytest.raises(EvaluationError, match="absent from the annotation file"):
        evaluate_coco_keypoints(stray, ann_file)
    with pytest.raises(ValueError, match="unknown nms"):
        people_to_coco_results([{"image_id": 1, "keypoints": np.ones((17, 3)), "bbox_score": 1, "area": 1}],
                               nms="iou")
