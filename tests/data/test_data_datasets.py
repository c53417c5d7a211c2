import json
import warnings

import numpy as np
import pytest
import torch

from helpers_coco import coco_cfg, person, write_coco
from litehrnet.config import SCHEMA, merge
from litehrnet.data import AnnotationError, build_dataset, collate, load_coco_det_records, load_coco_records


def test_coco_mini_train_items(shared_data):
    root = shared_data / "coco_train2017_mini"
    cfg = coco_cfg(root, train_ann="annotations/person_keypoints_train2017.json", img_dir="train2017")
    ds = build_dataset(cfg, "train")
    assert len(ds) == 86  # people with keypoints (README of ../shared)
    items = [ds[i] for i in range(4)]
    batch = collate(items)
    assert batch["img"].shape == (4, 3, 256, 192) and batch["img"].dtype == torch.float32
    assert batch["target"].shape == (4, 17, 64, 48) and batch["target_weight"].shape == (4, 17, 1)
    assert batch["center_xy"].shape == (4, 2) and batch["scale_wh_px"].dtype == np.float64
    assert len(batch["image_file"]) == 4 and batch["num_skipped"] == 0
    # weighted targets have a peak (near 1 unless the joint left the crop), unweighted ones are empty
    w = batch["target_weight"][..., 0] > 0
    peaks = batch["target"].flatten(2).max(dim=2).values
    assert (peaks[w] > 0).all() and (peaks[w] > 0.9).float().mean() > 0.8 and (peaks[~w] == 0).all()
    # reproducible per (seed, epoch, index); another epoch draws other augmentations
    np.testing.assert_array_equal(ds[3]["img"].numpy(), items[3]["img"].numpy())
    ds.set_epoch(1)
    assert any(not np.array_equal(ds[i]["img"].numpy(), items[i]["img"].numpy()) for i in range(4))


def test_augmentation_rates_on_generated_set(tmp_path):
    anns = [person(1, i, (10 + i, 12, 40, 60)) for i in range(40)]
    write_coco(tmp_path, {1: (90, 70)}, anns)
    ds = build_dataset(coco_cfg(tmp_path, dataset="coco_custom"), "train")  # any COCO-format set
    items = [ds[i] for i in range(len(ds))]
    flips = np.mean([it["flipped"] for it in items])
    rots = np.mean([it["rotation"] != 0 for it in items])
    assert 0.25 < flips < 0.75 and 0.35 < rots < 0.85
    val = build_dataset(coco_cfg(tmp_path), "val")
    assert not any(val[i]["flipped"] or val[i]["rotation"] for i in range(5))


def test_coco_filters(tmp_path):
    anns = [
        person(1, 1, (10, 10, 30, 50)),                        # kept
        person(1, 2, (10, 10, 30, 50), iscrowd=1),             # crowd
        person(1, 3, (10, 10, 30, 50), n_visible=0),           # no keypoints
        person(1, 4, (200, 200, 30, 50)),                      # box outside the image
        person(1, 5, (10, 10, 30, 50), area=0),                # zero area
        person(1, 6, (-10, 60, 200, 200), n_visible=3),        # clipped to the image
    ]
    anns[0]["keypoints"][2] = 1  # labelled but occluded counts as visible
    ann_file = write_coco(tmp_path, {1: (100, 80)}, anns)
    recs = load_coco_records(ann_file, tmp_path / "images", 17)
    assert [r["joints_visible"].sum() for r in recs] == [17, 3]
    np.testing.assert_allclose(recs[1]["bbox_xywh"], [0, 60, 79, 39])  # x2 = min(W-1, x1 + w - 1)
    assert recs[0]["image_file"].endswith("000001.png") and recs[0]["bbox_score"] == 1.0


def test_detection_file_and_threshold(shared_data):
    root = shared_data / "coco_val2017_dev"
    det_file = shared_data / "coco_dets/COCO_val2017_detections_AP_H_56_person_subset.json"
    dets = json.loads(det_file.read_text())
    ann = root / "annotations/person_keypoints_val2017.json"
    for thr in (0.0, 0.5):
        recs = load_coco_det_records(det_file, ann, root / "val2017", 17, score_thr=thr)
        assert len(recs) == sum(d["score"] >= thr and d["category_id"] == 1 for d in dets)
        assert all(r["joints_visible"].sum() == 0 and r["bbox_score"] >= thr for r in recs)
    cfg = coco_cfg(root, train_ann="annotations/person_keypoints_val2017.json", img_dir="val2017",
                   use_gt_bbox=False, det_file=str(det_file), det_score_thr=0.5)
    ds = build_dataset(cfg, "val")
    item = ds[0]
    assert len(ds) == 18 and item["target_weight"].sum() == 0 and 0.5 <= item["bbox_score"] <= 1


def test_mpii_json_layout(shared_data):
    root = shared_data / "mmpose_samples/mpii"
    raw = json.loads((root / "test_mpii.json").read_text())
    cfg = merge(SCHEMA, {
        "model": {"num_keypoints": 16, "input_hw": [256, 256]},
        "data": {"dataset": "mpii", "keypoint_layout": "mpii", "root": str(root),
                 "train_ann": "test_mpii.json", "train_img_dir": "."},
    })
    ds = build_dataset(cfg, "train")
    assert len(ds) == len(raw) == 5
    rec, a = ds.records[0], raw[0]
    np.testing.assert_allclose(rec["center_xy"], [a["center"][0] - 1, a["center"][1] + 15 * a["scale"] - 1])
    np.testing.assert_allclose(rec["scale_wh_px"], [a["scale"] * 250] * 2)
    np.testing.assert_allclose(rec["joints_xy"], np.asarray(a["joints"]) - 1)
    item = ds[0]
    assert item["img"].shape == (3, 256, 256) and item["target"].shape == (16, 64, 64)


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    ('{"annotations": []}', "missing COCO list 'images'"),
    ('{"images": [{"id": 1}], "annotations": []}', "images\\[0\\] needs"),
])
def test_malformed_annotation_fails_at_start(tmp_path, content, message):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations/train.json").write_text(content)
    with pytest.raises(AnnotationError, match=f"train.json: {message}"):
        build_dataset(coco_cfg(tmp_path), "train")


def test_wrong_keypoint_count_and_missing_file(tmp_path):
    bad = person(1, 1, (1, 1, 20, 20))
    bad["keypoints"] = bad["keypoints"][:-3]
    write_coco(tmp_path, {1: (30, 30)}, [bad])
    with pytest.raises(AnnotationError, match="has 16 keypoints, expected 17"):
        build_dataset(coco_cfg(tmp_path), "train")
    with pytest.raises(AnnotationError, match="nope.json: annotation file not found"):
        build_dataset(coco_cfg(tmp_path, train_ann="nope.json"), "train")


def test_corrupt_image_skipped_and_counted(tmp_path):
    anns = [person(i, i, (5, 5, 30, 40)) for i in (1, 2, 3)]
    write_coco(tmp_path, {1: (60, 50), 2: (60, 50), 3: (60, 50)}, anns, corrupt={2})
    ds = build_dataset(coco_cfg(tmp_path), "train")
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=collate)
    with pytest.warns(RuntimeWarning, match="000002.png"):
        batch = next(iter(loader))
    assert batch["num_skipped"] == 1 and batch["img"].shape[0] == 3
    assert batch["image_id"].tolist() == [1, 3, 3] and ds.num_skipped == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a known-bad file is not decoded or reported again
        assert ds[1]["skipped"] == 1
    write_coco(tmp_path, {1: (60, 50), 2: (60, 50), 3: (60, 50)}, anns, corrupt={1, 2, 3})
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="unreadable images in a row"):
        build_dataset(coco_cfg(tmp_path), "train")[0]
