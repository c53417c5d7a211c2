"""Export an official YOLOv5 v6 checkpoint (``yolov5{n,s,m,l,x}.pt``) to a static ONNX detector.

    python tools/yolov5_to_onnx.py ../shared/weights/yolov5n.pt --imgsz 640 -o yolov5n.onnx
    python tools/yolov5_to_onnx.py ../shared/weights/yolov5n.pt --imgsz 640 -o yolov5n_kneron.onnx --kneron

The checkpoint is read with a restricted unpickler (no YOLOv5 code needed). Conv+BN are fused.
The graph ends at the three raw head maps; decoding and NMS run in ``prepostprocess.detection``.
``--kneron`` puts Kneron's input normalisation in front of the network (``x/256 - 0.5`` in, the
model's own ``x/255`` inside: one Mul + Add that the Kneron toolchain folds into the first conv)
and records ``preprocess=kneron`` in the metadata (the runner then letterboxes to the top-left,
padding right/bottom). Without it the model takes ``x/255``
(``preprocess=official``: centred letterbox, pad 114).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from litehrnet.models.yolov5 import (  # noqa: E402
    export_yolov5_onnx,
    set_kneron_input,
    yolov5_from_checkpoint,
    yolov5_onnx_metadata,
)
from litehrnet.models.yolov5_checkpoint import YoloCheckpointError  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="official yolov5*.pt")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640], help="input size: S or H W (multiples of 32)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .onnx path")
    parser.add_argument("--kneron", action="store_true", help="take x/256-0.5 input (exact Mul+Add in front of the first conv)")
    parser.add_argument("--opset", type=int, default=11)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    input_hw = (args.imgsz[0], args.imgsz[-1])
    if any(s % 32 for s in input_hw) or len(args.imgsz) > 2:
        print(f"error: --imgsz {args.imgsz}: give S or H W, multiples of 32", file=sys.stderr)
        return 2
    try:
        model = yolov5_from_checkpoint(args.checkpoint).fuse()
    except YoloCheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    preprocess = "kneron" if args.kneron else "official"
    if args.kneron:
        set_kneron_input(model)
    match = re.search(r"yolov5([nsmlx])", args.checkpoint.name)
    variant = match.group(1) if match else "custom"
    metadata = yolov5_onnx_metadata(model, input_hw, preprocess, variant)
    diff = export_yolov5_onnx(model, args.output, input_hw, metadata, opset=args.opset)
    print(f"wrote {args.output} (input 1x3x{input_hw[0]}x{input_hw[1]}, preprocess={preprocess}, "
          f"onnxruntime vs torch max diff {diff:.1e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
