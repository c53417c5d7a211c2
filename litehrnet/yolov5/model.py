"""YOLOv5 v6 (n/s/m/l/x) person detector in plain PyTorch, loadable from official checkpoints.

Same module tree as the official implementation (``model.<i>.<sub>`` state-dict keys), built from
the architecture ``yaml`` dict that every official checkpoint carries, so ``yolov5{n,s,m,l,x}.pt``
load with ``strict=True``. Blocks: ``Conv`` (conv + BN + SiLU), ``Bottleneck``, ``C3``, ``SPPF``,
``Concat``, nearest ``Upsample`` and ``Detect`` (three 1x1 heads at strides 8/16/32).

The forward pass stops at the raw head maps (one ``N x (A*(5+C)) x H/s x W/s`` tensor per stride):
sigmoid, grid/anchor decoding and NMS live in :mod:`prepostprocess.detection` (numpy) so the ONNX
graph stays a plain CNN that NPUs compile, and one decoder serves ONNX and torch alike.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import YoloCheckpoint, YoloCheckpointError, read_yolov5_checkpoint

BN_EPS = 1e-3  # the official YOLOv5 models set eps=1e-3 on every BatchNorm2d


class Conv(nn.Module):
    """Conv2d (no bias, 'same' padding) + BatchNorm + SiLU; ``fuse()`` folds the BN into the conv."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, p: int | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)) if hasattr(self, "bn") else self.conv(x))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold BatchNorm into the conv weights/bias (inference only)."""
        std = (self.bn.running_var + self.bn.eps).sqrt()
        gain = self.bn.weight / std
        fused = nn.Conv2d(self.conv.in_channels, self.conv.out_channels, self.conv.kernel_size,
                          self.conv.stride, self.conv.padding, bias=True)
        fused.weight.copy_(self.conv.weight * gain[:, None, None, None])
        fused.bias.copy_(self.bn.bias - self.bn.running_mean * gain)
        self.conv = fused
        del self.bn


class Bottleneck(nn.Module):
    def __init__(self, c_in: int, c_out: int, shortcut: bool = True, expansion: float = 0.5) -> None:
        super().__init__()
        hidden = int(c_out * expansion)
        self.cv1 = Conv(c_in, hidden, 1)
        self.cv2 = Conv(hidden, c_out, 3)
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP block: two 1x1 branches, ``n`` bottlenecks on one, concatenated and mixed by a 1x1."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        hidden = c_out // 2
        self.cv1 = Conv(c_in, hidden, 1)
        self.cv2 = Conv(c_in, hidden, 1)
        self.cv3 = Conv(2 * hidden, c_out, 1)
        self.m = nn.Sequential(*(Bottleneck(hidden, hidden, shortcut, 1.0) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained k x k max-pools, concatenated."""

    def __init__(self, c_in: int, c_out: int, k: int = 5) -> None:
        super().__init__()
        hidden = c_in // 2
        self.cv1 = Conv(c_in, hidden, 1)
        self.cv2 = Conv(hidden * 4, c_out, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Concat(nn.Module):
    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, 1)


class Detect(nn.Module):
    """Three 1x1 prediction convs; ``anchors`` buffer is in grid units (pixels / stride), as upstream."""

    def __init__(self, num_classes: int, anchors_px: np.ndarray, strides: list[float], channels: list[int]) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.num_anchors = anchors_px.shape[1]
        self.strides = list(strides)
        out = self.num_anchors * (5 + num_classes)
        grid_anchors = torch.as_tensor(anchors_px, dtype=torch.float32) / torch.tensor(strides).view(-1, 1, 1)
        self.register_buffer("anchors", grid_anchors)
        self.m = nn.ModuleList(nn.Conv2d(c, out, 1) for c in channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(x) for conv, x in zip(self.m, xs)]


def _make_divisible(x: float, divisor: int = 8) -> int:
    return int(math.ceil(x / divisor) * divisor)


def _build_layers(arch: dict, anchors_px: np.ndarray, strides: list[float]) -> tuple[nn.Sequential, list[list[int]]]:
    """Instantiate the layer list of an official YOLOv5 v6 yaml; returns layers and their 'from' lists."""
    depth, width, nc = arch["depth_multiple"], arch["width_multiple"], arch["nc"]
    channels = [arch.get("ch", 3)]
    layers, froms = [], []
    for src, repeats, kind, args in arch["backbone"] + arch["head"]:
        src_list = [src] if isinstance(src, int) else list(src)
        c_in = [channels[s] for s in src_list]
        n = max(round(repeats * depth), 1) if repeats > 1 else repeats
        if kind in ("Conv", "C3", "SPPF"):
            c_out = _make_divisible(args[0] * width)
            if kind == "Conv":
                layer = Conv(c_in[0], c_out, *args[1:])
            elif kind == "C3":
                layer = C3(c_in[0], c_out, n, *args[1:])
            else:
                layer = SPPF(c_in[0], c_out, *args[1:])
        elif kind == "nn.Upsample":
            layer, c_out = nn.Upsample(scale_factor=float(args[1]), mode=str(args[2])), c_in[0]
        elif kind == "Concat":
            layer, c_out = Concat(), sum(c_in)
        elif kind == "Detect":
            layer, c_out = Detect(nc, anchors_px, strides, c_in), 0
        else:
            raise YoloCheckpointError(f"unsupported YOLOv5 layer type {kind!r} (only v6 Conv/C3/SPPF/Detect models)")
        layers.append(layer)
        froms.append(src_list)
        if not layers[:-1]:
            channels = []  # the input channel count only feeds layer 0
        channels.append(c_out)
    return nn.Sequential(*layers), froms


class YoloV5(nn.Module):
    """YOLOv5 v6 graph; ``forward(images_nchw)`` returns the raw head maps (strides 8, 16, 32)."""

    def __init__(self, arch: dict, anchors_px: np.ndarray, strides: list[float], names: list[str] | None = None) -> None:
        super().__init__()
        self.arch = arch
        self.names = list(names or [])
        self.model, self._froms = _build_layers(arch, anchors_px, strides)
        self._keep = {s for f in self._froms for s in f if s >= 0}
        self.input_affine: tuple[float, float] | None = None  # (scale, shift) applied to the input first

    @property
    def detect(self) -> Detect:
        return self.model[-1]

    def forward(self, images_nchw: torch.Tensor) -> list[torch.Tensor]:
        outputs: list[torch.Tensor | None] = []
        x: torch.Tensor | list[torch.Tensor] = images_nchw
        if self.input_affine is not None:
            x = x * self.input_affine[0] + self.input_affine[1]
        for i, (layer, src) in enumerate(zip(self.model, self._froms)):
            if src != [-1]:
                x = [x if s == -1 else outputs[s] for s in src]
                x = x[0] if len(x) == 1 else x
            x = layer(x)
            outputs.append(x if i in self._keep else None)
        return x

    def fuse(self) -> "YoloV5":
        for module in self.modules():
            if isinstance(module, Conv) and hasattr(module, "bn"):
                module.fuse()
        return self


def build_yolov5(variant: str, num_classes: int = 80) -> YoloV5:
    """Random-init YOLOv5 v6 of size n/s/m/l/x (for tests; real use loads a checkpoint)."""
    arch = yolov5_arch(variant, num_classes)
    anchors = np.asarray(arch["anchors"], np.float32).reshape(3, 3, 2)
    return YoloV5(arch, anchors, [8.0, 16.0, 32.0])


VARIANT_SCALES = {"n": (0.33, 0.25), "s": (0.33, 0.50), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}


def yolov5_arch(variant: str, num_classes: int = 80) -> dict:
    """The official v6 yaml for ``variant`` in n/s/m/l/x (depth, width multiples from the table)."""
    if variant not in VARIANT_SCALES:
        raise ValueError(f"unknown YOLOv5 variant {variant!r}; choose one of {sorted(VARIANT_SCALES)}")
    depth, width = VARIANT_SCALES[variant]
    backbone = [[-1, 1, "Conv", [64, 6, 2, 2]], [-1, 1, "Conv", [128, 3, 2]], [-1, 3, "C3", [128]],
                [-1, 1, "Conv", [256, 3, 2]], [-1, 6, "C3", [256]], [-1, 1, "Conv", [512, 3, 2]],
                [-1, 9, "C3", [512]], [-1, 1, "Conv", [1024, 3, 2]], [-1, 3, "C3", [1024]],
                [-1, 1, "SPPF", [1024, 5]]]
    head = [[-1, 1, "Conv", [512, 1, 1]], [-1, 1, "nn.Upsample", [None, 2, "nearest"]], [[-1, 6], 1, "Concat", [1]],
            [-1, 3, "C3", [512, False]], [-1, 1, "Conv", [256, 1, 1]], [-1, 1, "nn.Upsample", [None, 2, "nearest"]],
            [[-1, 4], 1, "Concat", [1]], [-1, 3, "C3", [256, False]], [-1, 1, "Conv", [256, 3, 2]],
            [[-1, 14], 1, "Concat", [1]], [-1, 3, "C3", [512, False]], [-1, 1, "Conv", [512, 3, 2]],
            [[-1, 10], 1, "Concat", [1]], [-1, 3, "C3", [1024, False]], [[17, 20, 23], 1, "Detect", ["nc", "anchors"]]]
    anchors = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
    return {"nc": num_classes, "depth_multiple": depth, "width_multiple": width, "anchors": anchors,
            "backbone": backbone, "head": head, "ch": 3}


def yolov5_from_checkpoint(ckpt: YoloCheckpoint | str | Path) -> YoloV5:
    """Build the model described by an official checkpoint and load its weights (strict)."""
    if not isinstance(ckpt, YoloCheckpoint):
        ckpt = read_yolov5_checkpoint(ckpt)
    model = YoloV5(ckpt.yaml, ckpt.anchors_px, ckpt.stride, ckpt.names)
    missing, unexpected = model.load_state_dict(ckpt.state_dict, strict=False)
    unexpected = [k for k in unexpected if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise YoloCheckpointError(
            f"checkpoint does not match the YOLOv5 v6 architecture: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model.eval()


def set_kneron_input(model: YoloV5) -> YoloV5:
    """Make a model trained on ``x/255`` accept Kneron's ``x/256 - 0.5`` input, exactly.

    ``x/255 = x_kn * 256/255 + 128/255``: the model gains this per-pixel affine step in front of
    the first conv (one Mul + Add in the ONNX graph, which the Kneron toolchain folds into the
    first layer). Folding it into the conv weights here would be inexact at the image border,
    where the conv's zero padding would stand for grey instead of black.
    """
    model.input_affine = (256.0 / 255.0, 128.0 / 255.0)
    return model


class FoldedInputConv(nn.Module):
    """The first conv with the input affine folded into its weights, plus an exact border correction."""

    def __init__(self, conv: nn.Conv2d, border_correction: torch.Tensor) -> None:
        super().__init__()
        self.conv = conv
        self.register_buffer("border_correction", border_correction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.border_correction


@torch.no_grad()
def fold_kneron_input(model: YoloV5, input_hw: tuple[int, int]) -> YoloV5:
    """Fold :func:`set_kneron_input`'s affine step into the first conv (no Mul/Add on the input).

    ``conv(pad0(a*x + c))`` equals ``conv'(pad0(x)) + D`` with ``conv'`` = weights ``a*W``, bias
    ``b + c*sum(W)``, and ``D`` a constant map that is non-zero only where the kernel overlaps the
    zero padding (there ``conv'`` counts the padding as grey ``c`` instead of black 0). ``D`` is
    computed once in float64 for ``input_hw``; the export then starts with Conv -> Add(constant),
    both NPU ops on every Kneron chip, and Kneron's optimiser has no input Mul/Add to turn into
    Transpose -> BatchNormalization -> Transpose. Needs a fused model (no BatchNorm).
    """
    if model.input_affine is None:
        raise ValueError("fold_kneron_input: call set_kneron_input(model) first")
    first = model.model[0]
    if hasattr(first, "bn") or first.conv.bias is None:
        raise ValueError("fold_kneron_input: fuse() the model first (BatchNorm folded into the conv)")
    scale, shift = model.input_affine
    conv = first.conv
    w, b = conv.weight.double(), conv.bias.double()
    w_folded, b_folded = w * scale, b + shift * w.sum(dim=(1, 2, 3))
    zero = torch.zeros(1, conv.in_channels, *input_hw, dtype=torch.float64)
    original = nn.functional.conv2d(zero * scale + shift, w, b, conv.stride, conv.padding)
    folded_out = nn.functional.conv2d(zero, w_folded, b_folded, conv.stride, conv.padding)
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
    folded.weight.copy_(w_folded.float())
    folded.bias.copy_(b_folded.float())
    first.conv = FoldedInputConv(folded, (original - folded_out).float())
    model.input_affine = None
    return model


DETECTOR_PREPROCESS = ("official", "kneron")


def yolov5_onnx_metadata(model: YoloV5, input_hw: tuple[int, int], preprocess: str, variant: str) -> dict[str, str]:
    """Metadata the deploy runner reads (anchors, strides, preprocessing) so the YAML cannot drift."""
    detect = model.detect
    anchors_px = (detect.anchors * torch.tensor(detect.strides).view(-1, 1, 1)).tolist()
    return {
        "model_type": f"yolov5{variant}",
        "input_hw": f"{input_hw[0]},{input_hw[1]}",
        "preprocess": preprocess,
        "num_classes": str(detect.num_classes),
        "class_names": json.dumps(model.names),
        "strides": json.dumps(detect.strides),
        "anchors_px": json.dumps(anchors_px),
        "producer": "litehrnet-kneron",
    }


def export_yolov5_onnx(model: YoloV5, out_path: str | Path, input_hw: tuple[int, int], metadata: dict[str, str],
                       opset: int = 11) -> float:
    """Export a static batch-1 ONNX (input ``input``, outputs ``head_s8/16/32``), written atomically.

    Re-runs the graph in onnxruntime on a random input and returns the max abs difference to torch;
    raises ``RuntimeError`` above 1e-3.
    """
    import onnx
    import onnxruntime as ort

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    names = [f"head_s{int(s)}" for s in model.detect.strides]
    dummy = torch.rand(1, 3, *input_hw)
    tmp = out_path.with_name(out_path.name + ".tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is the one Kneron needs
        torch.onnx.export(model, dummy, str(tmp), input_names=["input"], output_names=names,
                          opset_version=opset, dynamo=False)
        expected = [t.numpy() for t in model(dummy)]
    proto = onnx.load(str(tmp))
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(tmp))
    ort.disable_telemetry_events()
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": dummy.numpy()})
    diff = max(float(np.abs(a - b).max()) for a, b in zip(expected, got))
    if diff > 1e-3:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{out_path}: onnxruntime output differs from torch by {diff:.2e}")
    os.replace(tmp, out_path)
    return diff
