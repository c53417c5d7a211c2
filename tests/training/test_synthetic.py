"""The synthetic stick-figure set: deterministic, valid COCO, and the front-facing left/right rule."""

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from litehrnet.data.synthetic import SyntheticSpec, figure_keypoints, make_synthetic_coco
from litehrnet.keypoints import COCO_BODY_17

TOOL = Path(__file__).resolve().parents[2] / "tools" / "make_synthetic.py"
SPEC = SyntheticSpec(num_train=6, num_val=3, image_hw=(96, 80), figure_height_px=(48, 90), seed=3)


def _digest(root):
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    make_synthetic_coco(tmp_path / "a", SPEC)
    make_synthetic_coco(tmp_path / "b", SPEC)
    make_synthetic_coco(tmp_path / "c", SyntheticSpec(**{**SPEC.__dict__, "seed": 4}))
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_annotations_are_valid_coco(tmp_path):
    from pycocotools.coco import COCO

    paths = make_synthetic_coco(tmp_path, SPEC)
    for split, count in (("train", 6), ("val", 3)):
        data = json.loads(paths[split].read_text())
        assert len(data["images"]) == count and len(list((tmp_path / split).glob("*.png"))) == count
        coco = COCO(str(paths[split]))  # pycocotools accepts it
        assert coco.getCatIds() == [1]
        assert len(data["annotations"]) >= count  # at least one figure per image survives
        for ann in data["annotations"]:
            kp = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
            vis = kp[:, 2]
            assert set(vis.tolist()) <= {0.0, 1.0, 2.0}
            assert ann["num_keypoints"] == int((vis > 0).sum()) >= 4
            x, y, w, h = ann["bbox"]
            shown = kp[vis > 0, :2]
            assert (shown[:, 0] >= x - 1e-6).all() and (shown[:, 0] <= x + w + 1e-6).all()
            assert (shown[:, 1] >= y - 1e-6).all() and (shown[:, 1] <= y + h + 1e-6).all()
            assert (kp[vis == 0, :2] == 0).all()
            assert 0 < ann["area"] <= w * h and ann["iscrowd"] == 0
    cat = json.loads(paths["train"].read_text())["categories"][0]
    assert cat["keypoints"] == list(COCO_BODY_17.keypoint_names)


def test_front_facing_rule_survives_flip():
    """Left shoulder/hip/eye/ear lie right of their partners in the image, also after flip + swap."""
    rng = np.random.default_rng(0)
    flip = COCO_BODY_17.flip_index()
    for _ in range(200):
        kp = figure_keypoints(rng, rng.uniform(40, 200), np.array([100.0, 100.0]))
        for left, right in ((5, 6), (11, 12), (1, 2), (3, 4)):
            assert kp[left, 0] > kp[right, 0]
        flipped = kp.copy()
        flipped[:, 0] = 199.0 - flipped[:, 0]
        flipped = flipped[flip]
        for left, right in ((5, 6), (11, 12), (1, 2), (3, 4)):
            assert flipped[left, 0] > flipped[right, 0]


def test_figure_scale_follows_height():
    rng = np.random.default_rng(1)
    spans = []
    for height in (50.0, 150.0):
        kp = figure_keypoints(rng, height, np.zeros(2))
        spans.append(np.linalg.norm(kp[5] - kp[11]))  # shoulder to hip: fixed fraction of height
    assert spans[1] / spans[0] == pytest.approx(3.0, rel=0.25)


def test_cli_writes_requested_counts(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_synthetic_tool", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / "syn"
    assert tool.main(["--out", str(out), "--train", "3", "--val", "2", "--image-hw", "64", "64",
                      "--figure-height", "32", "60"]) == 0
    assert len(json.loads((out / "annotations/person_keypoints_val.json").read_text())["images"]) == 2
    assert cv2.imread(str(out / "train" / "000002.png")).shape == (64, 64, 3)
    with pytest.raises(SystemExit) as err:
        tool.main(["--out", str(out), "--train", "0"])
    assert err.value.code == 2 and "--train" in capsys.readouterr().err
