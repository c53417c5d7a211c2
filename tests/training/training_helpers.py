"""Helpers shared by the training tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

from pathlib import Path

import yaml

from litehrnet.data.synthetic import synthetic_data_config

REPO = Path(__file__).resolve().parents[2]
SYNTHETIC_CONFIG = REPO / "configs" / "synthetic" / "litehrnet_18_synthetic_128x96.yaml"
NO_AUG = {"flip_prob": 0.0, "half_body_prob": 0.0, "rot_prob": 0.0, "scale_factor": 0.0}


def write_config(path: Path, data_root: Path, **sections) -> Path:
    """A config file inheriting the synthetic config, at a 64x64 input, with ``sections`` merged."""
    cfg = {"_base_": str(SYNTHETIC_CONFIG), "model": {"input_hw": [64, 64]},
           "data": {**synthetic_data_config(data_root), "workers": 0},
           "train": {"batch_size": 4, "epochs": 2, "log_interval": 1, "validate_interval": 100}}
    for name, values in sections.items():
        cfg.setdefault(name, {})
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(cfg[name].get(key), dict):
                cfg[name][key] = {**cfg[name][key], **value}
            else:
                cfg[name][key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path
