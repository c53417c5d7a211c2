"""Our backbones against mmpose 1.3.2's own implementation: identical state-dict keys (strict
load of the reference's weights) and identical outputs in eval mode."""

from __future__ import annotations

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
