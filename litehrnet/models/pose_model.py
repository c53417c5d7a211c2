"""Top-down pose network: backbone + heatmap head, images in, heatmaps out.

No loss, no decoding and no input normalisation inside: the input is an already normalised
``N x 3 x H x W`` float tensor (see ``prepostprocess`` for the normalisation modes), the output
``N x K x H/s x W/s`` heatmaps. ``heatmap_stride`` ``s`` (4 without deconv layers, halved by each)
is defined here and only here: the codec (targets and decoding) and the export metadata read it
from the model. That keeps the exported ONNX graph exactly the network the NPU runs.
"""

from __future__ import annotations

from torch import Tensor, nn

from .heads import TopDownSimpleHead

BACKBONE_STRIDE = 4  # input pixels per pixel of the backbone's output map (Lite-HRNet and HRNet)


class PoseModel(nn.Module):
    """``backbone`` (returns the stride-4 feature map) + ``keypoint_head``.

    State-dict keys follow the mmpose 0.x full-model layout (``backbone.*``, ``keypoint_head.*``),
    so official checkpoints load without renaming.
    """

    def __init__(self, backbone: nn.Module, keypoint_head: TopDownSimpleHead, variant: str,
                 default_input_hw: tuple[int, int] = (256, 192)) -> None:
        super().__init__()
        self.backbone = backbone
        self.keypoint_head = keypoint_head
        self.variant = variant
        self.default_input_hw = tuple(default_input_hw)

    @property
    def num_keypoints(self) -> int:
        return self.keypoint_head.num_keypoints

    @property
    def heatmap_stride(self) -> int:
        """Input pixels per heatmap pixel (4, halved by each deconv layer of the head)."""
        return BACKBONE_STRIDE // self.keypoint_head.upsample_factor

    def forward(self, images_nchw: Tensor) -> Tensor:
        """Normalised images ``N x 3 x H x W`` (H, W divisible by 32) -> heatmaps ``N x K x h x w``."""
        return self.keypoint_head(self.backbone(images_nchw))

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, num_keypoints={self.num_keypoints}"
