"""Every shipped config loads (strict keys) and builds its model; names follow
``configs/<dataset>/<variant>_<dataset>_<H>x<W>.yaml``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from litehrnet.config import load_config
from litehrnet.keypoints import get_keypoint_info
from litehrnet.models import VARIANTS, build_model_from_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if "_base_" not in p.parts)
NAMED = [p for p in CONFIGS if p.parent.name in ("coco", "mpii")]
NAME_RE = re.compile(r"(?P<variant>\w+)_(?P<dataset>coco|mpii)_(?P<h>\d+)x(?P<w>\d+)\.yaml")
_built: dict = {}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_config_loads_and_builds(path):
    cfg = load_config(path)
    key = (cfg["model"]["variant"], cfg["model"]["num_keypoints"], str(cfg["model"]["head"]))
    if key not in _built:  # same architecture in several configs: build once
        _built[key] = build_model_from_config(cfg)
    model = _built[key]
    assert model.variant == cfg["model"]["variant"]
    assert model.num_keypoints == cfg["model"]["num_keypoints"]
    assert get_keypoint_info(cfg["data"]["keypoint_layout"]).num_keypoints == cfg["model"]["num_keypoints"]


@pytest.mark.parametrize("path", NAMED, ids=lambda p: p.name)
def test_name_matches_content(path):
    m = NAME_RE.fullmatch(path.name)
    assert m, f"{path.name} does not follow <variant>_<dataset>_<H>x<W>.yaml"
    cfg = load_config(path)
    assert cfg["model"]["variant"] == m["variant"]
    assert cfg["data"]["dataset"] == m["dataset"] == path.parent.name
    assert cfg["model"]["input_hw"] == [int(m["h"]), int(m["w"])]
    # recipe facts: sigma 3 and batch 32 at 384x288, sigma 2 otherwise
    large = cfg["model"]["input_hw"] == [384, 288]
    assert cfg["data"]["sigma"] == (3.0 if large else 2.0)
    assert cfg["train"]["batch_size"] == (32 if large else 64)


def test_every_variant_has_all_configs():
    names = {p.name for p in NAMED}
    for variant, row in VARIANTS.items():
        if not row.get("published", {}).get("params_m"):
            continue  # extension rows (e.g. *_npu) bring their own configs
        for expected in (f"{variant}_coco_256x192.yaml", f"{variant}_coco_384x288.yaml", f"{variant}_mpii_256x256.yaml"):
            assert expected in names
