"""Classic HRNet backbone (Sun et al., CVPR 2019), parameter-compatible with mmpose.

Order: residual blocks -> multi-branch module -> backbone -> builder from a variant row.
Layout: two stride-2 3x3 convs (``conv1``/``bn1``, ``conv2``/``bn2``), a Bottleneck stage
(``layer1``), then stages 2-4 of BasicBlock branches joined by transitions. Unlike Lite-HRNet,
the fuse sum starts from zero (no in-place quirk). ``forward`` returns the highest-resolution
map (32 channels for W32, 48 for W48); the last module of stage 4 only fuses into branch 0.
"""

from __future__ import annotations

from torch import Tensor, nn

from . import layers
from .layers import conv_bn


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------
class BasicBlock(nn.Module):
    """Two 3x3 conv + BN with an identity (or 1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 -> 1x1 expand (x4), each with BN, plus shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, downsample: nn.Module | None = None) -> None:
        super().__init__()
        mid = out_channels // self.expansion
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


BLOCKS = {"BASIC": BasicBlock, "BOTTLENECK": Bottleneck}


def make_blocks(block: type[nn.Module], in_channels: int, out_channels: int, num_blocks: int) -> nn.Sequential:
    """``num_blocks`` residual blocks; the first gets a 1x1 conv + BN projection if channels change."""
    downsample = None
    if in_channels != out_channels:
        downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                   nn.BatchNorm2d(out_channels))
    layers = [block(in_channels, out_channels, downsample)]
    layers += [block(out_channels, out_channels) for _ in range(1, num_blocks)]
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------------
# Multi-branch module
# ----------------------------------------------------------------------------------------------
def make_fuse_layers(channels: list[int], num_out: int) -> nn.ModuleList:
    """HRNet fuse layers: downsampling steps are 3x3 stride-2 conv + BN (+ ReLU but on the last)."""
    return layers.make_fuse_layers(
        channels, num_out, lambda c_in, c_out, relu: conv_bn(c_in, c_out, 3, stride=2, relu=relu))


class HRModule(nn.Module):
    """Parallel residual branches followed by a full exchange (fuse) between resolutions."""

    def __init__(self, in_channels: list[int], channels: list[int], block: type[nn.Module],
                 num_blocks: list[int], multiscale_output: bool = True) -> None:
        super().__init__()
        out_channels = [c * block.expansion for c in channels]
        self.num_branches = len(channels)
        self.branches = nn.ModuleList(
            make_blocks(block, c_in, c_out, n) for c_in, c_out, n in zip(in_channels, out_channels, num_blocks))
        self.out_channels = out_channels
        self.fuse_layers = (make_fuse_layers(out_channels, self.num_branches if multiscale_output else 1)
                            if self.num_branches > 1 else None)
        self.relu = nn.ReLU()

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        fused = []
        for i, row in enumerate(self.fuse_layers):
            terms = [x if j == i else row[j](x) for j, x in enumerate(xs)]
            fused.append(self.relu(sum(terms[1:], terms[0])))
        return fused


# ----------------------------------------------------------------------------------------------
# Backbone
# ----------------------------------------------------------------------------------------------
def make_transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
    """3x3 conv + BN + ReLU where channels differ (``None`` where equal); each new branch is a
    chain of 3x3 s2 conv + BN + ReLU from the previous stage's last branch."""
    layers: list[nn.Module | None] = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(conv_bn(pre[i], c, 3, relu=True) if c != pre[i] else None)
        else:
            n_steps = i + 1 - len(pre)
            layers.append(nn.Sequential(*[
                conv_bn(pre[-1], c if k == n_steps - 1 else pre[-1], 3, stride=2, relu=True)
                for k in range(n_steps)]))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNet built from a variant row with ``stages``: a list of 4 dicts (``num_modules``,
    ``block``, ``num_blocks``, ``num_channels``); stage 1 has one branch."""

    def __init__(self, row: dict, in_channels: int = 3) -> None:
        super().__init__()
        stages = row["stages"]
        self.conv1 = nn.Conv2d(in_channels, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()

        first = stages[0]
        block = BLOCKS[first["block"]]
        stage1_out = first["num_channels"][0] * block.expansion
        self.layer1 = make_blocks(block, 64, stage1_out, first["num_blocks"][0])

        pre = [stage1_out]
        for s, spec in enumerate(stages[1:], start=2):
            block = BLOCKS[spec["block"]]
            cur = [c * block.expansion for c in spec["num_channels"]]
            setattr(self, f"transition{s - 1}", make_transition(pre, cur))
            last_stage = s == len(stages)
            modules = []
            in_ch = cur
            for m in range(spec["num_modules"]):
                multiscale = not (last_stage and m == spec["num_modules"] - 1)
                module = HRModule(in_ch, spec["num_channels"], block, spec["num_blocks"], multiscale)
                modules.append(module)
                in_ch = module.out_channels
            setattr(self, f"stage{s}", nn.Sequential(*modules))
            pre = in_ch
        self.num_stages = len(stages)
        self.out_channels = pre[0]

    def forward(self, x_nchw: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x_nchw)))
        x = self.relu(self.bn2(self.conv2(x)))
        ys = [self.layer1(x)]
        for s in range(2, self.num_stages + 1):
            transition = getattr(self, f"transition{s - 1}")
            xs = []
            for j, layer in enumerate(transition):
                if layer is None:
                    xs.append(ys[j])
                else:
                    xs.append(layer(ys[j] if j < len(ys) else ys[-1]))
            ys = getattr(self, f"stage{s}")(xs)
        return ys[0]


def build_hrnet(row: dict) -> HRNet:
    """Build the backbone described by a variant-table row."""
    return HRNet(row)
