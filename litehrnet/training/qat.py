"""Quantisation-aware fine-tuning with the chip's power-of-two int8 scheme (``train.py --qat``).

The forward pass sees what the int8 emulation (:mod:`litehrnet.kneron.qdq`) will compute:

- **weights**: every ``Conv2d`` uses ``fq(w)`` with one power-of-two radix per output channel
  (:func:`litehrnet.kneron.int8.radix_for_range` on each channel's min/max). A conv followed by a
  ``BatchNorm2d`` (its next sibling module, the Conv-BN pattern of our models) is quantised *as the
  export folds it*: ``fq(w * g) / g`` with ``g = gamma / sqrt(running_var + eps)``, so the int8
  weight the ONNX will hold is the one trained against;
- **activations**: outputs of ReLU, Sigmoid, Upsample, pooling modules and of a BatchNorm2d not
  followed by an activation are fake-quantised as the PTQ emulation's default does: per channel,
  on Kneron's ``scale * 2**radix`` grid (``float = q / m``, ``m = min(127 / hi, 128 / -lo)`` per
  channel), the range an exponential moving average (momentum 0.9) of the batch's per-channel
  min/max, as torch.ao's moving-average per-channel observers do.

Rounding is the scheme's (half away from zero, saturate to [-128, 127]); gradients pass straight
through (STE). Nothing is added to the state dict (the quantisers are instance-level forward
overrides and hooks with their range statistics kept in Python), so a QAT checkpoint loads into a
plain model and exports as usual; a resumed run re-estimates the ranges from its first batches.
Not emulated in the forward pass (the PTQ emulation has them): additions, concatenations and
multiplications written as tensor expressions in the model code, and biases (int32, negligible).
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field

import torch
from torch import nn

from litehrnet.kneron.int8 import INT8_MAX, INT8_MIN, radix_for_range

ACTIVATION_MODULES = (nn.ReLU, nn.Sigmoid, nn.Upsample, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d)
EMA_MOMENTUM = 0.9


class _RoundHalfAwaySTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v):
        return torch.sign(v) * torch.floor(torch.abs(v) + 0.5)

    @staticmethod
    def backward(ctx, grad):
        return grad


def fake_quant(x: torch.Tensor, radix: torch.Tensor | int) -> torch.Tensor:
    """``clip(round_half_away(x * 2**r), -128, 127) * 2**-r`` with straight-through gradients.

    ``radix`` is an int or a tensor broadcastable against ``x`` (per channel).
    """
    scale = torch.exp2(torch.as_tensor(radix, dtype=x.dtype, device=x.device))
    q = _RoundHalfAwaySTE.apply(x * scale)
    q = q + (torch.clamp(q, INT8_MIN, INT8_MAX) - q).detach()  # saturate; gradient still straight through
    return q / scale


def channel_radix(w: torch.Tensor) -> torch.Tensor:
    """One radix per output channel (dim 0), from each channel's min/max (no gradient)."""
    flat = w.detach().reshape(w.shape[0], -1)
    lo, hi = flat.min(1).values.tolist(), flat.max(1).values.tolist()
    radix = [radix_for_range(a, b) for a, b in zip(lo, hi)]
    return torch.tensor(radix, dtype=w.dtype, device=w.device).reshape(-1, *([1] * (w.dim() - 1)))


def _qat_conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    bn = self._qat_bn
    if bn is None or not bn.track_running_stats or bn.running_var is None:
        w = fake_quant(self.weight, channel_radix(self.weight))
    else:
        g = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
        g = torch.where(g.abs() < 1e-12, torch.full_like(g, 1e-12), g).reshape(-1, 1, 1, 1)
        folded = self.weight * g
        w = fake_quant(folded, channel_radix(folded)) / g
    return self._conv_forward(x, w, self.bias)


def fake_quant_multiplier(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``clip(round_half_away(x * m), -128, 127) / m`` with straight-through gradients (``m`` broadcasts)."""
    q = _RoundHalfAwaySTE.apply(x * m)
    q = q + (torch.clamp(q, INT8_MIN, INT8_MAX) - q).detach()
    return q / m


def channel_multiplier(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Kneron-grid multiplier per channel for the range ``[lo, hi]`` (an all-zero channel gets ``2**24``)."""
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    big = torch.full_like(hi, 2.0 ** 24)
    m = torch.minimum(torch.where(hi > 0, INT8_MAX / hi.clamp(min=1e-30), big),
                      torch.where(lo < 0, -INT8_MIN / (-lo).clamp(min=1e-30), big))
    return torch.clamp(m, min=2.0 ** -24, max=2.0 ** 24)


@dataclass
class _Range:
    lo: torch.Tensor | None = None  # per channel (dim 1), or a 0-d tensor for tensors of rank < 2
    hi: torch.Tensor | None = None

    def update(self, x: torch.Tensor) -> None:
        x = x.detach()
        if x.dim() >= 2:
            flat = x.transpose(0, 1).reshape(x.shape[1], -1)
            lo, hi = flat.min(1).values, flat.max(1).values
        else:
            lo, hi = x.min(), x.max()
        if self.lo is None or self.lo.shape != lo.shape:
            self.lo, self.hi = lo, hi
        else:
            self.lo = EMA_MOMENTUM * self.lo + (1 - EMA_MOMENTUM) * lo
            self.hi = EMA_MOMENTUM * self.hi + (1 - EMA_MOMENTUM) * hi

    def multiplier(self, like: torch.Tensor) -> torch.Tensor:
        m = channel_multiplier(self.lo, self.hi).to(like.dtype)
        return m.reshape(1, -1, *([1] * (like.dim() - 2))) if like.dim() >= 2 else m


@dataclass
class QatState:
    """What :func:`attach_qat` installed (for tests and the log line)."""

    convs: int = 0
    folded: int = 0
    activations: int = 0
    ranges: dict[str, _Range] = field(default_factory=dict)
    handles: list = field(default_factory=list)


def _activation_hook(rng: _Range):
    def hook(module: nn.Module, inputs, output):
        if not isinstance(output, torch.Tensor):
            return output
        if module.training or rng.lo is None:
            rng.update(output)
        return fake_quant_multiplier(output, rng.multiplier(output))
    return hook


def attach_qat(model: nn.Module) -> QatState:
    """Install the fake quantisers on ``model`` in place (idempotent per module); see the module doc."""
    state = QatState()
    for parent_name, parent in list(model.named_modules()):
        children = list(parent.named_children())
        for i, (name, child) in enumerate(children):
            full = f"{parent_name}.{name}" if parent_name else name
            nxt = children[i + 1][1] if i + 1 < len(children) else None
            if isinstance(child, nn.Conv2d) and not hasattr(child, "_qat_bn"):
                bn = nxt if isinstance(nxt, nn.BatchNorm2d) and nxt.num_features == child.out_channels else None
                object.__setattr__(child, "_qat_bn", bn)  # a plain attribute: not a submodule, not in the state dict
                child.forward = types.MethodType(_qat_conv_forward, child)
                state.convs += 1
                state.folded += bn is not None
            after = children[i + 2][1] if i + 2 < len(children) else None
            bn_alone = isinstance(child, nn.BatchNorm2d) and not isinstance(nxt, ACTIVATION_MODULES) \
                and not (isinstance(nxt, nn.Identity) and isinstance(after, ACTIVATION_MODULES))
            if (isinstance(child, ACTIVATION_MODULES) or bn_alone) and not getattr(child, "_qat_hooked", False):
                child._qat_hooked = True
                state.ranges[full] = _Range()
                state.handles.append(child.register_forward_hook(_activation_hook(state.ranges[full])))
                state.activations += 1
    return state
