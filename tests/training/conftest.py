"""Fixtures for the training tests: a tiny synthetic COCO-format set."""

from __future__ import annotations

from pathlib import Path

import pytest

from litehrnet.data.synthetic import SyntheticSpec, make_synthetic_coco


@pytest.fixture(scope="session")
def tiny_synthetic(tmp_path_factory) -> Path:
    """12 one-figure training images (12 people: 3 iterations of 4) and 4 validation images."""
    root = tmp_path_factory.mktemp("synthetic_tiny")
    make_synthetic_coco(root, SyntheticSpec(num_train=12, num_val=4, image_hw=(96, 80),
                                            figure_height_px=(56, 88), max_figures=1, seed=11))
    return root
