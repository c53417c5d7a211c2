"""Pose networks: the variant table and the builders (torch only).

>>> model = build_model("litehrnet_18", num_keypoints=17)
>>> heatmaps_nkhw = model(images_nchw)          # N x 17 x H/4 x W/4

``VARIANTS`` is plain data (see :mod:`litehrnet.models.variants`); the ``arch`` key of a row picks
the backbone builder. ``build_model_from_config(cfg)`` reads the ``model`` section of a resolved
config (:func:`litehrnet.config.load_config`).
"""

from __future__ import annotations

from torch import nn

from .heads import HEAD_DEFAULTS, TopDownSimpleHead
from .hrnet import build_hrnet
from .layers import init_weights_like_mmpose
from .litehrnet import build_litehrnet
from .litehrnet_npu import build_litehrnet_npu
from .pose_model import PoseModel
from .variants import VARIANTS

BACKBONE_BUILDERS = {"litehrnet": build_litehrnet, "litehrnet_npu": build_litehrnet_npu, "hrnet": build_hrnet}


def get_variant(variant: str) -> dict:
    """Return the table row of ``variant``; unknown names raise ``KeyError`` listing the valid ones."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown model variant {variant!r}; valid: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[variant]


def build_backbone(variant: str) -> nn.Module:
    """Backbone of ``variant`` with mmpose's initialisation; ``forward`` returns the stride-4 map."""
    row = get_variant(variant)
    backbone = BACKBONE_BUILDERS[row["arch"]](row)
    init_weights_like_mmpose(backbone)
    return backbone


def build_model(variant: str, num_keypoints: int = 17, head: dict | None = None) -> PoseModel:
    """Backbone of ``variant`` + top-down heatmap head for ``num_keypoints`` keypoints.

    ``head`` overrides :data:`HEAD_DEFAULTS` (``num_deconv_layers``, ``num_deconv_filters``,
    ``num_deconv_kernels``, ``final_conv_kernel``); the head's input channels always come from the
    backbone (30 for naive_litehrnet_18, 40 for the other Lite-HRNets, 32/48 for HRNet-W32/W48).
    """
    row = get_variant(variant)
    head_cfg = dict(HEAD_DEFAULTS)
    for key, value in (head or {}).items():
        if key not in HEAD_DEFAULTS:
            raise KeyError(f"unknown head option {key!r}; valid: {', '.join(sorted(HEAD_DEFAULTS))}")
        head_cfg[key] = value
    backbone = build_backbone(variant)
    keypoint_head = TopDownSimpleHead(backbone.out_channels, num_keypoints, **head_cfg)
    keypoint_head.init_weights()
    return PoseModel(backbone, keypoint_head, variant, row.get("default_input_hw", (256, 192)))


def build_model_from_config(cfg: dict) -> PoseModel:
    """Build from the ``model`` section of a resolved config (``variant``, ``num_keypoints``, ``head``)."""
    model_cfg = cfg["model"]
    model = build_model(model_cfg["variant"], model_cfg["num_keypoints"], model_cfg.get("head"))
    if "input_hw" in model_cfg:
        model.default_input_hw = tuple(model_cfg["input_hw"])
    return model


__all__ = [
    "VARIANTS", "PoseModel", "TopDownSimpleHead", "build_backbone", "build_model",
    "build_model_from_config", "get_variant",
]
