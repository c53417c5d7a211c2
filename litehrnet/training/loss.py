"""Joints MSE loss with per-keypoint target weights (the official top-down heatmap loss)."""

from __future__ import annotations

import torch
from torch import nn


class JointsMSELoss(nn.Module):
    """Mean squared error between predicted and target heatmaps, weighted per keypoint.

    ``loss = mean_k( 0.5 * mean_{n,h,w}( (w_nk * (pred_nkhw - target_nkhw))^2 ) )`` when
    ``use_target_weight``; the 0.5 factor and the weighting inside the square follow the
    reference recipe, so loss values are comparable with published training logs.
    """

    def __init__(self, use_target_weight: bool = True, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.use_target_weight = use_target_weight
        self.loss_weight = loss_weight

    def forward(self, heatmaps_nkhw: torch.Tensor, target_nkhw: torch.Tensor,
                target_weight_nk1: torch.Tensor | None = None) -> torch.Tensor:
        if heatmaps_nkhw.shape != target_nkhw.shape:
            raise ValueError(f"heatmaps {tuple(heatmaps_nkhw.shape)} and targets {tuple(target_nkhw.shape)} differ")
        pred = heatmaps_nkhw.float().flatten(2)          # n, k, h*w
        target = target_nkhw.float().flatten(2)
        if self.use_target_weight:
            if target_weight_nk1 is None:
                raise ValueError("use_target_weight=True needs target_weight (N x K x 1)")
            weight = target_weight_nk1.float().reshape(pred.shape[0], pred.shape[1], 1)
            pred, target = pred * weight, target * weight
        per_joint = 0.5 * ((pred - target) ** 2).mean(dim=(0, 2))
        return per_joint.mean() * self.loss_weight
