"""inference.py, inference_e2e.py and tools/eval_e2e.py end to end (in-process, small models)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import inference
import inference_e2e
from litehrnet.deploy import TopDownSolution
from test_inputs import make_odd_inputs
from tools import eval_e2e

REPO_ROOT = Path(__file__).resolve().parents[2]


def _chain_args(paths: dict, detector: bool = False) -> list[str]:
    args = ["--rsn_affine_params", str(paths["affine"]), "--lite_hrnet_params", str(paths["pose"]), "--threads", "1"]
    return args + (["--yolov5_params", str(paths["yolov5"])] if detector else ["--whole-image"])


def test_e2e_folder_with_odd_inputs_whole_image_mode(tmp_path, yaml_set, capsys):
    color = cv2.imencode(".jpg", np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8))[1].tobytes()
    expected = make_odd_inputs(tmp_path / "in", color)
    out, skipped_out, coco_out = tmp_path / "out.json", tmp_path / "skipped.json", tmp_path / "coco.json"
    rc = inference_e2e.main(["--img-path", str(tmp_path / "in"), *_chain_args(yaml_set()), "--save-path", str(out),
                             "--skipped-out", str(skipped_out), "--coco-out", str(coco_out)])
    assert rc == 0
    records = json.loads(out.read_text())
    readable = sorted(k for k, v in expected.items() if v is None)
    assert sorted(Path(r["img_path"]).name for r in records) == readable
    for rec in records:
        img_h, img_w = cv2.imread(rec["img_path"], cv2.IMREAD_UNCHANGED).shape[:2]
        assert rec["bbox"] == [[0.0, 0.0, float(img_w), float(img_h), 1.0]]
        kpts = np.asarray(rec["lmk_coco_body_17pts"])
        assert kpts.shape == (1, 17, 3)
        assert (kpts[..., 0] > -0.25 * img_w).all() and (kpts[..., 0] < 1.25 * img_w).all()
    skipped = {Path(s["img_path"]).name: s["reason"] for s in json.loads(skipped_out.read_text())}
    assert {k: v for k, v in expected.items() if v is not None}.keys() == skipped.keys()
    assert "skipped" in capsys.readouterr().err
    assert json.loads(coco_out.read_text()) == []  # no digits in these file names -> no COCO image ids
    assert not list(tmp_path.glob(".*.tmp*"))


def test_e2e_with_detector_and_coco_results(tmp_path, yaml_set, yolov5n_onnx, shared_data):
    images = sorted((shared_data / "coco_val2017_dev" / "val2017").glob("*.jpg"))[:3]
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{p}\n" for p in images))
    out, coco_out = tmp_path / "out.json", tmp_path / "coco.json"
    assert inference_e2e.main(["--img-path", str(listing), *_chain_args(yaml_set(yolov5n_onnx), detector=True),
                               "--save-path", str(out), "--coco-out", str(coco_out)]) == 0
    records = json.loads(out.read_text())
    assert [r["img_path"] for r in records] == [str(p) for p in images]
    assert sum(len(r["bbox"]) for r in records) >= 3  # the first dev images show people
    for rec in records:
        assert len(rec["bbox"]) == len(rec["lmk_coco_body_17pts"])
        assert all(0.25 < b[4] <= 1 for b in rec["bbox"])
    coco = json.loads(coco_out.read_text())
    assert {c["image_id"] for c in coco} <= {int(p.stem) for p in images} and coco
    assert all(len(c["keypoints"]) == 51 for c in coco)


def test_boxes_file_replaces_the_detector(tmp_path, yaml_set, shared_data):
    dets = shared_data / "coco_dets" / "COCO_val2017_detections_AP_H_56_person_subset.json"
    img = shared_data / "coco_val2017_dev" / "val2017" / "000000000785.jpg"
    out = tmp_path / "one.json"
    args = ["--img-path", str(img), "--rsn_affine_params", str(yaml_set()["affine"]),
            "--lite_hrnet_params", str(yaml_set()["pose"]), "--boxes", str(dets), "--save-path", str(out),
            "--vis", str(tmp_path / "vis.png")]
    assert inference.main(args) == 0
    expected = [d for d in json.loads(dets.read_text()) if d["image_id"] == 785 and d["category_id"] == 1]
    record = json.loads(out.read_text())
    np.testing.assert_allclose(np.asarray(record["bbox"])[:, :4], [d["bbox"] for d in expected], atol=1e-3)
    vis = cv2.imread(str(tmp_path / "vis.png"))
    assert vis.shape == cv2.imread(str(img)).shape and (vis != cv2.imread(str(img))).any()


def test_scripts_fail_with_one_clear_line(tmp_path, yaml_set, capsys):
    paths = yaml_set(pose_onnx=tmp_path / "missing.onnx")
    rc = inference.main(["--img-path", str(tmp_path / "nope.jpg"), *_chain_args(paths)])
    assert rc == 2 and "nope.jpg: file not found" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    rc = inference.main(["--img-path", str(tmp_path / "a.png"), *_chain_args(paths)])
    assert rc == 2 and "missing.onnx: ONNX model not found" in capsys.readouterr().err


def _coco_gt_records(ann: dict, prefix: str) -> list[dict]:
    by_image = {img["id"]: {"img_path": f"{prefix}/{img['file_name']}", "lmk_coco_body_17pts": [], "bbox": []}
                for img in ann["images"]}
    for a in ann["annotations"]:
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0):
            kpts = np.asarray(a["keypoints"], np.float64).reshape(17, 3)
            kpts[:, 2] = (kpts[:, 2] > 0).astype(float)
            by_image[a["image_id"]]["lmk_coco_body_17pts"].append(kpts.tolist())
            by_image[a["image_id"]]["bbox"].append([*a["bbox"], 1.0])
    return list(by_image.values())


def test_eval_coco_oracle_scores_one(tmp_path, shared_data, capsys):
    gt = shared_data / "coco_val2017_dev" / "annotations" / "person_keypoints_val2017.json"
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(_coco_gt_records(json.loads(gt.read_text()), "some/where")))
    assert eval_e2e.main(["--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "m.json"), "--nms", "none"]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR"] == pytest.approx(1.0)
    assert metrics["images_scored"] == 50 and metrics["images_unmatched"] == 0
    # the official OKS-NMS (0.9) merges one pair of heavily overlapping annotated people: 79 of 80 left
    assert eval_e2e.main(["--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "m.json")]) == 0
    assert 0.97 < json.loads((tmp_path / "m.json").read_text())["AP"] < 1.0


def test_eval_kneron_landmark_distances(tmp_path, capsys):
    rng = np.random.default_rng(3)
    people = rng.uniform(0, 500, (2, 17, 2))
    gt = [{"img_path": "val/a.jpg", "lmk_coco_body_17pts": np.dstack([people, np.ones((2, 17))]).tolist()},
          {"img_path": "val/b.jpg", "lmk_coco_body_17pts": np.dstack([people[:1], np.ones((1, 17))]).tolist()}]
    moved = people[::-1] + [3.0, 4.0]  # persons in the other order, every keypoint off by (3, 4)
    pred = [{"img_path": "val/a.jpg", "lmk_coco_body_17pts": np.dstack([moved, np.ones((2, 17))]).tolist(), "bbox": []},
            {"img_path": "elsewhere/b.jpg", "lmk_coco_body_17pts": [], "bbox": []}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    assert eval_e2e.main(["--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json"),
                          "--out", str(tmp_path / "m.json")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["l2"] == pytest.approx(5.0) and m["l1"] == pytest.approx(7.0) and m["mae"] == pytest.approx(3.5)
    assert m["keypoints_scored"] == 34 and m["missed_persons"] == 1 and m["gt_persons"] == 3
    assert m["images_matched_exact"] == 1 and m["images_matched_file_name"] == 1


def test_eval_rejects_unknown_inputs(tmp_path, capsys):
    (tmp_path / "gt.json").write_text(json.dumps({"something": 1}))
    (tmp_path / "pred.json").write_text("[]")
    assert eval_e2e.main(["--gt", str(tmp_path / "gt.json"), "--pred", str(tmp_path / "pred.json")]) == 2
    assert "neither a COCO keypoints file" in capsys.readouterr().err


def test_deploy_layer_never_imports_torch():
    code = ("import sys, inference, inference_e2e, litehrnet.deploy, litehrnet.evaluation.scoring, "
            "litehrnet.deploy.cli; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)


def test_e2e_keeps_going_when_one_image_fails(tmp_path, yaml_set, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, width in (("a.png", 20), ("b.png", 21), ("c.png", 20)):
        cv2.imwrite(str(folder / name), np.full((30, width, 3), 50, np.uint8))
    original = TopDownSolution.estimate

    def flaky(self, img_bgr, boxes):
        if img_bgr.shape[1] == 21:  # b.png
            raise ValueError("simulated failure")
        return original(self, img_bgr, boxes)

    monkeypatch.setattr(TopDownSolution, "estimate", flaky)
    out, skipped = tmp_path / "out.json", tmp_path / "skipped.json"
    rc = inference_e2e.main(["--img-path", str(folder), *_chain_args(yaml_set()), "--save-path", str(out),
                             "--skipped-out", str(skipped)])
    assert rc == 1
    assert [Path(r["img_path"]).name for r in json.loads(out.read_text())] == ["a.png", "c.png"]
    assert "simulated failure" in json.loads(skipped.read_text())[0]["reason"]
