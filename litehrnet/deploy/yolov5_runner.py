"""YOLOv5 person detector on onnxruntime: letterbox -> ONNX heads -> decode -> NMS -> image boxes.

The ONNX is the one written by ``tools/yolov5_to_onnx.py``: it ends at the raw head maps and
carries ``anchors_px``, ``strides``, ``input_hw``, ``preprocess`` and ``num_classes`` as metadata,
so the YAML cannot disagree with the graph without the runner noticing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from prepostprocess.detection import (
    decode_yolov5_heads,
    letterbox,
    normalise_detector_input,
    select_detections,
    xyxy_to_xywh,
)

from .base import OnnxRunner, RunnerError
from .params import load_params, validate_params

MAX_NMS_CANDIDATES = 30000


class YoloV5Runner(OnnxRunner):
    """``runner(img_bgr) -> (N, 6)`` float32 rows ``[l, t, w, h, score, class_id]`` in image pixels."""

    def __init__(self, params: dict, num_threads: int = 1) -> None:
        params = validate_params(params, "yolov5", "yolov5 params")
        super().__init__(params["onnx_path"], num_threads)
        self.params = params
        self.input_hw = (params["input_h"], params["input_w"])
        self._check_model()
        self.anchors_px = np.asarray(json.loads(self.metadata["anchors_px"]), np.float32)
        self.strides = [float(s) for s in json.loads(self.metadata["strides"])]

    @classmethod
    def from_yaml(cls, path: str | Path, num_threads: int = 1) -> "YoloV5Runner":
        return cls(load_params(path, "yolov5"), num_threads)

    def _check_model(self) -> None:
        where = self.onnx_path
        missing = [k for k in ("anchors_px", "strides", "preprocess", "input_hw", "num_classes") if k not in self.metadata]
        if missing:
            raise RunnerError(f"{where}: detector metadata {missing} missing; export with tools/yolov5_to_onnx.py")
        if self.model_input_hw() != self.input_hw:
            raise RunnerError(f"{where}: ONNX input is {self.model_input_hw()} (h, w) but the YAML says "
                              f"input_h={self.input_hw[0]}, input_w={self.input_hw[1]}; re-export with --imgsz or fix the YAML")
        if self.metadata["preprocess"] != self.params["preprocess"]:
            raise RunnerError(f"{where}: model was exported for preprocess={self.metadata['preprocess']!r} but the YAML "
                              f"says {self.params['preprocess']!r} (export with/without --kneron to match)")
        nc, model_type = self.params["nc"], self.params["model_type"]
        if nc is not None and str(nc) != self.metadata["num_classes"]:
            raise RunnerError(f"{where}: YAML nc={nc} but the model has {self.metadata['num_classes']} classes")
        if model_type is not None and model_type != self.metadata.get("model_type"):
            raise RunnerError(f"{where}: YAML model_type={model_type!r} but the model is {self.metadata.get('model_type')!r}")

    def preprocess(self, img_bgr: np.ndarray):
        canvas, geometry = letterbox(img_bgr, self.input_hw, self.params["preprocess"], self.params["pad_value"])
        return normalise_detector_input(canvas, self.params["preprocess"]), geometry

    def postprocess(self, heads: list[np.ndarray], geometry, img_hw: tuple[int, int]) -> np.ndarray:
        pred = decode_yolov5_heads(heads, self.anchors_px, self.strides, self.params["conf_thres"])
        dets = select_detections(pred, self.params["conf_thres"], self.params["iou_thres"], self.params["classes"],
                                 self.params["top_k_num"], MAX_NMS_CANDIDATES)
        dets[:, :4] = geometry.boxes_to_image(dets[:, :4], img_hw)
        dets[:, :4] = xyxy_to_xywh(dets[:, :4])
        return dets

    def __call__(self, img_bgr: np.ndarray) -> np.ndarray:
        input_nchw, geometry = self.preprocess(img_bgr)
        heads = self.infer(input_nchw)
        return self.postprocess(heads, geometry, img_bgr.shape[:2])
