"""Config + checkpoint -> verified ONNX: the logic behind ``export2onnx.py``.

The verification input is a real top-down crop (``prepostprocess.preprocess_topdown``, the same
function training and the deploy runners use) of the first annotated person in
``../shared/data/coco_val2017_dev`` when that folder exists, a seeded random tensor otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from litehrnet.models import build_model_from_config
from litehrnet.models.checkpoint import load_checkpoint

from .metadata import metadata_from_config
from .onnx_export import ExportReport, check_export_args, export_onnx

SHARED_COCO_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco_val2017_dev"
NO_CHECKPOINT = ("none", "")


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


def real_crop_input(input_hw: Sequence[int], norm: str, channel_order: str,
                    coco_dir: Path = SHARED_COCO_DEV, person_index: int = 0) -> np.ndarray | None:
    """A normalised 1x3xHxW crop of a real COCO person, or None when the data is absent."""
    ann_file = coco_dir / "annotations" / "person_keypoints_val2017.json"
    if not ann_file.is_file():
        return None
    from prepostprocess import bbox_xywh_to_center_scale, preprocess_topdown, read_image_bgr

    with open(ann_file, "r", encoding="utf-8") as f:
        coco = json.load(f)
    files = {img["id"]: img["file_name"] for img in coco["images"]}
    people = [a for a in coco["annotations"] if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd")]
    ann = people[person_index % len(people)]
    img_bgr = read_image_bgr(coco_dir / "val2017" / files[ann["image_id"]])
    h, w = (int(v) for v in input_hw)
    center_xy, scale_wh_px = bbox_xywh_to_center_scale(ann["bbox"], aspect_wh=w / h, padding=1.25)
    crop = preprocess_topdown(img_bgr, center_xy, scale_wh_px, (h, w), norm, channel_order)
    return crop[None].astype(np.float32)


def build_export_model(job: ExportJob):
    """Model from the config, weights from the checkpoint (or random init), rewritten on request."""
    model = build_model_from_config(job.cfg)
    if job.checkpoint is not None:
        load_checkpoint(model, job.checkpoint, strict=True)
    model.eval()
    if job.npu_rewrite:
        from litehrnet.models.npu import to_npu_rewrite

        model = to_npu_rewrite(model, job.input_hw)
    return model


def run_export(job: ExportJob) -> tuple[ExportReport, str]:
    """Export ``job``; returns the report and a word saying which verification input was used."""
    check_export_args(job.input_hw, job.opset)
    model = build_export_model(job)
    data = job.cfg["data"]
    verify = real_crop_input(job.input_hw, data["norm"], data["channel_order"])
    source = "real COCO crop" if verify is not None else "random input"
    metadata = metadata_from_config(job.cfg, variant=model.variant, input_hw=job.input_hw)
    report = export_onnx(model, job.out_path, job.input_hw, opset=job.opset, simplify=job.simplify,
                         metadata=metadata, verify_input=verify,
                         doc_string=None if job.checkpoint else "RANDOM-INIT weights (no checkpoint): for tests/benchmarks only")
    return report, source
