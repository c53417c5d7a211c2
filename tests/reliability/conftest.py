"""Fixtures of the reliability tests: a tiny synthetic COCO-format set and a config for it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from litehrnet.data.synthetic import SyntheticSpec, make_synthetic_coco, synthetic_data_config

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC_CONFIG = REPO / "configs" / "synthetic" / "litehrnet_18_synthetic_128x96.yaml"


@pytest.fixture(scope="session")
def small_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reliability_set")
    make_synthetic_coco(root, SyntheticSpec(num_train=8, num_val=2, image_hw=(96, 80), figure_height_px=(56, 88),
                                            max_figures=1, seed=3))
    return root


@pytest.fixture
def write_config(tmp_path):
    """``write_config(data_root, **data_overrides) -> config path`` (64x64 input, 2 epochs of 2 iterations)."""

    def write(data_root: Path, epochs: int = 2, **data) -> Path:
        cfg = {"_base_": str(SYNTHETIC_CONFIG), "model": {"input_hw": [64, 64]},
               "data": {**synthetic_data_config(data_root), "workers": 0, **data},
               "train": {"batch_size": 4, "epochs": epochs, "log_interval": 1, "validate_interval": 1000}}
        path = tmp_path / f"cfg_{len(list(tmp_path.glob('cfg_*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    return write
