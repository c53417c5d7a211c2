"""onnxruntime deployment of the top-down chain (no torch): YOLOv5 -> affine crop -> pose.

>>> solution = TopDownSolution.from_yaml("utils/yolov5_init_params.yaml",
...                                      "utils/rsn_affine_init_params.yaml",
...                                      "utils/lite_hrnet_init_params.yaml")
>>> result = solution(img_bgr)   # result.bboxes_xywhs (N, 5), result.keypoints_nk3 (N, 17, 3)

Video: :class:`VideoChain` adds the detector interval, tracking (:mod:`.tracking`) and One-Euro
smoothing (:mod:`.smoothing`), sequential or pipelined; :mod:`.inputs` reads images, folders,
lists, videos, cameras and streams lazily; :mod:`.drawing` renders results for ``inference.py``
and video output; :mod:`.records` writes records and the resumable side file.

Runners share :class:`OnnxRunner` (the onnxruntime session); pre/post-processing is
:mod:`prepostprocess`. The NPU operator checker lives with the chip (:mod:`litehrnet.kneron.checker`).
"""

from .affine_runner import AffineCropRunner, Crops, NetworkInput
from .base import OnnxRunner, RunnerError
from .params import ParamsError, load_params
from .pose_runner import PoseRunner
from .solution import PoseResult, TopDownSolution, VideoChain
from .yolov5_runner import YoloV5Runner

__all__ = [
    "AffineCropRunner", "Crops", "NetworkInput", "OnnxRunner", "ParamsError", "PoseResult", "PoseRunner", "RunnerError",
    "TopDownSolution", "VideoChain", "YoloV5Runner", "load_params",
]
