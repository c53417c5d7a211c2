"""Top-down prediction with a torch pose model, and the evaluation entry point used in training.

``predict_loader`` runs a :class:`~litehrnet.models.PoseModel` over batches of top-down crops:

1. heatmaps of the crop, and (flip test) of the mirrored crop, flipped back with left/right
   channels swapped and shifted one pixel (:func:`prepostprocess.flip_back`), then averaged;
2. decode (``default``: argmax + 0.25 px toward the higher neighbour; ``dark``) and mapping back
   through the inverse crop affine (:func:`prepostprocess.decode_topdown`);
3. one *person prediction* per crop: ``image_id``, ``image_file``, ``keypoints`` ``(K, 3)``
   ``[x, y, score]`` in image pixels, ``bbox_score``, ``area`` (padded box area, px^2, used by
   OKS-NMS), ``center_xy``, ``scale_wh_px``, ``index`` (sample index in the dataset).

``evaluate_model(model, cfg, split)`` builds the dataset without augmentation, predicts and
scores it (COCO AP via :mod:`litehrnet.evaluation.coco` or MPII PCKh), restoring the model's
train/eval mode afterwards, so the trainer can call it between epochs.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn

from litehrnet.evaluation import (
    evaluate_coco_keypoints,
    evaluate_pckh,
    people_to_coco_results,
    write_results_json,
)
from litehrnet.keypoints import get_keypoint_info
from prepostprocess import decode_topdown, flip_back


@dataclass(frozen=True)
class TestOptions:
    """How heatmaps become keypoints; defaults are the official test recipe."""

    flip_test: bool = True
    shift_heatmap: bool = True
    decode: str = "default"  # default | dark
    dark_kernel: int = 11

    @classmethod
    def from_config(cls, cfg: dict) -> "TestOptions":
        test = cfg["test"]
        return cls(bool(test["flip_test"]), bool(test["shift_heatmap"]), str(test["decode"]),
                   int(test["dark_kernel"]))


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter (CPU for a parameter-less module)."""
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


@torch.no_grad()
def predict_heatmaps(
    model: nn.Module, images_nchw: torch.Tensor, flip_pairs, flip_test: bool = True, shift_heatmap: bool = True,
) -> np.ndarray:
    """Model heatmaps ``(N, K, h, w)`` float32, averaged with the flipped-back mirror when ``flip_test``."""
    heatmaps = model(images_nchw).float().cpu().numpy()
    if flip_test:
        mirrored = model(torch.flip(images_nchw, dims=[3])).float().cpu().numpy()
        heatmaps = 0.5 * (heatmaps + flip_back(mirrored, flip_pairs, shift=shift_heatmap))
    return heatmaps


def predict_batch(model: nn.Module, batch: dict, flip_pairs, options: TestOptions, device) -> list[dict]:
    """Person predictions for one collated batch (keys ``img``, ``center_xy``, ``scale_wh_px``, ...)."""
    images = batch["img"].to(device, non_blocking=True)
    heatmaps = predict_heatmaps(model, images, flip_pairs, options.flip_test, options.shift_heatmap)
    input_hw = tuple(images.shape[2:])
    centers = _numpy(batch["center_xy"]).astype(np.float64)
    scales = _numpy(batch["scale_wh_px"]).astype(np.float64)
    rotation = _numpy(batch.get("rotation", np.zeros(len(centers)))).astype(np.float64)
    keypoints_xy, scores = decode_topdown(heatmaps, centers, scales, input_hw, options.decode,
                                          options.dark_kernel, rotation)
    n = len(centers)
    image_ids = _numpy(batch["image_id"]).reshape(n)
    bbox_scores = _numpy(batch.get("bbox_score", np.ones(n))).reshape(n)
    image_files = batch.get("image_file", [""] * n)
    indices = _numpy(batch["index"]).reshape(n) if "index" in batch else np.full(n, -1)
    people = []
    for i in range(n):
        people.append({
            "image_id": int(image_ids[i]),
            "image_file": str(image_files[i]),
            "keypoints": np.concatenate([keypoints_xy[i], scores[i][:, None]], axis=1),
            "bbox_score": float(bbox_scores[i]),
            "area": float(scales[i, 0] * scales[i, 1]),
            "center_xy": centers[i],
            "scale_wh_px": scales[i],
            "index": int(indices[i]),
        })
    return people


def predict_loader(
    model: nn.Module, batches: Iterable[dict], flip_pairs, options: TestOptions = TestOptions(),
    device=None, progress: bool = False,
) -> list[dict]:
    """Run ``model`` in eval mode over ``batches``; the model's previous mode is restored."""
    device = torch.device(device) if device is not None else model_device(model)
    was_training = model.training
    model.eval()
    iterator: Iterator[dict] | Iterable[dict] = batches
    if progress:
        from tqdm import tqdm

        iterator = tqdm(batches, desc="predict", unit="batch")
    people: list[dict] = []
    try:
        for batch in iterator:
            people.extend(predict_batch(model, batch, flip_pairs, options, device))
    finally:
        model.train(was_training)
    return people


# ------------------------------------------------------------------------------------------------
# datasets -> predictions -> metrics
# ------------------------------------------------------------------------------------------------


def build_eval_dataset(cfg: dict, split: str = "val"):
    """``split``'s dataset with the *validation* pipeline (no augmentation), for GT or detected boxes.

    ``val`` boxes follow ``data.use_gt_bbox`` / ``data.det_file``; ``train`` always uses GT boxes.
    """
    from litehrnet.data import build_dataset, build_topdown_pipeline

    dataset = build_dataset(cfg, split)
    if split != "val":
        has_bbox = "bbox_xywh" in dataset.records[0]
        dataset.pipeline = build_topdown_pipeline(cfg, False, has_bbox, dataset.info)
    return dataset


def predict_dataset(
    model: nn.Module, dataset, cfg: dict, device=None, progress: bool = False,
) -> list[dict]:
    """Person predictions for every sample of ``dataset`` (batch size ``test.batch_size``)."""
    from torch.utils.data import DataLoader

    from litehrnet.data import collate

    loader = DataLoader(dataset, batch_size=int(cfg["test"]["batch_size"]), shuffle=False,
                        num_workers=int(cfg["data"]["workers"]), collate_fn=collate)
    flip_pairs = get_keypoint_info(cfg["data"]["keypoint_layout"]).flip_pairs
    return predict_loader(model, loader, flip_pairs, TestOptions.from_config(cfg), device, progress)


def annotation_path(cfg: dict, split: str = "val") -> Path:
    """Ground-truth annotation file of ``split`` (``data.root`` / ``data.<split>_ann``)."""
    return Path(cfg["data"]["root"]) / cfg["data"][f"{split}_ann"]


def people_to_records_json(people: list[dict]) -> list[dict]:
    """Plain-JSON per-person predictions (used for MPII, which has no COCO results format)."""
    return [{
        "image_id": p["image_id"],
        "image_file": p["image_file"],
        "keypoints": [round(float(v), 4) for v in np.asarray(p["keypoints"]).reshape(-1)],
        "score": float(np.mean(np.asarray(p["keypoints"])[:, 2])),
        "center_xy": [float(v) for v in p["center_xy"]],
        "scale_wh_px": [float(v) for v in p["scale_wh_px"]],
    } for p in people]


def score_coco(people: list[dict], cfg: dict, ann_file, out_json=None) -> dict[str, float]:
    """Rescoring + NMS + pycocotools AP/AR per ``cfg["test"]``; optionally writes the results JSON."""
    test = cfg["test"]
    sigmas = get_keypoint_info(cfg["data"]["keypoint_layout"]).sigmas
    if not sigmas:
        raise ValueError(f"keypoint layout {cfg['data']['keypoint_layout']!r} has no OKS sigmas; use --eval PCKh")
    results = people_to_coco_results(people, sigmas, test["kpt_score_thr"], test["nms"], test["oks_nms_thr"])
    if out_json:
        write_results_json(results, out_json)
    image_ids = {p["image_id"] for p in people} if test["only_predicted_images"] else None
    return evaluate_coco_keypoints(results, ann_file, sigmas, image_ids=image_ids)


def score_pckh(people: list[dict], dataset, ann_file, out_json=None) -> dict[str, float]:
    """MPII PCKh of predictions against the dataset's GT joints and the JSON's head sizes.

    Predictions are matched to ground truth by sample ``index``; MPII records keep the JSON's order,
    so the head size of sample ``i`` is that of JSON entry ``i``.
    """
    from litehrnet.evaluation import load_mpii_gt

    head_size_n = load_mpii_gt(ann_file)["head_size_n"]
    if len(head_size_n) != len(dataset.records):
        raise ValueError(f"{ann_file}: {len(head_size_n)} entries but the dataset has {len(dataset.records)} records")
    idx = np.array([p["index"] for p in people])
    pred = np.stack([np.asarray(p["keypoints"])[:, :2] for p in people])
    gt = np.stack([dataset.records[i]["joints_xy"] for i in idx])
    vis = np.stack([dataset.records[i]["joints_visible"] for i in idx])
    if out_json:
        write_results_json(people_to_records_json(people), out_json)
    return evaluate_pckh(pred, gt, vis, head_size_n[idx])


def evaluate_model(
    model: nn.Module, cfg: dict, split: str = "val", *, use_gt_bbox: bool = True,
    out_json: str | os.PathLike | None = None, device=None, progress: bool = False,
) -> dict[str, float]:
    """Predict ``split`` (no augmentation) and score it with ``cfg["test"]["metric"]``.

    COCO (``mAP``): AP, AP50, AP75, APm, APl, AR, ... as fractions. MPII (``PCKh``): Head, ..., PCKh,
    PCKh@0.1 in percent. The model's train/eval mode is restored afterwards.
    """
    cfg = copy.deepcopy(cfg)
    cfg["data"]["use_gt_bbox"] = bool(use_gt_bbox)
    dataset = build_eval_dataset(cfg, split)
    people = predict_dataset(model, dataset, cfg, device, progress)
    ann_file = annotation_path(cfg, split)
    metric = cfg["test"]["metric"]
    if metric == "mAP":
        return score_coco(people, cfg, ann_file, out_json)
    if metric == "PCKh":
        return score_pckh(people, dataset, ann_file, out_json)
    raise ValueError(f"config: test.metric {metric!r} unknown; use 'mAP' or 'PCKh'")


def run_test(
    cfg: dict, checkpoint, out_json=None, device="cpu", progress: bool = False,
) -> dict[str, float]:
    """``test.py``: build the model of ``cfg``, load ``checkpoint`` and evaluate the val split.

    Boxes follow ``data.use_gt_bbox`` / ``data.det_file`` of ``cfg``.
    """
    from litehrnet.models import build_model_from_config
    from litehrnet.models.checkpoint import load_checkpoint

    model = build_model_from_config(cfg)
    load_checkpoint(model, checkpoint)
    model.to(torch.device(device))
    return evaluate_model(model, cfg, "val", use_gt_bbox=cfg["data"]["use_gt_bbox"], out_json=out_json,
                          device=device, progress=progress)
