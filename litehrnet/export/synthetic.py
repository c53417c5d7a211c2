"""Synthetic "trained-like" weights for networks without a checkpoint (tests and benchmarks).

mmpose's initialisation (conv std 0.001) makes every output ~1e-20: an export or rewrite check
on it proves nothing, and such tiny values can hit slow denormal paths in latency runs.
:func:`synthetic_trained_weights` gives a model the statistics of a trained network instead:
He-normal convs, BatchNorm scales in [0.25, 0.75] and shifts around 0, running statistics
measured on the given inputs (cumulative average of one train-mode pass), and the keypoint
head's last conv scaled so the heatmaps peak at 1 on those inputs (Gaussian targets of height 1).

Why BN scales below 1: branch 0 doubles at every module through the official fuse quirk, so with
scales around 1 the official float32 forward of Lite-HRNet-30 already differs from its float64
forward by ~1e-4, and an exact rewrite can only be compared within that noise (docs/export.md).
"""

from __future__ import annotations

import torch
from torch import nn


def synthetic_trained_weights(model: nn.Module, inputs_nchw: torch.Tensor, seed: int = 0) -> nn.Module:
    """Overwrite ``model``'s weights in place (see module docstring); returns it in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(0.25 + 0.5 * torch.rand(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the calibration pass
        model.train()
        model(inputs_nchw)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.1
        model.eval()
        final = getattr(getattr(model, "keypoint_head", None), "final_layer", None)
        if final is not None:
            peak = float(model(inputs_nchw).abs().max())
            final.weight /= peak
            if final.bias is not None:
                final.bias /= peak
    return model
