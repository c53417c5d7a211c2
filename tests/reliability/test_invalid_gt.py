"""Invalid ground truth (NaN/inf, negative sizes, missing fields) is skipped, named and never scores.

The same rule (``litehrnet/evaluation/gt_checks.py``) serves evaluation (``test.py``,
``tools/eval_e2e.py`` through ``load_coco_gt``) and training (``load_coco_records``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from litehrnet.data.records import load_coco_det_records, load_coco_records
from litehrnet.evaluation import evaluate_coco_keypoints, load_coco_gt
from litehrnet.evaluation.gt_checks import annotation_problem

IMAGES = [{"id": i, "file_name": f"{i:012d}.jpg", "width": 320, "height": 240} for i in (1, 2, 3)]


def _person(ann_id: int, image_id: int, x: float, y: float) -> dict:
    rng = np.random.default_rng(ann_id)
    kps = []
    for _ in range(17):
        kps += [round(float(x + rng.uniform(0, 60)), 2), round(float(y + rng.uniform(0, 120)), 2), 2]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": [x, y, 60.0, 120.0],
            "area": 7200.0, "num_keypoints": 17, "keypoints": kps}


def _gt() -> dict:
    anns = [_person(10 + i, img["id"], 20.0 + 100 * (i % 2), 40.0) for i, img in enumerate(IMAGES * 2)]
    return {"images": IMAGES, "annotations": anns, "categories": [{"id": 1, "name": "person", "keypoints": ["k"] * 17}]}


CORRUPTIONS = {
    "nan keypoint": lambda a: a["keypoints"].__setitem__(0, math.nan),
    "inf keypoint": lambda a: a["keypoints"].__setitem__(4, math.inf),
    "nan area": lambda a: a.__setitem__("area", math.nan),
    "negative width": lambda a: a["bbox"].__setitem__(2, -60.0),
    "no keypoints": lambda a: a.pop("keypoints"),
    "no bbox": lambda a: a.pop("bbox"),
}


def _write(path, gt) -> str:
    path.write_text(json.dumps(gt))  # Python's json writes NaN/Infinity literals, as a broken tool would
    return str(path)


def _far_predictions(gt: dict) -> list[dict]:
    """One confident prediction per GT person, 150 px away from it: an untrained model's AP is 0."""
    far = [v + 150 if i % 3 != 2 else 1.0 for i, v in enumerate(_person(0, 0, 20.0, 40.0)["keypoints"])]
    return [{"image_id": a["image_id"], "category_id": 1, "score": 0.9, "keypoints": far} for a in gt["annotations"]]


def _raw_pycocotools_ap(ann_file: str, results: list[dict]) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        ev = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_nan_ground_truth_would_raise_ap_without_the_check(tmp_path):
    gt = _gt()
    results = _far_predictions(gt)
    clean = _write(tmp_path / "clean.json", gt)
    for ann in gt["annotations"][::2]:
        CORRUPTIONS["nan keypoint"](ann)
    corrupt = _write(tmp_path / "nan.json", gt)
    assert _raw_pycocotools_ap(clean, results) == 0.0
    assert _raw_pycocotools_ap(corrupt, results) > 0.0  # the bug the check exists for
    assert evaluate_coco_keypoints(results, corrupt)["AP"] == 0.0


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_invalid_gt_cannot_raise_ap(kind, tmp_path, capsys):
    gt = _gt()
    good = [dict(a, keypoints=list(a["keypoints"])) for a in gt["annotations"]]
    half_right = [{"image_id": a["image_id"], "category_id": 1, "score": 0.9, "keypoints": a["keypoints"]}
                  for a in good[::2]] + _far_predictions(gt)
    clean_ap = evaluate_coco_keypoints(half_right, _write(tmp_path / "clean.json", gt))["AP"]
    for ann in gt["annotations"][1::2]:  # corrupt people whose prediction is far away
        ann["keypoints"] = list(ann["keypoints"])
        ann["bbox"] = list(ann["bbox"])
        CORRUPTIONS[kind](ann)
    corrupt_file = _write(tmp_path / "corrupt.json", gt)
    capsys.readouterr()
    coco = load_coco_gt(corrupt_file)
    err = capsys.readouterr().err
    assert f"{corrupt_file}: skipped 3 invalid ground-truth annotation(s)" in err
    assert "id 11:" in err and "id 13:" in err and err.count("\n") == 1
    assert len(coco.dataset["annotations"]) == 3 and len(coco.invalid_annotations) == 3
    corrupt_ap = evaluate_coco_keypoints(half_right, coco)["AP"]
    # invalid people are left out exactly: same AP as a file without them, never more for the far ones
    removed = dict(gt, annotations=gt["annotations"][0::2])
    removed_file = _write(tmp_path / "removed.json", removed)
    assert corrupt_ap == pytest.approx(evaluate_coco_keypoints(half_right, removed_file)["AP"])
    far_only = evaluate_coco_keypoints(_far_predictions(gt), coco)["AP"]
    assert far_only == 0.0 and 0.0 < clean_ap


def test_training_records_skip_invalid_with_a_count(tmp_path, capsys):
    gt = _gt()
    CORRUPTIONS["nan keypoint"](gt["annotations"][0])
    CORRUPTIONS["no keypoints"](gt["annotations"][3])
    ann_file = _write(tmp_path / "train.json", gt)
    records = load_coco_records(ann_file, tmp_path, 17)
    err = capsys.readouterr().err
    assert len(records) == 4
    assert all(np.isfinite(r["joints_xy"]).all() for r in records)
    assert f"{ann_file}: skipped 2 invalid ground-truth annotation(s) (id 10: keypoints are not finite" in err
    assert "id 13: no 'keypoints' field" in err


def test_detection_file_skips_non_finite_and_empty_boxes(tmp_path, capsys):
    gt_file = _write(tmp_path / "gt.json", _gt())
    dets = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 50, 100], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [10, math.nan, 50, 100], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [10, 10, 0, 100], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [10, 10, 50, 100], "score": math.inf}]
    records = load_coco_det_records(_write(tmp_path / "dets.json", dets), gt_file, tmp_path, 17)
    assert len(records) == 1
    assert "skipped 3 invalid detection(s)" in capsys.readouterr().err


def test_problem_rules():
    ok = _person(1, 1, 0.0, 0.0)
    assert annotation_problem(ok) is None
    assert annotation_problem(ok, num_keypoints=16) == "17 keypoints, expected 16"
    assert annotation_problem(dict(ok, keypoints=ok["keypoints"][:-1])) is not None
    assert annotation_problem(dict(ok, keypoints=[0, 0, -1] * 17)) == "a keypoint visibility is negative"
    assert annotation_problem(dict(ok, num_keypoints=-2)) == "num_keypoints is not a finite number >= 0"
    assert annotation_problem(dict(ok, bbox=[0, 0, 0, 0])) is None  # zero size: filtered later, not invalid
    crowd = {"id": 2, "image_id": 1, "iscrowd": 1, "bbox": [0, 0, 10, 10], "area": 100}
    assert annotation_problem(crowd) is None
    assert annotation_problem(crowd, need_area=True) is None
    assert annotation_problem({k: v for k, v in ok.items() if k != "area"}, need_area=True) == "no 'area' field"


def test_eval_e2e_does_not_score_nan_ground_truth(tmp_path, capsys):
    from tools import eval_e2e

    gt = _gt()
    for ann in gt["annotations"]:
        CORRUPTIONS["nan keypoint"](ann) if ann["id"] % 2 else CORRUPTIONS["no keypoints"](ann)
    gt["annotations"].append(_person(99, 1, 200.0, 40.0))  # one valid person, far from every prediction
    records = [{"img_path": f"imgs/{img['file_name']}", "bbox": [[0, 0, 60, 120, 0.9]],
                "lmk_coco_body_17pts": [[[20.0 + 150, 40.0 + 150, 0.9]] * 17]} for img in IMAGES]
    (tmp_path / "pred.json").write_text(json.dumps(records))
    gt_file = _write(tmp_path / "gt.json", gt)
    rc = eval_e2e.main(["--gt", gt_file, "--pred", str(tmp_path / "pred.json"), "--out", str(tmp_path / "m.json")])
    assert rc == 0
    captured = capsys.readouterr()
    assert f"{gt_file}: skipped 6 invalid ground-truth annotation(s)" in captured.err
    assert "no 'keypoints' field" in captured.err and "not finite" in captured.err
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["AP"] == 0.0 and metrics["images_scored"] == 3.0
