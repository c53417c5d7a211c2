"""``LoadImageFromFile`` (mmpose 0.x ``datasets/pipelines/loading.py``) on :mod:`prepostprocess`.

Unlike mmpose 0.x (RGB by default) the image is always uint8 ``HxWx3`` **BGR**; the network's
channel order is applied once, in ``NormalizeTensor`` (via ``prepostprocess.to_network_input``),
exactly as the deploy runners do. Grayscale, alpha, 16-bit and EXIF orientation follow the rules of
:mod:`prepostprocess.image_io`; a missing or corrupt file raises ``ImageLoadError`` naming it.
"""

from __future__ import annotations

from prepostprocess.image_io import ImageLoadError, read_image_bgr

__all__ = ["ImageLoadError", "LoadImageFromFile"]


class LoadImageFromFile:
    """Read ``results["image_file"]``.

    Needs: ``image_file``. Adds: ``img`` (uint8 HxWx3 BGR), ``img_hw`` (original height, width).
    """

    def __call__(self, results: dict) -> dict:
        img = read_image_bgr(results["image_file"])
        results["img"] = img
        results["img_hw"] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return "LoadImageFromFile()"
