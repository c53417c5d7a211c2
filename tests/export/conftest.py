"""Fixtures for the export tests: "trained-like" weights for randomly initialised models
(:func:`litehrnet.export.synthetic.synthetic_trained_weights`; why: see that module)."""

from __future__ import annotations

import pytest

from litehrnet.export.synthetic import synthetic_trained_weights


@pytest.fixture(scope="session")
def officialise_fn():
    return synthetic_trained_weights
