"""Export a pose model to a static, batch-1 NCHW ONNX verified against PyTorch.

    python export2onnx.py CONFIG CKPT [-o out.onnx] [--shape H W] [--opset 11] [--no-simplify]
                          [--check-npu KL520,KL720] [--npu-rewrite] [--batch N | --dynamic-batch]

CKPT ``none`` exports random-init weights (labelled in the file's doc_string; for tests and
benchmarks only). ``--npu-rewrite`` turns an official Lite-HRNet into the exact NPU-friendly graph
(no shuffle, static pools) at the export size. ``--batch N`` / ``--dynamic-batch`` write a file for
CPU/GPU runs in chunks (not for the chip, which needs batch 1). See docs/export.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litehrnet import cli_checks
from litehrnet.config import ConfigError, load_config

# torch, onnx and the exporter load after argument parsing (``--help`` stays under a second)

# real COCO person crops for the export check, when present (the development layout's ../shared)
DEFAULT_VERIFY_DATA = Path(__file__).resolve().parent.parent / "shared" / "data" / "coco_val2017_dev"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", help="experiment YAML (configs/...)")
    p.add_argument("checkpoint", help="checkpoint .pth (mmpose 0.x/1.x or ours), or 'none' for random init")
    p.add_argument("-o", "--output", help="output .onnx (default work_dirs/export/<variant>_<H>x<W>.onnx)")
    p.add_argument("--shape", nargs=2, type=int, metavar=("H", "W"), help="input size (default model.input_hw)")
    p.add_argument("--opset", type=int, help="ONNX opset (default export.opset, 11)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxsim")
    p.add_argument("--check-npu", help="comma-separated NPU targets to check, e.g. KL520,KL720")
    p.add_argument("--npu-rewrite", action="store_true",
                   help="export the exact NPU-friendly rewrite of an official Lite-HRNet")
    p.add_argument("--batch", type=int, default=1, metavar="N",
                   help="static batch N for CPU/GPU runs in chunks (default 1; the Kneron chip needs 1)")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="dynamic batch axis for CPU/GPU runs in chunks (not for the Kneron chip)")
    p.add_argument("--verify-data", type=Path, default=DEFAULT_VERIFY_DATA, metavar="DIR",
                   help="COCO val folder (annotations/person_keypoints_val2017.json, val2017/) whose first person "
                        "crop verifies the export (default ../shared/data/coco_val2017_dev; random input if absent)")
    p.add_argument("--joint-upsampling", action="store_true",
                   help="NPU graphs: 2-D Resizes instead of row-then-column (4-9%% faster on onnxruntime CPU; "
                        "KL720 note 35 ambiguous: CPU/GPU-only files)")
    k = p.add_argument_group("Kneron handoff bundle (docs/export.md)")
    k.add_argument("--kneron-bundle", metavar="DIR",
                   help="also write DIR: ONNX, calibration inputs, golden vectors, contract.json, toolchain script")
    k.add_argument("--target", default="KL720", help="chip the bundle's script compiles for: KL520 | KL720 | "
                                                     "KL530 | KL630 | KL730 (default KL720)")
    k.add_argument("--calib-images", metavar="DIR",
                   help="real images for calibration (default: the config's val images, cropped at its GT people)")
    k.add_argument("--calib-ann", metavar="JSON",
                   help="COCO keypoint file: crop its people in --calib-images (default: whole images)")
    k.add_argument("--calib-num", type=int, default=100, metavar="N", help="calibration inputs (default 100)")
    k.add_argument("--golden-num", type=int, default=4, metavar="N", help="golden vectors (default 4)")
    return p.parse_args(argv)


def kneron_batch_conflict(args: argparse.Namespace) -> str | None:
    """The one-line refusal when a batch option meets the Kneron path (the chip runs batch 1 only)."""
    if args.batch == 1 and not args.dynamic_batch:
        return None
    option = "--dynamic-batch" if args.dynamic_batch else f"--batch {args.batch}"
    kneron = [flag for flag, on in (("--check-npu", args.check_npu),
                                    ("--kneron-bundle", args.kneron_bundle)) if on]
    if kneron:
        return (f"{option} is for CPU/GPU runs; the Kneron NPU path ({', '.join(kneron)}) needs a static "
                f"batch-1 graph: export the chip's file without {option}")
    return None


def make_job(args: argparse.Namespace):
    from litehrnet.export import ExportError, check_export_args
    from litehrnet.export.onnx_export import batch_label
    from litehrnet.export.pipeline import NO_CHECKPOINT, ExportJob

    cfg = load_config(args.config)
    input_hw = tuple(args.shape) if args.shape else tuple(cfg["model"]["input_hw"])
    cfg["model"]["input_hw"] = list(input_hw)
    checkpoint = None if args.checkpoint.lower() in NO_CHECKPOINT else args.checkpoint
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ExportError(f"{checkpoint}: checkpoint not found; pass a .pth file or 'none' for random init")
    suffix = "_npu_rewrite" if args.npu_rewrite else ""
    suffix += "_dynbatch" if args.dynamic_batch else (f"_b{args.batch}" if args.batch != 1 else "")
    default_out = Path("work_dirs/export") / f"{cfg['model']['variant']}{suffix}_{input_hw[0]}x{input_hw[1]}.onnx"
    opset = args.opset if args.opset is not None else cfg["export"]["opset"]
    check_export_args(input_hw, opset)
    batch_label(args.batch, args.dynamic_batch)  # refuses N < 1 or both options, before any work
    return ExportJob(
        cfg=cfg, checkpoint=checkpoint, out_path=Path(args.output) if args.output else default_out,
        input_hw=input_hw, opset=opset, simplify=cfg["export"]["simplify"] and not args.no_simplify,
        npu_rewrite=args.npu_rewrite, batch=args.batch, dynamic_batch=args.dynamic_batch,
        separable_upsampling=not args.joint_upsampling,
        verify_coco_dir=args.verify_data,
    )


def plan_kneron_bundle(args: argparse.Namespace, cfg: dict):
    """Check the bundle's chip and calibration images before any work (one line, exit 2)."""
    from litehrnet.kneron.bundle import BundleError, plan_calibration
    from litehrnet.kneron.operators import normalize_chip

    normalize_chip(args.target)
    out = Path(args.kneron_bundle)
    if out.is_dir() and any(out.iterdir()):
        raise BundleError(f"{out}: bundle folder exists and is not empty; choose a new folder or remove it")
    if args.joint_upsampling:
        raise BundleError("--joint-upsampling is for CPU/GPU files (2-D Resizes are ambiguous on KL720); "
                          "write the Kneron bundle without it")
    if args.golden_num < 1:
        raise BundleError(f"--golden-num {args.golden_num}: need at least 1 golden vector")
    if args.calib_ann and not args.calib_images:
        raise BundleError(f"{args.calib_ann}: --calib-ann needs --calib-images (the folder of its images)")
    if args.calib_images:
        return plan_calibration(args.calib_images, args.calib_ann, args.calib_num)
    data = cfg["data"]
    return plan_calibration(cli_checks.data_path(data, "val_img_dir"), cli_checks.data_path(data, "val_ann"),
                            args.calib_num)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # paths first: one line and exit 2 before any work
        if args.checkpoint.lower() not in ("none", ""):
            cli_checks.input_file(args.checkpoint, "checkpoint", "pass a .pth file or 'none' for random init")
        if args.output:
            cli_checks.output_file(args.output, "output ONNX (-o)", extensions=(".onnx",))
        if args.kneron_bundle:
            cli_checks.output_dir(args.kneron_bundle, "Kneron bundle folder (--kneron-bundle)")
    except cli_checks.PathCheckError as exc:
        return cli_checks.report(exc)
    from litehrnet.export import ExportError
    from litehrnet.export.npu_rewrite import NpuRewriteError
    from litehrnet.export.pipeline import run_export
    from litehrnet.kneron.bundle import BundleError
    from litehrnet.kneron.checker import NpuCheckError, check_model
    from litehrnet.kneron.operators import OperatorTableError
    from litehrnet.models.checkpoint import CheckpointError

    conflict = kneron_batch_conflict(args)
    if conflict:
        print(f"error: {conflict}", file=sys.stderr)
        return 2
    try:
        job = make_job(args)
        bundle_sources = plan_kneron_bundle(args, job.cfg) if args.kneron_bundle else None
        if job.checkpoint is None:
            print("WARNING: no checkpoint given: exporting RANDOM-INIT weights with synthetic trained-like "
                  "activations (keypoints are meaningless; tests/benchmarks only; metadata weights=random)")
        report, source = run_export(job)
        targets = args.check_npu.split(",") if args.check_npu else list(job.cfg["export"]["check_npu"])
        if report.batch != "1" and targets:
            print(f"NPU check skipped: a batch-{report.batch} file is for CPU/GPU; the chip needs batch 1")
            targets = []
        print(report.summary())
        print(f"verified on a {source}: max|diff| = {report.max_abs_diff:.3g} (<= 1e-4 x max|output|)")
        for target in filter(None, (t.strip() for t in targets)):
            print(check_model(report.path, target).format_table())
        if bundle_sources is not None:
            from litehrnet.kneron.bundle import write_bundle

            summary = write_bundle(report.path, args.kneron_bundle, bundle_sources, num_calib=args.calib_num,
                                   num_golden=args.golden_num, target=args.target)
            skipped = f"; {len(summary['skipped'])} unreadable image(s) skipped" if summary["skipped"] else ""
            print(f"Kneron bundle for {summary['target']}: {summary['dir']} ({summary['calibration']} calibration "
                  f"inputs, {summary['golden']} golden vectors{skipped}); next: run kneron_toolchain.py in "
                  "Kneron's toolchain container (docs/export.md)")
    except (ConfigError, CheckpointError, ExportError, NpuRewriteError, NpuCheckError, KeyError,
            BundleError, OperatorTableError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "nothing was written (the ONNX file is written atomically, at the end)",
                                 "run the same command again"))
