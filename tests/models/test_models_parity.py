"""Our backbones against mmpose 1.3.2's own implementation: identical state-dict keys (strict
load of the reference's weights), bit-identical outputs in eval mode, and in training mode the
same outputs, gradients and BatchNorm running statistics (our fuse layers run each branch-0
downsampling once where mmpose runs it twice; see ``LiteHRModule._fuse``)."""

from __future__ import annotations

import copy

import pytest
import torch

from litehrnet.models import build_backbone

from tests.models.mmpose_reference import LITE_VARIANTS, build_reference

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # from mmcv/mmengine imports

TOLERANCE = 1e-5
SIZES = [(256, 192), (384, 288)]


def _ours_from(reference: torch.nn.Module, variant: str) -> torch.nn.Module:
    ours = build_backbone(variant)
    ref_state = reference.state_dict()
    assert list(ours.state_dict()) == list(ref_state)  # same names, same order
    ours.load_state_dict(ref_state, strict=True)
    return ours.eval()


@pytest.fixture(scope="module")
def pairs(reference_backbones):
    cache = {}

    def get(variant):
        if variant not in cache:
            ref = reference_backbones(variant)
            cache[variant] = (ref, _ours_from(ref, variant))
        return cache[variant]

    return get


@pytest.mark.parametrize("input_hw", SIZES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("variant", LITE_VARIANTS + ["hrnet_w32"])
def test_backbone_matches_reference(pairs, variant, input_hw):
    reference, ours = pairs(variant)
    x = torch.randn(1, 3, *input_hw, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)[0]
        got = ours(x)
    assert got.shape == expected.shape == (1, ours.out_channels, input_hw[0] // 4, input_hw[1] // 4)
    assert expected.std() > 0.05, "reference output degenerate: the comparison would prove nothing"
    diff = (got - expected).abs().max().item()
    assert diff <= TOLERANCE, f"{variant} {input_hw}: max |diff| {diff:.3g}"
    if variant in LITE_VARIANTS:  # same operators in the same order: bit-identical, not just close
        assert diff == 0.0, f"{variant} {input_hw}: max |diff| {diff:.3g}, expected 0.0"


# Training mode. Forward: bit-identical. Backward: our fuse layers get 2g once where mmpose gets g
# twice (exact scaling), and autograd sums branch contributions in another order, so gradients
# agree to float rounding. Tolerance per tensor: |ours - ref| <= GRAD_RTOL * max|ref| +
# GRAD_ATOL * (largest gradient of the whole network): the absolute part covers parameters whose
# true gradient is 0 (a BN bias feeding a conv and another training-mode BN), where both sides
# hold rounding noise only. Measured: <= 7e-7 of the largest gradient.
GRAD_RTOL, GRAD_ATOL = 1e-4, 1e-5
STATS_RTOL = 1e-5  # running mean/var after one training forward (momentum emulation), measured 2e-7


@pytest.mark.parametrize("variant", LITE_VARIANTS)
def test_training_mode_matches_reference(reference_backbones, variant):
    reference = copy.deepcopy(reference_backbones(variant))  # the cached one stays as it is
    ours = _ours_from(reference, variant)
    reference.train()  # (mmpose's train() returns None)
    ours.train()
    x = torch.randn(2, 3, 128, 96, generator=torch.Generator().manual_seed(3))
    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    expected, got = reference(x_ref)[0], ours(x_ours)
    assert torch.equal(got, expected), f"{variant}: training-mode output differs"
    upstream = torch.randn(expected.shape, generator=torch.Generator().manual_seed(4))
    (expected * upstream).sum().backward()
    (got * upstream).sum().backward()

    ref_grads = {"input": x_ref.grad, **{n: p.grad for n, p in reference.named_parameters()}}
    our_grads = {"input": x_ours.grad, **{n: p.grad for n, p in ours.named_parameters()}}
    assert ref_grads.keys() == our_grads.keys() and all(g is not None for g in our_grads.values())
    largest = max(g.abs().max().item() for g in ref_grads.values())
    for name, ref_grad in ref_grads.items():
        bound = GRAD_RTOL * ref_grad.abs().max().item() + GRAD_ATOL * largest
        diff = (our_grads[name] - ref_grad).abs().max().item()
        assert diff <= bound, f"{variant}: gradient of {name} differs by {diff:.3g} (bound {bound:.3g})"
    # the fuse rows whose branch-0 path is run twice by mmpose carry real gradient (not just noise)
    doubled = [n for n in ref_grads if ".fuse_layers." in n and ".fuse_layers.0." not in n
               and n.split(".fuse_layers.")[1].split(".")[1] == "0" and n.endswith(".weight")]
    assert doubled and max(ref_grads[n].abs().max().item() for n in doubled) > 1e-3 * largest

    ref_buffers = dict(reference.named_buffers())
    for name, buf in ours.named_buffers():
        if buf.is_floating_point():  # running_mean / running_var
            torch.testing.assert_close(buf, ref_buffers[name], rtol=STATS_RTOL, atol=1e-6,
                                       msg=lambda m, name=name: f"{variant}: {name}: {m}")


def test_bn_statistics_matter(pairs):
    """Guard for the randomisation: resetting one BN's running stats must change the output."""
    reference, ours = pairs("litehrnet_18")
    x = torch.randn(1, 3, 256, 192, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = ours(x)
        bn = ours.stage1[0].layers[0].depthwise_convs[1].bn
        saved = (bn.running_mean.clone(), bn.running_var.clone())
        bn.reset_running_stats()
        after = ours(x)
        bn.running_mean.copy_(saved[0])
        bn.running_var.copy_(saved[1])
    assert (before - after).abs().max() > 1e-3


def test_hrnet_w48_keys_and_shapes_match_reference():
    ref_state = build_reference("hrnet_w48").state_dict()
    ours = build_backbone("hrnet_w48").state_dict()
    assert list(ours) == list(ref_state)
    assert all(ours[k].shape == ref_state[k].shape for k in ours)
