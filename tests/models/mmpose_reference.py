"""Test helpers: mmpose 1.3.2 reference backbones built from our variant rows,
with weights and BatchNorm statistics randomised so that parity checks can catch BN mistakes."""

from __future__ import annotations

import torch
from torch import nn

from litehrnet.models import VARIANTS
from tests.conftest import import_mmpose_module

LITE_VARIANTS = [v for v, row in VARIANTS.items()
                 if row["arch"] == "litehrnet" and row.get("published", {}).get("params_m")]
HRNET_VARIANTS = [v for v, row in VARIANTS.items() if row["arch"] == "hrnet"]


def mmpose_extra(row: dict) -> dict:
    """Translate one of our variant rows into mmpose's ``extra`` backbone argument."""
    if row["arch"] == "litehrnet":
        stem_channels, out_channels, expand_ratio = row["stem"]
        return {
            "stem": {"stem_channels": stem_channels, "out_channels": out_channels, "expand_ratio": expand_ratio},
            "num_stages": len(row["num_modules"]),
            "stages_spec": {
                "num_modules": tuple(row["num_modules"]),
                "num_branches": tuple(len(c) for c in row["num_channels"]),
                "num_blocks": tuple(row["num_blocks"]),
                "module_type": tuple(row["block"]),
                "with_fuse": (row["with_fuse"],) * len(row["num_modules"]),
                "reduce_ratios": tuple(row["reduce_ratios"]),
                "num_channels": tuple(tuple(c) for c in row["num_channels"]),
            },
            "with_head": row["with_head"],
        }
    return {
        f"stage{i + 1}": {
            "num_modules": s["num_modules"], "num_branches": len(s["num_channels"]), "block": s["block"],
            "num_blocks": tuple(s["num_blocks"]), "num_channels": tuple(s["num_channels"]),
        }
        for i, s in enumerate(row["stages"])
    }


def build_reference(variant: str) -> nn.Module:
    """mmpose's own ``LiteHRNet`` / ``HRNet`` for ``variant`` (skips if mmpose is absent)."""
    row = VARIANTS[variant]
    if row["arch"] == "litehrnet":
        return import_mmpose_module("mmpose.models.backbones.litehrnet").LiteHRNet(mmpose_extra(row))
    return import_mmpose_module("mmpose.models.backbones.hrnet").HRNet(mmpose_extra(row))


@torch.no_grad()
def randomise(model: nn.Module, seed: int = 0, calib_hw: tuple[int, int] = (128, 96)) -> nn.Module:
    """Random He-scaled conv weights, random BN affine parameters, and BN running statistics
    set from one batch (then jittered), so every BN term matters and activations stay O(1).
    Returns the model in eval mode."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            fan_in = m.weight[0].numel()
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            if m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
            m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.2)
            m.momentum = None  # cumulative average: running stats = this batch's stats
            m.reset_running_stats()
    model.train()
    model(torch.randn(2, 3, *calib_hw, generator=g))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.add_(torch.randn(m.running_mean.shape, generator=g) * 0.05)
            m.running_var.mul_(0.8 + 0.4 * torch.rand(m.running_var.shape, generator=g))
            m.momentum = 0.1
    model.eval()  # (mmpose backbones' train() returns None)
    return model
