"""Top-down prediction with a torch pose model, and the evaluation entry point used in training.

``predict_loader`` runs a :class:`~litehrnet.models.PoseModel` over batches of top-down crops:

1. heatmaps of the crop, and (flip test) of the mirrored crop, flipped back with left/right
   channels swapped and shifted one pixel (:func:`prepostprocess.flip_back`), then averaged;
2. decode (``default``: argmax + 0.25 px toward the higher neighbour; ``dark``) and mapping back
   through the inverse crop affine by the model's :class:`~litehrnet.data.codec.HeatmapCodec`
   (the object that made the training targets; stride from ``model.heatmap_stride``);
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

from litehrnet.data.codec import HeatmapCodec
from litehrnet.evaluation import (
    evaluate_coco_keypoints,
    evaluate_pckh,
    people_to_coco_results,
    write_results_json,
)
from litehrnet.keypoints import get_keypoint_info
from prepostprocess import flip_back


@dataclass(frozen=True)
class TestOptions:
    """Flip test settings; defaults are the official test recipe. The decode rule is the codec's."""

    flip_test: bool = True
    shift_heatmap: bool = True

    @classmethod
    def from_config(cls, cfg: dict) -> "TestOptions":
        test = cfg["test"]
        return cls(bool(test["flip_test"]), bool(test["shift_heatmap"]))


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


def predict_batch(model: nn.Module, batch: dict, flip_pairs, options: TestOptions, device,
                  codec: HeatmapCodec) -> list[dict]:
    """Person predictions for one collated batch (keys ``img``, ``center_xy``, ``scale_wh_px``, ...)."""
    images = batch["img"].to(device, non_blocking=True)
    if tuple(images.shape[2:]) != codec.input_hw:
        raise ValueError(f"batch images are {tuple(images.shape[2:])} but the codec expects {codec.input_hw}")
    heatmaps = predict_heatmaps(model, images, flip_pairs, options.flip_test, options.shift_heatmap)
    centers = _numpy(batch["center_xy"]).astype(np.float64)
    scales = _numpy(batch["scale_wh_px"]).astype(np.float64)
    rotation = _numpy(batch.get("rotation", np.zeros(len(centers)))).astype(np.float64)
    keypoints_xy, scores = codec.decode_to_image(heatmaps, centers, scales, rotation)
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
    model: nn.Module, batches: Iterable[dict], flip_pairs, codec: HeatmapCodec,
    options: TestOptions = TestOptions(), device=None, progress: bool = False,
) -> list[dict]:
    """Run ``model`` in eval mode over ``batches`` and decode with ``codec`` (the model's, see
    :func:`litehrnet.data.codec_for_model`); the model's previous mode is restored."""
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
            people.extend(predict_batch(model, batch, flip_pairs, options, device, codec))
    finally:
        model.train(was_training)
    return people


# ------------------------------------------------------------------------------------------------
# datasets -> predictions -> metrics
# ------------------------------------------------------------------------------------------------


def build_eval_dataset(cfg: dict, split: str = "val", codec: HeatmapCodec | None = None):
    """``split``'s dataset with the *validation* pipeline (no augmentation), for GT or detected boxes.

    ``val`` boxes follow ``data.use_gt_bbox`` / ``data.det_file``; ``train`` always uses GT boxes.
    ``codec``: the model's (default: that of the config's model).
    """
    from litehrnet.data import build_dataset, build_topdown_pipeline

    dataset = build_dataset(cfg, split, codec)
    if split != "val":
        has_bbox = "bbox_xywh" in dataset.records[0]
        dataset.pipeline = build_topdown_pipeline(cfg, False, has_bbox, dataset.info, codec)
    return dataset


def predict_dataset(
    model: nn.Module, dataset, cfg: dict, device=None, progress: bool = False,
    codec: HeatmapCodec | None = None,
) -> list[dict]:
    """Person predictions for every sample of ``dataset`` (batch size ``test.batch_size``), decoded
    by ``codec`` (default: the codec of ``model``)."""
    from torch.utils.data import DataLoader

    from litehrnet.data import codec_for_model, collate

    codec = codec if codec is not None else codec_for_model(cfg, model)
    loader = DataLoader(dataset, batch_size=int(cfg["test"]["batch_size"]), shuffle=False,
                        num_workers=int(cfg["data"]["workers"]), collate_fn=collate)
    flip_pairs = get_keypoint_info(cfg["data"]["keypoint_layout"]).flip_pairs
    return predict_loader(model, loader, flip_pairs, codec, TestOptions.from_config(cfg), device, progress)


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


MPII_GT_MAT = "mpii_gt_val.mat"  # the official file's name, next to mpii_val.json in mmpose's layout


def mpii_gt_mat_path(cfg: dict, ann_file) -> Path | None:
    """``data.val_gt_mat`` (must exist), else ``mpii_gt_val.mat`` next to ``ann_file`` when present."""
    explicit = cfg["data"].get("val_gt_mat")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ValueError(f"{path}: data.val_gt_mat not found; point it at the official mpii_gt_val.mat or set null")
        return path
    beside = Path(ann_file).parent / MPII_GT_MAT
    return beside if beside.is_file() else None


def _check_same_people(gt_mat_arrays: dict, dataset, gt_mat, ann_file) -> None:
    """The .mat and the JSON must list the same people in the same order (joints within 1 px)."""
    json_xy = np.stack([r["joints_xy"] for r in dataset.records]) + 1.0  # back to the files' 1-based pixels
    both = (gt_mat_arrays["visible_nk"] > 0) & (np.stack([r["joints_visible"] for r in dataset.records]) > 0)
    if both.any():
        dist = np.linalg.norm(json_xy - gt_mat_arrays["joints_xy_nk2"], axis=-1)[both]
        if np.median(dist) > 1.0:
            raise ValueError(f"{gt_mat}: its joints differ from {ann_file} (median {np.median(dist):.1f} px); "
                             "the .mat and the JSON must be the same split in the same order")


def score_pckh(people: list[dict], dataset, ann_file, out_json=None, gt_mat=None) -> dict[str, float]:
    """MPII PCKh of predictions, matched to ground truth by sample ``index`` (MPII records keep the
    JSON's order, so sample ``i`` is JSON entry ``i`` and person ``i`` of the official .mat).

    With ``gt_mat`` (the official ``mpii_gt_val.mat``) the joints, annotation flags and head boxes
    come from it and predictions are shifted to its 1-based pixels, as the official evaluation does;
    otherwise the dataset's joints and the JSON's per-entry head boxes are used.
    """
    from litehrnet.evaluation import load_mpii_gt, load_mpii_gt_mat

    idx = np.array([p["index"] for p in people])
    pred = np.stack([np.asarray(p["keypoints"])[:, :2] for p in people])
    if gt_mat is not None:
        gt_all = load_mpii_gt_mat(gt_mat)
        if len(gt_all["head_size_n"]) != len(dataset.records):
            raise ValueError(f"{gt_mat}: {len(gt_all['head_size_n'])} people but {ann_file} has "
                             f"{len(dataset.records)} entries; use the .mat of the same split (mpii_gt_val.mat for "
                             "mpii_val.json)")
        _check_same_people(gt_all, dataset, gt_mat, ann_file)
        gt, vis, heads = gt_all["joints_xy_nk2"][idx], gt_all["visible_nk"][idx], gt_all["head_size_n"][idx]
        pred = pred + 1.0  # our pixels are 0-based; the official .mat is 1-based (MATLAB)
    else:
        head_size_n = load_mpii_gt(ann_file)["head_size_n"]
        if len(head_size_n) != len(dataset.records):
            raise ValueError(f"{ann_file}: {len(head_size_n)} entries but the dataset has "
                             f"{len(dataset.records)} records")
        gt = np.stack([dataset.records[i]["joints_xy"] for i in idx])
        vis = np.stack([dataset.records[i]["joints_visible"] for i in idx])
        heads = head_size_n[idx]
    if out_json:
        write_results_json(people_to_records_json(people), out_json)
    return evaluate_pckh(pred, gt, vis, heads)


def evaluate_model(
    model: nn.Module, cfg: dict, split: str = "val", *, use_gt_bbox: bool = True,
    out_json: str | os.PathLike | None = None, device=None, progress: bool = False,
) -> dict[str, float]:
    """Predict ``split`` (no augmentation) and score it with ``cfg["test"]["metric"]``.

    COCO (``mAP``): AP, AP50, AP75, APm, APl, AR, ... as fractions. MPII (``PCKh``): Head, ..., PCKh,
    PCKh@0.1 in percent. The model's train/eval mode is restored afterwards.
    """
    from litehrnet.data import codec_for_model

    cfg = copy.deepcopy(cfg)
    cfg["data"]["use_gt_bbox"] = bool(use_gt_bbox)
    metric, ann_file = cfg["test"]["metric"], annotation_path(cfg, split)
    if metric not in ("mAP", "PCKh"):
        raise ValueError(f"config: test.metric {metric!r} unknown; use 'mAP' or 'PCKh'")
    gt_mat = mpii_gt_mat_path(cfg, ann_file) if metric == "PCKh" and split == "val" else None  # before any work
    codec = codec_for_model(cfg, model)  # one codec: the validation targets and the decode
    dataset = build_eval_dataset(cfg, split, codec)
    people = predict_dataset(model, dataset, cfg, device, progress, codec)
    if metric == "mAP":
        return score_coco(people, cfg, ann_file, out_json)
    return score_pckh(people, dataset, ann_file, out_json, gt_mat)


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
