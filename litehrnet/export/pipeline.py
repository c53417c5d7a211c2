"""Config + checkpoint -> verified ONNX: the logic behind ``export2onnx.py``.

The verification input is a real top-down crop (``prepostprocess.preprocess_topdown``, the same
function training and the deploy runners use) of the first annotated person of the COCO set in
``ExportJob.verify_coco_dir`` (``annotations/person_keypoints_val2017.json`` + ``val2017/``; the
command line passes one) when it exists, a seeded random tensor otherwise.

Without a checkpoint (``none``) the model gets synthetic "trained-like" weights
(:func:`litehrnet.export.synthetic.synthetic_trained_weights`, calibrated on the verification
crops): realistic activation ranges, so the export check and latency runs mean something, but the
keypoints are meaningless. The metadata says so (:func:`weights_metadata`): ``weights`` is
``trained``, ``barely-trained`` (a checkpoint of fewer than :data:`BARELY_TRAINED_ITERS`
iterations, per its ``meta.iter``) or ``random``; ``train_iters`` when known. The deploy runners
warn once when a model is not ``trained``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from litehrnet.models import build_model_from_config
from litehrnet.models.checkpoint import load_checkpoint
from litehrnet.models.separable_resize import set_separable_upsampling

from .metadata import metadata_from_config
from .onnx_export import ExportReport, check_export_args, export_onnx
from .synthetic import synthetic_trained_weights

NO_CHECKPOINT = ("none", "")
BARELY_TRAINED_ITERS = 1000
RANDOM_DOC_STRING = "RANDOM-INIT weights (no checkpoint; synthetic trained-like statistics): for tests/benchmarks only"


@dataclass
class ExportJob:
    """Everything ``export2onnx.py`` needs, already validated by argparse."""

    cfg: dict
    checkpoint: str | None
    out_path: Path
    input_hw: tuple[int, int]
    opset: int
    simplify: bool
    npu_rewrite: bool = False
    batch: int = 1  # static batch N (CPU/GPU chunks); the chip needs 1
    dynamic_batch: bool = False
    checkpoint_meta: dict | None = None  # the checkpoint's ``meta`` (set by build_export_model)
    one_logit: float | None = None  # npu_rewrite: pre-sigmoid bias of untouched channels (None: the rewrite's 20)
    verify_coco_dir: Path | None = None  # COCO val set giving real verification crops (None: random input)
    separable_upsampling: bool = True  # NPU graphs: row-then-column Resizes (False: 2-D, CPU/GPU only)


def real_crop_input(input_hw: Sequence[int], norm: str, channel_order: str,
                    coco_dir: Path | None, person_index: int = 0) -> np.ndarray | None:
    """A normalised 1x3xHxW crop of a real COCO person of ``coco_dir``, or None when it is absent."""
    if coco_dir is None:
        return None
    ann_file = Path(coco_dir) / "annotations" / "person_keypoints_val2017.json"
    if not ann_file.is_file():
        return None
    from prepostprocess import bbox_xywh_to_center_scale, preprocess_topdown, read_image_bgr

    with open(ann_file, "r", encoding="utf-8") as f:
        coco = json.load(f)
    files = {img["id"]: img["file_name"] for img in coco["images"]}
    people = [a for a in coco["annotations"] if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd")]
    ann = people[person_index % len(people)]
    img_bgr = read_image_bgr(Path(coco_dir) / "val2017" / files[ann["image_id"]])
    h, w = (int(v) for v in input_hw)
    center_xy, scale_wh_px = bbox_xywh_to_center_scale(ann["bbox"], aspect_wh=w / h, padding=1.25)
    crop = preprocess_topdown(img_bgr, center_xy, scale_wh_px, (h, w), norm, channel_order)
    return crop[None].astype(np.float32)


def build_export_model(job: ExportJob):
    """Model from the config, weights from the checkpoint (or random init), rewritten on request."""
    model = build_model_from_config(job.cfg)
    if job.checkpoint is not None:
        job.checkpoint_meta = load_checkpoint(model, job.checkpoint, strict=True) or {}
    else:
        synthetic_trained_weights(model, calibration_inputs(job))
    model.eval()
    if job.npu_rewrite:
        from litehrnet.export.npu_rewrite import to_npu_rewrite

        model = to_npu_rewrite(model, job.input_hw, *([job.one_logit] if job.one_logit is not None else []))
    return set_separable_upsampling(model, job.separable_upsampling)


def calibration_inputs(job: ExportJob, count: int = 4):
    """Real COCO crops when available (seeded random inputs otherwise) for synthetic weights."""
    import torch

    data = job.cfg["data"]
    crops = [real_crop_input(job.input_hw, data["norm"], data["channel_order"], job.verify_coco_dir, i)
             for i in range(count)]
    if any(c is None for c in crops):
        return torch.randn(count, 3, *job.input_hw, generator=torch.Generator().manual_seed(0))
    return torch.from_numpy(np.concatenate(crops, 0))


def weights_metadata(checkpoint_meta: dict | None) -> dict[str, str]:
    """``weights`` (+ ``train_iters``) metadata: see the module docstring."""
    if checkpoint_meta is None:
        return {"weights": "random"}
    iters = checkpoint_meta.get("iter")
    if not isinstance(iters, int) or isinstance(iters, bool):
        return {"weights": "trained"}
    return {"weights": "barely-trained" if iters < BARELY_TRAINED_ITERS else "trained", "train_iters": str(iters)}


def run_export(job: ExportJob) -> tuple[ExportReport, str]:
    """Export ``job``; returns the report and a word saying which verification input was used."""
    check_export_args(job.input_hw, job.opset)
    model = build_export_model(job)
    data = job.cfg["data"]
    verify = real_crop_input(job.input_hw, data["norm"], data["channel_order"], job.verify_coco_dir)
    source = "real COCO crop" if verify is not None else "random input"
    metadata = {**metadata_from_config(job.cfg, model, input_hw=job.input_hw), **weights_metadata(job.checkpoint_meta)}
    report = export_onnx(model, job.out_path, job.input_hw, opset=job.opset, simplify=job.simplify,
                         metadata=metadata, verify_input=verify, batch=job.batch, dynamic_batch=job.dynamic_batch,
                         doc_string=None if job.checkpoint else RANDOM_DOC_STRING)
    return report, source
