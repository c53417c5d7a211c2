"""Assemble the top-down pipeline from a resolved config (``cfg["data"]``, ``cfg["model"]``).

Train (official recipe; probabilities and factors from ``data.aug``)::

    LoadImageFromFile -> [TopDownGetBboxCenterScale] -> TopDownRandomShiftBboxCenter
    -> TopDownRandomFlip -> TopDownHalfBodyTransform -> TopDownGetRandomScaleRotation
    -> TopDownAffine -> ToTensor -> NormalizeTensor -> TopDownGenerateTarget

Val: the same without the random steps. ``TopDownGetBboxCenterScale`` is left out for records
that come with a centre/scale (MPII). Targets come from the model's :class:`HeatmapCodec`
(:func:`codec_for_model`), the object the decode side uses too.
"""

from __future__ import annotations

import functools
import json

from mmpose_replacement import (
    Compose,
    LoadImageFromFile,
    NormalizeTensor,
    ToTensor,
    TopDownAffine,
    TopDownGenerateTarget,
    TopDownGetBboxCenterScale,
    TopDownGetRandomScaleRotation,
    TopDownHalfBodyTransform,
    TopDownRandomFlip,
    TopDownRandomShiftBboxCenter,
)

from litehrnet.keypoints import KeypointInfo

from .codec import HeatmapCodec


@functools.lru_cache(maxsize=32)
def _config_model_stride(model_section_json: str) -> int:
    import torch

    from litehrnet.models import build_model_from_config

    with torch.device("meta"):  # no weights, no memory, no random draws
        return build_model_from_config({"model": json.loads(model_section_json)}).heatmap_stride


def codec_for_model(cfg: dict, model=None) -> HeatmapCodec:
    """The codec of ``model`` (its ``heatmap_stride``) with the config's input size, sigma and decode.

    Without ``model`` the config's model is built on torch's ``meta`` device only to read its
    stride, so callers holding just a config get the same codec.
    """
    if model is None:
        return HeatmapCodec.from_config(cfg, _config_model_stride(json.dumps(cfg["model"], sort_keys=True)))
    stride = getattr(model, "heatmap_stride", None)
    if stride is None:
        raise ValueError(f"{type(model).__name__} has no heatmap_stride; pose models must say how many input "
                         "pixels one heatmap pixel covers")
    return HeatmapCodec.from_config(cfg, stride)


def build_topdown_pipeline(cfg: dict, train: bool, has_bbox: bool, info: KeypointInfo,
                           codec: HeatmapCodec | None = None) -> Compose:
    """The list of transforms for one split (see module docstring); ``codec`` defaults to
    :func:`codec_for_model` of the config."""
    codec = codec if codec is not None else codec_for_model(cfg)
    if codec.input_hw != tuple(cfg["model"]["input_hw"]):
        raise ValueError(f"codec input {codec.input_hw} differs from model.input_hw {cfg['model']['input_hw']}")
    data, aug = cfg["data"], cfg["data"]["aug"]
    input_hw = tuple(cfg["model"]["input_hw"])
    steps: list = [LoadImageFromFile()]
    if has_bbox:
        steps.append(TopDownGetBboxCenterScale(input_hw, padding=data["bbox_padding"]))
    if train:
        steps += [
            TopDownRandomShiftBboxCenter(aug["shift_factor"], aug["shift_prob"]),
            TopDownRandomFlip(info.flip_pairs, aug["flip_prob"]),
            TopDownHalfBodyTransform(
                info.upper_body_ids, input_hw, aug["half_body_min_joints"], aug["half_body_prob"]
            ),
            TopDownGetRandomScaleRotation(aug["rot_factor"], aug["scale_factor"], aug["rot_prob"]),
        ]
    steps += [
        TopDownAffine(input_hw),
        ToTensor(data["channel_order"]),
        NormalizeTensor(data["norm"]),
        TopDownGenerateTarget(codec),
    ]
    return Compose(steps)
