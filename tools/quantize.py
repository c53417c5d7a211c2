"""Emulate Kneron's int8 quantisation of a pose model: calibrate, write an int8-emulating ONNX, report fidelity.

    python tools/quantize.py CONFIG CKPT --calib IMAGES_OR_ANN [--num-calib 100] [-o model_int8.onnx]
        [--weights per-channel|per-tensor] [--activations per-channel|per-tensor] [--act-grid kneron|pow2]
        [--calib-method percentile|max|mse] [--percentile 0.999] [--outlier-factor auto|F]
        [--eval person_keypoints_val2017.json] [--num-eval 100] [--npu-rewrite [--one-logit 8]] [--shape H W]

CKPT: a checkpoint (.pth; exported first, as ``export2onnx.py`` does), ``none`` (random weights,
tests only) or an already exported float .onnx. ``--calib``: a COCO keypoint JSON (every annotated
person cropped from its box) or a folder of person crops. ``--eval``: a COCO keypoint JSON whose
images must not be calibration images; adds the fidelity report ``<output stem>_fidelity.{md,png,json}``.
The output runs in ``inference.py`` / ``inference_e2e.py`` like any pose ONNX. See docs/quantization.md.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

METHODS = ("percentile", "max", "mse")
# sigmoid(8) = 0.99966 -> 1.0 after int8 rounding at the sigmoid's radix 6 (anything >= ln(127) = 4.84 would do);
# the float-exact rewrite's 20 stretches the pre-sigmoid range to 20 and costs the real logits 2 bits.
INT8_ONE_LOGIT = 8.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", help="experiment YAML (configs/...)")
    p.add_argument("checkpoint", help="checkpoint .pth, an exported float .onnx, or 'none' (random weights)")
    p.add_argument("--calib", required=True, help="COCO keypoint JSON or a folder of person crops")
    p.add_argument("--num-calib", type=int, default=100, help="calibration person crops (default 100, Kneron's minimum)")
    p.add_argument("-o", "--output", help="output .onnx (default work_dirs/int8/<variant>_<H>x<W>_int8.onnx)")
    p.add_argument("--weights", choices=("per-channel", "per-tensor"), default="per-channel")
    p.add_argument("--activations", choices=("per-channel", "per-tensor"), default="per-channel",
                   help="activation grid per channel (Kneron's per-channel datapath quantisation, default) or per tensor")
    p.add_argument("--act-grid", choices=("kneron", "pow2"), default="kneron",
                   help="activation step: kneron = 1/(scale*2**radix) as Kneron documents (default); pow2 = 2**-radix")
    p.add_argument("--outlier-factor", default="auto",
                   help="widen every activation range by this factor (>= 1; Kneron's outlier_factor) or 'auto' "
                        "(default: the factor among 1, 1.25, 1.5, 2, 3 that moves held-out calibration keypoints least)")
    p.add_argument("--calib-method", choices=METHODS, default="percentile")
    p.add_argument("--percentile", type=float, default=0.999, help="fraction of |x| kept (Kneron's data_analysis_pct)")
    p.add_argument("--eval", help="COCO keypoint JSON for the fidelity report (disjoint from --calib)")
    p.add_argument("--num-eval", type=int, default=100, help="evaluation person crops (whole images, at least this many)")
    p.add_argument("--npu-rewrite", action="store_true", help="quantise the exact NPU rewrite of an official Lite-HRNet")
    p.add_argument("--one-logit", type=float, default=INT8_ONE_LOGIT,
                   help="--npu-rewrite: pre-sigmoid bias that gives untouched channels weight 1 (default 8: exactly 1 "
                        "in int8 and a pre-sigmoid range not stretched to 20; 20 = the float-exact rewrite)")
    p.add_argument("--shape", nargs=2, type=int, metavar=("H", "W"), help="input size (default model.input_hw)")
    return p.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    """Every path and number, before any work (one line naming the problem and the fix)."""
    from litehrnet.cli_checks import PathCheckError, input_file, input_path, output_file

    input_file(args.config, "config")
    if args.checkpoint.lower() != "none":
        input_file(args.checkpoint, "checkpoint", "pass a .pth, a float .onnx or 'none'")
    input_path(args.calib, "calibration data", "pass a COCO person_keypoints_*.json or a folder of person crops")
    if args.eval:
        input_file(args.eval, "evaluation annotations", "pass a COCO person_keypoints_*.json")
    if args.num_calib < 1 or args.num_eval < 1:
        raise PathCheckError(f"--num-calib {args.num_calib} / --num-eval {args.num_eval}: must be >= 1")
    if args.outlier_factor != "auto":
        try:
            factor = float(args.outlier_factor)
            factor = factor if math.isfinite(factor) else 0.0
        except ValueError:
            factor = 0.0
        if not factor >= 1.0:
            raise PathCheckError(f"--outlier-factor {args.outlier_factor}: pass a number >= 1 or 'auto'")
    if not 0.0 < args.percentile <= 1.0:
        raise PathCheckError(f"--percentile {args.percentile}: must be in (0, 1] (Kneron's default is 0.999)")
    if args.output:
        output_file(args.output, "int8 ONNX output")


def onnx_input_hw(path: str) -> tuple[int, int] | None:
    """``input_hw`` from the metadata of an exported float ONNX given as CKPT (None for a .pth)."""
    if not path.lower().endswith(".onnx"):
        return None
    import onnx

    meta = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
    return tuple(int(v) for v in meta["input_hw"].split(",")) if "input_hw" in meta else None


def eval_crops(ann_file: str, input_hw, num: int):
    """Crops of whole images (all their people) until at least ``num`` crops."""
    from litehrnet.kneron.calibration import coco_person_crops, take

    crops = coco_person_crops(Path(ann_file), input_hw)
    take(crops, num, ann_file)
    cut = num
    while cut < len(crops) and crops[cut].image_id == crops[cut - 1].image_id:
        cut += 1
    return crops[:cut]


def float_model(args: argparse.Namespace, cfg: dict, input_hw, out: Path):
    """The float ONNX: the given .onnx, or an export of the checkpoint next to the output."""
    import onnx

    if args.checkpoint.lower().endswith(".onnx"):
        return onnx.load(args.checkpoint), Path(args.checkpoint)
    from litehrnet.export.pipeline import ExportJob, run_export

    checkpoint = None if args.checkpoint.lower() == "none" else args.checkpoint
    path = out.with_name(out.stem.replace("_int8", "") + "_float.onnx")
    job = ExportJob(cfg=cfg, checkpoint=checkpoint, out_path=path, input_hw=tuple(input_hw),
                    opset=cfg["export"]["opset"], simplify=cfg["export"]["simplify"], npu_rewrite=args.npu_rewrite,
                    one_logit=args.one_logit if args.npu_rewrite else None,
                    verify_coco_dir=Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_val2017_dev")
    report, _ = run_export(job)
    print(report.summary())
    return onnx.load(str(path)), path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from litehrnet.cli_checks import PathCheckError
    from litehrnet.config import ConfigError, load_config
    from litehrnet.kneron.calibration import CalibrationError, check_disjoint, crop_inputs, person_crops, take

    try:
        check_args(args)
        cfg = load_config(args.config)
        input_hw = tuple(args.shape) if args.shape else onnx_input_hw(args.checkpoint) or tuple(cfg["model"]["input_hw"])
        cfg["model"]["input_hw"] = list(input_hw)
        norm, order = cfg["data"]["norm"], cfg["data"]["channel_order"]
        suffix = "_npu_rewrite" if args.npu_rewrite else ""
        out = Path(args.output or f"work_dirs/int8/{cfg['model']['variant']}{suffix}_{input_hw[0]}x{input_hw[1]}_int8.onnx")
        calib = take(person_crops(args.calib, input_hw), args.num_calib, args.calib)
        evaluation = eval_crops(args.eval, input_hw, args.num_eval) if args.eval else []
        check_disjoint(calib, evaluation, args.calib, args.eval)
    except (PathCheckError, ConfigError, CalibrationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from prepostprocess.normalize import DEFAULT_RADIX
    from litehrnet.kneron.fidelity import measure_fidelity, write_report
    from litehrnet.kneron.qdq import quantize_model, save_model

    start = time.perf_counter()
    model, float_path = float_model(args, cfg, input_hw, out)
    meta = {p.key: p.value for p in model.metadata_props}
    for key, want in (("norm", norm), ("channel_order", order), ("input_hw", f"{input_hw[0]},{input_hw[1]}")):
        if key in meta and meta[key] != want:
            print(f"error: {float_path}: metadata {key}={meta[key]!r} but the config says {want!r}; use the matching "
                  "config or --shape", file=sys.stderr)
            return 2
    qmodel, plan, summary = quantize_model(
        model, crop_inputs(calib, input_hw, norm, order), per_channel=args.weights == "per-channel",
        method=args.calib_method, percentile=args.percentile, input_radix=DEFAULT_RADIX.get(norm),
        per_channel_activations=args.activations == "per-channel", activation_grid=args.act_grid,
        outlier_factor=args.outlier_factor if args.outlier_factor == "auto" else float(args.outlier_factor),
        extra={"calib_source": Path(args.calib).name, "float_model": float_path.name,
               **({"one_logit": args.one_logit} if args.npu_rewrite else {})})
    save_model(qmodel, out)
    print(f"{out}: int8 emulation of {float_path.name}: {len(plan.activations)} activations + input "
          f"(radix {DEFAULT_RADIX.get(norm, 'calibrated')}), {len(summary['weights'])} weight tensors "
          f"{args.weights}, activations {args.activations} on the {args.act_grid} grid, {args.calib_method} "
          f"calibration on {len(calib)} crops, outlier factor {summary['outlier_factor']:g}"
          f"{' (auto)' if args.outlier_factor == 'auto' else ''} "
          f"({time.perf_counter() - start:.0f} s)")
    if summary["float_biases"]:
        print(f"note: {len(summary['float_biases'])} biases left float (input radix unknown): {summary['float_biases'][:3]}")
    if evaluation:
        report = measure_fidelity(model, qmodel, plan, evaluation, input_hw, norm, order, ann_file=args.eval)
        paths = write_report(report, out.with_name(out.stem + "_fidelity"), f"int8 fidelity: {out.name}")
        print(f"heatmap SNR {report.heatmap_snr_db:.1f} dB, worst layer {report.worst_snr_db:.1f} dB, "
              f"{len(report.flagged)} layers < 20 dB; keypoint shift median {report.displacement_px_median:.2f} px; "
              f"self-AP {report.self_ap:.4f}; AP float {report.ap_float:.4f} / int8 {report.ap_int8:.4f}")
        print("report: " + ", ".join(str(p) for p in paths))
    else:
        print("no --eval given: pass a COCO keypoint JSON (not the calibration images) for the fidelity report")
    return 0


if __name__ == "__main__":
    from litehrnet.cli_checks import run_main

    sys.exit(run_main(main, "nothing was written (outputs are written at the end, atomically)",
                      "run the same command again"))
