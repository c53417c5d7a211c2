"""Export an official YOLOv5 v6 checkpoint (``yolov5{n,s,m,l,x}.pt``) to a static ONNX detector.

    python tools/yolov5_to_onnx.py ../shared/weights/yolov5n.pt --imgsz 640 -o yolov5n.onnx
    python tools/yolov5_to_onnx.py ../shared/weights/yolov5n.pt --imgsz 640 -o yolov5n_kneron.onnx --kneron

The checkpoint is read with a restricted unpickler (no YOLOv5 code needed). Conv+BN are fused.
The graph ends at the three raw head maps; decoding and NMS run in ``prepostprocess.detection``.
``--kneron`` makes the network take Kneron's input normalisation (``x/256 - 0.5``, PLUS
``KP_NORMALIZE_KNERON``) instead of the model's own ``x/255``, folded into the first conv's weights
and bias plus a constant border correction (:func:`litehrnet.yolov5.model.fold_kneron_input`):
same outputs, and no Mul/Add on the input that Kneron's optimiser would turn into
Transpose -> BatchNormalization -> Transpose; its 2-D nearest upsamplings become a row resize and a
column resize (exact; KL720 Resize note 35 by every reading). It records ``preprocess=kneron`` in the metadata (the
runner then letterboxes to the top-left, padding right/bottom). Without it the model takes
``x/255`` (``preprocess=official``: centred letterbox, pad 114). ``--check-npu KL520,KL720`` prints
the verdicts of Kneron's operator table (docs/export.md).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from litehrnet import cli_checks

# torch and the YOLOv5 network load after argument parsing (``--help`` stays under a second)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="official yolov5*.pt")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640], help="input size: S or H W (multiples of 32)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .onnx path")
    parser.add_argument("--kneron", action="store_true",
                        help="take x/256-0.5 input (folded exactly into the first conv)")
    parser.add_argument("--check-npu", default="", help="comma-separated Kneron chips to check, e.g. KL520,KL720")
    parser.add_argument("--opset", type=int, default=11)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    input_hw = (args.imgsz[0], args.imgsz[-1])
    if any(s % 32 for s in input_hw) or len(args.imgsz) > 2:
        print(f"error: --imgsz {args.imgsz}: give S or H W, multiples of 32", file=sys.stderr)
        return 2
    try:  # paths first: one line, exit 2
        cli_checks.input_file(args.checkpoint, "checkpoint file",
                              "download an official yolov5n.pt (README: YOLOv5 weights)")
        cli_checks.output_file(args.output, "output ONNX (-o)", extensions=(".onnx",))
    except cli_checks.PathCheckError as exc:
        return cli_checks.report(exc)
    from litehrnet.yolov5 import (
        YoloCheckpointError,
        export_yolov5_onnx,
        fold_kneron_input,
        set_kneron_input,
        yolov5_from_checkpoint,
        yolov5_onnx_metadata,
    )

    try:
        model = yolov5_from_checkpoint(args.checkpoint).fuse()
    except YoloCheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    preprocess = "kneron" if args.kneron else "official"
    if args.kneron:
        from litehrnet.models.separable_resize import make_upsampling_separable

        fold_kneron_input(set_kneron_input(model), input_hw)
        make_upsampling_separable(model)   # row then column resize: KL720 note 35 by every reading
    match = re.search(r"yolov5([nsmlx])", args.checkpoint.name)
    variant = match.group(1) if match else "custom"
    metadata = yolov5_onnx_metadata(model, input_hw, preprocess, variant)
    diff = export_yolov5_onnx(model, args.output, input_hw, metadata, opset=args.opset)
    print(f"wrote {args.output} (input 1x3x{input_hw[0]}x{input_hw[1]}, preprocess={preprocess}, "
          f"onnxruntime vs torch max diff {diff:.1e})")
    if args.check_npu:
        from litehrnet.kneron.checker import NpuCheckError, check_model

        try:
            for chip in filter(None, (c.strip() for c in args.check_npu.split(","))):
                print(check_model(args.output, chip).format_table())
        except NpuCheckError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli_checks.run_main(main, "nothing was written (the ONNX file is written at the end)",
                                 "run the same command again"))
