"""NPU pre/post-processing emulation in numpy + OpenCV (no torch): the bottom layer.

Modules: :mod:`.geometry` (box <-> centre/scale, affine matrices, point transforms),
:mod:`.image_ops` (crop / resize / pad as the NPU input path does them), :mod:`.normalize`
(channel order, normalisation modes, int8 quantisation), :mod:`.topdown` (the one top-down crop
used by training and deployment), :mod:`.heatmap` (decode, flip-back, back to image coordinates), :mod:`.targets` (Gaussian
heatmap targets), :mod:`.image_io` (image files -> uint8 BGR, orientation/alpha/16-bit rules).
"""

from .geometry import (
    affine_points,
    bbox_xywh_to_center_scale,
    center_scale_to_bbox_xywh,
    clip_bbox_xywh_coco,
    compose_affine,
    get_affine_matrix,
    hflip_matrix,
    invert_affine,
)
from .heatmap import (
    DECODE_METHODS,
    argmax_keypoints,
    decode_heatmaps,
    decode_topdown,
    flip_back,
    flip_permutation,
    keypoints_to_image,
    modulate_heatmaps,
)
from .image_ops import (
    FIXED_FRAC_BITS,
    crop,
    crop_box_to_int,
    pad,
    pad_to,
    resize_bilinear,
    resize_bilinear_fixed,
    resize_keep_ratio_pad,
    warp_affine,
)
from .normalize import (
    DEFAULT_RADIX,
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    CHANNEL_ORDERS,
    NORM_MODES,
    bgr_to_channel_order,
    check_channel_order,
    check_norm,
    denormalize,
    dequantize,
    normalize,
    quantize,
)
from .image_io import ImageLoadError, apply_orientation, decode_image_bgr, exif_orientation, read_image_bgr
from .targets import gaussian_heatmaps
from .topdown import preprocess_topdown, to_network_input, topdown_matrix, warp_topdown

__all__ = [name for name in dir() if not name.startswith("_")]
