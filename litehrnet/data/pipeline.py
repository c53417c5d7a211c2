"""Assemble the top-down pipeline from a resolved config (``cfg["data"]``, ``cfg["model"]``).

Train (official recipe; probabilities and factors from ``data.aug``)::

    LoadImageFromFile -> [TopDownGetBboxCenterScale] -> TopDownRandomShiftBboxCenter
    -> TopDownRandomFlip -> TopDownHalfBodyTransform -> TopDownGetRandomScaleRotation
    -> TopDownAffine -> ToTensor -> NormalizeTensor -> TopDownGenerateTarget

Val: the same without the random steps. ``TopDownGetBboxCenterScale`` is left out for records
that come with a centre/scale (MPII).
"""

from __future__ import annotations

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

HEATMAP_STRIDE = 4


def heatmap_hw_for(input_hw) -> tuple[int, int]:
    """Heatmap size of a stride-4 network."""
    return int(input_hw[0]) // HEATMAP_STRIDE, int(input_hw[1]) // HEATMAP_STRIDE


def build_topdown_pipeline(cfg: dict, train: bool, has_bbox: bool, info: KeypointInfo) -> Compose:
    """The list of transforms for one split (see module docstring)."""
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
        TopDownGenerateTarget(
            input_hw,
            heatmap_hw_for(input_hw),
            data["sigma"],
            subpixel=data["subpixel_target"],
            use_visibility=data["target_weight_by_visibility"],
        ),
    ]
    return Compose(steps)
