"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
from torch import nn

from tests.models.mmpose_reference import build_reference, randomise


@pytest.fixture(scope="session")
def reference_backbones():
    """Cache: variant -> randomised mmpose reference backbone (built on first use)."""
    cache: dict[str, nn.Module] = {}

    def get(variant: str) -> nn.Module:
        if variant not in cache:
            cache[variant] = randomise(build_reference(variant))
        return cache[variant]

    return get
