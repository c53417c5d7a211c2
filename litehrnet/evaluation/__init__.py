"""Backend-agnostic pose metrics (numpy + pycocotools; no torch).

COCO keypoint AP/AR with the top-down recipe's rescoring and OKS-NMS (:mod:`.coco`, :mod:`.oks`)
and MPII PCKh (:mod:`.pckh`). Inputs are plain arrays/dicts, so outputs of torch, onnxruntime or
the NPU emulation are scored by the same code. :mod:`.scoring` scores the end-to-end chain's
output records (``tools/eval_e2e.py``).
"""

from litehrnet.evaluation.coco import (
    COCO_STAT_NAMES,
    EvaluationError,
    evaluate_coco_keypoints,
    load_coco_gt,
    people_to_coco_results,
    rescore,
    write_results_json,
)
from litehrnet.evaluation.oks import oks_iou, oks_nms, soft_oks_nms
from litehrnet.evaluation.pckh import (
    PCKhError,
    evaluate_pckh,
    head_size_from_headbox,
    load_mpii_gt,
    load_mpii_gt_mat,
    pckh_correct,
)

__all__ = [
    "COCO_STAT_NAMES", "EvaluationError", "evaluate_coco_keypoints", "load_coco_gt",
    "people_to_coco_results", "rescore", "write_results_json",
    "oks_iou", "oks_nms", "soft_oks_nms",
    "PCKhError", "evaluate_pckh", "head_size_from_headbox", "load_mpii_gt", "load_mpii_gt_mat", "pckh_correct",
]
