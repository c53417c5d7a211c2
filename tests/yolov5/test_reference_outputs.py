"""YOLOv5n ONNX + runner against the official implementation's outputs on the COCO dev images."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from litehrnet.deploy import RunnerError, YoloV5Runner
from prepostprocess.detection import letterbox, normalise_detector_input

SETTINGS = [(0.001, 0.65), (0.25, 0.45)]


def _iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of one box ``a`` against rows ``b`` (both l, t, w, h)."""
    lt = np.maximum(a[:2], b[:, :2])
    rb = np.minimum(a[:2] + a[2:4], b[:, :2] + b[:, 2:4])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    return inter / (a[2] * a[3] + b[:, 2] * b[:, 3] - inter)


@pytest.fixture(scope="module")
def dev_images(shared_data):
    return sorted((shared_data / "coco_val2017_dev" / "val2017").glob("*.jpg"))


def _detect_all(runner: YoloV5Runner, images, settings) -> dict:
    """Run the network once per image and post-process it for each (conf, iou) setting."""
    out = {s: {} for s in settings}
    for path in images:
        img = cv2.imread(str(path))
        input_nchw, geometry = runner.preprocess(img)
        heads = runner.infer(input_nchw)
        for conf, iou in settings:
            runner.params.update(conf_thres=conf, iou_thres=iou)
            out[(conf, iou)][path.name] = runner.postprocess(heads, geometry, img.shape[:2])
    return out


def test_matches_official_reference(detector_params, yolov5n_onnx, dev_images, shared_data):
    runner = YoloV5Runner(detector_params(yolov5n_onnx))
    detections = _detect_all(runner, dev_images, SETTINGS)
    for conf, iou in SETTINGS:
        ref_file = shared_data / "reference" / f"yolov5n_official_letterbox640_conf{conf}_iou{iou}.json"
        reference = json.loads(ref_file.read_text())
        assert sum(len(d) for d in detections[(conf, iou)].values()) == len(reference)
        for name, dets in detections[(conf, iou)].items():
            assert (dets[:, 5] == 0).all()
            refs = [r for r in reference if r["file_name"] == name]
            matched = set()
            for ref in refs:
                if ref["score"] <= 0.25:
                    continue
                ious = _iou_xywh(np.asarray(ref["bbox"]), dets[:, :4])
                best = int(ious.argmax())
                assert ious[best] >= 0.99, (name, ref)
                assert abs(dets[best, 4] - ref["score"]) <= 0.01, (name, ref)
                matched.add(best)
            ref_boxes = np.asarray([r["bbox"] for r in refs]).reshape(-1, 4)
            for j, det in enumerate(dets):
                if det[4] > 0.3 and j not in matched:
                    assert len(ref_boxes) and _iou_xywh(det[:4], ref_boxes).max() >= 0.99, (name, det)


def test_kneron_export_is_exact_and_close_to_reference(
    detector_params, yolov5n_onnx, yolov5n_kneron_onnx, dev_images, shared_data
):
    official = ort.InferenceSession(str(yolov5n_onnx), providers=["CPUExecutionProvider"])
    kneron = ort.InferenceSession(str(yolov5n_kneron_onnx), providers=["CPUExecutionProvider"])
    canvas, _ = letterbox(cv2.imread(str(dev_images[0])), (640, 640), "kneron")
    a = official.run(None, {"input": normalise_detector_input(canvas, "official")})
    b = kneron.run(None, {"input": normalise_detector_input(canvas, "kneron")})
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) < 1e-3

    # Kneron's top-left letterbox moves the image on the stride-32 grid, so boxes agree only roughly
    runner = YoloV5Runner(detector_params(yolov5n_kneron_onnx, preprocess="kneron"))
    ref_file = shared_data / "reference" / "yolov5n_official_letterbox640_conf0.25_iou0.45.json"
    reference = json.loads(ref_file.read_text())
    detections = _detect_all(runner, [p for p in dev_images if any(r["file_name"] == p.name for r in reference)],
                             [(0.25, 0.45)])[(0.25, 0.45)]
    best_ious = [_iou_xywh(np.asarray(r["bbox"]), detections[r["file_name"]][:, :4]).max(initial=0.0)
                 for r in reference if r["score"] > 0.5]
    assert len(best_ious) > 50 and min(best_ious) > 0.6 and np.median(best_ious) > 0.9


def test_runner_refuses_preprocess_and_size_mismatch(detector_params, yolov5n_onnx):
    with pytest.raises(RunnerError, match="preprocess='official'"):
        YoloV5Runner(detector_params(yolov5n_onnx, preprocess="kneron"))
    with pytest.raises(RunnerError, match="input_h=320"):
        YoloV5Runner(detector_params(yolov5n_onnx, input_h=320))
    with pytest.raises(RunnerError, match="nc=3"):
        YoloV5Runner(detector_params(yolov5n_onnx, nc=3))


def test_top_k_and_all_classes(detector_params, yolov5n_onnx, dev_images):
    img = cv2.imread(str(dev_images[0]))
    many = YoloV5Runner(detector_params(yolov5n_onnx, conf_thres=0.001, iou_thres=0.65, classes=None))(img)
    assert len(np.unique(many[:, 5])) > 1  # classes: null keeps every class
    top3 = YoloV5Runner(detector_params(yolov5n_onnx, conf_thres=0.001, iou_thres=0.65, classes=None, top_k_num=3))(img)
    np.testing.assert_allclose(top3, many[:3], rtol=1e-5)
