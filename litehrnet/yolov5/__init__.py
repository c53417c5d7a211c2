"""The YOLOv5 v6 person detector network (torch): the first stage of the end-to-end chain.

:mod:`.model` builds the network (official module tree, raw head maps out) and exports it to ONNX;
:mod:`.checkpoint` reads official ``yolov5*.pt`` files without the YOLOv5 code or unrestricted
pickle. Decoding and NMS are numpy (:mod:`prepostprocess.detection`), and the onnxruntime runner is
:mod:`litehrnet.deploy.yolov5_runner`, so deployment needs neither this package nor torch.
``tools/yolov5_to_onnx.py`` is the command line.
"""

from .checkpoint import YoloCheckpoint, YoloCheckpointError, read_yolov5_checkpoint
from .model import (
    YoloV5,
    build_yolov5,
    export_yolov5_onnx,
    fold_kneron_input,
    set_kneron_input,
    yolov5_arch,
    yolov5_from_checkpoint,
    yolov5_onnx_metadata,
)

__all__ = [
    "YoloCheckpoint", "YoloCheckpointError", "YoloV5", "build_yolov5", "export_yolov5_onnx",
    "fold_kneron_input", "read_yolov5_checkpoint", "set_kneron_input", "yolov5_arch", "yolov5_from_checkpoint", "yolov5_onnx_metadata",
]
