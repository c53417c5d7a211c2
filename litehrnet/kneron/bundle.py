"""The handoff bundle for Kneron's toolchain: everything needed to turn our ONNX into a ``.nef``.

``python export2onnx.py CONFIG CKPT --kneron-bundle DIR [--target KL720] [--calib-images DIR]``
writes (atomically: a complete bundle or none)::

    DIR/model.onnx              the verified, static batch-1 export
    DIR/calibration/NNNN.npy    N (default 100) inputs 1x3xHxW float32: real person crops through
                                the deploy chain's crop runner (AffineCropRunner) in the model's
                                normalisation; with ``kneron`` norm every value is int8 / 2^8
    DIR/golden/input_NNN.npy    a few of those inputs ...
    DIR/golden/heatmaps_NNN.npy ... their float heatmaps (onnxruntime, this model.onnx) ...
    DIR/golden/keypoints.json   ... and the decoded keypoints (deploy PoseRunner, no flip test)
    DIR/contract.json           the deploy contract: input, normalisation + kp.NormalizeMode name,
                                radix, crop/padding, heatmap stride, keypoints, flip pairs, decode,
                                per-chip verdicts of Kneron's operator table
    DIR/kneron_toolchain.py     the script for Kneron's toolchain container (kneronnxopt ->
                                ktc.ModelConfig.evaluate -> analysis -> compile -> kneron_inference
                                on the golden inputs, compared with the golden heatmaps)

``kneron_toolchain.py`` needs Kneron's container (``ktc``, ``kneronnxopt``) and cannot run here;
everything else is computed and tested here. No torch import: the bundle reads the ONNX file.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_NUM_CALIB = 100
DEFAULT_NUM_GOLDEN = 4
MIN_CALIB = 1
DECODE_RULES = {
    "default": "argmax per keypoint, then 0.25 heatmap px toward the higher neighbour in x and y, "
               "times heatmap_stride, through the inverse affine crop; score = heatmap maximum",
    "dark": "DARK: Gaussian-smoothed log heatmap, one Taylor (Newton) step around the argmax, times "
            "heatmap_stride, through the inverse affine crop; score = heatmap maximum",
}


class BundleError(ValueError):
    """Bad bundle input (no images, too few, unreadable): one line naming the file and the fix."""


@dataclass(frozen=True)
class CalibSource:
    """One image and the person boxes (``xywh`` pixels; None = the whole image) to crop from it."""

    image_path: Path
    boxes_xywh: tuple | None = None


def plan_calibration(images_dir: str | os.PathLike, ann_file: str | os.PathLike | None = None,
                     num: int = DEFAULT_NUM_CALIB) -> list[CalibSource]:
    """Where the ``num`` calibration crops come from, checked before any work.

    With a COCO keypoint ``ann_file``: its annotated, non-crowd people (one crop per person) in
    images under ``images_dir``; without: every image file in ``images_dir`` (sorted), its whole
    frame as the box. Raises :class:`BundleError` when there are fewer than ``num`` candidates.
    """
    images_dir = Path(images_dir)
    if num < MIN_CALIB:
        raise BundleError(f"--calib-num {num}: need at least {MIN_CALIB} calibration input (Kneron advises >= 100)")
    if not images_dir.is_dir():
        raise BundleError(f"{images_dir}: calibration image folder not found; pass --calib-images DIR of real images")
    if ann_file is None:
        files = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        sources = [CalibSource(p) for p in files]
        where = f"{images_dir}: {len(files)} image file(s) ({'/'.join(IMAGE_EXTENSIONS)})"
    else:
        ann_file = Path(ann_file)
        try:
            with open(ann_file, "r", encoding="utf-8") as f:
                coco = json.load(f)
            names = {img["id"]: img["file_name"] for img in coco["images"]}
            boxes: dict[int, list] = {}
            for a in coco["annotations"]:
                w, h = a["bbox"][2:]
                if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd") and w > 1 and h > 1:
                    boxes.setdefault(a["image_id"], []).append(tuple(float(v) for v in a["bbox"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BundleError(f"{ann_file}: not a readable COCO keypoint annotation file ({exc.__class__.__name__}); "
                              "pass a person_keypoints_*.json or omit --calib-ann") from None
        sources = [CalibSource(images_dir / names[i], tuple(b)) for i, b in sorted(boxes.items()) if i in names]
        where = f"{ann_file}: {sum(len(s.boxes_xywh) for s in sources)} annotated person(s)"
    available = sum(1 if s.boxes_xywh is None else len(s.boxes_xywh) for s in sources)
    if available < num:
        raise BundleError(f"{where}, fewer than the {num} calibration inputs asked; add real images or pass "
                          f"--calib-num {max(available, MIN_CALIB)}" if available else
                          f"{where}: no calibration images; pass --calib-images DIR of real images")
    return sources


def make_crop_runner(input_hw, norm: str, channel_order: str, padding: float):
    """The deploy chain's crop runner for this model's input contract."""
    from litehrnet.deploy.affine_runner import AffineCropRunner, NetworkInput

    params = {"input_w": int(input_hw[1]), "input_h": int(input_hw[0]), "padding": float(padding)}
    return AffineCropRunner(params, NetworkInput(tuple(int(v) for v in input_hw), norm, channel_order))


def calibration_crops(sources: list[CalibSource], crop_runner, num: int):
    """``num`` crops (N, 3, H, W) and their records; unreadable images are skipped and counted.

    Raises :class:`BundleError` when fewer than ``num`` crops remain."""
    from prepostprocess.image_io import ImageLoadError, read_image_bgr

    inputs, records, skipped = [], [], []
    for source in sources:
        if len(inputs) >= num:
            break
        try:
            img_bgr = read_image_bgr(source.image_path)
        except ImageLoadError:
            skipped.append(source.image_path)
            continue
        h, w = img_bgr.shape[:2]
        boxes = np.asarray(source.boxes_xywh if source.boxes_xywh is not None else [(0.0, 0.0, w, h)], np.float64)
        crops = crop_runner(img_bgr, boxes[: num - len(inputs)])
        for i in range(len(crops)):
            inputs.append(crops.inputs_nchw[i])
            records.append({"image": str(source.image_path), "bbox_xywh": boxes[i].tolist(),
                            "center_xy": crops.center_xy[i].tolist(), "scale_wh_px": crops.scale_wh_px[i].tolist()})
    if len(inputs) < num:
        first = f" (first: {skipped[0]})" if skipped else ""
        raise BundleError(f"only {len(inputs)} of {num} calibration crops could be made; {len(skipped)} unreadable "
                          f"image(s){first}; replace them, add images or pass --calib-num {max(len(inputs), 1)}")
    return np.stack(inputs).astype(np.float32), records, skipped


def deploy_contract(metadata: dict, input_name: str, output_name: str, output_shape, padding: float,
                    decode: str, verdicts: dict) -> dict:
    """The JSON deploy contract: what the host must do around the ``.nef``."""
    from prepostprocess.normalize import DEFAULT_RADIX, HARDWARE_INPUT, PIXEL_AFFINE, PLUS_NORMALIZE_MODE

    norm = metadata["norm"]
    h, w = (int(v) for v in metadata["input_hw"].split(","))
    multiplier, offset = PIXEL_AFFINE.get(norm, (None, None))
    if multiplier is None:
        formula = "(x / 255 - mean) / std with ImageNet mean/std (float only: no Kneron hardware mode)"
    else:
        formula = (f"{'(x >> 1)' if norm == 'yolo_hw' else 'x'} / {1 / multiplier:g}"
                   + (f" - {-offset:g}" if offset else ""))
    return {
        "model": {"file": "model.onnx", "variant": metadata.get("variant"), "weights": metadata.get("weights", "trained"),
                  "producer": metadata.get("producer")},
        "input": {"name": input_name, "shape": [1, 3, h, w], "layout": "NCHW", "dtype": "float32",
                  "channel_order": metadata["channel_order"], "norm": norm, "float_formula": formula,
                  "plus_normalize_mode": PLUS_NORMALIZE_MODE.get(norm),
                  "hardware_input": HARDWARE_INPUT.get(norm), "radix": DEFAULT_RADIX.get(norm)},
        "crop": {"method": "top-down affine warp of the person box on the host (AffineCropRunner)",
                 "box_padding": padding, "aspect_wh": w / h, "border_value": 0,
                 "plus_resize_mode": "KP_RESIZE_DISABLE", "plus_padding_mode": "KP_PADDING_DISABLE"},
        "output": {"name": output_name, "shape": list(output_shape), "heatmap_stride": int(metadata["heatmap_stride"])},
        "keypoints": {"names": json.loads(metadata["keypoint_names"]), "flip_pairs": json.loads(metadata["flip_pairs"])},
        "decode": {"method": decode, "rule": DECODE_RULES[decode], "flip_test": False},
        "npu_operator_table": verdicts,
    }


def golden_vectors(onnx_path: Path, inputs_nchw: np.ndarray, records: list[dict], metadata: dict, decode: str):
    """Float heatmaps (onnxruntime) and keypoints decoded by the deploy :class:`PoseRunner`."""
    from litehrnet.deploy.affine_runner import Crops
    from litehrnet.deploy.pose_runner import PoseRunner

    h, w = (int(v) for v in metadata["input_hw"].split(","))
    runner = PoseRunner({"onnx_path": str(onnx_path), "input_w": w, "input_h": h, "norm": metadata["norm"],
                         "channel_order": metadata["channel_order"], "decode": decode, "flip_test": False})
    heatmaps = np.concatenate([runner.heatmaps(x[None]) for x in inputs_nchw]).astype(np.float32)
    crops = Crops(inputs_nchw, np.array([r["center_xy"] for r in records]), np.array([r["scale_wh_px"] for r in records]))
    keypoints = runner.postprocess(heatmaps, crops)
    return heatmaps, keypoints


def _save_npy(path: Path, array: np.ndarray) -> None:
    np.save(path, np.ascontiguousarray(array), allow_pickle=False)


def _write_json(path: Path, data) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")


def write_bundle(onnx_path: str | os.PathLike, out_dir: str | os.PathLike, sources: list[CalibSource], *,
                 num_calib: int = DEFAULT_NUM_CALIB, num_golden: int = DEFAULT_NUM_GOLDEN, target: str = "KL720",
                 padding: float = 1.25, decode: str = "default") -> dict:
    """Write the bundle for ``onnx_path`` (an export with our metadata) to ``out_dir``.

    The bundle is assembled in a temporary folder next to ``out_dir`` and renamed into place at the
    end, so ``out_dir`` holds a complete bundle or nothing new. Returns a summary dict."""
    import onnx

    from .checker import check_model
    from .operators import CHIPS, normalize_chip

    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    target = normalize_chip(target)
    model = onnx.load(str(onnx_path))
    metadata = {p.key: p.value for p in model.metadata_props}
    missing = [k for k in ("input_hw", "norm", "channel_order", "heatmap_stride", "keypoint_names", "flip_pairs")
               if k not in metadata]
    if missing:
        raise BundleError(f"{onnx_path}: no {', '.join(missing)} metadata; export it with export2onnx.py")
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if dims[:1] != [1] or metadata.get("batch", "1") != "1":
        raise BundleError(f"{onnx_path}: input {dims} is not batch 1; the chip runs static batch-1 graphs: "
                          "export without --batch/--dynamic-batch")
    if num_golden < 1:
        raise BundleError(f"--golden-num {num_golden}: need at least 1 golden vector")
    if decode not in DECODE_RULES:
        raise BundleError(f"decode {decode!r} unknown; use one of {', '.join(DECODE_RULES)}")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise BundleError(f"{out_dir}: bundle folder exists and is not empty; choose a new folder or remove it")

    h, w = (int(v) for v in metadata["input_hw"].split(","))
    crop_runner = make_crop_runner((h, w), metadata["norm"], metadata["channel_order"], padding)
    inputs, records, skipped = calibration_crops(sources, crop_runner, num_calib)
    num_golden = min(num_golden, len(inputs))
    heatmaps, keypoints = golden_vectors(onnx_path, inputs[:num_golden], records[:num_golden], metadata, decode)
    reports = {chip: check_model(model, chip) for chip in CHIPS}
    verdicts = {chip: {"verdict": r.verdict, "cpu_nodes": r.num_cpu_nodes, "ambiguous_nodes": r.num_ambiguous_nodes}
                for chip, r in reports.items()}
    contract = deploy_contract(metadata, model.graph.input[0].name, model.graph.output[0].name,
                               [1, *heatmaps.shape[1:]], padding, decode,
                               {"table": reports[target].cited, "target": target, "chips": verdicts})

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        shutil.copyfile(onnx_path, tmp / "model.onnx")
        (tmp / "calibration").mkdir()
        for i, x in enumerate(inputs):
            _save_npy(tmp / "calibration" / f"{i:04d}.npy", x[None])
        (tmp / "golden").mkdir()
        for i in range(num_golden):
            _save_npy(tmp / "golden" / f"input_{i:03d}.npy", inputs[i][None])
            _save_npy(tmp / "golden" / f"heatmaps_{i:03d}.npy", heatmaps[i][None])
        _write_json(tmp / "golden" / "keypoints.json", [
            {**records[i], "calibration_file": f"calibration/{i:04d}.npy",
             "keypoints_xy_score": keypoints[i].astype(float).tolist()} for i in range(num_golden)])
        _write_json(tmp / "calibration" / "sources.json", records)
        _write_json(tmp / "contract.json", contract)
        (tmp / "kneron_toolchain.py").write_text(toolchain_script(target), encoding="utf-8")
        if out_dir.exists():
            out_dir.rmdir()          # empty (checked above)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"dir": str(out_dir), "calibration": len(inputs), "golden": num_golden, "skipped": [str(p) for p in skipped],
            "target": target, "verdict": verdicts[target]}


def toolchain_script(target: str) -> str:
    """The Python script run inside Kneron's toolchain container (see the module docstring)."""
    platform = target[2:]
    return f'''"""Compile this bundle to a .nef in Kneron's toolchain container (written by litehrnet-kneron).

    docker run --rm -it -v $PWD:/docker_mount kneron/toolchain:latest
    cd /docker_mount/<bundle> && python kneron_toolchain.py [--platform {platform}] [--model-id 32769]

Needs ktc and kneronnxopt (inside the container only); cannot run outside it. Steps: optimise the
ONNX with kneronnxopt, ktc.ModelConfig(...).evaluate() (operator report), analysis() on the
calibration inputs (int8 quantisation -> .bie), ktc.compile() (-> .nef), then ktc.kneron_inference
on the golden inputs through the .bie and the .nef, compared with the golden float heatmaps.
"""

import argparse
import glob
import json
import os

import numpy as np
import onnx

import kneronnxopt
import ktc

HERE = os.path.dirname(os.path.abspath(__file__))


def compare(name, got, want):
    got = np.asarray(got, np.float32).reshape(want.shape)
    peak = float(np.abs(want).max())
    k, hw = want.shape[1], want.shape[2] * want.shape[3]
    same = np.mean(got.reshape(k, hw).argmax(1) == want.reshape(k, hw).argmax(1))
    return {{"stage": name, "max_abs_diff": float(np.abs(got - want).max()),
            "relative_to_peak": float(np.abs(got - want).max()) / max(peak, 1e-12), "same_argmax": float(same)}}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--platform", default="{platform}", help="520 | 720 | 530 | 630 | 730")
    p.add_argument("--model-id", type=int, default=32769)
    p.add_argument("--version", default="0001")
    args = p.parse_args()
    contract = json.load(open(os.path.join(HERE, "contract.json")))
    input_name = contract["input"]["name"]
    optimized = kneronnxopt.optimize(onnx.load(os.path.join(HERE, "model.onnx")))
    onnx.save(optimized, os.path.join(HERE, "model.opt.onnx"))
    km = ktc.ModelConfig(args.model_id, args.version, args.platform, onnx_model=optimized)
    km.evaluate()
    calib = [np.load(f) for f in sorted(glob.glob(os.path.join(HERE, "calibration", "*.npy")))]
    bie = km.analysis({{input_name: calib}}, output_dir=os.path.join(HERE, "toolchain_out"))
    nef = ktc.compile([km])
    results = []
    for f in sorted(glob.glob(os.path.join(HERE, "golden", "input_*.npy"))):
        x = np.load(f)
        want = np.load(f.replace("input_", "heatmaps_"))
        for stage, kwargs in (("bie", {{"bie_file": bie}}), ("nef", {{"nef_file": nef}})):
            got = ktc.kneron_inference([x], input_names=[input_name], platform=int(args.platform), **kwargs)
            results.append({{"golden": os.path.basename(f), **compare(stage, got[0], want)}})
            print(results[-1])
    with open(os.path.join(HERE, "toolchain_results.json"), "w") as out:
        json.dump({{"nef": nef, "bie": bie, "results": results}}, out, indent=2)


if __name__ == "__main__":
    main()
'''
