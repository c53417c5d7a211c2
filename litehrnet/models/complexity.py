"""Parameter and FLOP counts per stage, measured with forward hooks.

Convention (the one the Lite-HRNet and HRNet papers use, via mmcv's counter): **FLOPs are
multiply-accumulates (MACs)** of the convolution-like layers, one MAC = one FLOP:

- ``Conv2d``: ``out_elements * (in_channels / groups) * kh * kw`` (+ ``out_elements`` if biased);
- ``ConvTranspose2d``: ``in_elements * out_channels / groups * kh * kw`` (+ bias per output);
- ``Linear``: ``in_features * out_features`` per row (+ bias).

Element-wise work (BatchNorm, activations, the weighting multiplies, additions, pooling and
resizing) is *not* counted; :func:`count_complexity` reports it separately as ``elementwise``
(one FLOP per output element of BN / activation / pooling / upsampling modules) for reference.
Parameters are counted per stage from ``named_parameters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

# HRNet's stem convs live directly on the backbone; report them as one "stem" group.
_STEM_ALIASES = {"conv1": "stem", "bn1": "stem", "conv2": "stem", "bn2": "stem", "relu": "stem"}
_ELEMENTWISE = (nn.BatchNorm2d, nn.ReLU, nn.Sigmoid, nn.Upsample, nn.AdaptiveAvgPool2d, nn.AvgPool2d)


@dataclass
class StageCount:
    name: str
    params: int = 0
    macs: int = 0
    elementwise: int = 0


@dataclass
class ComplexityReport:
    variant: str
    input_hw: tuple[int, int]
    stages: list[StageCount] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(s.params for s in self.stages)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.stages)

    @property
    def elementwise(self) -> int:
        return sum(s.elementwise for s in self.stages)

    @property
    def backbone_params(self) -> int:
        return sum(s.params for s in self.stages if s.name != "keypoint_head")

    def stage(self, name: str) -> StageCount:
        return next(s for s in self.stages if s.name == name)


def stage_of(qualified_name: str) -> str:
    """Group a module/parameter name: ``backbone.stage1.0...`` -> ``stage1``, head -> ``keypoint_head``."""
    parts = qualified_name.split(".")
    if parts[0] != "backbone":
        return parts[0]
    return _STEM_ALIASES.get(parts[1], parts[1]) if len(parts) > 1 else "backbone"


def layer_macs(module: nn.Module, inputs: tuple, output: torch.Tensor) -> int:
    """MACs of one call of a conv / deconv / linear module (bias adds included)."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        macs = output.numel() * (module.in_channels // module.groups) * kh * kw
        return macs + (output.numel() if module.bias is not None else 0)
    if isinstance(module, nn.ConvTranspose2d):
        kh, kw = module.kernel_size
        macs = inputs[0].numel() * (module.out_channels // module.groups) * kh * kw
        return macs + (output.numel() if module.bias is not None else 0)
    if isinstance(module, nn.Linear):
        macs = output.numel() * module.in_features
        return macs + (output.numel() if module.bias is not None else 0)
    return 0


def count_complexity(model: nn.Module, input_hw: tuple[int, int]) -> ComplexityReport:
    """Run one ``1 x 3 x H x W`` forward pass with hooks and return per-stage counts.

    Counts the official graph (the one the ONNX export keeps): a layer that our forward runs once
    where the official code runs it twice (Lite-HRNet's fuse, ``official_calls = 2``) counts twice.
    """
    stages: dict[str, StageCount] = {}

    def get(name: str) -> StageCount:
        return stages.setdefault(name, StageCount(name))

    for name, param in model.named_parameters():
        get(stage_of(name)).params += param.numel()

    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            def hook(mod, inp, out, group=stage_of(name)):
                get(group).macs += layer_macs(mod, inp, out) * getattr(mod, "official_calls", 1)
            handles.append(module.register_forward_hook(hook))
        elif isinstance(module, _ELEMENTWISE):
            def ew_hook(mod, inp, out, group=stage_of(name)):
                get(group).elementwise += out.numel() * getattr(mod, "official_calls", 1)
            handles.append(module.register_forward_hook(ew_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, *input_hw))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    report = ComplexityReport(getattr(model, "variant", type(model).__name__), tuple(input_hw))
    report.stages = list(stages.values())
    return report


def format_report(report: ComplexityReport) -> str:
    """Human-readable table: params and MACs per stage, totals, and the convention."""
    h, w = report.input_hw
    lines = [
        f"{report.variant} @ {h}x{w} (FLOPs = multiply-accumulates of conv/deconv/linear incl. bias; "
        "element-wise ops listed separately)",
        f"{'stage':<16}{'params':>14}{'MFLOPs':>12}{'elementwise(M)':>16}",
    ]
    for s in report.stages:
        lines.append(f"{s.name:<16}{s.params:>14,}{s.macs / 1e6:>12.2f}{s.elementwise / 1e6:>16.2f}")
    lines.append(f"{'total':<16}{report.params:>14,}{report.macs / 1e6:>12.2f}{report.elementwise / 1e6:>16.2f}")
    lines.append(f"backbone params: {report.backbone_params:,}")
    return "\n".join(lines)
