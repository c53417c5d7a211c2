"""Lite-HRNet for Kneron NPUs, trainable: ``litehrnet_18_npu`` / ``litehrnet_30_npu``.

Rows with ``arch: litehrnet_npu`` in :data:`litehrnet.models.variants.VARIANTS`. Official
stem/transitions/fuse/head with the LITE block replaced by :class:`NpuChannelWeighting` (no split,
no shuffle, global-mean weighting, residual) and a plain fuse sum; the pools are the static pools
of :mod:`litehrnet.models.static_pools`. The result has no rank-5 tensor, no Transpose/Reshape and
only NPU-sized pools. New parameters: these networks must be trained. Design: docs/export.md.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import litehrnet as lite
from .layers import conv_bn_act
from .separable_resize import make_upsampling_separable, resize_bilinear
from .static_pools import cascade_global_pool, static_avg_pool


class NpuChannelWeighting(nn.Module):
    """The NPU block: conditional channel weighting over *all* channels, with a residual.

    Per branch ``i`` (``x_i`` of C_i channels)::

        m_i   = GAP(AvgPool(k = stride = size ratio)(x_i))        # global mean via the smallest size
        h     = ReLU(conv1x1(concat_i m_i))                        # cross-resolution context
        w_i   = sigmoid(conv1x1_i(h) + conv(ReLU(conv(m_i))))      # cross-resolution + spatial logits
        out_i = x_i + BN(dw3x3_i(x_i * w_i))                       # w_i is 1x1: a broadcast Mul

    Versus the official LITE block: no split/concat/shuffle (every channel is weighted and
    convolved; the residual keeps the identity path the untouched half gave); both weightings use
    the branch's global mean, computed as an AvgPool to the smallest branch's size (kernel 2/4/8)
    plus a GlobalAveragePool over <= 256 elements, so their two sigmoids merge into one and no
    Resize is needed; the 1x1 convs on pooled vectors carry biases instead of BatchNorm (BN over
    1x1 maps normalises over the batch alone).
    """

    def __init__(self, channels: list[int], reduce_ratio: int) -> None:
        super().__init__()
        total = sum(channels)
        hidden = max(1, total // (2 * reduce_ratio))   # the official block's hidden widths:
        self.crw_conv1 = conv_bn_act(total, hidden, 1, norm=False, act="relu")   # (C/2) / ratio
        self.crw_conv2 = nn.ModuleList(conv_bn_act(hidden, c, 1, norm=False, act=None) for c in channels)
        self.sw = nn.ModuleList(nn.Sequential(
            conv_bn_act(c, max(1, c // 8), 1, norm=False, act="relu"),           # (C/2) / 4
            conv_bn_act(max(1, c // 8), c, 1, norm=False, act=None)) for c in channels)
        self.depthwise_convs = nn.ModuleList(conv_bn_act(c, c, 3, groups=c, act=None) for c in channels)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        small_hw = tuple(int(s) for s in xs[-1].shape[-2:])
        means = [cascade_global_pool(static_avg_pool(x, small_hw)) for x in xs]
        hidden = self.crw_conv1(torch.cat(means, dim=1))
        outs = []
        for x, m, crw2, sw, dw in zip(xs, means, self.crw_conv2, self.sw, self.depthwise_convs):
            w = torch.sigmoid(crw2(hidden) + sw(m))
            outs.append(x + dw(x * w))
        return outs


class NpuHRModule(lite.LiteHRModule):
    """``num_blocks`` :class:`NpuChannelWeighting` blocks, then the fuse layers with a plain sum.

    The official in-place double add of branch 0 is needed only to reproduce official weights;
    a network trained from scratch uses the clean HRNet sum ``relu(sum_j f_ij(x_j))``, which also
    keeps branch 0 from doubling in magnitude at every module.
    """

    def __init__(self, channels: list[int], num_blocks: int, reduce_ratio: int, with_fuse: bool = True) -> None:
        nn.Module.__init__(self)
        self.block = "LITE"            # LiteHRModule.forward runs self.layers over the branch list
        self.num_branches = len(channels)
        self.in_channels = list(channels)
        self.layers = nn.Sequential(*[NpuChannelWeighting(channels, reduce_ratio) for _ in range(num_blocks)])
        self.with_fuse = with_fuse and self.num_branches > 1
        self.multiscale_output = True
        if self.with_fuse:
            self.fuse_layers = make_upsampling_separable(lite.make_fuse_layers(channels, self.num_branches))
            self.relu = nn.ReLU()

    def _fuse(self, out: list[Tensor]) -> list[Tensor]:
        fused = []
        for i, row in enumerate(self.fuse_layers):
            acc = out[i]
            for j in range(self.num_branches):
                if j != i:
                    acc = acc + row[j](out[j])
            fused.append(self.relu(acc))
        return fused


class SeparableIterativeHead(lite.IterativeHead):
    """The official head with its bilinear upsampling as a row resize then a column resize."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__(channels)
        self.separable_upsampling = True

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        outs: list[Tensor] = []
        prev: Tensor | None = None
        for x, project in zip(xs[::-1], self.projects):
            if prev is not None:
                x = x + resize_bilinear(prev, tuple(x.shape[-2:]), True, self.separable_upsampling)
            prev = project(x)
            outs.append(prev)
        return outs[::-1]


class LiteHRNetNpu(lite.LiteHRNet):
    """Lite-HRNet with NPU blocks; stem without shuffle; same transitions, fuse and head."""

    def __init__(self, row: dict, in_channels: int = 3) -> None:
        nn.Module.__init__(self)
        stem_channels, stem_out, expand_ratio = row["stem"]
        self.stem = lite.Stem(in_channels, stem_channels, stem_out, expand_ratio, lite.NoShuffle)
        self.num_stages = len(row["num_modules"])
        channels_last = [stem_out]
        for s in range(self.num_stages):
            channels = list(row["num_channels"][s])
            setattr(self, f"transition{s}", lite.make_transition(channels_last, channels))
            modules = [NpuHRModule(channels, row["num_blocks"][s], row["reduce_ratios"][s], row.get("with_fuse", True))
                       for _ in range(row["num_modules"][s])]
            setattr(self, f"stage{s}", nn.Sequential(*modules))
            channels_last = channels
        self.with_head = True
        self.head_layer = SeparableIterativeHead(channels_last)
        self.out_channels = channels_last[0]


def build_litehrnet_npu(row: dict) -> LiteHRNetNpu:
    """Builder for rows with ``arch: litehrnet_npu``."""
    return LiteHRNetNpu(row)
