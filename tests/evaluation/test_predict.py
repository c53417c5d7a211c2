"""End-to-end prediction path on real COCO images with an oracle network.

The oracle returns, for each crop it is given, the Gaussian heatmaps of the ground-truth keypoints
*as they appear in that crop* (encoded by the codec from keypoints mapped with the forward crop
affine); for a mirrored crop it returns the heatmaps of the mirrored content with left/right
swapped, as an ideal network would. Predicting with it and scoring with pycocotools must give AP
close to 1: this checks crop affine, decode, inverse affine and flip-back together.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from torch import nn

from litehrnet.config import SCHEMA, merge
from litehrnet.data import HeatmapCodec
from litehrnet.training.predict import (
    annotation_path,
    build_eval_dataset,
    evaluate_model,
    predict_dataset,
    score_coco,
)
from prepostprocess import affine_points, topdown_matrix

INPUT_HW = (256, 192)


def _key(img_chw: torch.Tensor) -> str:
    return hashlib.sha1(img_chw.contiguous().numpy().tobytes()).hexdigest()


class OracleModel(nn.Module):
    """Looks each crop up by its bytes and returns the prepared heatmaps."""

    heatmap_stride = 4  # what the codec reads from a pose model

    def __init__(self, table: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.table = table
        self.calls = 0

    def forward(self, images_nchw: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.stack([self.table[_key(img)] for img in images_nchw])


def _oracle_table(dataset, input_hw, sigma) -> dict[str, torch.Tensor]:
    """Heatmaps of every crop of ``dataset`` and of its mirror, keyed by the crop's bytes."""
    codec = HeatmapCodec(input_hw, OracleModel.heatmap_stride, sigma)
    perm = dataset.info.flip_index()
    table = {}
    for i in range(len(dataset)):
        item = dataset[i]
        rec = dataset.records[item["index"]]
        mat = topdown_matrix(item["center_xy"], item["scale_wh_px"], input_hw)
        kp_in = affine_points(rec["joints_xy"], mat)
        vis = rec["joints_visible"]
        table[_key(item["img"])] = torch.from_numpy(codec.encode(kp_in, vis)[0])
        kp_mirror = kp_in[perm].copy()
        kp_mirror[:, 0] = input_hw[1] - 1 - kp_mirror[:, 0]
        table[_key(torch.flip(item["img"], dims=[2]))] = torch.from_numpy(codec.encode(kp_mirror, vis[perm])[0])
    return table


@pytest.fixture(scope="module")
def dev_cfg(shared_data):
    root = shared_data / "coco_val2017_dev"
    return merge(SCHEMA, {
        "model": {"input_hw": list(INPUT_HW)},
        "data": {"root": str(root), "val_ann": "annotations/person_keypoints_val2017.json",
                 "val_img_dir": "val2017", "workers": 0},
        "test": {"batch_size": 16},
    })


@pytest.fixture(scope="module")
def oracle(dev_cfg):
    dataset = build_eval_dataset(dev_cfg, "val")
    assert len(dataset) == 80
    return dataset, OracleModel(_oracle_table(dataset, INPUT_HW, dev_cfg["data"]["sigma"]))


def _with_test(cfg: dict, **test) -> dict:
    return merge(cfg, {"test": test})


def _in_crop_errors(people, dataset) -> np.ndarray:
    """Prediction - GT ``(M, 2)`` in network-input pixels for labelled joints inside the crop."""
    diffs = []
    for p in people:
        rec = dataset.records[p["index"]]
        to_input = topdown_matrix(p["center_xy"], p["scale_wh_px"], INPUT_HW)
        gt_in = affine_points(rec["joints_xy"], to_input)
        pred_in = affine_points(p["keypoints"][:, :2], to_input)
        inside = ((rec["joints_visible"] > 0) & (gt_in[:, 0] >= 4) & (gt_in[:, 0] < INPUT_HW[1] - 4)
                  & (gt_in[:, 1] >= 4) & (gt_in[:, 1] < INPUT_HW[0] - 4))
        diffs.append(pred_in[inside] - gt_in[inside])
    return np.concatenate(diffs)


# (decode, flip_test, shift_heatmap, expected mean x bias in input px, bound on the median error)
# Flip test on a stride-4 heatmap (non-UDP geometry) is known to bias x: the mirrored map lands
# 0.75 heatmap px left, the 1-px shift moves it 0.25 px right, the average is +0.125 heatmap px =
# +0.5 input px; without the shift it is -1.5 input px. Without flip there is no bias; DARK on an
# exact Gaussian is exact.
CASES = [
    ("default", True, True, 0.5, 1.0),
    ("dark", True, True, 0.5, 0.55),
    ("default", False, True, 0.0, 1.0),
    ("dark", False, True, 0.0, 0.05),
    ("default", True, False, -1.5, 1.7),
]


@pytest.mark.parametrize("decode,flip,shift,bias_x,median_bound", CASES)
def test_oracle_heatmaps_give_ap_near_one(oracle, dev_cfg, decode, flip, shift, bias_x, median_bound):
    dataset, model = oracle
    cfg = _with_test(dev_cfg, decode=decode, flip_test=flip, shift_heatmap=shift)
    people = predict_dataset(model, dataset, cfg)
    assert len(people) == 80 and model.calls > 0
    metrics = score_coco(people, cfg, annotation_path(cfg))
    # the only misses are labelled joints outside the padded box (no heatmap there): AP ~0.97
    assert metrics["AP"] > (0.97 if shift else 0.96), metrics
    diffs = _in_crop_errors(people, dataset)
    assert len(diffs) > 600
    assert np.mean(diffs[:, 0]) == pytest.approx(bias_x, abs=0.1)
    assert abs(np.mean(diffs[:, 1])) < 0.1
    assert np.median(np.linalg.norm(diffs, axis=1)) < median_bound


def test_flip_without_left_right_swap_is_caught(oracle, dev_cfg):
    """A flip-back that forgot to swap left/right would average left and right maps: AP drops."""
    dataset, model = oracle
    cfg = dev_cfg
    from litehrnet.training import predict as predict_module

    original = predict_module.flip_back
    predict_module.flip_back = lambda hm, pairs, shift=True: original(hm, (), shift)
    try:
        metrics = score_coco(predict_dataset(model, dataset, cfg), cfg, annotation_path(cfg))
    finally:
        predict_module.flip_back = original
    assert metrics["AP"] < 0.9


def test_evaluate_model_restores_training_mode(oracle, dev_cfg, tmp_path):
    dataset, model = oracle
    model.train()
    out = tmp_path / "val_results.json"
    metrics = evaluate_model(model, dev_cfg, "val", out_json=out)
    assert model.training
    assert metrics["AP"] > 0.97 and set(metrics) >= {"AP", "AP50", "AP75", "APm", "APl", "AR"}
    assert out.is_file() and out.stat().st_size > 0


def test_mpii_oracle_pckh(shared_data, tmp_path):
    """MPII path (1-based JSON coordinates, centre/scale records, PCKh by sample index)."""
    import json

    sample_dir = shared_data / "mmpose_samples/mpii"
    records = json.loads((sample_dir / "test_mpii.json").read_text())
    for r in records:  # the sample has no head boxes; a tight head size: 0.5 x head = 3 input px
        r["head_size"] = 6.0 * (r["scale"] * 200 * 1.25) / 256
    ann = tmp_path / "mpii_val_heads.json"
    ann.write_text(json.dumps(records))
    input_hw = (256, 256)
    cfg = merge(SCHEMA, {
        "model": {"input_hw": list(input_hw), "num_keypoints": 16},
        "data": {"dataset": "mpii", "keypoint_layout": "mpii", "root": str(tmp_path), "val_ann": str(ann),
                 "val_img_dir": str(sample_dir), "workers": 0},
        "test": {"metric": "PCKh", "batch_size": 8},
    })
    dataset = build_eval_dataset(cfg, "val")
    model = OracleModel(_oracle_table(dataset, input_hw, cfg["data"]["sigma"]))
    out = tmp_path / "mpii_results.json"
    metrics = evaluate_model(model, cfg, "val", out_json=out)
    assert metrics["PCKh"] == pytest.approx(100.0)
    assert metrics["PCKh@0.1"] < 100.0  # 0.6 input px: sub-pixel errors are resolved
    saved = json.loads(out.read_text())
    assert len(saved) == len(records) and len(saved[0]["keypoints"]) == 16 * 3


def test_train_split_is_evaluated_without_augmentation(shared_data):
    cfg = merge(SCHEMA, {
        "data": {"root": str(shared_data / "coco_train2017_mini"), "workers": 0,
                 "train_ann": "annotations/person_keypoints_train2017.json", "train_img_dir": "train2017",
                 "aug": {"flip_prob": 1.0, "rot_prob": 1.0}},
        "model": {"input_hw": [128, 96]},
    })
    dataset = build_eval_dataset(cfg, "train")
    dataset.set_epoch(3)
    first, again = dataset[0], dataset[0]
    assert not first["flipped"] and first["rotation"] == 0.0
    assert torch.equal(first["img"], again["img"])
    assert annotation_path(cfg, "train").name == "person_keypoints_train2017.json"
