"""Calibration for the int8 emulation: real person crops in, one radix per activation out.

Crops: a COCO keypoint annotation file (every annotated, non-crowd person with keypoints, cropped
from its ground-truth box exactly as the deploy chain's GT-box mode does) or a folder of images that
are already person crops (each image is one person, its whole frame the box). Both go through
:func:`prepostprocess.topdown.preprocess_topdown`, the function training and the runners use.

Statistics: per tensor the exact min/max and a histogram of ``log2|x|`` (16 bins per octave). A
power-of-two scale only needs to know in which octave a percentile falls, so the log histogram
answers percentile and MSE questions in one pass with bounded memory, whatever the range.

Methods (``radix_for_stats``): ``max`` (no clipping), ``percentile`` (clip ``|x|`` at the given
fraction of values, Kneron's ``data_analysis_pct``, default 0.999), ``mse`` (the radix, among the
max radix and the four above it, that minimises the estimated squared error of rounding + clipping).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from prepostprocess.geometry import bbox_xywh_to_center_scale, clip_bbox_xywh_coco
from prepostprocess.image_io import read_image_bgr
from prepostprocess.topdown import preprocess_topdown

from .int8 import INT8_MAX, INT8_MIN, radix_for_range

CALIB_METHODS = ("percentile", "max", "mse")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
BINS_PER_OCTAVE = 16
LOG2_LO, LOG2_HI = -40, 40  # |x| below 2**-40 counts as zero; above 2**40 is clamped into the last bin
N_BINS = (LOG2_HI - LOG2_LO) * BINS_PER_OCTAVE


class CalibrationError(ValueError):
    """Calibration data are missing, too few or overlap the evaluation data."""


@dataclass(frozen=True)
class PersonCrop:
    """One calibration/evaluation sample: the image it came from and its box geometry."""

    image_path: Path
    image_id: int | None
    center_xy: np.ndarray
    scale_wh_px: np.ndarray
    bbox_xywh: tuple[float, float, float, float]
    annotation: dict | None = None


def _file_digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def coco_person_crops(ann_file: Path, input_hw: Sequence[int], img_dir: Path | None = None) -> list[PersonCrop]:
    """Every non-crowd person with keypoints of a COCO file, in (image id, annotation id) order.

    Images are looked up in ``img_dir`` or, by default, in the first sibling folder of
    ``annotations/`` that holds them (``train2017``, ``val2017``, ...).
    """
    ann_file = Path(ann_file)
    try:
        coco = json.loads(ann_file.read_text(encoding="utf-8"))
        images = {int(img["id"]): img for img in coco["images"]}
        anns = sorted(coco["annotations"], key=lambda a: (int(a["image_id"]), int(a["id"])))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"{ann_file}: not a readable COCO keypoint file ({exc}); pass person crops "
                               "or a person_keypoints_*.json") from None
    root = ann_file.parent.parent
    folders = [Path(img_dir)] if img_dir else [d for d in sorted(root.iterdir()) if d.is_dir() and d.name != "annotations"]
    h, w = (int(v) for v in input_hw)
    crops: list[PersonCrop] = []
    for ann in anns:
        img = images.get(int(ann["image_id"]))
        if img is None or ann.get("iscrowd") or ann.get("num_keypoints", 0) <= 0:
            continue
        box = clip_bbox_xywh_coco(ann["bbox"], img["width"], img["height"])
        if box is None:
            continue
        path = next((d / img["file_name"] for d in folders if (d / img["file_name"]).is_file()), None)
        if path is None:
            raise CalibrationError(f"{ann_file}: image {img['file_name']} not found next to the annotations "
                                   f"(looked in {', '.join(str(d) for d in folders) or root}); pass the image folder")
        center, scale = bbox_xywh_to_center_scale(box, aspect_wh=w / h, padding=1.25)
        crops.append(PersonCrop(path, int(img["id"]), center, scale, tuple(float(v) for v in box), ann))
    return crops


def folder_person_crops(folder: Path, input_hw: Sequence[int]) -> list[PersonCrop]:
    """Each image of ``folder`` (sorted by name) is one person crop; the whole frame is its box."""
    h, w = (int(v) for v in input_hw)
    crops = []
    for path in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        img = read_image_bgr(path)
        box = (0.0, 0.0, float(img.shape[1]), float(img.shape[0]))
        center, scale = bbox_xywh_to_center_scale(box, aspect_wh=w / h, padding=1.0)
        crops.append(PersonCrop(path, None, center, scale, box))
    return crops


def person_crops(source: str | Path, input_hw: Sequence[int]) -> list[PersonCrop]:
    """Crops from a COCO keypoint JSON or a folder of person images (see the module doc)."""
    source = Path(source)
    if source.is_dir():
        return folder_person_crops(source, input_hw)
    if source.is_file() and source.suffix.lower() == ".json":
        return coco_person_crops(source, input_hw)
    raise CalibrationError(f"{source}: not found or neither a folder of person crops nor a COCO keypoint .json; "
                           "pass --calib IMAGES_DIR or --calib person_keypoints_*.json")


def take(crops: list[PersonCrop], num: int, source: str | Path) -> list[PersonCrop]:
    """The first ``num`` crops; fewer available is an error (never a silently smaller set)."""
    if len(crops) < num:
        raise CalibrationError(f"{source}: {len(crops)} person crops available but {num} asked; add images or "
                               f"pass --num-calib {len(crops)} (Kneron asks for at least 100)")
    return crops[:num]


def check_disjoint(calib: Iterable[PersonCrop], evaluation: Iterable[PersonCrop], calib_source, eval_source) -> None:
    """Refuse calibration images that are also evaluation images (same file name or same bytes)."""
    calib_paths = {c.image_path for c in calib}
    eval_paths = {e.image_path for e in evaluation}
    same_name = {p.name for p in calib_paths} & {p.name for p in eval_paths}
    if not same_name:
        calib_digests = {_file_digest(p): p for p in calib_paths}
        same_name = {calib_digests[d].name for d in map(_file_digest, eval_paths) if d in calib_digests}
    if same_name:
        raise CalibrationError(f"{calib_source}: {len(same_name)} calibration image(s) are also in the evaluation set "
                               f"{eval_source} (e.g. {sorted(same_name)[0]}); calibrate on other images "
                               "(e.g. train2017) so the int8 figures are not flattered")


def crop_inputs(crops: Iterable[PersonCrop], input_hw: Sequence[int], norm: str,
                channel_order: str) -> Iterator[np.ndarray]:
    """Network inputs ``1x3xHxW`` float32, one per crop, made by the deploy chain's preprocessing."""
    cache: tuple[Path | None, np.ndarray | None] = (None, None)
    for crop in crops:
        if cache[0] != crop.image_path:
            cache = (crop.image_path, read_image_bgr(crop.image_path))
        x = preprocess_topdown(cache[1], crop.center_xy, crop.scale_wh_px, tuple(int(v) for v in input_hw),
                               norm, channel_order)
        yield x[None].astype(np.float32)


@dataclass
class ActivationStats:
    """Streaming statistics of one tensor: exact min/max and a ``log2|x|`` histogram."""

    lo: float = math.inf
    hi: float = -math.inf
    zeros: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32).ravel()
        if not np.isfinite(x).all():
            raise CalibrationError("an activation is inf/nan on a calibration input; check the checkpoint")
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        a = np.abs(x)
        nz = a[a >= 2.0 ** LOG2_LO]
        self.zeros += a.size - nz.size
        idx = np.clip(((np.log2(nz) - LOG2_LO) * BINS_PER_OCTAVE).astype(np.int64), 0, N_BINS - 1)
        self.hist += np.bincount(idx, minlength=N_BINS)

    @property
    def count(self) -> int:
        return int(self.zeros + self.hist.sum())

    def abs_percentile(self, fraction: float) -> float:
        """Upper edge of the histogram bin holding the ``fraction`` quantile of ``|x|`` (0 if mostly zeros)."""
        target = fraction * self.count
        if target <= self.zeros:
            return 0.0
        cum = self.zeros + np.cumsum(self.hist)
        b = int(np.searchsorted(cum, target))
        return min(2.0 ** (LOG2_LO + (b + 1) / BINS_PER_OCTAVE), max(abs(self.lo), abs(self.hi)))

    def squared_error(self, radix: int) -> float:
        """Estimated total squared error of int8 at ``radix`` (rounding noise below, clipping above)."""
        centers = 2.0 ** (LOG2_LO + (np.arange(N_BINS) + 0.5) / BINS_PER_OCTAVE)
        step = 2.0 ** -radix
        limit = INT8_MAX * step
        err = np.where(centers > limit, (centers - limit) ** 2, np.minimum(centers ** 2, step ** 2 / 12))
        return float(np.sum(err * self.hist))

    def to_json(self) -> dict:
        return {"min": self.lo, "max": self.hi, "count": self.count}


def radix_for_stats(stats: ActivationStats, method: str = "percentile", percentile: float = 0.999) -> int:
    """The radix of one tensor from its statistics (see the module doc for the methods)."""
    if method not in CALIB_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; use one of {', '.join(CALIB_METHODS)}")
    if stats.count == 0:
        raise CalibrationError("no calibration data seen for a tensor")
    r_max = radix_for_range(stats.lo, stats.hi)
    if method == "max":
        return r_max
    if method == "percentile":
        if not 0.0 < percentile <= 1.0:
            raise ValueError(f"percentile must be in (0, 1], got {percentile} (Kneron's default is 0.999)")
        a = stats.abs_percentile(percentile)
        return radix_for_range(max(stats.lo, -a * (-INT8_MIN / INT8_MAX)), min(stats.hi, a))
    errors = {r: stats.squared_error(r) for r in range(r_max, r_max + 5)}
    return min(errors, key=lambda r: (errors[r], r))


def collect_stats(model, names: Sequence[str], inputs: Iterable[np.ndarray]) -> tuple[dict[str, ActivationStats], int]:
    """Run the float ``model`` (ModelProto) on ``inputs``; statistics of every tensor in ``names``."""
    import onnxruntime as ort

    from .qdq import with_outputs

    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(with_outputs(model, list(names)).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    stats = {name: ActivationStats() for name in names}
    seen = 0
    for x in inputs:
        for name, value in zip(names, session.run(list(names), {input_name: x})):
            stats[name].update(value)
        seen += 1
    return stats, seen


def choose_radices(stats: dict[str, ActivationStats], method: str, percentile: float,
                   fixed: dict[str, int] | None = None) -> dict[str, int]:
    """Radix per tensor from ``stats``; ``fixed`` (e.g. the input at its norm mode's radix) wins."""
    radix = {name: radix_for_stats(s, method, percentile) for name, s in stats.items()}
    radix.update(fixed or {})
    return radix
