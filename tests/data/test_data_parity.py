"""Train/deploy parity: the training pipeline (augmentation off) gives the deploy tensor bit for bit."""

import numpy as np
import pytest

from helpers_coco import coco_cfg, person, write_coco
from litehrnet.data import build_dataset
from prepostprocess import bbox_xywh_to_center_scale, preprocess_topdown, quantize, read_image_bgr

NO_AUG = {"flip_prob": 0.0, "half_body_prob": 0.0, "rot_prob": 0.0, "scale_factor": 0.0, "shift_prob": 0.0}


def deploy_input(image_file, bbox_xywh, norm, channel_order):
    center, scale = bbox_xywh_to_center_scale(bbox_xywh, aspect_wh=192 / 256, padding=1.25)
    return preprocess_topdown(read_image_bgr(image_file), center, scale, (256, 192), norm, channel_order)


def assert_parity(cfg, split, norm, channel_order):
    ds = build_dataset(cfg, split)
    for i in range(min(len(ds), 6)):
        item, rec = ds[i], ds.records[i]
        deploy = deploy_input(rec["image_file"], rec["bbox_xywh"], norm, channel_order)
        train = item["img"].numpy()
        assert train.dtype == np.float32 and train.shape == deploy.shape
        np.testing.assert_array_equal(train, deploy)
        if norm == "kneron":
            np.testing.assert_array_equal(quantize(train, "kneron"), quantize(deploy, "kneron"))


@pytest.mark.parametrize("norm,channel_order", [("kneron", "rgb"), ("torch", "rgb"), ("tf", "bgr")])
def test_parity_on_generated_images(tmp_path, norm, channel_order):
    anns = [person(1, 10, (20.3, 15.7, 60.1, 90.9)), person(2, 11, (-5, 3, 40, 70)), person(2, 12, (33, 40, 21.5, 18))]
    write_coco(tmp_path, {1: (120, 97), 2: (81, 64)}, anns)
    assert_parity(coco_cfg(tmp_path, norm=norm, channel_order=channel_order), "val", norm, channel_order)
    # the train split with every random step disabled is the same pipeline
    assert_parity(coco_cfg(tmp_path, norm=norm, channel_order=channel_order, aug=NO_AUG), "train", norm, channel_order)


def test_parity_on_real_coco(shared_data):
    root = shared_data / "coco_val2017_dev"
    cfg = coco_cfg(root, train_ann="annotations/person_keypoints_val2017.json", img_dir="val2017", norm="kneron")
    assert_parity(cfg, "val", "kneron", "rgb")
