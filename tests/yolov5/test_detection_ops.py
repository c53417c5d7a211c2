"""Letterbox geometry and NMS of prepostprocess.detection (official rounding rules)."""

from __future__ import annotations

import numpy as np

from prepostprocess.detection import decode_yolov5_heads, letterbox, nms_xyxy, select_detections


def test_official_letterbox_rounding_and_mapping():
    img = np.full((427, 641, 3), 200, np.uint8)  # odd sizes exercise the +-0.1 rounding
    canvas, geo = letterbox(img, (640, 640), "official")
    r = min(640 / 427, 640 / 641)
    new_w, new_h = round(641 * r), round(427 * r)
    dh = 640 - new_h
    top = round(dh / 2 - 0.1)
    assert canvas.shape == (640, 640, 3) and new_w == 640
    assert (canvas[:top] == 114).all() and (canvas[top : top + new_h] == 200).all()
    assert (canvas[top + new_h :] == 114).all()
    assert geo.pad_top_px == (640 - 427 * r) / 2 and geo.pad_left_px == (640 - 641 * r) / 2
    box = np.array([[geo.pad_left_px + 10 * r, geo.pad_top_px + 20 * r, geo.pad_left_px + 50 * r, 900.0]])
    np.testing.assert_allclose(geo.boxes_to_image(box, (427, 641)), [[10, 20, 50, 427]], rtol=1e-5)


def test_kneron_letterbox_is_top_left_with_zero_padding():
    img = np.full((100, 50, 3), 7, np.uint8)
    canvas, geo = letterbox(img, (64, 64), "kneron")
    assert (canvas[:, :32] == 7).all() and (canvas[:, 32:] == 0).all()
    assert geo.pad_left_px == geo.pad_top_px == 0 and geo.ratio == 0.64
    np.testing.assert_allclose(geo.boxes_to_image(np.array([[3.2, 6.4, 9.6, 12.8]]), (100, 50)), [[5, 10, 15, 20]])


def test_nms_per_class_and_top_k():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    assert nms_xyxy(boxes, scores, 0.5).tolist() == [0, 2]
    assert nms_xyxy(boxes, scores, 0.5, top_k=1).tolist() == [0]
    # rows cx, cy, w, h, obj, cls0, cls1: the last box is class 1 and survives next to class 0
    pred = np.array([[5, 5, 10, 10, 1.0, 0.9, 0.1], [5.5, 5.5, 9, 9, 1.0, 0.8, 0.1],
                     [5, 5, 10, 10, 1.0, 0.1, 0.6], [5, 5, 10, 10, 0.2, 0.9, 0.1]], np.float32)
    dets = select_detections(pred, conf_thres=0.25, iou_thres=0.5)
    assert dets[:, 5].tolist() == [0, 1] and np.allclose(dets[:, 4], [0.9, 0.6])
    person_only = select_detections(pred, conf_thres=0.25, iou_thres=0.5, classes=[0])
    assert person_only[:, 5].tolist() == [0]


def test_decode_places_boxes_on_the_grid():
    anchors = np.array([[[10, 13], [16, 30], [33, 23]]], np.float32)
    head = np.full((1, 3 * 6, 2, 2), -20.0, np.float32)
    # anchor 1, cell (y=1, x=0): sigmoid(0)=0.5 -> xy = (0.5*2 - 0.5 + grid) * 8, wh = (0.5*2)^2 * anchor
    head[0, 6:12, 1, 0] = [0.0, 0.0, 0.0, 0.0, 5.0, 5.0]
    rows = decode_yolov5_heads([head], anchors, [8.0])
    best = rows[rows[:, 4].argmax()]
    np.testing.assert_allclose(best[:4], [4.0, 12.0, 16.0, 30.0], atol=1e-5)


def test_detector_input_is_rgb_nchw_with_mode_scaling():
    from prepostprocess.detection import normalise_detector_input

    canvas = np.zeros((4, 6, 3), np.uint8)
    canvas[..., 0], canvas[..., 2] = 255, 128  # B = 255, R = 128
    official = normalise_detector_input(canvas, "official")
    kneron = normalise_detector_input(canvas, "kneron")
    assert official.shape == (1, 3, 4, 6) and official.dtype == np.float32
    np.testing.assert_allclose(official[0, :, 0, 0], [128 / 255, 0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(kneron[0, :, 0, 0], [0.0, -0.5, 255 / 256 - 0.5], rtol=1e-6)
