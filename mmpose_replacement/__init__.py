"""Replacements for the four mmpose 0.x files Kneron changed, built on :mod:`prepostprocess`.

``TRANSFORMS`` is a plain name -> class table; ``build_transform({"type": name, **kwargs})`` and
``build_pipeline([...])`` turn config dicts into a :class:`Compose`. No registry machinery.
"""

from __future__ import annotations

from typing import Iterable

from .loading import ImageLoadError, LoadImageFromFile
from .post_transforms import (
    PIXEL_STD,
    affine_transform,
    flip_back,
    fliplr_joints,
    get_affine_transform,
    px_to_scale,
    scale_to_px,
    transform_preds,
)
from .shared_transform import Collect, Compose, NormalizeTensor, ToTensor, norm_from_mean_std
from .top_down_transform import (
    TopDownAffine,
    TopDownGenerateTarget,
    TopDownGetBboxCenterScale,
    TopDownGetRandomScaleRotation,
    TopDownHalfBodyTransform,
    TopDownRandomFlip,
    TopDownRandomShiftBboxCenter,
)

TRANSFORMS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        LoadImageFromFile,
        TopDownGetBboxCenterScale,
        TopDownRandomShiftBboxCenter,
        TopDownRandomFlip,
        TopDownHalfBodyTransform,
        TopDownGetRandomScaleRotation,
        TopDownAffine,
        TopDownGenerateTarget,
        ToTensor,
        NormalizeTensor,
        Collect,
    )
}


def build_transform(spec: dict):
    """``{"type": "TopDownAffine", "input_hw": [256, 192]}`` -> a transform instance."""
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError(f"pipeline step must be a dict with a 'type' key, got {spec!r}")
    kwargs = dict(spec)
    name = kwargs.pop("type")
    if name not in TRANSFORMS:
        raise ValueError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}")
    try:
        return TRANSFORMS[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"transform {name}: bad arguments {sorted(kwargs)} ({exc})") from None


def build_pipeline(specs: Iterable[dict]) -> Compose:
    """A :class:`Compose` from a list of step dicts."""
    return Compose(list(specs))
