"""Lite-HRNet backbone (Yu et al., CVPR 2021), parameter-compatible with mmpose 0.x / 1.x.

Order: swappable ops (channel shuffle, pooling) -> blocks (stem, LITE / NAIVE blocks) ->
multi-branch module with fuse layers -> backbone -> builder from a variant-table row.

Two operations are looked up by name from the variant row so that NPU-friendly replacements
(:mod:`litehrnet.models.static_pools`) can be dropped in without touching this file:

- ``row["channel_shuffle"]`` -> :data:`SHUFFLES` (factory ``(channels, groups) -> nn.Module``);
- ``row["cross_res_pool"]`` / ``row["spatial_pool"]`` -> :data:`POOLS`
  (function ``(x_nchw, size_hw) -> pooled``), used by cross-resolution weighting (pool to the
  smallest branch's size) and by spatial weighting (pool to 1x1).

None of these hold parameters, so replacing them never changes state-dict keys.

The fuse layers compute the official "double add" of branch 0 once and double it: the same
function, forward and backward, with fewer convolutions (see :class:`LiteHRModule`). Nearest
upsampling (:func:`litehrnet.models.layers.upsample_nearest_exact`) and the cross-resolution
pooling (:func:`adaptive_avg_pool`) run as faster ops that give the same bits; the ONNX export
keeps the official ops.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import layers
from .layers import conv_bn_act, upsample_nearest_exact
from .static_pools import cascade_global_pool, static_avg_pool

PoolFn = Callable[[Tensor, tuple[int, int]], Tensor]


# ----------------------------------------------------------------------------------------------
# Swappable parameter-free ops
# ----------------------------------------------------------------------------------------------
def channel_shuffle(x_nchw: Tensor, groups: int) -> Tensor:
    """ShuffleNet channel shuffle: view channels as (groups, C/groups), transpose, flatten.

    Output channel ``k * groups + g`` is input channel ``g * (C / groups) + k``. The reshape goes
    through a 5-D tensor, which Kneron's NPUs cannot run (see SPEC 3).
    """
    n, c, h, w = x_nchw.shape
    x = x_nchw.reshape(n, groups, c // groups, h, w).transpose(1, 2)
    return x.reshape(n, c, h, w)


class ChannelShuffle(nn.Module):
    """Module form of :func:`channel_shuffle` (no parameters)."""

    def __init__(self, channels: int, groups: int = 2) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"channel shuffle: {channels} channels not divisible by {groups} groups")
        self.groups = groups

    def forward(self, x_nchw: Tensor) -> Tensor:
        return channel_shuffle(x_nchw, self.groups)


def _contiguous_halves(x_nchw: Tensor) -> tuple[Tensor, Tensor]:
    """``x.chunk(2, dim=1)`` as two contiguous tensors, for halves that go into convolutions.

    A channel half of a batch is a strided view; a convolution copies it to a contiguous tensor
    but saves the strided view for backward, where it copies it again. Copying once here lets the
    convolution save (and reuse) the copy: the same values, one copy fewer per half.
    """
    a, b = x_nchw.chunk(2, dim=1)
    return a.contiguous(), b.contiguous()


def concat_shuffle(shuffle: nn.Module, a_nchw: Tensor, b_nchw: Tensor) -> Tensor:
    """``shuffle(torch.cat((a, b), dim=1))``, the concat + shuffle that ends every shuffle unit.

    For the official 2-group shuffle of two equal halves the result interleaves the halves'
    channels (``a0, b0, a1, b1, ...``), which ``torch.stack((a, b), dim=2)`` builds in one copy
    instead of three (cat, transpose copy, and the same again in backward): the same values,
    ~4% of a training step. ONNX export keeps the plain concat + reshape/transpose graph.
    """
    if (not torch.onnx.is_in_onnx_export() and isinstance(shuffle, ChannelShuffle) and shuffle.groups == 2
            and a_nchw.shape == b_nchw.shape):
        return torch.stack((a_nchw, b_nchw), dim=2).flatten(1, 2)
    return shuffle(torch.cat((a_nchw, b_nchw), dim=1))


class NoShuffle(nn.Module):
    """Identity in place of the shuffle (for retrained NPU variants)."""

    def __init__(self, channels: int, groups: int = 2) -> None:
        super().__init__()

    def forward(self, x_nchw: Tensor) -> Tensor:
        return x_nchw


def adaptive_avg_pool(x_nchw: Tensor, size_hw: tuple[int, int]) -> Tensor:
    """The official pooling: ``adaptive_avg_pool2d`` to ``size_hw``.

    Where the sizes differ by power-of-two factors (every cross-resolution pool of Lite-HRNet) it
    runs as ``avg_pool2d`` with kernel = stride: the same windows summed in the same order, and
    dividing by ``kh * kw`` once equals dividing by ``kh`` then ``kw`` (exact for powers of two),
    so the same bits forward and backward, 1.1-1.6x faster on CPU (forward + backward). The ONNX
    export and other sizes (global pooling included) keep ``adaptive_avg_pool2d``.
    """
    h, w = int(x_nchw.shape[-2]), int(x_nchw.shape[-1])
    oh, ow = int(size_hw[0]), int(size_hw[1])
    kh, kw = h // oh, w // ow
    if ((oh, ow) != (1, 1) and kh * kw > 1 and h == kh * oh and w == kw * ow and kh & (kh - 1) == 0
            and kw & (kw - 1) == 0 and not torch.onnx.is_in_onnx_export() and not torch.jit.is_scripting()
            and not torch.jit.is_tracing()):
        return F.avg_pool2d(x_nchw, (kh, kw))
    return F.adaptive_avg_pool2d(x_nchw, size_hw)


SHUFFLES: dict[str, Callable[[int, int], nn.Module]] = {"reshape": ChannelShuffle, "none": NoShuffle}
POOLS: dict[str, PoolFn] = {"adaptive": adaptive_avg_pool, "static": static_avg_pool, "cascade": cascade_global_pool}


def _lookup(table: dict, name: str, what: str):
    if name not in table:
        raise KeyError(f"unknown {what} {name!r}; known: {', '.join(sorted(table))}")
    return table[name]


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------
def dw_pw(in_channels: int, out_channels: int, stride: int, relu: bool) -> nn.Sequential:
    """Depthwise 3x3 + BN + pointwise 1x1 + BN [+ ReLU], flat ``Sequential`` (indices 0..4):
    the transition / fuse-downsample layout of Lite-HRNet."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, in_channels, 3, stride=stride, padding=1, groups=in_channels, bias=False),
        nn.BatchNorm2d(in_channels),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))  # on the BN output, which backward does not need
    return nn.Sequential(*layers)


class Stem(nn.Module):
    """3x3 s2 conv, then a ShuffleNet-style stride-2 unit: overall stride 4."""

    def __init__(self, in_channels: int, stem_channels: int, out_channels: int, expand_ratio: float,
                 shuffle: Callable[[int, int], nn.Module]) -> None:
        super().__init__()
        half = stem_channels // 2
        mid = int(round(stem_channels * expand_ratio))
        same = stem_channels == out_channels
        self.out_channels = out_channels
        self.conv1 = conv_bn_act(in_channels, stem_channels, 3, stride=2)
        self.branch1 = nn.Sequential(
            conv_bn_act(half, half, 3, stride=2, groups=half, act=None),
            conv_bn_act(half, out_channels - (half if same else stem_channels), 1),
        )
        self.expand_conv = conv_bn_act(half, mid, 1)
        self.depthwise_conv = conv_bn_act(mid, mid, 3, stride=2, groups=mid, act=None)
        self.linear_conv = conv_bn_act(mid, half if same else stem_channels, 1)
        self.shuffle = shuffle(out_channels, 2)

    def forward(self, x_nchw: Tensor) -> Tensor:
        x = self.conv1(x_nchw)
        x1, x2 = _contiguous_halves(x)
        x2 = self.linear_conv(self.depthwise_conv(self.expand_conv(x2)))
        return concat_shuffle(self.shuffle, self.branch1(x1), x2)


class SpatialWeighting(nn.Module):
    """Squeeze-excite on one branch: pool to 1x1 -> 1x1 conv + ReLU -> 1x1 conv + Sigmoid -> scale."""

    def __init__(self, channels: int, pool: PoolFn, ratio: int = 4) -> None:
        super().__init__()
        hidden = int(channels / ratio)
        self.pool = pool
        self.conv1 = conv_bn_act(channels, hidden, 1, norm=False, act="relu")
        self.conv2 = conv_bn_act(hidden, channels, 1, norm=False, act="sigmoid")

    def forward(self, x_nchw: Tensor) -> Tensor:
        return x_nchw * self.conv2(self.conv1(self.pool(x_nchw, (1, 1))))


class CrossResolutionWeighting(nn.Module):
    """Channel weights computed from all branches at the smallest branch's resolution."""

    def __init__(self, channels: list[int], ratio: int, pool: PoolFn) -> None:
        super().__init__()
        total = sum(channels)
        self.channels = list(channels)
        self.pool = pool
        self.conv1 = conv_bn_act(total, int(total / ratio), 1, act="relu")
        self.conv2 = conv_bn_act(int(total / ratio), total, 1, act="sigmoid")

    def pool_to_smallest(self, xs: list[Tensor]) -> list[Tensor]:
        """Average-pool every branch but the last to the last (smallest) branch's size."""
        size_hw = tuple(xs[-1].shape[-2:])
        return [self.pool(x, size_hw) for x in xs[:-1]] + [xs[-1]]

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        # the inputs are channel halves (strided views); pooling copies a strided input to a
        # contiguous one anyway, so copy once here and let the products below read (and save for
        # backward) the copy: the same values
        xs = [x.contiguous() for x in xs[:-1]] + [xs[-1]]
        weights = self.conv2(self.conv1(torch.cat(self.pool_to_smallest(xs), dim=1)))
        weights = torch.split(weights, self.channels, dim=1)
        exporting = torch.onnx.is_in_onnx_export()  # the export keeps the official graph
        return [x * (w if not exporting and w.shape[-2:] == x.shape[-2:]  # same size: resize is the identity
                     else upsample_nearest_exact(w, x.shape[-2:]))
                for x, w in zip(xs, weights)]


class ConditionalChannelWeighting(nn.Module):
    """The LITE block: on every branch, half the channels pass; the other half is reweighted
    across resolutions, depthwise-convolved, spatially reweighted; concat + shuffle."""

    def __init__(self, channels: list[int], reduce_ratio: int, row: dict) -> None:
        super().__init__()
        halves = [c // 2 for c in channels]
        shuffle = _lookup(SHUFFLES, row["channel_shuffle"], "channel_shuffle")
        self.cross_resolution_weighting = CrossResolutionWeighting(
            halves, reduce_ratio, _lookup(POOLS, row["cross_res_pool"], "cross_res_pool"))
        self.depthwise_convs = nn.ModuleList(
            conv_bn_act(c, c, 3, groups=c, act=None) for c in halves)
        spatial_pool = _lookup(POOLS, row["spatial_pool"], "spatial_pool")
        self.spatial_weighting = nn.ModuleList(SpatialWeighting(c, spatial_pool) for c in halves)
        self.shuffles = nn.ModuleList(shuffle(c, 2) for c in channels)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        parts = [x.chunk(2, dim=1) for x in xs]
        kept = [p[0] for p in parts]
        work = self.cross_resolution_weighting([p[1] for p in parts])
        work = [sw(dw(x)) for x, dw, sw in zip(work, self.depthwise_convs, self.spatial_weighting)]
        return [concat_shuffle(sh, a, b) for a, b, sh in zip(kept, work, self.shuffles)]


class ShuffleUnit(nn.Module):
    """The NAIVE block: ShuffleNet V2 stride-1 unit on one branch."""

    def __init__(self, channels: int, shuffle: Callable[[int, int], nn.Module]) -> None:
        super().__init__()
        half = channels // 2
        self.branch2 = nn.Sequential(
            conv_bn_act(half, half, 1),
            conv_bn_act(half, half, 3, groups=half, act=None),
            conv_bn_act(half, half, 1),
        )
        self.shuffle = shuffle(channels, 2)

    def forward(self, x_nchw: Tensor) -> Tensor:
        x1, x2 = x_nchw.chunk(2, dim=1)
        return concat_shuffle(self.shuffle, x1, self.branch2(x2.contiguous()))  # see _contiguous_halves


# ----------------------------------------------------------------------------------------------
# Multi-branch module
# ----------------------------------------------------------------------------------------------
def make_fuse_layers(channels: list[int], num_out: int) -> nn.ModuleList:
    """Lite-HRNet fuse layers: downsampling steps are depthwise 3x3 s2 + BN + 1x1 + BN (+ ReLU)."""
    return layers.make_fuse_layers(
        channels, num_out, lambda c_in, c_out, relu: dw_pw(c_in, c_out, 2, relu=relu))


def twice_updated_statistics(module: nn.Module) -> None:
    """Make every BatchNorm in ``module`` update its running statistics as if it ran twice on the
    same batch: ``r <- (1 - m)^2 r + (1 - (1 - m)^2) s`` (momentum ``m``, batch statistic ``s``),
    i.e. one update with momentum ``1 - (1 - m)^2`` (0.19 for the default 0.1). Used for the fuse
    layers the official code calls twice per forward (:meth:`LiteHRModule._fuse`); momentum is
    not part of the state dict, so checkpoints are unaffected."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.momentum is not None:
            m.momentum = 1.0 - (1.0 - m.momentum) ** 2


class LiteHRModule(nn.Module):
    """``num_blocks`` LITE or NAIVE blocks over all branches, then the fuse layers.

    Fuse quirk (kept on purpose, the official weights depend on it): the official code starts
    output row 0 from ``out[0]`` itself and adds branch 0 again *in place*, so row 0 gets 2x
    branch 0 and ``out[0]`` is overwritten with row 0's pre-ReLU sum ``s0``. Every row i > 0
    then runs ``fuse_layers[i][0](s0)`` twice and adds both copies. See :meth:`_fuse` for how
    this class computes the same function with each of those layers run once.
    """

    def __init__(self, channels: list[int], num_blocks: int, block: str, reduce_ratio: int,
                 row: dict, with_fuse: bool = True, multiscale_output: bool = True) -> None:
        super().__init__()
        self.block = block.upper()
        self.num_branches = len(channels)
        self.in_channels = list(channels)
        if self.block == "LITE":
            self.layers = nn.Sequential(
                *[ConditionalChannelWeighting(channels, reduce_ratio, row) for _ in range(num_blocks)])
        elif self.block == "NAIVE":
            shuffle = _lookup(SHUFFLES, row["channel_shuffle"], "channel_shuffle")
            self.layers = nn.ModuleList(
                nn.Sequential(*[ShuffleUnit(c, shuffle) for _ in range(num_blocks)]) for c in channels)
        else:
            raise ValueError(f"block must be 'LITE' or 'NAIVE', got {block!r}")
        self.with_fuse = with_fuse and self.num_branches > 1
        self.multiscale_output = multiscale_output
        if self.with_fuse:
            self.fuse_layers = make_fuse_layers(channels, self.num_branches if multiscale_output else 1)
            self.relu = nn.ReLU()
            for row in list(self.fuse_layers)[1:]:
                twice_updated_statistics(row[0])
                for m in row[0].modules():  # run once here, twice in the official graph (and the export)
                    m.official_calls = 2  # read by models.complexity, which counts the official graph

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        if self.block == "LITE":
            out = list(self.layers(xs))
        else:
            out = [branch(x) for branch, x in zip(self.layers, xs)]
        if self.with_fuse:
            out = self._fuse(out)
        return out if self.multiscale_output else out[:1]

    def _fuse(self, out: list[Tensor]) -> list[Tensor]:
        """The official fuse, each layer run once.

        Row 0: ``s0 = (b0 + b0) + f01(b1) + ...``; row i > 0: ``(d + d) + ...`` with
        ``d = fuse_layers[i][0](s0)``, where the official code computes ``d`` twice and adds both
        copies. ``d + d`` is exact in floating point and the additions keep the official order, so
        the output is bit-identical; in backward ``d``'s layers receive ``2 g`` instead of ``g``
        twice (exact scaling, summed in another order: float-rounding differences only). The
        official double call also moves those layers' BatchNorm running statistics twice per
        forward in training; :func:`twice_updated_statistics` reproduces that in one call.
        ``out`` is left unchanged (the official code overwrites ``out[0]``).
        """
        fused = []
        s0 = out[0] + out[0]
        for i, row in enumerate(self.fuse_layers):
            if i == 0:
                acc = s0  # row 0 accumulates into s0: rows i > 0 read its full pre-ReLU sum
            else:
                down = row[0](s0)
                acc = down + down
            for j in range(1, self.num_branches):
                acc += out[j] if j == i else row[j](out[j])  # in place on this row's own sum
            fused.append(self.relu(acc))
        return fused


class IterativeHead(nn.Module):
    """From the lowest to the highest resolution: add the bilinearly upsampled previous result,
    then depthwise 3x3 + BN and pointwise 1x1 + BN + ReLU (to the next branch's channels)."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        rev = list(channels)[::-1]
        projects = []
        for i, c in enumerate(rev):
            c_out = rev[i + 1] if i + 1 < len(rev) else c
            projects.append(nn.Sequential(
                OrderedDict(depthwise_conv=conv_bn_act(c, c, 3, groups=c, act=None),
                       pointwise_conv=conv_bn_act(c, c_out, 1))))
        self.projects = nn.ModuleList(projects)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        outs: list[Tensor] = []
        prev: Tensor | None = None
        for x, project in zip(xs[::-1], self.projects):
            if prev is not None:
                x = x + F.interpolate(prev, size=x.shape[-2:], mode="bilinear", align_corners=True)
            prev = project(x)
            outs.append(prev)
        return outs[::-1]


# ----------------------------------------------------------------------------------------------
# Backbone
# ----------------------------------------------------------------------------------------------
def make_transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
    """Adapt the previous stage's branches to this stage's: a depthwise-separable 1x1 re-mapping
    where channels differ, ``None`` where they match, and stride-2 steps from the last branch for
    each new branch."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(dw_pw(pre[i], c, 1, relu=True) if c != pre[i] else None)
        else:
            n_steps = i + 1 - len(pre)
            c_in = pre[-1]
            layers.append(nn.Sequential(*[
                dw_pw(c_in, c if k == n_steps - 1 else c_in, 2, relu=True) for k in range(n_steps)]))
    return nn.ModuleList(layers)


class LiteHRNet(nn.Module):
    """Stem -> ``num_stages`` x (transition, stage) -> optional IterativeHead.

    ``forward`` returns the highest-resolution feature map (stride 4), e.g. 40 channels for
    Lite-HRNet-18/30.
    """

    def __init__(self, row: dict, in_channels: int = 3) -> None:
        super().__init__()
        stem_channels, stem_out, expand_ratio = row["stem"]
        self.stem = Stem(in_channels, stem_channels, stem_out, expand_ratio,
                         _lookup(SHUFFLES, row["channel_shuffle"], "channel_shuffle"))
        self.num_stages = len(row["num_modules"])
        channels_last = [stem_out]
        for s in range(self.num_stages):
            channels = list(row["num_channels"][s])
            setattr(self, f"transition{s}", make_transition(channels_last, channels))
            modules = [
                LiteHRModule(channels, row["num_blocks"][s], row["block"][s], row["reduce_ratios"][s],
                             row, with_fuse=row.get("with_fuse", True))
                for _ in range(row["num_modules"][s])
            ]
            setattr(self, f"stage{s}", nn.Sequential(*modules))
            channels_last = channels
        self.with_head = bool(row.get("with_head", True))
        if self.with_head:
            self.head_layer = IterativeHead(channels_last)
        self.out_channels = channels_last[0]

    def forward(self, x_nchw: Tensor) -> Tensor:
        ys = [self.stem(x_nchw)]
        for s in range(self.num_stages):
            transition = getattr(self, f"transition{s}")
            xs = []
            for j, layer in enumerate(transition):
                src = ys[j] if j < len(ys) else ys[-1]
                xs.append(layer(src) if layer is not None else src)
            ys = getattr(self, f"stage{s}")(xs)
        if self.with_head:
            ys = self.head_layer(ys)
        return ys[0]


def build_litehrnet(row: dict) -> LiteHRNet:
    """Build the backbone described by a variant-table row (see ``litehrnet.models.VARIANTS``)."""
    return LiteHRNet(row)
