"""The model zoo as data: one row per variant.

Common keys: ``arch`` (``litehrnet`` | ``hrnet``: which builder reads the row),
``default_input_hw``, and ``published`` (figures from the papers, used by tests and docs:
``params_m`` with the 17-keypoint head, ``mflops`` per input size, ``coco_ap``).

Lite-HRNet rows: ``stem`` (stem channels, stem output channels, expand ratio), per stage
``num_modules``, ``num_blocks``, ``block`` (``LITE`` | ``NAIVE``), ``reduce_ratios``,
``num_channels`` (branches per stage = len), ``with_fuse``, ``with_head`` (IterativeHead), and the
swappable ops ``channel_shuffle`` (key of ``litehrnet.SHUFFLES``), ``cross_res_pool`` and
``spatial_pool`` (keys of ``litehrnet.POOLS``).

HRNet rows: ``stages``, a list of 4 dicts (``num_modules``, ``block``, ``num_blocks``,
``num_channels``).

NPU rows (``arch: litehrnet_npu``, built by :mod:`litehrnet.models.litehrnet_npu`): an official
Lite-HRNet row without the swappable parts (the NPU block has no shuffle or adaptive pool), with
``npu_of`` naming the official row and no published figures (they must be trained).
"""

from __future__ import annotations

import copy

_LITE_COMMON = {
    "arch": "litehrnet",
    "stem": (32, 32, 1),
    "num_blocks": (2, 2, 2),
    "reduce_ratios": (8, 8, 8),
    "with_fuse": True,
    "with_head": True,
    "channel_shuffle": "reshape",
    "cross_res_pool": "adaptive",
    "spatial_pool": "adaptive",
    "default_input_hw": (256, 192),
}


def _lite(num_modules, widths, block, published) -> dict:
    row = copy.deepcopy(_LITE_COMMON)
    row.update(
        num_modules=num_modules,
        block=(block,) * 3,
        num_channels=(tuple(widths[:2]), tuple(widths[:3]), tuple(widths[:4])),
        published=published,
    )
    return row


def _hrnet(width: int, published: dict) -> dict:
    w = width
    return {
        "arch": "hrnet",
        "stages": [
            {"num_modules": 1, "block": "BOTTLENECK", "num_blocks": (4,), "num_channels": (64,)},
            {"num_modules": 1, "block": "BASIC", "num_blocks": (4, 4), "num_channels": (w, 2 * w)},
            {"num_modules": 4, "block": "BASIC", "num_blocks": (4, 4, 4), "num_channels": (w, 2 * w, 4 * w)},
            {"num_modules": 3, "block": "BASIC", "num_blocks": (4, 4, 4, 4),
             "num_channels": (w, 2 * w, 4 * w, 8 * w)},
        ],
        "default_input_hw": (256, 192),
        "published": published,
    }


VARIANTS: dict[str, dict] = {
    "litehrnet_18": _lite((2, 4, 2), (40, 80, 160, 320), "LITE", {
        "params_m": 1.1, "mflops": {"256x192": 205.2, "384x288": 461.6},
        "coco_ap": {"256x192": 64.8, "384x288": 67.6}, "mpii_pckh": 85.4}),
    "litehrnet_30": _lite((3, 8, 3), (40, 80, 160, 320), "LITE", {
        "params_m": 1.8, "mflops": {"256x192": 319.2, "384x288": 717.8},
        "coco_ap": {"256x192": 67.2, "384x288": 70.4}, "mpii_pckh": 87.0}),
    "naive_litehrnet_18": _lite((2, 4, 2), (30, 60, 120, 240), "NAIVE", {
        "params_m": 0.7, "mflops": {"256x192": 194.8}, "coco_ap": {"256x192": 62.8}, "mpii_pckh": 85.3}),
    "wider_naive_litehrnet_18": _lite((2, 4, 2), (40, 80, 160, 320), "NAIVE", {
        "params_m": 1.3, "mflops": {"256x192": 311.1}, "coco_ap": {"256x192": 66.0}, "mpii_pckh": 86.8}),
    "hrnet_w32": _hrnet(32, {
        "params_m": 28.5, "mflops": {"256x192": 7100.0, "384x288": 16000.0},
        "coco_ap": {"256x192": 74.4, "384x288": 75.8}}),
    "hrnet_w48": _hrnet(48, {
        "params_m": 63.6, "mflops": {"256x192": 14600.0, "384x288": 32900.0},
        "coco_ap": {"256x192": 75.1, "384x288": 76.3}}),
}


def _npu(official: str) -> dict:
    row = copy.deepcopy(VARIANTS[official])
    for key in ("channel_shuffle", "cross_res_pool", "spatial_pool", "block"):
        del row[key]
    row.update(arch="litehrnet_npu", npu_of=official, published={})
    return row


VARIANTS["litehrnet_18_npu"] = _npu("litehrnet_18")
VARIANTS["litehrnet_30_npu"] = _npu("litehrnet_30")
