"""Static pools: adaptive average pooling as fixed-size AveragePool ops an NPU can run.

Kneron's NPUs accept AveragePool only as kernel = stride in {2, 4, 8} without padding
(``count_include_pad=0``, ``ceil_mode=0``) and GlobalAveragePool only over small maps (KL520:
H*W <= 256); see :mod:`litehrnet.kneron.operators`. At a fixed input size the official
``adaptive_avg_pool2d`` calls become exactly such ops:

- :func:`static_avg_pool`: ``adaptive_avg_pool2d(x, size)`` as AvgPool kernel = stride (exact when
  the sizes divide);
- :func:`cascade_global_pool`: a global mean as AvgPool(k, k) steps of 8/4/2 until H*W <= 256,
  then a GlobalAveragePool.

Every pool here is exported with ``count_include_pad=0`` (there is no padding, so it is exact).
Both are listed in ``litehrnet.models.litehrnet.POOLS`` (``static`` / ``cascade``) for
official-layout rows, and used by the NPU variants and the exact rewrite.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

GLOBAL_POOL_MAX_HW = 256          # KL520 GlobalAveragePool limit (Kneron operator table)
POOL_KERNELS = (8, 4, 2)          # AveragePool kernel = stride allowed on the NPU


class StaticPoolError(ValueError):
    """No exact kernel = stride pooling exists for the requested sizes."""


def pool_ratio(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> tuple[int, int]:
    """Kernel = stride that maps ``in_hw`` exactly onto ``out_hw`` (error if not a whole ratio)."""
    (h, w), (oh, ow) = in_hw, out_hw
    if h % oh or w % ow:
        raise StaticPoolError(f"cannot pool {h}x{w} to {oh}x{ow} with kernel = stride: sizes are not "
                              f"whole multiples; use an input size divisible by 32")
    return h // oh, w // ow


def cascade_plan(in_hw: tuple[int, int], max_hw: int = GLOBAL_POOL_MAX_HW) -> list[int]:
    """AvgPool kernels (= strides, each in {8, 4, 2}) that shrink ``in_hw`` to H*W <= ``max_hw``.

    Every step averages equal, non-overlapping windows, so the final global mean equals the mean
    over ``in_hw``. Raises :class:`StaticPoolError` when no such cascade exists.
    """
    h, w = in_hw
    plan: list[int] = []
    while h * w > max_hw:
        k = next((k for k in POOL_KERNELS if h % k == 0 and w % k == 0), None)
        if k is None:
            raise StaticPoolError(
                f"global pooling over {in_hw[0]}x{in_hw[1]} cannot be cut to H*W <= {max_hw} with "
                f"AvgPool kernel = stride in {{2, 4, 8}} (stuck at {h}x{w}); choose an input size whose "
                f"1/32 map has H*W <= {max_hw} or dims divisible by 2")
        plan.append(k)
        h, w = h // k, w // k
    return plan


def avg_pool_exact(x_nchw: Tensor, kernel) -> Tensor:
    """AvgPool kernel = stride, no padding, exported with ``count_include_pad=0, ceil_mode=0``."""
    return F.avg_pool2d(x_nchw, kernel, kernel, ceil_mode=False, count_include_pad=False)


def static_avg_pool(x_nchw: Tensor, size_hw: tuple[int, int]) -> Tensor:
    """``adaptive_avg_pool2d`` as AvgPool kernel = stride (exact when the sizes divide)."""
    size_hw = tuple(int(s) for s in size_hw)
    if size_hw == (1, 1):
        return cascade_global_pool(x_nchw, size_hw)
    k = pool_ratio(tuple(int(s) for s in x_nchw.shape[-2:]), size_hw)
    return x_nchw if k == (1, 1) else avg_pool_exact(x_nchw, k)


def cascade_global_pool(x_nchw: Tensor, size_hw: tuple[int, int] = (1, 1)) -> Tensor:
    """Global average pool as AvgPool(k, k) steps then a GlobalAveragePool over <= 256 elements."""
    if tuple(int(s) for s in size_hw) != (1, 1):
        return static_avg_pool(x_nchw, size_hw)
    for k in cascade_plan(tuple(int(s) for s in x_nchw.shape[-2:])):
        x_nchw = avg_pool_exact(x_nchw, k)
    return F.adaptive_avg_pool2d(x_nchw, 1)
