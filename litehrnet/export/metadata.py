"""ONNX ``metadata_props`` of an exported pose model (the contract the deploy runners read).

Keys (all values are strings): ``variant``, ``input_hw`` ("256,192"), ``norm``
(``prepostprocess.normalize.NORM_MODES``), ``channel_order`` (rgb|bgr), ``num_keypoints``, ``keypoint_names``
(JSON list), ``flip_pairs`` (JSON list of pairs), ``heatmap_stride`` (input pixels per heatmap
pixel, read from the model: "4", "2" with one deconv layer), ``producer`` ("litehrnet-kneron").
The input tensor is ``input`` (1x3xHxW float32, already normalised), the output ``heatmaps``.
:func:`~litehrnet.export.export_onnx` adds ``batch``: "1" (the chip's), "N" or "dynamic" (CPU/GPU).
The deploy runner builds its :class:`~litehrnet.data.codec.HeatmapCodec` from these values.
"""

from __future__ import annotations

import json
from typing import Sequence

from litehrnet.keypoints import get_keypoint_info
from prepostprocess.normalize import CHANNEL_ORDERS, NORM_MODES

PRODUCER = "litehrnet-kneron"
REQUIRED_KEYS = ("variant", "input_hw", "norm", "channel_order", "num_keypoints", "keypoint_names",
                 "flip_pairs", "heatmap_stride", "producer")


def pose_metadata(
    variant: str,
    input_hw: Sequence[int],
    norm: str,
    channel_order: str,
    keypoint_names: Sequence[str],
    flip_pairs: Sequence[Sequence[int]],
    heatmap_stride: int,
) -> dict[str, str]:
    """Build the metadata dict (string values) for :func:`litehrnet.export.export_onnx`.

    ``heatmap_stride``: the exported model's ``heatmap_stride`` (export checks it against the
    output shape)."""
    if norm not in NORM_MODES:
        raise ValueError(f"norm must be one of {NORM_MODES}, got {norm!r}")
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if int(heatmap_stride) != heatmap_stride or heatmap_stride < 1:
        raise ValueError(f"heatmap_stride must be a positive integer, got {heatmap_stride!r}")
    h, w = (int(v) for v in input_hw)
    return {
        "variant": variant,
        "input_hw": f"{h},{w}",
        "norm": norm,
        "channel_order": channel_order,
        "num_keypoints": str(len(keypoint_names)),
        "keypoint_names": json.dumps(list(keypoint_names)),
        "flip_pairs": json.dumps([[int(a), int(b)] for a, b in flip_pairs]),
        "heatmap_stride": str(int(heatmap_stride)),
        "producer": PRODUCER,
    }


def metadata_from_config(cfg: dict, model, input_hw: Sequence[int] | None = None) -> dict[str, str]:
    """Metadata of ``model`` (its ``variant`` and ``heatmap_stride``) trained with the resolved
    config ``cfg`` (``model`` and ``data`` sections)."""
    info = get_keypoint_info(cfg["data"]["keypoint_layout"])
    num_keypoints = cfg["model"]["num_keypoints"]
    if info.num_keypoints != num_keypoints:
        raise ValueError(f"model.num_keypoints={num_keypoints} but layout "
                         f"{cfg['data']['keypoint_layout']!r} has {info.num_keypoints} keypoints")
    return pose_metadata(
        variant=getattr(model, "variant", None) or cfg["model"]["variant"],
        input_hw=input_hw or cfg["model"]["input_hw"],
        norm=cfg["data"]["norm"],
        channel_order=cfg["data"]["channel_order"],
        keypoint_names=info.keypoint_names,
        flip_pairs=info.flip_pairs,
        heatmap_stride=model.heatmap_stride,
    )
