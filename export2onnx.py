"""Export a pose model to a static, batch-1 NCHW ONNX verified against PyTorch.

    python export2onnx.py CONFIG CKPT [-o out.onnx] [--shape H W] [--opset 11] [--no-simplify]
                          [--check-npu KL520,KL720] [--npu-rewrite]

CKPT ``none`` exports random-init weights (labelled in the file's doc_string; for tests and
benchmarks only). ``--npu-rewrite`` turns an official Lite-HRNet into the exact NPU-friendly graph
(no shuffle, static pools) at the export size. See docs/export.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from litehrnet.config import ConfigError, load_config
from litehrnet.deploy.npu_check import NpuCheckError, check_model
from litehrnet.export import ExportError, check_export_args
from litehrnet.export.pipeline import NO_CHECKPOINT, ExportJob, run_export
from litehrnet.models.checkpoint import CheckpointError
from litehrnet.models.npu import NpuRewriteError


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
    return p.parse_args(argv)


def make_job(args: argparse.Namespace) -> ExportJob:
    cfg = load_config(args.config)
    input_hw = tuple(args.shape) if args.shape else tuple(cfg["model"]["input_hw"])
    cfg["model"]["input_hw"] = list(input_hw)
    checkpoint = None if args.checkpoint.lower() in NO_CHECKPOINT else args.checkpoint
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise ExportError(f"{checkpoint}: checkpoint not found; pass a .pth file or 'none' for random init")
    suffix = "_npu_rewrite" if args.npu_rewrite else ""
    default_out = Path("work_dirs/export") / f"{cfg['model']['variant']}{suffix}_{input_hw[0]}x{input_hw[1]}.onnx"
    opset = args.opset if args.opset is not None else cfg["export"]["opset"]
    check_export_args(input_hw, opset)
    return ExportJob(
        cfg=cfg, checkpoint=checkpoint, out_path=Path(args.output) if args.output else default_out,
        input_hw=input_hw, opset=opset, simplify=cfg["export"]["simplify"] and not args.no_simplify,
        npu_rewrite=args.npu_rewrite,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        job = make_job(args)
        if job.checkpoint is None:
            print("WARNING: no checkpoint given: exporting RANDOM-INIT weights (tests/benchmarks only)")
        report, source = run_export(job)
        targets = args.check_npu.split(",") if args.check_npu else list(job.cfg["export"]["check_npu"])
        print(report.summary())
        print(f"verified on a {source}: max|diff| = {report.max_abs_diff:.3g} (<= 1e-4)")
        for target in filter(None, (t.strip() for t in targets)):
            print(check_model(report.path, target).format_table())
    except (ConfigError, CheckpointError, ExportError, NpuRewriteError, NpuCheckError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
