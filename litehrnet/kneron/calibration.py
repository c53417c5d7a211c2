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

Per channel (``per_channel=True``, Kneron's per-channel datapath quantisation, toolchain >= 0.24):
the same statistics are also kept for every channel (axis 1; a coarser histogram, 4 bins per
octave, which is all a power-of-two radix needs) and each channel gets its own radix by the same
method. Kneron's quantisation guide says per-channel results "should be protected by Per Layer
Quantization results, since there could be extreme values and ranges in particular channels"; we
read that as: a channel may get a finer radix than its layer, never a coarser one
(``radix_c = max(radix_channel, radix_layer)``), so an outlier channel is clipped at the layer's
range as per-tensor quantisation would clip it.
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

from .int8 import INT8_MAX, INT8_MIN, multiplier_for_range

CALIB_METHODS = ("percentile", "max", "mse")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
BINS_PER_OCTAVE = 16
LOG2_LO, LOG2_HI = -40, 40  # |x| below 2**-40 counts as zero; above 2**40 is clamped into the last bin
N_BINS = (LOG2_HI - LOG2_LO) * BINS_PER_OCTAVE
CHANNEL_BINS_PER_OCTAVE = 4  # per-channel histograms: a quarter octave is finer than a radix step
N_CHANNEL_BINS = (LOG2_HI - LOG2_LO) * CHANNEL_BINS_PER_OCTAVE


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


def _log2_bins(a: np.ndarray, per_octave: int, n_bins: int) -> np.ndarray:
    return np.clip(((np.log2(a) - LOG2_LO) * per_octave).astype(np.int64), 0, n_bins - 1)


def _abs_percentile(hist: np.ndarray, zeros: int, fraction: float, per_octave: int, abs_max: float) -> float:
    """Upper edge of the ``log2|x|`` bin holding the ``fraction`` quantile of ``|x|`` (0 if mostly zeros)."""
    target = fraction * (zeros + int(hist.sum()))
    if target <= zeros:
        return 0.0
    b = int(np.searchsorted(zeros + np.cumsum(hist), target))
    return min(2.0 ** (LOG2_LO + (b + 1) / per_octave), abs_max)


def _squared_error(hist: np.ndarray, step: float, per_octave: int) -> float:
    """Estimated total squared error of int8 with grid ``step`` (rounding noise below the limit, clipping above)."""
    centers = 2.0 ** (LOG2_LO + (np.arange(hist.size) + 0.5) / per_octave)
    limit = INT8_MAX * step
    err = np.where(centers > limit, (centers - limit) ** 2, np.minimum(centers ** 2, step ** 2 / 12))
    return float(np.sum(err * hist))


@dataclass
class ChannelStats:
    """Per-channel (axis 1) min/max, zero counts and ``log2|x|`` histograms of one tensor."""

    lo: np.ndarray
    hi: np.ndarray
    zeros: np.ndarray
    hist: np.ndarray  # (channels, N_CHANNEL_BINS)
    ndim: int

    @classmethod
    def empty(cls, channels: int, ndim: int) -> "ChannelStats":
        return cls(np.full(channels, np.inf), np.full(channels, -np.inf), np.zeros(channels, np.int64),
                   np.zeros((channels, N_CHANNEL_BINS), np.int64), ndim)

    def update(self, x: np.ndarray) -> None:
        c = x.shape[1]
        rows = np.moveaxis(x, 1, 0).reshape(c, -1)
        self.lo = np.minimum(self.lo, rows.min(1))
        self.hi = np.maximum(self.hi, rows.max(1))
        a = np.abs(rows)
        keep = a >= 2.0 ** LOG2_LO
        self.zeros += a.shape[1] - keep.sum(1)
        channel = np.broadcast_to(np.arange(c)[:, None], a.shape)[keep]
        idx = channel * N_CHANNEL_BINS + _log2_bins(a[keep], CHANNEL_BINS_PER_OCTAVE, N_CHANNEL_BINS)
        self.hist += np.bincount(idx, minlength=c * N_CHANNEL_BINS).reshape(c, N_CHANNEL_BINS)


@dataclass
class ActivationStats:
    """Streaming statistics of one tensor: exact min/max and a ``log2|x|`` histogram (and per channel, optionally)."""

    lo: float = math.inf
    hi: float = -math.inf
    zeros: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(N_BINS, np.int64))
    per_channel: bool = False
    channels: ChannelStats | None = None

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise CalibrationError("an activation is inf/nan on a calibration input; check the checkpoint")
        if self.per_channel and x.ndim >= 2:
            if self.channels is None:
                self.channels = ChannelStats.empty(x.shape[1], x.ndim)
            self.channels.update(x)
        x = x.ravel()
        self.lo, self.hi = min(self.lo, float(x.min())), max(self.hi, float(x.max()))
        a = np.abs(x)
        nz = a[a >= 2.0 ** LOG2_LO]
        self.zeros += a.size - nz.size
        self.hist += np.bincount(_log2_bins(nz, BINS_PER_OCTAVE, N_BINS), minlength=N_BINS)

    @property
    def count(self) -> int:
        return int(self.zeros + self.hist.sum())

    def abs_percentile(self, fraction: float) -> float:
        """Upper edge of the histogram bin holding the ``fraction`` quantile of ``|x|`` (0 if mostly zeros)."""
        return _abs_percentile(self.hist, self.zeros, fraction, BINS_PER_OCTAVE, max(abs(self.lo), abs(self.hi)))

    def squared_error(self, radix: int) -> float:
        """Estimated total squared error of int8 at ``radix`` (rounding noise below, clipping above)."""
        return _squared_error(self.hist, 2.0 ** -radix, BINS_PER_OCTAVE)

    def to_json(self) -> dict:
        return {"min": self.lo, "max": self.hi, "count": self.count}


MSE_CANDIDATES = 5  # radices (or quarter-octave multipliers x4) from the no-clipping one upwards


def _multiplier_from(lo: float, hi: float, method: str, percentile: float, abs_percentile, hist: np.ndarray,
                     per_octave: int, pow2: bool, outlier_factor: float = 1.0) -> float:
    """The multiplier (``float = q / m``) of one tensor or channel; see the module doc for the methods.

    ``outlier_factor`` widens the chosen range (Kneron's ``outlier_factor``): headroom for inputs
    whose activations exceed what the calibration set showed.
    """
    if method == "percentile":
        a = abs_percentile(percentile)
        lo, hi = max(lo, -a * (-INT8_MIN / INT8_MAX)), min(hi, a)
    if method != "mse":
        return multiplier_for_range(lo * outlier_factor, hi * outlier_factor, pow2)
    m_max = multiplier_for_range(lo, hi, pow2)
    factors = [2.0 ** k for k in range(MSE_CANDIDATES)] if pow2 else \
        [2.0 ** (k / 4) for k in range(4 * (MSE_CANDIDATES - 1) + 1)]
    errors = {m_max * f: _squared_error(hist, 1.0 / (m_max * f), per_octave) for f in factors}
    m = min(errors, key=lambda m: (errors[m], m)) / outlier_factor
    return float(2.0 ** math.floor(math.log2(m))) if pow2 else m


def _check_method(method: str, percentile: float) -> None:
    if method not in CALIB_METHODS:
        raise ValueError(f"unknown calibration method {method!r}; use one of {', '.join(CALIB_METHODS)}")
    if method == "percentile" and not 0.0 < percentile <= 1.0:
        raise ValueError(f"percentile must be in (0, 1], got {percentile} (Kneron's default is 0.999)")


def multiplier_for_stats(stats: ActivationStats, method: str = "percentile", percentile: float = 0.999,
                         pow2: bool = True, outlier_factor: float = 1.0) -> float:
    """The multiplier of one tensor (``2**radix`` with ``pow2``, else Kneron's ``scale * 2**radix``)."""
    _check_method(method, percentile)
    if not outlier_factor >= 1.0:
        raise ValueError(f"outlier factor must be >= 1, got {outlier_factor} (Kneron's default is 1.0)")
    if stats.count == 0:
        raise CalibrationError("no calibration data seen for a tensor")
    return _multiplier_from(stats.lo, stats.hi, method, percentile, stats.abs_percentile, stats.hist,
                            BINS_PER_OCTAVE, pow2, outlier_factor)


def radix_for_stats(stats: ActivationStats, method: str = "percentile", percentile: float = 0.999) -> int:
    """The power-of-two radix of one tensor from its statistics (see the module doc for the methods)."""
    return int(round(math.log2(multiplier_for_stats(stats, method, percentile, pow2=True))))


def channel_multipliers(stats: ActivationStats, method: str = "percentile", percentile: float = 0.999,
                        pow2: bool = True, outlier_factor: float = 1.0) -> np.ndarray:
    """One multiplier per channel (axis 1), never coarser than the tensor's own (see the module doc).

    Returned shaped to broadcast against the tensor (``1 x C x 1 x 1`` for a 4-D activation).
    """
    ch = stats.channels
    if ch is None:
        raise CalibrationError("no per-channel statistics for a tensor; collect with per_channel=True")
    layer = multiplier_for_stats(stats, method, percentile, pow2, outlier_factor)
    out = []
    for c in range(ch.lo.size):
        if ch.hist[c].sum() == 0:  # all zero: nothing to resolve, keep the layer's grid
            out.append(layer)
            continue
        lo, hi, hist, zeros = float(ch.lo[c]), float(ch.hi[c]), ch.hist[c], int(ch.zeros[c])
        m = _multiplier_from(lo, hi, method, percentile,
                             lambda f: _abs_percentile(hist, zeros, f, CHANNEL_BINS_PER_OCTAVE, max(abs(lo), abs(hi))),
                             hist, CHANNEL_BINS_PER_OCTAVE, pow2, outlier_factor)
        out.append(max(m, layer))
    shape = [1] * ch.ndim
    shape[1] = -1
    return np.asarray(out, np.float64).reshape(shape)


def channel_radices(stats: ActivationStats, method: str = "percentile", percentile: float = 0.999) -> np.ndarray:
    """One power-of-two radix per channel (axis 1), never coarser than the tensor's (see :func:`channel_multipliers`)."""
    return np.round(np.log2(channel_multipliers(stats, method, percentile, pow2=True))).astype(np.int64)


def collect_stats(model, names: Sequence[str], inputs: Iterable[np.ndarray],
                  per_channel: bool = False) -> tuple[dict[str, ActivationStats], int]:
    """Run the float ``model`` (ModelProto) on ``inputs``; statistics of every tensor in ``names``
    (and of each of its channels with ``per_channel``)."""
    import onnxruntime as ort

    from .qdq import with_outputs

    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(with_outputs(model, list(names)).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    stats = {name: ActivationStats(per_channel=per_channel) for name in names}
    seen = 0
    for x in inputs:
        for name, value in zip(names, session.run(list(names), {input_name: x})):
            stats[name].update(value)
        seen += 1
    return stats, seen


def choose_multipliers(stats: dict[str, ActivationStats], method: str, percentile: float,
                       fixed_radix: dict[str, int] | None = None, per_channel: bool = False,
                       pow2: bool = True, outlier_factor: float = 1.0) -> dict[str, float | np.ndarray]:
    """Multiplier per tensor from ``stats`` (an array per channel with ``per_channel``, for tensors of
    rank >= 2; Kneron's ``scale * 2**radix`` unless ``pow2``; ranges widened by ``outlier_factor``);
    ``fixed_radix`` (e.g. the input at its norm mode's radix) wins."""
    out: dict[str, float | np.ndarray] = {}
    for name, s in stats.items():
        out[name] = channel_multipliers(s, method, percentile, pow2, outlier_factor) \
            if per_channel and s.channels is not None else multiplier_for_stats(s, method, percentile, pow2, outlier_factor)
    out.update({name: float(2.0 ** int(r)) for name, r in (fixed_radix or {}).items()})
    return out


def choose_radices(stats: dict[str, ActivationStats], method: str, percentile: float,
                   fixed: dict[str, int] | None = None, per_channel: bool = False) -> dict[str, int | np.ndarray]:
    """Power-of-two radix per tensor (see :func:`choose_multipliers`)."""
    out: dict[str, int | np.ndarray] = {}
    for name, m in choose_multipliers(stats, method, percentile, fixed, per_channel, pow2=True).items():
        r = np.round(np.log2(m)).astype(np.int64)
        out[name] = int(r) if np.ndim(r) == 0 else r
    return out
