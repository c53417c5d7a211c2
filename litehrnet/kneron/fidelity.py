"""How much of the float model survives int8: per-layer SNR, heatmap SNR, keypoint shift, AP.

:func:`measure_fidelity` runs the float ONNX and its int8 emulation (:mod:`.qdq`) on the same person
crops and accumulates, per quantised tensor, the signal power of the float activation and the power
of its difference to the int8 one: ``SNR = 10 log10(sum x^2 / sum (x - x_q)^2)`` over all images, as
Kneron's fx report does per layer (its guidance: int8 is fine at >= 20 dB). Keypoints are decoded
with the deploy chain's rule (argmax + quarter-pixel shift, :mod:`prepostprocess.heatmap`).

- displacement: distance between float and int8 keypoints in network-input pixels (median, p95);
- self-AP: COCO OKS AP of the int8 keypoints with the float keypoints as ground truth (box area of
  each crop as the object area) - 1.0 means the chip would output what the float model outputs;
- with a COCO ground truth: AP of each model against it, on the same crops (ground-truth boxes).

:func:`write_report` writes ``<stem>.json`` (strict JSON; an exact layer has ``snr_db: null`` and
``exact: true``), ``<stem>.md`` and ``<stem>.png``.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from litehrnet.data.codec import HeatmapCodec

from .calibration import PersonCrop, crop_inputs
from .int8 import snr_from_powers
from .qdq import INPUT_Q_SUFFIX, QuantPlan, read_scheme, with_outputs

SNR_FLOOR_DB = 20.0  # Kneron's guidance for int8


@dataclass
class LayerSnr:
    name: str
    op_type: str
    radix: int | list[int]  # a list: one radix per channel
    snr_db: float

    @property
    def radix_text(self) -> str:
        if isinstance(self.radix, list):
            lo, hi = min(self.radix), max(self.radix)
            return f"{lo}" if lo == hi else f"{lo}..{hi}"
        return str(self.radix)


@dataclass
class FidelityReport:
    num_crops: int
    layers: list[LayerSnr]                      # graph order
    heatmap_snr_db: float
    displacement_px_median: float
    displacement_px_p95: float
    self_ap: float
    ap_float: float | None = None
    ap_int8: float | None = None
    scheme: dict = field(default_factory=dict)

    @property
    def worst_first(self) -> list[LayerSnr]:
        return sorted(self.layers, key=lambda layer: layer.snr_db)

    @property
    def flagged(self) -> list[LayerSnr]:
        return [layer for layer in self.worst_first if layer.snr_db < SNR_FLOOR_DB]

    @property
    def worst_snr_db(self) -> float:
        """Lowest SNR among layers with a float signal (a layer that is all zero in float has no
        SNR: it shows as "zero in float" in the tables, its int8 noise in the layers after it)."""
        return min((layer.snr_db for layer in self.layers if layer.snr_db != -math.inf), default=math.inf)

    def to_json(self) -> dict:
        def num(v):
            return None if v is None or not math.isfinite(v) else round(float(v), 4)

        out = {k: v for k, v in asdict(self).items() if k != "layers"}
        for key in ("heatmap_snr_db", "displacement_px_median", "displacement_px_p95", "self_ap", "ap_float", "ap_int8"):
            out[key] = num(out[key])
        out["snr_floor_db"] = SNR_FLOOR_DB
        out["worst_snr_db"] = num(self.worst_snr_db)
        out["layers"] = [{"name": layer.name, "op_type": layer.op_type, "radix": layer.radix,
                          "snr_db": num(layer.snr_db), "exact": layer.snr_db == math.inf,
                          "below_floor": layer.snr_db < SNR_FLOOR_DB} for layer in self.layers]
        return out


def _session(model: onnx.ModelProto, outputs: list[str]):
    import onnxruntime as ort

    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 1, 1, 3
    return ort.InferenceSession(with_outputs(model, outputs).SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _person(crop: PersonCrop, keypoints_img: np.ndarray, scores: np.ndarray) -> dict:
    return {"image_id": crop.image_id, "keypoints": np.concatenate([keypoints_img, scores[:, None]], 1),
            "bbox_score": 1.0, "area": float(np.prod(crop.scale_wh_px))}


def self_ap(float_people: list[dict], int8_people: list[dict], crops: Sequence[PersonCrop],
            sigmas_k: Sequence[float]) -> float:
    """OKS AP of ``int8_people`` against ``float_people`` taken as ground truth (one GT per crop)."""
    from pycocotools.coco import COCO

    from litehrnet.evaluation.coco import evaluate_coco_keypoints

    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    results = []
    for i, (fp, qp, crop) in enumerate(zip(float_people, int8_people, crops)):
        kp = np.asarray(fp["keypoints"], np.float64)
        x, y, w, h = crop.bbox_xywh
        gt["images"].append({"id": i, "width": 1, "height": 1, "file_name": str(i)})
        gt["annotations"].append({"id": i + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "area": w * h,
                                  "bbox": [x, y, w, h], "num_keypoints": len(kp),
                                  "keypoints": np.concatenate([kp[:, :2], np.full((len(kp), 1), 2.0)], 1).ravel().tolist()})
        results.append({"image_id": i, "category_id": 1, "score": 1.0,
                        "keypoints": np.asarray(qp["keypoints"], np.float64).ravel().tolist()})
    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return evaluate_coco_keypoints(results, coco, sigmas_k)["AP"]


def measure_fidelity(float_model: onnx.ModelProto, int8_model: onnx.ModelProto, plan: QuantPlan,
                     crops: Sequence[PersonCrop], input_hw: Sequence[int], norm: str, channel_order: str,
                     ann_file: str | os.PathLike | None = None, sigmas_k: Sequence[float] | None = None) -> FidelityReport:
    """Run both models on ``crops`` and measure (see the module doc). ``ann_file`` adds AP vs COCO GT."""
    from litehrnet.keypoints import COCO_BODY_17

    sigmas_k = sigmas_k or COCO_BODY_17.sigmas
    radix = json.loads({p.key: p.value for p in int8_model.metadata_props}.get("int8_radix", "{}"))
    op_of = {n.output[0]: n.op_type for n in float_model.graph.node if n.output}
    output = float_model.graph.output[0].name
    layers = [name for name in plan.activations if name != output]
    float_names = [plan.input_name] + layers + [output]
    int8_names = [plan.input_name + INPUT_Q_SUFFIX] + layers + [output]
    sess_f, sess_q = _session(float_model, float_names), _session(int8_model, int8_names)
    in_name = sess_f.get_inputs()[0].name
    signal = np.zeros(len(float_names))
    noise = np.zeros(len(float_names))
    shifts, float_people, int8_people = [], [], []
    h, w = (int(v) for v in input_hw)
    # the heatmap stride as the export wrote it from the model (older files: from the output shape)
    stride = int({p.key: p.value for p in float_model.metadata_props}.get("heatmap_stride", 0)) or None
    codec = None
    for crop, x in zip(crops, crop_inputs(crops, input_hw, norm, channel_order)):
        outs_f = sess_f.run(float_names, {in_name: x})
        outs_q = sess_q.run(int8_names, {in_name: x})
        for i, (a, b) in enumerate(zip(outs_f, outs_q)):
            a64 = a.astype(np.float64)
            signal[i] += float(np.sum(a64 ** 2))
            noise[i] += float(np.sum((a64 - b) ** 2))
        hm_f, hm_q = outs_f[-1], outs_q[-1]
        codec = codec or HeatmapCodec((h, w), stride or h // hm_f.shape[2])
        (kp_f, _), (kp_q, _) = codec.decode(hm_f), codec.decode(hm_q)
        shifts.append(np.linalg.norm(kp_f[0].astype(np.float64) - kp_q[0], axis=-1))  # input pixels
        for hm, people in ((hm_f, float_people), (hm_q, int8_people)):
            img, s = codec.decode_to_image(hm, crop.center_xy[None], crop.scale_wh_px[None])
            people.append(_person(crop, img[0], s[0]))
    snrs = [snr_from_powers(s, n) for s, n in zip(signal, noise)]
    names = [plan.input_name] + layers
    report = FidelityReport(
        num_crops=len(float_people),
        layers=[LayerSnr(n, "Input" if n == plan.input_name else op_of.get(n, "?"), radix.get(n, 0), s)
                for n, s in zip(names + [output], snrs)],
        heatmap_snr_db=snrs[-1],
        displacement_px_median=float(np.median(np.concatenate(shifts))) if shifts else math.nan,
        displacement_px_p95=float(np.percentile(np.concatenate(shifts), 95)) if shifts else math.nan,
        self_ap=self_ap(float_people, int8_people, crops, sigmas_k) if crops else math.nan,
        scheme=read_scheme(int8_model) or {},
    )
    if ann_file is not None:
        report.ap_float, report.ap_int8 = (coco_ap(people, ann_file, sigmas_k) for people in (float_people, int8_people))
    return report


def coco_ap(people: list[dict], ann_file, sigmas_k) -> float:
    """COCO AP of GT-box predictions on the images they come from (rescoring, OKS-NMS as the test recipe)."""
    from litehrnet.evaluation.coco import evaluate_coco_keypoints, people_to_coco_results

    results = people_to_coco_results(people, sigmas_k)
    return evaluate_coco_keypoints(results, ann_file, sigmas_k, image_ids={p["image_id"] for p in people})["AP"]


def _fmt(v: float | None, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if v == -math.inf:
        return "zero in float"
    return "exact" if v == math.inf else f"{v:.{digits}f}"


def format_markdown(report: FidelityReport, title: str = "int8 fidelity report", png_name: str | None = None) -> str:
    """The Markdown report: summary, flagged layers, all layers worst first and in graph order."""
    lines = [f"# {title}", "", f"Scheme: `{json.dumps(report.scheme)}`", "",
             f"Measured on {report.num_crops} person crops (disjoint from the calibration set).", "",
             "| measure | value |", "|---|---|",
             f"| heatmap SNR | {_fmt(report.heatmap_snr_db)} dB |",
             f"| worst layer SNR | {_fmt(report.worst_snr_db)} dB |",
             f"| layers under {SNR_FLOOR_DB:.0f} dB | {len(report.flagged)} of {len(report.layers)} |",
             f"| keypoint shift median / p95 | {_fmt(report.displacement_px_median, 2)} / "
             f"{_fmt(report.displacement_px_p95, 2)} input px |",
             f"| self-AP (int8 vs float keypoints) | {_fmt(report.self_ap, 4)} |"]
    if report.ap_float is not None:
        lines.append(f"| AP float / int8 (COCO GT, GT boxes) | {_fmt(report.ap_float, 4)} / {_fmt(report.ap_int8, 4)} "
                     f"(drop {_fmt(100 * (report.ap_float - report.ap_int8), 1)} points) |")
    if png_name:
        lines += ["", f"![per-layer SNR]({png_name})"]
    lines += ["", f"## Layers under {SNR_FLOOR_DB:.0f} dB (Kneron's int8 guidance)", ""]
    lines += [f"- `{layer.name}` ({layer.op_type}, radix {layer.radix_text}): {_fmt(layer.snr_db)}"
              f"{'' if layer.snr_db == -math.inf else ' dB'}"
              for layer in report.flagged] or ["none"]
    for heading, rows in (("All layers, worst first", report.worst_first), ("All layers, graph order", report.layers)):
        lines += ["", f"## {heading}", "", "| # | tensor | op | radix | SNR dB |", "|---|---|---|---|---|"]
        index = {id(layer): i for i, layer in enumerate(report.layers)}
        lines += [f"| {index[id(layer)]} | `{layer.name}` | {layer.op_type} | {layer.radix_text} | {_fmt(layer.snr_db)} |"
                  for layer in rows]
    return "\n".join(lines) + "\n"


def plot_snr(report: FidelityReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finite = [min(layer.snr_db, 80.0) for layer in report.layers]
    fig, ax = plt.subplots(figsize=(max(8, len(finite) * 0.06), 4))
    colors = ["tab:red" if layer.snr_db < SNR_FLOOR_DB else "tab:blue" for layer in report.layers]
    ax.bar(range(len(finite)), finite, color=colors, width=1.0)
    ax.axhline(SNR_FLOOR_DB, color="k", linestyle="--", linewidth=1, label=f"{SNR_FLOOR_DB:.0f} dB (Kneron guidance)")
    ax.set_xlabel("quantised tensor, graph order (input first, heatmaps last)")
    ax.set_ylabel("SNR int8 vs float [dB] (capped at 80)")
    ax.set_title(f"per-layer SNR; heatmaps {_fmt(report.heatmap_snr_db)} dB")
    ax.legend(loc="lower left")
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(report: FidelityReport, stem: str | os.PathLike, title: str = "int8 fidelity report") -> list[Path]:
    """``stem.json`` (strict), ``stem.md`` and ``stem.png``; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".png")]
    _write_atomic(paths[0], json.dumps(report.to_json(), indent=1, allow_nan=False) + "\n")
    plot_snr(report, paths[2])
    _write_atomic(paths[1], format_markdown(report, title, paths[2].name))
    return paths
