import cv2
import numpy as np
import pytest

import mmpose_replacement as mr
import prepostprocess as pp
from litehrnet.keypoints import COCO_BODY_17

SPEC_NAMES = [
    "LoadImageFromFile", "TopDownGetBboxCenterScale", "TopDownRandomShiftBboxCenter", "TopDownRandomFlip",
    "TopDownHalfBodyTransform", "TopDownGetRandomScaleRotation", "TopDownAffine", "TopDownGenerateTarget",
    "ToTensor", "NormalizeTensor", "Collect",
]


def test_name_table_and_pipeline_from_dicts(tmp_path):
    assert sorted(SPEC_NAMES) == sorted(mr.TRANSFORMS)
    for fn in ("flip_back", "fliplr_joints", "transform_preds", "get_affine_transform", "affine_transform"):
        assert callable(getattr(mr, fn))
    img = np.random.default_rng(0).integers(0, 256, (40, 30, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    pipe = mr.build_pipeline([
        {"type": "LoadImageFromFile"},
        {"type": "TopDownGetBboxCenterScale", "input_hw": [40, 30], "padding": 1.0},
        {"type": "TopDownAffine", "input_hw": [40, 30]},
        {"type": "Collect", "keys": ["img"], "meta_keys": ["center_xy"]},
    ])
    out = pipe({"image_file": str(tmp_path / "a.png"), "bbox_xywh": np.array([0.0, 0.0, 30.0, 40.0])})
    assert sorted(out) == ["center_xy", "img"]
    np.testing.assert_array_equal(out["img"], img)  # whole-image box, no padding -> identity crop
    with pytest.raises(ValueError, match="unknown transform 'TopDownFoo'"):
        mr.build_pipeline([{"type": "TopDownFoo"}])
    with pytest.raises(ValueError, match="bad arguments"):
        mr.build_transform({"type": "TopDownAffine", "size": 3})
    with pytest.raises(KeyError, match="missing keys"):
        mr.Collect(["target"])({"img": 1})


def test_load_missing_file_names_it(tmp_path):
    with pytest.raises(mr.ImageLoadError, match="ghost.jpg"):
        mr.LoadImageFromFile()({"image_file": str(tmp_path / "ghost.jpg")})


def dot_image(points_xy, hw=(240, 320)):
    img = np.zeros((*hw, 3), np.uint8)
    for x, y in points_xy:
        cv2.circle(img, (int(round(x)), int(round(y))), 3, (255, 255, 255), -1)
    return img


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_augmented_joints_stay_on_their_pixels(seed):
    """Flip + scale + rotation + shift: each transformed joint must sit on its (moved) dot."""
    rng = np.random.default_rng(seed)
    joints = rng.uniform([100, 60], [220, 180], (17, 2))
    pipe = mr.Compose([
        mr.TopDownGetBboxCenterScale((256, 192)),
        mr.TopDownRandomShiftBboxCenter(0.1, prob=1.0),
        mr.TopDownRandomFlip(COCO_BODY_17.flip_pairs, flip_prob=1.0),
        mr.TopDownGetRandomScaleRotation(30, 0.25, rot_prob=1.0),
        mr.TopDownAffine((256, 192)),
    ])
    for k in (0, 5):  # one keypoint at a time so the dot is unambiguous; k=5 has a flip partner
        res = pipe({
            "img": dot_image([joints[k]]), "bbox_xywh": np.array([90.0, 50.0, 140.0, 140.0]),
            "joints_xy": joints.copy(), "joints_visible": np.ones(17), "rng": np.random.default_rng(seed),
        })
        assert res["flipped"] and res["rotation"] != 0
        k_after = COCO_BODY_17.flip_index()[k]
        gray = res["img"][..., 0].astype(float)
        ys, xs = np.nonzero(gray > 64)
        centroid = np.array([(xs * gray[ys, xs]).sum(), (ys * gray[ys, xs]).sum()]) / gray[ys, xs].sum()
        assert np.linalg.norm(centroid - res["joints_xy"][k_after]) < 1.0


def test_half_body_selects_subset():
    info = COCO_BODY_17
    joints = np.column_stack([np.linspace(100, 200, 17), np.linspace(50, 300, 17)])
    t = mr.TopDownHalfBodyTransform(info.upper_body_ids, (256, 192), 8, prob_half_body=1.0)
    centers = set()
    for seed in range(12):
        res = t({"joints_xy": joints, "joints_visible": np.ones(17), "center_xy": np.zeros(2),
                 "scale_wh_px": np.ones(2), "rng": np.random.default_rng(seed)})
        sel = joints[list(info.upper_body_ids)] if res["center_xy"][1] < joints[:, 1].mean() else joints[11:]
        np.testing.assert_allclose(res["center_xy"], sel.mean(axis=0))
        w, h = sel.max(axis=0) - sel.min(axis=0)
        np.testing.assert_allclose(res["scale_wh_px"], np.array([h * 0.75, h]) * 1.5)
        centers.add(round(res["center_xy"][1]))
    assert len(centers) == 2  # both halves get picked
    few = {"joints_xy": joints, "joints_visible": np.r_[np.ones(8), np.zeros(9)], "center_xy": np.zeros(2),
           "scale_wh_px": np.ones(2), "rng": np.random.default_rng(0)}
    assert t(few)["scale_wh_px"].tolist() == [1.0, 1.0]  # needs more than 8 visible joints


def test_scale_rotation_and_shift_distributions():
    t = mr.TopDownGetRandomScaleRotation(rot_factor=30, scale_factor=0.25, rot_prob=0.6)
    rng = np.random.default_rng(0)
    draws = [t({"scale_wh_px": np.array([100.0, 100.0]), "rng": rng}) for _ in range(2000)]
    scales = np.array([d["scale_wh_px"][0] for d in draws])
    rots = np.array([d["rotation"] for d in draws])
    assert scales.min() >= 75 and scales.max() <= 125 and (scales == 125).any()  # clipped at 1 +- sf
    assert np.abs(rots).max() <= 60 and (np.abs(rots) == 60).any()
    assert 0.55 < (rots != 0).mean() < 0.65
    shift = mr.TopDownRandomShiftBboxCenter(0.16, prob=1.0)
    moved = [shift({"center_xy": np.zeros(2), "scale_wh_px": np.array([100.0, 50.0]), "rng": rng})["center_xy"]
             for _ in range(500)]
    assert np.abs(moved).max(axis=0).tolist() <= [16, 8] and np.abs(moved).max() > 10


def test_normalize_tensor_modes_and_mean_std():
    img = np.random.default_rng(1).integers(0, 256, (8, 6, 3), np.uint8)
    res = mr.NormalizeTensor(mean=[0.50196] * 3, std=[1.00392] * 3)(mr.ToTensor("rgb")({"img": img}))
    assert res["norm"] == "kneron"
    np.testing.assert_array_equal(res["img"], pp.to_network_input(img, "kneron", "rgb"))
    assert mr.NormalizeTensor(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]).norm == "torch"
    for order in ("rgb", "bgr"):  # per-channel mode on the CHW array: bit-identical to the deploy input
        chw = mr.NormalizeTensor("torch")(mr.ToTensor(order)({"img": img}))["img"]
        assert chw.flags.c_contiguous and chw.dtype == np.float32
        np.testing.assert_array_equal(chw, pp.to_network_input(img, "torch", order))
    assert mr.NormalizeTensor(mean=[0.5] * 3, std=[0.5] * 3).norm == "tf"    # PLUS TENSOR_FLOW: x/127.5 - 1
    assert mr.NormalizeTensor(mean=[128 / 255] * 3, std=[128 / 255] * 3).norm == "tf_hw"
    with pytest.raises(ValueError, match="none of the modes"):
        mr.NormalizeTensor(mean=[0.4] * 3, std=[0.3] * 3)
    with pytest.raises(ValueError, match="normalisation mode"):
        mr.NormalizeTensor("caffe")


def test_post_transforms_use_200px_unit():
    center, scale = np.array([150.0, 120.0]), np.array([0.75, 1.0])  # 150 x 200 px
    mat = mr.get_affine_transform(center, scale, 10.0, (192, 256))
    np.testing.assert_allclose(mat, pp.get_affine_matrix(center, [150.0, 200.0], 10.0, (256, 192)))
    np.testing.assert_allclose(mr.affine_transform([150.0, 120.0, 1.0], mat), [96, 128], atol=1e-9)
    coords = np.array([[0.0, 0.0, 0.9], [24.0, 32.0, 0.5], [47.0, 63.0, 0.1]])
    out = mr.transform_preds(coords, center, scale, (48, 64))
    expect = coords[:, :2] * [150 / 48, 200 / 64] + center - [75, 100]  # mmpose 0.x formula
    np.testing.assert_allclose(out[:, :2], expect, atol=1e-9)
    np.testing.assert_array_equal(out[:, 2], coords[:, 2])
    j, v = mr.fliplr_joints(np.array([[1.0, 2, 0], [3, 4, 0], [5, 6, 0]]), np.array([[1, 1, 0], [0, 0, 0], [1, 1, 0]]),
                            10, [(0, 2)])
    assert j[:, :2].tolist() == [[4, 6], [0, 0], [8, 2]] and v[:, 0].tolist() == [1, 0, 1]
    hm = np.random.default_rng(2).random((2, 17, 8, 6)).astype(np.float32)
    np.testing.assert_array_equal(mr.flip_back(hm, COCO_BODY_17.flip_pairs), hm[:, COCO_BODY_17.flip_index(), :, ::-1])
    assert mr.scale_to_px(mr.px_to_scale([300.0]))[0] == pytest.approx(300.0)
