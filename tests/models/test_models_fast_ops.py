"""The faster forms of the official resize and pooling ops compute the same bits, forward and
backward, and step aside (to the official op) wherever they do not apply, including the ONNX export."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from litehrnet.models import layers
from litehrnet.models.layers import NearestUpsample, upsample_nearest_exact
from litehrnet.models.litehrnet import adaptive_avg_pool


def _forward_backward(fn, x: torch.Tensor, seed: int = 5):
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    upstream = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed))
    (y * upstream).sum().backward()
    return y.detach(), x.grad


def _channel_half(n, c, h, w, seed=0):
    """The second channel half of a batch, a strided view as the model's blocks see it."""
    return torch.randn(n, 2 * c, h, w, generator=torch.Generator().manual_seed(seed)).chunk(2, dim=1)[1]


@pytest.mark.parametrize(("in_hw", "out_hw"), [
    ((8, 6), (16, 12)), ((8, 6), (32, 24)), ((8, 6), (64, 48)),   # the Lite-HRNet factors 2, 4, 8
    ((5, 7), (5, 14)), ((5, 7), (20, 7)), ((3, 4), (6, 16)),      # one axis only, unequal factors
])
@pytest.mark.parametrize("layout", ["contiguous", "channel_half"])
def test_nearest_upsample_is_bit_identical(in_hw, out_hw, layout):
    x = torch.randn(3, 5, *in_hw) if layout == "contiguous" else _channel_half(3, 5, *in_hw)
    got_y, got_g = _forward_backward(lambda t: upsample_nearest_exact(t, out_hw), x)
    ref_y, ref_g = _forward_backward(lambda t: F.interpolate(t, size=out_hw, mode="nearest"), x)
    assert torch.equal(got_y, ref_y)
    assert torch.equal(got_g, ref_g)
    assert got_g.abs().sum() > 0


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_nearest_upsample_module_matches_nn_upsample(scale):
    x = _channel_half(2, 4, 6, 5)
    module = NearestUpsample(scale)
    assert isinstance(module, torch.nn.Upsample)  # QAT hooks and the NPU rewrite look for nn.Upsample
    got = _forward_backward(module, x)
    ref = _forward_backward(torch.nn.Upsample(scale_factor=scale, mode="nearest"), x)
    assert all(torch.equal(a, b) for a, b in zip(got, ref))


def _count_interpolate(monkeypatch):
    calls = []
    official = F.interpolate

    def spy(*args, **kwargs):
        calls.append(kwargs.get("mode"))
        return official(*args, **kwargs)

    monkeypatch.setattr(layers.F, "interpolate", spy)
    return calls


@pytest.mark.parametrize(("in_hw", "out_hw"), [((4, 4), (12, 12)), ((4, 6), (10, 15)), ((5, 5), (8, 8))])
def test_other_ratios_use_interpolate(monkeypatch, in_hw, out_hw):
    calls = _count_interpolate(monkeypatch)
    x = torch.randn(1, 2, *in_hw)
    assert torch.equal(upsample_nearest_exact(x, out_hw), torch.nn.functional.interpolate(x, size=out_hw, mode="nearest"))
    assert len(calls) == 2  # ours fell back to the official op (plus the reference call)


def test_onnx_export_keeps_the_official_resize(monkeypatch):
    calls = _count_interpolate(monkeypatch)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    x = torch.randn(1, 2, 4, 4)
    upsample_nearest_exact(x, (8, 8))
    NearestUpsample(2)(x)
    assert len(calls) == 2  # both went through F.interpolate, as the official graph does


@pytest.mark.parametrize(("in_hw", "out_hw"), [((64, 48), (8, 6)), ((32, 24), (8, 6)), ((16, 12), (8, 6)),
                                               ((96, 72), (12, 9)), ((64, 48), (16, 24))])
def test_pool_by_powers_of_two_is_bit_identical(in_hw, out_hw):
    for seed in range(3):
        x = _channel_half(4, 6, *in_hw, seed=seed) * 10.0 ** seed
        got = _forward_backward(lambda t: adaptive_avg_pool(t, out_hw), x)
        ref = _forward_backward(lambda t: F.adaptive_avg_pool2d(t, out_hw), x)
        assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])


@pytest.mark.parametrize(("in_hw", "out_hw"), [((24, 18), (8, 6)), ((10, 10), (3, 3)), ((8, 8), (1, 1))])
def test_other_pools_are_adaptive(in_hw, out_hw):
    """Factor 3 (dividing by 3 then 3 is not dividing by 9 in float), non-divisible sizes, global."""
    x = torch.randn(2, 3, *in_hw)
    assert torch.equal(adaptive_avg_pool(x, out_hw), F.adaptive_avg_pool2d(x, out_hw))
