"""onnxruntime deployment of the top-down chain (no torch): YOLOv5 -> affine crop -> pose.

>>> solution = TopDownSolution.from_yaml("utils/yolov5_init_params.yaml",
...                                      "utils/rsn_affine_init_params.yaml",
...                                      "utils/lite_hrnet_init_params.yaml")
>>> result = solution(img_bgr)   # result.bboxes_ltwhs (N, 5), result.keypoints_nk3 (N, 17, 3)

Runners share :class:`OnnxRunner` (the onnxruntime session); pre/post-processing is
:mod:`prepostprocess`. ``npu_check`` (NPU op compatibility) is a separate tool in this package.
"""

from .affine_runner import AffineCropRunner, Crops
from .base import OnnxRunner, RunnerError
from .params import ParamsError, load_params
from .pose_runner import PoseRunner
from .solution import PoseResult, TopDownSolution
from .yolov5_runner import YoloV5Runner

__all__ = [
    "AffineCropRunner", "Crops", "OnnxRunner", "ParamsError", "PoseResult", "PoseRunner", "RunnerError",
    "TopDownSolution", "YoloV5Runner", "load_params",
]
