"""Detector pre/post-processing (YOLOv5): letterbox, head decoding, NMS, mapping back to the image.

numpy + OpenCV only. Two letterbox conventions:

* ``official`` (Ultralytics YOLOv5): ratio kept, centred padding with value 114, input ``x/255``.
  Rounding follows the official code exactly: new size ``round(w*r), round(h*r)``; padding split
  ``round(d/2 - 0.1)`` before and ``round(d/2 + 0.1)`` after; boxes mapped back with the
  *unrounded* padding ``(S - w*r)/2``.
* ``kneron``: ratio kept, image at the top-left, padding on the right/bottom with value 0,
  input ``x/256 - 0.5``; mapping back is a division by the ratio.

Boxes are ``xyxy`` floats inside this module; the runners convert to ``[l, t, w, h]`` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

LETTERBOX_MODES = ("official", "kneron")
_PAD_VALUE = {"official": 114, "kneron": 0}
MAX_WH_PX = 7680.0  # class offset for batched NMS, as upstream


@dataclass(frozen=True)
class Letterbox:
    """How an image was placed into the network input: scale ratio and (unrounded) left/top padding."""

    ratio: float
    pad_left_px: float
    pad_top_px: float

    def boxes_to_image(self, boxes_xyxy: np.ndarray, img_hw: tuple[int, int]) -> np.ndarray:
        """Map ``xyxy`` boxes from network-input pixels back to image pixels, clipped to the image."""
        out = np.asarray(boxes_xyxy, np.float32).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_left_px) / self.ratio
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_top_px) / self.ratio
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, img_hw[1])
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, img_hw[0])
        return out


def letterbox(
    img_bgr: np.ndarray, input_hw: tuple[int, int], mode: str = "official", pad_value: int | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``input_hw``; returns the uint8 canvas and its geometry.

    ``pad_value`` defaults to the mode's (114 official, 0 kneron).
    """
    if mode not in LETTERBOX_MODES:
        raise ValueError(f"unknown letterbox mode {mode!r}; use one of {LETTERBOX_MODES}")
    h, w = img_bgr.shape[:2]
    out_h, out_w = input_hw
    ratio = min(out_h / h, out_w / w)
    new_w, new_h = int(round(w * ratio)), int(round(h * ratio))
    new_w, new_h = max(1, min(new_w, out_w)), max(1, min(new_h, out_h))
    resized = img_bgr if (new_w, new_h) == (w, h) else cv2.resize(img_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    dw, dh = out_w - new_w, out_h - new_h
    if mode == "official":
        left, right = int(round(dw / 2 - 0.1)), int(round(dw / 2 + 0.1))
        top, bottom = int(round(dh / 2 - 0.1)), int(round(dh / 2 + 0.1))
        geometry = Letterbox(ratio, (out_w - w * ratio) / 2, (out_h - h * ratio) / 2)
    else:
        left, right, top, bottom = 0, dw, 0, dh
        geometry = Letterbox(ratio, 0.0, 0.0)
    value = (_PAD_VALUE[mode] if pad_value is None else pad_value,) * 3
    canvas = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    return canvas, geometry


def normalise_detector_input(canvas_bgr: np.ndarray, mode: str = "official") -> np.ndarray:
    """uint8 BGR canvas -> float32 ``1x3xHxW`` RGB tensor, ``x/255`` (official) or ``x/256 - 0.5`` (kneron).

    Written plane by plane into the output (about 6x faster than a float HWC copy + transpose).
    """
    h, w = canvas_bgr.shape[:2]
    out = np.empty((1, 3, h, w), np.float32)
    scale = 1.0 / 255.0 if mode == "official" else 1.0 / 256.0
    for rgb_index, bgr_index in enumerate((2, 1, 0)):
        np.multiply(canvas_bgr[:, :, bgr_index], scale, out=out[0, rgb_index], dtype=np.float32)
    if mode != "official":
        out -= 0.5
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode_yolov5_heads(
    heads: list[np.ndarray], anchors_px: np.ndarray, strides: list[float], obj_thres: float = 0.0
) -> np.ndarray:
    """Raw head maps (``1 x A*(5+C) x H x W`` per stride) -> ``(N, 5+C)`` rows ``cx, cy, w, h, obj, cls...``.

    YOLOv5 v6 decoding: ``xy = (2*sigmoid - 0.5 + grid) * stride``, ``wh = (2*sigmoid)^2 * anchor``.
    Only cells whose objectness exceeds ``obj_thres`` are decoded (NMS drops the others anyway),
    which keeps the numpy work small at the usual thresholds.
    """
    rows = []
    logit_thres = np.log(obj_thres / (1.0 - obj_thres)) if 0.0 < obj_thres < 1.0 else -np.inf
    for level, (head, stride) in enumerate(zip(heads, strides)):
        num_anchors = anchors_px.shape[1]
        _, channels, h, w = head.shape
        maps = head[0].reshape(num_anchors, channels // num_anchors, h, w)
        a_idx, y_idx, x_idx = np.nonzero(maps[:, 4] > logit_thres)
        pred = _sigmoid(maps[a_idx, :, y_idx, x_idx].astype(np.float32))
        pred[:, 0] = (pred[:, 0] * 2 - 0.5 + x_idx) * stride
        pred[:, 1] = (pred[:, 1] * 2 - 0.5 + y_idx) * stride
        pred[:, 2:4] = (pred[:, 2:4] * 2) ** 2 * anchors_px[level][a_idx]
        rows.append(pred)
    return np.concatenate(rows, 0)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    out = np.empty_like(boxes)
    out[:, :2] = boxes[:, :2] - boxes[:, 2:4] / 2
    out[:, 2:4] = boxes[:, :2] + boxes[:, 2:4] / 2
    return out


def nms_xyxy(boxes_xyxy: np.ndarray, scores: np.ndarray, iou_thres: float, top_k: int | None = None) -> np.ndarray:
    """Greedy NMS; returns kept indices, best score first (at most ``top_k``)."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes_xyxy.T
    areas = (x2 - x1) * (y2 - y1)
    keep = []
    while order.size and (top_k is None or len(keep) < top_k):
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / (areas[i] + areas[rest] - inter + 1e-12)
        order = rest[iou <= iou_thres]
    return np.asarray(keep, dtype=np.int64)


def select_detections(
    pred: np.ndarray,
    conf_thres: float,
    iou_thres: float,
    classes: list[int] | None = None,
    top_k: int = 1000,
    max_candidates: int = 30000,
) -> np.ndarray:
    """Official YOLOv5 ``non_max_suppression`` (single label): ``(N, 6)`` rows ``x1, y1, x2, y2, score, class``.

    Objectness filter, ``score = obj * best class prob``, class filter (after the argmax, as upstream),
    per-class NMS via coordinate offsets, at most ``top_k`` boxes.
    """
    pred = pred[pred[:, 4] > conf_thres]
    if not len(pred):
        return np.zeros((0, 6), np.float32)
    cls_scores = pred[:, 5:] * pred[:, 4:5]
    class_ids = cls_scores.argmax(1)
    scores = cls_scores[np.arange(len(pred)), class_ids]
    keep = scores > conf_thres
    if classes is not None:
        keep &= np.isin(class_ids, classes)
    boxes, scores, class_ids = cxcywh_to_xyxy(pred[keep, :4]), scores[keep], class_ids[keep]
    if len(scores) > max_candidates:
        best = np.argsort(-scores, kind="stable")[:max_candidates]
        boxes, scores, class_ids = boxes[best], scores[best], class_ids[best]
    kept = nms_xyxy(boxes + class_ids[:, None] * MAX_WH_PX, scores, iou_thres, top_k)
    return np.concatenate([boxes[kept], scores[kept, None], class_ids[kept, None]], 1).astype(np.float32)


def xyxy_to_xywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    out = np.asarray(boxes_xyxy, np.float32).copy()
    out[:, 2:4] -= out[:, 0:2]
    return out
