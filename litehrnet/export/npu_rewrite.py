"""Exact NPU-friendly rewrite of official Lite-HRNet weights at one input size (export concern).

:func:`to_npu_rewrite` returns the same function as an official (shuffle + adaptive-pool)
Lite-HRNet with no shuffle op at all. Each branch tensor is kept in a *physical* channel order
plus a permutation to the *logical* (official) order; a shuffle only updates the permutation, and
every conv reading or writing the tensor gets its weights permuted instead (exact). The LITE block
then runs on all channels of a branch: the half the official block leaves untouched gets an
identity depthwise kernel and weights of exactly 1 (sigmoid of a bias of +20, which is 1.0 in
float32), so no Split/Slice/Concat is needed either. Pools become the static pools of
:mod:`litehrnet.models.static_pools`, BatchNorm is folded into the convs. For CPU speed the graph
also suits onnxruntime's blocked NCHWc kernels (hidden widths padded with zero channels to
multiples of 8, per-channel scales spread by nearest upsampling so every Mul has equal shapes):
about 0.77x the official model's 1-thread latency. Every upsampling is a row resize followed by a
column resize (:mod:`litehrnet.models.separable_resize`), so no Resize changes both axes (KL720
note 35, read literally). Design and measurements: docs/export.md.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from litehrnet.models import litehrnet as lite
from litehrnet.models.pose_model import PoseModel
from litehrnet.models.separable_resize import SeparableUpsample, resize_bilinear, upsample_nearest
from litehrnet.models.static_pools import StaticPoolError, avg_pool_exact, cascade_plan, pool_ratio

ONE_LOGIT = 20.0                  # sigmoid(20) == 1.0 in float32: "weight 1" for untouched channels


class NpuRewriteError(ValueError):
    """The model or the input size cannot be rewritten exactly."""


# ----------------------------------------------------------------------------------------------
# Exact rewrite: helpers
#
# Convention: a branch tensor carries ``perm`` with perm[l] = physical channel holding logical
# (official) channel l; ``inv = _inverse(perm)`` gives the logical channel of each physical one.
# A conv reading such a tensor takes weight columns ``w[:, inv]``; a conv writing into a layout
# ``perm_out`` takes rows ``w[inv_out]``; a depthwise conv keeps the layout (``w[inv]``).
# ----------------------------------------------------------------------------------------------
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d | None) -> tuple[Tensor, Tensor]:
    """Conv weight and bias with an eval-mode BatchNorm folded in."""
    w = conv.weight.detach().clone()
    b = conv.bias.detach().clone() if conv.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
    if bn is not None:
        scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        w = w * scale.reshape(-1, 1, 1, 1)
        b = (b - bn.running_mean) * scale + bn.bias.detach()
    return w, b


def _make_conv(w: Tensor, b: Tensor, stride=1, padding=0, depthwise: bool = False) -> nn.Conv2d:
    """A plain ``nn.Conv2d`` with bias holding ``w`` / ``b`` (depthwise when asked)."""
    out_ch, k = w.shape[0], w.shape[-1]
    groups = out_ch if depthwise else 1
    conv = nn.Conv2d(w.shape[1] * groups, out_ch, k, stride=stride, padding=padding, groups=groups,
                     dtype=w.dtype)
    conv.weight.data.copy_(w)
    conv.bias.data.copy_(b)
    return conv


def _conv_like(conv: nn.Conv2d, w: Tensor, b: Tensor) -> nn.Conv2d:
    return _make_conv(w, b, conv.stride, conv.padding, depthwise=conv.groups > 1)


def _cba(seq: nn.Sequential) -> tuple[nn.Conv2d, nn.BatchNorm2d | None, str | None]:
    """Unpack a ``conv_bn_act`` Sequential into (conv, bn or None, 'relu' | 'sigmoid' | None)."""
    conv = seq.conv
    bn = getattr(seq, "bn", None)
    act = getattr(seq, "act", None)
    name = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid"}.get(type(act)) if act is not None else None
    return conv, bn, name


def _inverse(perm: np.ndarray) -> np.ndarray:
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return inv


def _shuffle_perm(channels: int, groups: int = 2) -> np.ndarray:
    """Pre-shuffle index of every post-shuffle channel: out[k] = in[(k % g) * C/g + k // g]."""
    k = np.arange(channels)
    return (k % groups) * (channels // groups) + k // groups


def _permuted_conv(conv: nn.Conv2d, bn, in_phys2log: np.ndarray | None,
                   out_log_of_phys: np.ndarray | None) -> nn.Conv2d:
    """Folded conv whose input channels arrive in a physical order (``in_phys2log[r]`` = logical
    channel held by physical channel r) and whose output is written in a physical order
    (``out_log_of_phys[q]`` = logical output channel to put at physical q)."""
    w, b = _fold(conv, bn)
    if conv.groups > 1:  # depthwise: one permutation for both sides
        idx = in_phys2log if in_phys2log is not None else out_log_of_phys
        if idx is not None:
            w, b = w[torch.as_tensor(idx)], b[torch.as_tensor(idx)]
        return _conv_like(conv, w, b)
    if in_phys2log is not None:
        w = w[:, torch.as_tensor(in_phys2log)]
    if out_log_of_phys is not None:
        w, b = w[torch.as_tensor(out_log_of_phys)], b[torch.as_tensor(out_log_of_phys)]
    return _conv_like(conv, w, b)


ACTS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, None: nn.Identity}


def _seq_dw_pw(seq: nn.Sequential, in_perm: np.ndarray | None, out_perm: np.ndarray | None) -> nn.Sequential:
    """Rewrite a ``dw_pw`` Sequential (dw, bn, pw, bn[, relu]) for permuted input/output."""
    inv_in = None if in_perm is None else _inverse(in_perm)
    inv_out = None if out_perm is None else _inverse(out_perm)
    layers = [_permuted_conv(seq[0], seq[1], inv_in, None),
              _permuted_conv(seq[2], seq[3], inv_in, inv_out)]
    if len(seq) > 4:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _cba_permuted(seq: nn.Sequential, inv_in: np.ndarray | None = None,
                  inv_out: np.ndarray | None = None) -> nn.Sequential:
    """Rewrite a ``conv_bn_act`` Sequential: BN folded, channels permuted, same activation."""
    conv, bn, act = _cba(seq)
    return nn.Sequential(_permuted_conv(conv, bn, inv_in, inv_out), ACTS[act]())


def _shuffle_index(module: nn.Module, channels: int) -> np.ndarray:
    """Pre-shuffle index of every post-shuffle channel for a shuffle module of the zoo."""
    if isinstance(module, lite.ChannelShuffle):
        return _shuffle_perm(channels, module.groups)
    if isinstance(module, lite.NoShuffle):
        return np.arange(channels)
    raise NpuRewriteError(f"unknown channel shuffle module {type(module).__name__}")


def _pad_rows(w: Tensor, b: Tensor, multiple: int = 8) -> tuple[Tensor, Tensor]:
    """Append zero output channels (zero weights and bias) up to a multiple of ``multiple``.

    A ReLU keeps them at 0 and the next conv gets zero columns for them (:func:`_pad_cols`), so the
    function is unchanged; widths that are multiples of 8 let onnxruntime run the hidden 1x1 convs
    in its blocked NCHWc layout instead of reordering around them."""
    extra = -w.shape[0] % multiple
    if extra == 0:
        return w, b
    return (torch.cat((w, w.new_zeros(extra, *w.shape[1:]))), torch.cat((b, b.new_zeros(extra))))


def _pad_cols(w: Tensor, in_channels: int) -> Tensor:
    """Zero input columns for the channels :func:`_pad_rows` appended."""
    extra = in_channels - w.shape[1]
    return w if extra == 0 else torch.cat((w, w.new_zeros(w.shape[0], extra, *w.shape[2:])), dim=1)


def _spread(scale_nc11: Tensor, hw: tuple[int, int], separable: bool = True) -> Tensor:
    """A per-channel scale (N, C, 1, 1) repeated over ``hw`` by nearest upsampling (exact)."""
    if hw == (1, 1):
        return scale_nc11
    return upsample_nearest(scale_nc11, hw, separable)


def _halve(hw: tuple[int, int]) -> tuple[int, int]:
    """Output size of a 3x3 stride-2 pad-1 conv."""
    return (hw[0] + 1) // 2, (hw[1] + 1) // 2


# ----------------------------------------------------------------------------------------------
# Exact rewrite: modules (inference only, BN folded; each carries its branch permutations)
# ----------------------------------------------------------------------------------------------
class NpuStem(nn.Module):
    """Official stem with conv1 split into two convs (no Split op) and the shuffle as a permutation."""

    def __init__(self, stem: lite.Stem) -> None:
        super().__init__()
        conv, bn, _ = _cba(stem.conv1)
        w, b = _fold(conv, bn)
        half = w.shape[0] // 2
        self.conv1a = nn.Sequential(_make_conv(w[:half], b[:half], conv.stride, conv.padding), nn.ReLU())
        self.conv1b = nn.Sequential(_make_conv(w[half:], b[half:], conv.stride, conv.padding), nn.ReLU())
        self.branch1 = nn.Sequential(*[_cba_permuted(s) for s in stem.branch1])
        self.branch2 = nn.Sequential(*[_cba_permuted(s) for s in
                                       (stem.expand_conv, stem.depthwise_conv, stem.linear_conv)])
        self.out_perm = _shuffle_index(stem.shuffle, stem.out_channels)

    def forward(self, x_nchw: Tensor) -> Tensor:
        return torch.cat((self.branch1(self.conv1a(x_nchw)), self.branch2(self.conv1b(x_nchw))), dim=1)


class NpuLiteBlock(nn.Module):
    """A LITE block over all channels of each branch, in each branch's physical channel order.

    Channels the official block leaves untouched get: zero columns in every 1x1 conv that reads
    them, an identity depthwise kernel, and weights sigmoid(+20) = 1 from both weighting steps.
    """

    def __init__(self, block: lite.ConditionalChannelWeighting, perms: list[np.ndarray],
                 branch_hw: list[tuple[int, int]], one_logit: float = ONE_LOGIT,
                 defer_scale: bool = False) -> None:
        super().__init__()
        channels = [len(p) for p in perms]
        invs = [_inverse(p) for p in perms]
        # per branch: physical positions of processed channels and their index in the second half
        proc = [np.nonzero(inv >= c // 2)[0] for inv, c in zip(invs, channels)]
        half_idx = [inv[q] - c // 2 for inv, q, c in zip(invs, proc, channels)]
        half_off = np.cumsum([0] + [c // 2 for c in channels])
        full_off = np.cumsum([0] + channels)
        crw = block.cross_resolution_weighting

        self.pool_kernels = [pool_ratio(hw, branch_hw[-1]) for hw in branch_hw]
        w1, b1 = _fold(*_cba(crw.conv1)[:2])
        w = torch.zeros(w1.shape[0], full_off[-1], 1, 1, dtype=w1.dtype)
        for i in range(len(channels)):
            w[:, full_off[i] + proc[i]] = w1[:, half_off[i] + half_idx[i]]
        w, b1 = _pad_rows(w, b1)
        self.crw_conv1 = nn.Sequential(_make_conv(w, b1), nn.ReLU())
        w2, b2 = _fold(*_cba(crw.conv2)[:2])
        w2 = _pad_cols(w2, w.shape[0])
        self.crw_conv2 = nn.ModuleList()
        self.dw = nn.ModuleList()
        self.sw_conv1 = nn.ModuleList()
        self.sw_conv2 = nn.ModuleList()
        for i, c in enumerate(channels):
            rows = half_off[i] + half_idx[i]
            self.crw_conv2.append(self._weights_conv(w2[rows], b2[rows], proc[i], c, one_logit))
            wd, bd = _fold(*_cba(block.depthwise_convs[i])[:2])
            w_dw = torch.zeros(c, 1, 3, 3, dtype=wd.dtype)
            w_dw[:, 0, 1, 1] = 1.0
            b_dw = torch.zeros(c, dtype=wd.dtype)
            w_dw[proc[i]], b_dw[proc[i]] = wd[half_idx[i]], bd[half_idx[i]]
            self.dw.append(_make_conv(w_dw, b_dw, padding=1, depthwise=True))
            sw = block.spatial_weighting[i]
            ws1, bs1 = _fold(sw.conv1.conv, None)
            w = torch.zeros(ws1.shape[0], c, 1, 1, dtype=ws1.dtype)
            w[:, proc[i]] = ws1[:, half_idx[i]]
            w, bs1 = _pad_rows(w, bs1)
            self.sw_conv1.append(nn.Sequential(_make_conv(w, bs1), nn.ReLU()))
            ws2, bs2 = _fold(sw.conv2.conv, None)
            ws2 = _pad_cols(ws2, w.shape[0])
            self.sw_conv2.append(self._weights_conv(ws2[half_idx[i]], bs2[half_idx[i]], proc[i], c, one_logit))
        for hw in branch_hw:   # same sizes as the official global pools accept (clear errors)
            cascade_plan(hw)
        self.small_cascade = cascade_plan(branch_hw[-1])
        self.branch_hw = [tuple(int(v) for v in hw) for hw in branch_hw]
        self.defer_scale = defer_scale
        self.separable_upsampling = True
        self.out_perms = [p[_shuffle_index(sh, c)] for p, sh, c in zip(perms, block.shuffles, channels)]

    @staticmethod
    def _weights_conv(w_proc: Tensor, b_proc: Tensor, proc: np.ndarray, channels: int,
                      one_logit: float) -> nn.Sequential:
        """1x1 conv + sigmoid giving the official weights on ``proc`` channels and 1.0 elsewhere."""
        w = torch.zeros(channels, w_proc.shape[1], 1, 1, dtype=w_proc.dtype)
        b = torch.full((channels,), one_logit, dtype=w_proc.dtype)
        w[proc], b[proc] = w_proc, b_proc
        return nn.Sequential(_make_conv(w, b), nn.Sigmoid())

    def forward(self, xs: list) -> list:
        """``xs``: per branch a tensor, or ``(tensor, scale, pooled)`` when the previous block
        deferred its spatial-weighting multiply: then ``tensor * scale`` is the branch input, and
        ``pooled`` is ``tensor`` already average-pooled to the smallest branch's size. The scale is
        applied to that pooled map and merged into this block's weights at low resolution, which
        saves one full-resolution Mul and one AvgPool. Returns the same form (deferred when
        ``defer_scale``)."""
        triples = [x if isinstance(x, tuple) else (x, None, None) for x in xs]
        small_hw = self.branch_hw[-1]
        # per-channel scales are broadcast by nearest upsampling (exact) so that every Mul has
        # equal shapes: onnxruntime then keeps the whole block in its blocked (NCHWc) layout
        sep = self.separable_upsampling
        prevs = [None if prev is None else _spread(prev, small_hw, sep) for _, prev, _ in triples]
        pooled = []
        for (x, _, p), prev, k in zip(triples, prevs, self.pool_kernels):
            if p is None:
                p = x if k == (1, 1) else avg_pool_exact(x, k)
            pooled.append(p if prev is None else p * prev)
        hidden = self.crw_conv1(torch.cat(pooled, dim=1))
        outs = []
        for i, (x, _, _) in enumerate(triples):
            weights = self.crw_conv2[i](hidden)
            if prevs[i] is not None:
                weights = weights * prevs[i]
            if self.pool_kernels[i] != (1, 1):
                weights = upsample_nearest(weights, self.pool_kernels[i], sep)
            x = self.dw[i](x * weights)
            # global mean = mean of the map pooled to the smallest size (reused by the next block)
            q = x if self.pool_kernels[i] == (1, 1) else avg_pool_exact(x, self.pool_kernels[i])
            s = q
            for k in self.small_cascade:
                s = avg_pool_exact(s, k)
            s = self.sw_conv2[i](self.sw_conv1[i](F.adaptive_avg_pool2d(s, 1)))
            outs.append((x, s, q) if self.defer_scale else x * _spread(s, self.branch_hw[i], sep))
        return outs


class NpuFuse(nn.Module):
    """Official fuse layers (with the double-add quirk) writing each row in its branch's layout."""

    def __init__(self, module: lite.LiteHRModule, perms: list[np.ndarray]) -> None:
        super().__init__()
        invs = [_inverse(p) for p in perms]
        self.num_branches = len(perms)
        self.rows = nn.ModuleList()
        for i, row in enumerate(module.fuse_layers):
            out_row = nn.ModuleList()
            for j, layer in enumerate(row):
                if j == i:
                    out_row.append(nn.Identity())
                elif j > i:  # 1x1 conv + BN + nearest upsample
                    conv = _permuted_conv(layer[0], layer[1], invs[j], invs[i])
                    out_row.append(nn.Sequential(conv, SeparableUpsample(2 ** (j - i))))
                else:  # chain of stride-2 dw_pw steps; the input layout is branch j's
                    steps = list(layer)
                    out_row.append(nn.Sequential(*[
                        _seq_dw_pw(s, perms[j] if k == 0 else None, perms[i] if k == len(steps) - 1 else None)
                        for k, s in enumerate(steps)]))
            self.rows.append(out_row)
        self.out_perms = list(perms[: len(self.rows)])

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        row0 = self.rows[0]
        acc0 = xs[0] + xs[0]
        for j in range(1, self.num_branches):
            acc0 = acc0 + row0[j](xs[j])
        outs = [F.relu(acc0)]
        for i in range(1, len(self.rows)):
            down = self.rows[i][0](acc0)
            acc = down + down
            for j in range(1, self.num_branches):
                acc = acc + (xs[j] if j == i else self.rows[i][j](xs[j]))
            outs.append(F.relu(acc))
        return outs


class NpuTransition(nn.Module):
    """Stage transition; branches without a layer pass through with their permutation."""

    def __init__(self, transition: nn.ModuleList, perms: list[np.ndarray]) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.sources: list[int] = []
        self.out_perms: list[np.ndarray] = []
        for j, layer in enumerate(transition):
            src = min(j, len(perms) - 1)
            self.sources.append(src)
            if layer is None:
                self.layers.append(nn.Identity())
                self.out_perms.append(perms[src])
                continue
            steps = [layer] if isinstance(layer[0], nn.Conv2d) else list(layer)
            self.layers.append(nn.Sequential(*[
                _seq_dw_pw(s, perms[src] if k == 0 else None, None) for k, s in enumerate(steps)]))
            self.out_perms.append(np.arange(steps[-1][2].out_channels))

    def forward(self, ys: list[Tensor]) -> list[Tensor]:
        return [layer(ys[src]) for layer, src in zip(self.layers, self.sources)]


class NpuIterativeHead(nn.Module):
    """IterativeHead whose projections write the next (higher-resolution) branch's layout."""

    def __init__(self, head: lite.IterativeHead, perms: list[np.ndarray],
                 branch_hw: list[tuple[int, int]]) -> None:
        super().__init__()
        n = len(perms)
        self.projects = nn.ModuleList()
        for k, project in enumerate(head.projects):
            b = n - 1 - k
            inv_in = _inverse(perms[b])
            inv_out = _inverse(perms[b - 1]) if b > 0 else None
            self.projects.append(nn.Sequential(
                _cba_permuted(project.depthwise_conv, inv_in),
                _cba_permuted(project.pointwise_conv, inv_in, inv_out)))
        self.sizes = [tuple(branch_hw[n - 1 - k]) for k in range(n)]
        self.separable_upsampling = True

    def forward(self, xs: list[Tensor]) -> Tensor:
        prev: Tensor | None = None
        for x, project, size in zip(xs[::-1], self.projects, self.sizes):
            if prev is not None:
                x = x + resize_bilinear(prev, size, True, self.separable_upsampling)
            prev = project(x)
        return prev


class NpuLiteHRNet(nn.Module):
    """Inference-only Lite-HRNet rewritten for one input size: same function, NPU-friendly graph."""

    def __init__(self, backbone: lite.LiteHRNet, input_hw: tuple[int, int], one_logit: float = ONE_LOGIT) -> None:
        super().__init__()
        self.input_hw = tuple(int(v) for v in input_hw)
        if not backbone.with_head:
            raise NpuRewriteError("to_npu_rewrite needs a Lite-HRNet with its IterativeHead (with_head=True)")
        self.stem = NpuStem(backbone.stem)
        hw0 = _halve(_halve(self.input_hw))
        perms = [self.stem.out_perm]
        self.stages = nn.ModuleList()
        for s in range(backbone.num_stages):
            transition = NpuTransition(getattr(backbone, f"transition{s}"), perms)
            perms = transition.out_perms
            branch_hw = [hw0]
            for _ in range(1, len(perms)):
                branch_hw.append(_halve(branch_hw[-1]))
            steps: list[nn.Module] = [transition]
            for module in getattr(backbone, f"stage{s}"):
                if module.block != "LITE":
                    raise NpuRewriteError(f"to_npu_rewrite handles LITE blocks only, got {module.block}")
                for b, block in enumerate(module.layers):
                    defer = b < len(module.layers) - 1   # the next block absorbs the last Mul
                    steps.append(NpuLiteBlock(block, perms, branch_hw, one_logit, defer))
                    perms = steps[-1].out_perms
                if module.with_fuse:
                    steps.append(NpuFuse(module, perms))
                    perms = steps[-1].out_perms
                if not module.multiscale_output:
                    raise NpuRewriteError("to_npu_rewrite needs multiscale_output=True modules")
            self.stages.append(nn.Sequential(*steps))
        self.head_layer = NpuIterativeHead(backbone.head_layer, perms, branch_hw)
        self.out_channels = backbone.out_channels

    def forward(self, x_nchw: Tensor) -> Tensor:
        if tuple(x_nchw.shape[-2:]) != self.input_hw:
            raise NpuRewriteError(f"this NPU rewrite is built for input {self.input_hw}, got "
                                  f"{tuple(x_nchw.shape[-2:])}; rewrite again for the new size")
        ys = [self.stem(x_nchw)]
        for stage in self.stages:
            ys = stage(ys)
        return self.head_layer(ys)


def to_npu_rewrite(model: nn.Module, input_hw: tuple[int, int], one_logit: float = ONE_LOGIT) -> nn.Module:
    """Exact NPU-friendly rewrite of an official Lite-HRNet ``PoseModel`` at ``input_hw``.

    Returns a new eval-mode ``PoseModel`` (variant ``<variant>_npu_rewrite``) whose backbone is an
    :class:`NpuLiteHRNet`; the keypoint head is copied unchanged. Raises :class:`NpuRewriteError`
    for non-Lite-HRNet models or sizes without an exact static-pool rewrite. ``one_logit`` is the
    bias giving weight sigmoid(one_logit) = 1 to the channels the official block leaves untouched
    (20: exactly 1.0 in float32; use >= 40 for float64 comparisons).
    """
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, lite.LiteHRNet):
        name = getattr(model, "variant", type(model).__name__)
        raise NpuRewriteError(f"to_npu_rewrite needs a Lite-HRNet PoseModel (LITE blocks), got {name!r}")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        try:
            rewritten = NpuLiteHRNet(backbone, input_hw, one_logit)
        except StaticPoolError as exc:
            raise NpuRewriteError(str(exc)) from None
        head = copy.deepcopy(model.keypoint_head)
    model.train(was_training)
    out = PoseModel(rewritten, head, f"{model.variant}_npu_rewrite", tuple(input_hw))
    return out.eval()
