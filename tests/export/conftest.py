"""Fixtures for the export tests: "official-like" weights for randomly initialised models.

mmpose's initialisation (conv std 0.001) makes every output ~1e-20, so an export or rewrite
comparison on it proves nothing. ``officialise`` gives a model the statistics of a trained
network instead: He-normal convs, BatchNorm affine parameters drawn around (1, 0), and running
statistics measured on the given inputs (cumulative average in train mode), so activations are
O(1) after every BatchNorm; finally the head's last conv is scaled so the heatmaps peak at 1 on
the calibration inputs, as trained heatmaps (Gaussian targets of height 1) do.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn


def officialise(model: nn.Module, inputs_nchw: torch.Tensor, seed: int = 0) -> nn.Module:
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
        with torch.no_grad():
            peak = float(model(inputs_nchw).abs().max())
            final.weight /= peak
            final.bias /= peak
    return model


@pytest.fixture(scope="session")
def officialise_fn():
    return officialise
