"""Optimiser and learning-rate schedule built from the ``train`` section of a config.

The schedule is a pure function of (iteration, epoch): linear warm-up over the first
``warmup_iters`` iterations from ``warmup_ratio * lr`` to ``lr``, times ``gamma`` for each entry
of ``steps`` (epochs) already reached. Being stateless, it resumes exactly from the two counters
saved in a checkpoint.
"""

from __future__ import annotations

from bisect import bisect_right

import torch


def scaled_lr(cfg_train: dict, total_batch: int, autoscale: bool) -> float:
    """Base lr, scaled linearly by ``total_batch / autoscale_base_batch`` when ``autoscale``."""
    lr = float(cfg_train["optimizer"]["lr"])
    if autoscale:
        lr *= total_batch / float(cfg_train["autoscale_base_batch"])
    return lr


def build_optimizer(params, cfg_train: dict, lr: float) -> torch.optim.Optimizer:
    """Adam (official), AdamW or SGD over ``params`` with the config's weight decay / momentum.

    Adam and AdamW use PyTorch's fused kernel (one pass over all parameters instead of a Python
    loop of small ops; the same update up to float rounding), on CPU and CUDA alike.
    """
    opt = cfg_train["optimizer"]
    kind = str(opt["type"]).lower()
    wd = float(opt["weight_decay"])
    if kind == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd, fused=True)
    if kind == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, fused=True)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(opt["momentum"]), weight_decay=wd)
    raise ValueError(f"train.optimizer.type '{opt['type']}' is not one of: adam, adamw, sgd")


class WarmupStepSchedule:
    """lr(iter, epoch) = base_lr * warmup(iter) * gamma ** (number of steps <= epoch)."""

    def __init__(self, base_lr: float, warmup_iters: int, warmup_ratio: float, steps: list[int], gamma: float):
        self.base_lr = base_lr
        self.warmup_iters = int(warmup_iters)
        self.warmup_ratio = float(warmup_ratio)
        self.steps = sorted(int(s) for s in steps)
        self.gamma = float(gamma)

    @classmethod
    def from_config(cls, cfg_train: dict, base_lr: float) -> "WarmupStepSchedule":
        s = cfg_train["lr_schedule"]
        return cls(base_lr, s["warmup_iters"], s["warmup_ratio"], s["steps"], s["gamma"])

    def lr(self, global_iter: int, epoch: int) -> float:
        """``global_iter`` counts from 0 over the whole run; ``epoch`` counts from 0."""
        decayed = self.base_lr * self.gamma ** bisect_right(self.steps, epoch)
        if global_iter >= self.warmup_iters:
            return decayed
        k = (1.0 - global_iter / self.warmup_iters) * (1.0 - self.warmup_ratio)
        return decayed * (1.0 - k)

    def apply(self, optimizer: torch.optim.Optimizer, global_iter: int, epoch: int) -> float:
        lr = self.lr(global_iter, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
