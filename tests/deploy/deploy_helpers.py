"""Shared helpers of the deploy tests (a plain module: test files import it, conftest too)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from litehrnet.export import pose_metadata
from litehrnet.keypoints import COCO_BODY_17

POSE_HW = (128, 96)  # pose input (h, w) of the test models


class PooledGrey(nn.Module):
    """Kneron-normalised images N x 3 x H x W -> N x 17 x H/4 x W/4 heatmaps in [0, 1).

    Pixel value / 256 (undoing ``x/256 - 0.5``), channel mean, 5x5-pooled at stride 4, 17 times.
    """

    def forward(self, images_nchw: torch.Tensor) -> torch.Tensor:
        grey = images_nchw.mean(1, keepdim=True) + 0.5
        return nn.functional.avg_pool2d(grey, 5, stride=4, padding=2).repeat(1, 17, 1, 1)


def pose_metadata_for(variant: str, norm: str = "kneron", channel_order: str = "rgb", input_hw=POSE_HW) -> dict:
    info = COCO_BODY_17
    return pose_metadata(variant, input_hw, norm, channel_order, info.keypoint_names, info.flip_pairs,
                         heatmap_stride=4)


def pose_params(onnx_path: Path, **overrides) -> dict:
    params = dict(onnx_path=str(onnx_path), input_w=POSE_HW[1], input_h=POSE_HW[0], norm="kneron",
                  channel_order="rgb", decode="default", flip_test=False)
    params.update(overrides)
    return params


def affine_params(**overrides) -> dict:
    return dict(dict(input_w=POSE_HW[1], input_h=POSE_HW[0], padding=1.25), **overrides)
