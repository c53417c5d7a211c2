"""Top-down dict transforms with the mmpose 0.x names, built on :mod:`prepostprocess`.

Keys used by this project's pipelines (units in the names; pixels everywhere):

- ``img``: uint8 ``HxWx3`` BGR (full image until ``TopDownAffine``, then the network-input crop)
- ``bbox_xywh`` (4,), ``center_xy`` (2,), ``scale_wh_px`` (2,), ``rotation`` (degrees), ``flipped``
- ``joints_xy`` (K, 2) float64 image pixels (input pixels after ``TopDownAffine``), ``joints_visible`` (K,)
- ``rng``: optional ``numpy.random.Generator`` used by the random transforms (else a fresh one)

Differences from mmpose 0.x: no hidden ``ann_info`` (sizes, flip pairs and body-part ids are
constructor arguments), scale in pixels (mmpose's 200-px unit only in :mod:`.post_transforms`),
``input_hw`` is (height, width), targets come from a codec object (as mmpose 1.x's
``GenerateTarget(encoder=...)``), UDP is not supported. Random draws follow mmpose
0.x (including its half-body quirk ``randn() < 0.5`` choosing the upper body ~69% of the time).
"""

from __future__ import annotations

import cv2
import numpy as np

import prepostprocess as pp


def _rng(results: dict) -> np.random.Generator:
    rng = results.get("rng")
    return rng if rng is not None else np.random.default_rng()


class TopDownGetBboxCenterScale:
    """Box -> centre/scale. Needs ``bbox_xywh``; adds ``center_xy``, ``scale_wh_px``."""

    def __init__(self, input_hw: tuple[int, int], padding: float = 1.25) -> None:
        self.aspect_wh = input_hw[1] / input_hw[0]
        self.padding = padding

    def __call__(self, results: dict) -> dict:
        results["center_xy"], results["scale_wh_px"] = pp.bbox_xywh_to_center_scale(
            results["bbox_xywh"], self.aspect_wh, self.padding
        )
        return results


class TopDownRandomShiftBboxCenter:
    """With probability ``prob`` move the centre by ``U(-1, 1) * shift_factor * scale``.

    Needs ``center_xy``, ``scale_wh_px``; changes ``center_xy``.
    """

    def __init__(self, shift_factor: float = 0.16, prob: float = 0.3) -> None:
        self.shift_factor, self.prob = shift_factor, prob

    def __call__(self, results: dict) -> dict:
        rng = _rng(results)
        if rng.random() < self.prob:
            shift = rng.uniform(-1, 1, 2) * self.shift_factor * results["scale_wh_px"]
            results["center_xy"] = results["center_xy"] + shift
        return results


class TopDownRandomFlip:
    """Horizontal flip with probability ``flip_prob``.

    Needs ``img``, ``center_xy``, optionally ``joints_xy``/``joints_visible``; changes them (image
    mirrored, ``x -> W - 1 - x``, left/right joints swapped); adds ``flipped``.
    """

    def __init__(self, flip_pairs, flip_prob: float = 0.5) -> None:
        self.flip_pairs, self.flip_prob = tuple(map(tuple, flip_pairs)), flip_prob

    def __call__(self, results: dict) -> dict:
        flipped = bool(_rng(results).random() <= self.flip_prob) if self.flip_prob > 0 else False
        results["flipped"] = flipped
        if not flipped:
            return results
        img_w = results["img"].shape[1]
        results["img"] = cv2.flip(results["img"], 1)
        center = np.array(results["center_xy"], dtype=np.float64)
        center[0] = img_w - 1 - center[0]
        results["center_xy"] = center
        if "joints_xy" in results:
            perm = pp.flip_permutation(self.flip_pairs, len(results["joints_xy"]))
            joints = np.array(results["joints_xy"], dtype=np.float64)[perm]
            joints[:, 0] = img_w - 1 - joints[:, 0]
            results["joints_xy"] = joints
            results["joints_visible"] = np.asarray(results["joints_visible"])[perm]
        return results


class TopDownHalfBodyTransform:
    """With probability ``prob_half_body``, when more than ``num_joints_half_body`` joints are
    visible, re-centre the box on the upper or lower body joints (box of those joints fitted to the
    input aspect, times ``padding``; centre = their mean).

    Needs ``joints_xy``, ``joints_visible``; changes ``center_xy``, ``scale_wh_px``.
    """

    def __init__(
        self,
        upper_body_ids,
        input_hw: tuple[int, int],
        num_joints_half_body: int = 8,
        prob_half_body: float = 0.3,
        padding: float = 1.5,
    ) -> None:
        self.upper = np.array(sorted(upper_body_ids), dtype=np.intp)
        self.aspect_wh = input_hw[1] / input_hw[0]
        self.min_joints, self.prob, self.padding = num_joints_half_body, prob_half_body, padding

    def __call__(self, results: dict) -> dict:
        visible = np.asarray(results["joints_visible"]) > 0
        rng = _rng(results)
        if visible.sum() <= self.min_joints or rng.random() >= self.prob:
            return results
        is_upper = np.zeros(len(visible), bool)
        is_upper[self.upper] = True
        upper = results["joints_xy"][visible & is_upper]
        lower = results["joints_xy"][visible & ~is_upper]
        if rng.standard_normal() < 0.5 and len(upper) > 2:
            selected = upper
        else:
            selected = lower if len(lower) > 2 else upper
        if len(selected) < 2:
            return results
        w, h = selected.max(axis=0) - selected.min(axis=0)
        w, h = (w, w / self.aspect_wh) if w > self.aspect_wh * h else (h * self.aspect_wh, h)
        results["center_xy"] = selected.mean(axis=0)
        results["scale_wh_px"] = np.array([w, h]) * self.padding
        return results


class TopDownGetRandomScaleRotation:
    """Scale x ``clip(N(1, sf), 1-sf, 1+sf)``; rotation ``clip(N(0, rf), -2rf, 2rf)`` with
    probability ``rot_prob`` (else 0).

    Needs ``scale_wh_px``; changes ``scale_wh_px``; adds ``rotation`` (degrees).
    """

    def __init__(self, rot_factor: float = 40.0, scale_factor: float = 0.5, rot_prob: float = 0.6) -> None:
        self.rot_factor, self.scale_factor, self.rot_prob = rot_factor, scale_factor, rot_prob

    def __call__(self, results: dict) -> dict:
        rng = _rng(results)
        sf, rf = self.scale_factor, self.rot_factor
        results["scale_wh_px"] = results["scale_wh_px"] * np.clip(rng.standard_normal() * sf + 1, 1 - sf, 1 + sf)
        rot = float(np.clip(rng.standard_normal() * rf, -2 * rf, 2 * rf))
        results["rotation"] = rot if rng.random() <= self.rot_prob else 0.0
        return results


class TopDownAffine:
    """Affine crop to the network input with :func:`prepostprocess.warp_topdown` (the deploy crop).

    Needs ``img``, ``center_xy``, ``scale_wh_px``, optional ``rotation`` (0), ``joints_xy``;
    changes ``img`` (uint8 ``input_hw`` BGR crop) and ``joints_xy`` (to input pixels); adds
    ``affine_matrix`` (image -> input).
    """

    def __init__(self, input_hw: tuple[int, int], use_udp: bool = False) -> None:
        if use_udp:
            raise ValueError("TopDownAffine: use_udp=True is not supported (UDP is not part of this project)")
        self.input_hw = (int(input_hw[0]), int(input_hw[1]))

    def __call__(self, results: dict) -> dict:
        rot = float(results.setdefault("rotation", 0.0))
        center, scale = results["center_xy"], results["scale_wh_px"]
        results["img"] = pp.warp_topdown(results["img"], center, scale, self.input_hw, rot)
        mat = pp.get_affine_matrix(center, scale, rot, self.input_hw)
        results["affine_matrix"] = mat
        if "joints_xy" in results:
            results["joints_xy"] = pp.affine_points(results["joints_xy"], mat)
        return results


class TopDownGenerateTarget:
    """Heatmap targets from the model's codec (``litehrnet.data.HeatmapCodec``).

    ``codec``: any object with ``encode(joints_xy (K, 2) input px, joints_visible (K,)) ->
    (target (K, h, w), target_weight (K, 1))``; the codec owns the stride, sigma and centring rule
    (``subpixel=False`` is mmpose 0.x's classic MSRA target, ``unbiased_encoding=False``), and the
    decode side of every backend uses the same object.
    Needs ``joints_xy`` (input pixels), ``joints_visible``; adds ``target`` (K, h, w) float32 and
    ``target_weight`` (K, 1) float32.
    """

    def __init__(self, codec) -> None:
        if not callable(getattr(codec, "encode", None)):
            raise ValueError(f"TopDownGenerateTarget: codec must have an encode() method, got {type(codec).__name__}")
        self.codec = codec

    def __call__(self, results: dict) -> dict:
        results["target"], results["target_weight"] = self.codec.encode(
            np.asarray(results["joints_xy"]), results["joints_visible"]
        )
        return results
