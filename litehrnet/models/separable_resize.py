"""Upsampling as two 1-D resizes (rows, then columns): the same values, an NPU-safe graph.

Kneron's KL720 Resize note 35 ("not both vus_en and hus_en enabled") and Upsample note 45 ("row or
column but not both"), read literally, put every 2-D upsample on the CPU; the docs do not say
whether the compiler splits it (see :mod:`litehrnet.kneron.operators`). Nearest and bilinear
interpolation are separable, so a 2-D resize equals a vertical resize followed by a horizontal
one, and each exported Resize then changes one axis only, which every reading of the table allows.
Nearest: bit-exact. Bilinear: the same weights, summed in another order (float32 rounding, well
below 1e-6 relative).

The two-step form costs 4-9 % of onnxruntime CPU latency on the NPU graphs (one more Resize per
upsampling). Modules that upsample this way carry ``separable_upsampling`` (default True);
:func:`set_separable_upsampling` switches a whole model to 2-D resizes for CPU/GPU-only exports
(``export2onnx.py --joint-upsampling``); the function and the parameters are the same.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def upsample_nearest(x_nchw: Tensor, scale_hw: tuple[int, int], separable: bool = True) -> Tensor:
    """Nearest upsampling by integer factors, one axis per Resize (one 2-D Resize if not ``separable``)."""
    sh, sw = (int(s) for s in scale_hw)
    if not separable:
        return x_nchw if sh == sw == 1 else F.interpolate(x_nchw, scale_factor=[float(sh), float(sw)], mode="nearest")
    if sh != 1:
        x_nchw = F.interpolate(x_nchw, scale_factor=[float(sh), 1.0], mode="nearest")
    if sw != 1:
        x_nchw = F.interpolate(x_nchw, scale_factor=[1.0, float(sw)], mode="nearest")
    return x_nchw


def resize_bilinear(x_nchw: Tensor, size_hw: tuple[int, int], align_corners: bool, separable: bool = True) -> Tensor:
    """``F.interpolate(x, size, mode="bilinear")`` as a row resize, then a column resize."""
    h, w = (int(s) for s in size_hw)
    if not separable:
        return F.interpolate(x_nchw, size=(h, w), mode="bilinear", align_corners=align_corners)
    if x_nchw.shape[-2] != h:
        x_nchw = F.interpolate(x_nchw, size=(h, int(x_nchw.shape[-1])), mode="bilinear", align_corners=align_corners)
    if x_nchw.shape[-1] != w:
        x_nchw = F.interpolate(x_nchw, size=(h, w), mode="bilinear", align_corners=align_corners)
    return x_nchw


class SeparableUpsample(nn.Module):
    """Drop-in for ``nn.Upsample(scale_factor=s, mode="nearest")`` (no parameters)."""

    def __init__(self, scale_factor: int) -> None:
        super().__init__()
        self.scale_factor = int(scale_factor)
        self.separable_upsampling = True

    def forward(self, x_nchw: Tensor) -> Tensor:
        return upsample_nearest(x_nchw, (self.scale_factor, self.scale_factor), self.separable_upsampling)


def make_upsampling_separable(module: nn.Module) -> nn.Module:
    """Replace every nearest ``nn.Upsample`` with integer scale under ``module`` (in place)."""
    for name, child in module.named_children():
        if isinstance(child, nn.Upsample) and child.mode == "nearest" and child.scale_factor is not None:
            setattr(module, name, SeparableUpsample(int(child.scale_factor)))
        else:
            make_upsampling_separable(child)
    return module


def set_separable_upsampling(model: nn.Module, separable: bool) -> nn.Module:
    """Switch every module of ``model`` that carries ``separable_upsampling`` (in place)."""
    for module in model.modules():
        if hasattr(module, "separable_upsampling"):
            module.separable_upsampling = bool(separable)
    return model
