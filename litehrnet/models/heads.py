"""Top-down heatmap head (mmpose 0.x ``TopDownSimpleHead`` parameter layout).

``deconv_layers``: ``num_deconv_layers`` x (ConvTranspose2d stride 2, no bias; BN; ReLU), a flat
``Sequential`` (keys ``deconv_layers.0.weight``, ``deconv_layers.1.running_mean``, ...) or an
``Identity`` when there are none. ``final_layer``: one Conv2d with bias to K heatmaps
(kernel 1 or 3), or ``Identity`` with ``final_conv_kernel=0``. Each deconv doubles the heatmap
resolution, so the heatmap stride is ``backbone_stride / 2**num_deconv_layers``.
"""

from __future__ import annotations

from torch import Tensor, nn

# kernel -> (padding, output_padding) giving an exact x2 upsampling
_DECONV_PADDING = {4: (1, 0), 3: (1, 1), 2: (0, 0)}

HEAD_DEFAULTS: dict = {
    "num_deconv_layers": 0,
    "num_deconv_filters": [256, 256, 256],
    "num_deconv_kernels": [4, 4, 4],
    "final_conv_kernel": 1,
}


class TopDownSimpleHead(nn.Module):
    """Optional deconvolutions, then a final conv producing ``num_keypoints`` heatmaps."""

    def __init__(self, in_channels: int, num_keypoints: int, num_deconv_layers: int = 0,
                 num_deconv_filters: list[int] | tuple[int, ...] = (256, 256, 256),
                 num_deconv_kernels: list[int] | tuple[int, ...] = (4, 4, 4),
                 final_conv_kernel: int = 1) -> None:
        super().__init__()
        if num_deconv_layers < 0:
            raise ValueError(f"head.num_deconv_layers must be >= 0, got {num_deconv_layers}")
        if num_deconv_layers > min(len(num_deconv_filters), len(num_deconv_kernels)):
            raise ValueError(
                f"head.num_deconv_layers={num_deconv_layers} needs as many entries in "
                f"num_deconv_filters {list(num_deconv_filters)} and num_deconv_kernels {list(num_deconv_kernels)}")
        if final_conv_kernel not in (0, 1, 3):
            raise ValueError(f"head.final_conv_kernel must be 0, 1 or 3, got {final_conv_kernel}")
        self.in_channels = in_channels
        self.num_keypoints = num_keypoints
        self.num_deconv_layers = num_deconv_layers
        if num_deconv_layers:
            self.deconv_layers = self._make_deconv(in_channels, num_deconv_filters[:num_deconv_layers],
                                                   num_deconv_kernels[:num_deconv_layers])
            channels = num_deconv_filters[num_deconv_layers - 1]
        else:
            self.deconv_layers = nn.Identity()
            channels = in_channels
        if final_conv_kernel == 0:
            if channels != num_keypoints:
                raise ValueError(f"final_conv_kernel=0 needs {num_keypoints} input channels, got {channels}")
            self.final_layer = nn.Identity()
        else:
            self.final_layer = nn.Conv2d(channels, num_keypoints, final_conv_kernel,
                                         padding=final_conv_kernel // 2)

    @staticmethod
    def _make_deconv(in_channels: int, filters, kernels) -> nn.Sequential:
        layers: list[nn.Module] = []
        for out_channels, kernel in zip(filters, kernels):
            if kernel not in _DECONV_PADDING:
                raise ValueError(f"head.num_deconv_kernels entries must be 2, 3 or 4, got {kernel}")
            padding, output_padding = _DECONV_PADDING[kernel]
            layers += [
                nn.ConvTranspose2d(in_channels, out_channels, kernel, stride=2, padding=padding,
                                   output_padding=output_padding, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]
            in_channels = out_channels
        return nn.Sequential(*layers)

    @property
    def upsample_factor(self) -> int:
        """Heatmap pixels per feature pixel: each deconv layer doubles the resolution."""
        return 2 ** self.num_deconv_layers

    def forward(self, features_nchw: Tensor) -> Tensor:
        return self.final_layer(self.deconv_layers(features_nchw))

    def init_weights(self) -> None:
        """mmpose 0.x init: deconvs N(0, 0.001), BN 1/0, final conv N(0, 0.001) with zero bias."""
        for m in self.modules():
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
