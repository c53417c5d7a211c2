"""A synthetic COCO-format person-keypoint dataset that the project generates itself.

Each image holds one or two articulated stick figures drawn over a random background (gradients,
blurred noise, clutter shapes). A figure has the 17 COCO body keypoints: a head disc with eyes,
nose and ears, a torso polygon, and two-segment arms and legs whose joint angles are random.

Left/right convention: every figure faces the camera, so its anatomical *left* shoulder, hip, eye
and ear lie on the image's *right* side of the torso axis, as for a real person seen from the
front. A horizontal flip followed by swapping the COCO flip pairs keeps that convention, so flip
augmentation and flip test behave exactly as on real data. Limbs may cross the body.

Keypoints hidden by a clutter shape drawn over the figure get visibility 1 (labelled, occluded),
keypoints outside the image get visibility 0 with coordinates (0, 0), the rest visibility 2.

Output layout (what ``data.root`` of a config points at)::

    <root>/annotations/person_keypoints_train.json   <root>/train/000000.png ...
    <root>/annotations/person_keypoints_val.json     <root>/val/000000.png ...

Everything is a pure function of ``seed``: the same seed gives byte-identical files (PNG).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from litehrnet.keypoints import COCO_BODY_17

SPLITS = ("train", "val")


@dataclass(frozen=True)
class SyntheticSpec:
    """Sizes of the generated set. Figure heights are in pixels (head top to ankles, upright)."""

    num_train: int = 64
    num_val: int = 16
    image_hw: tuple[int, int] = (160, 128)
    figure_height_px: tuple[int, int] = (64, 140)
    max_figures: int = 2
    seed: int = 0


def _rot(vec_xy: np.ndarray, angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([c * vec_xy[0] - s * vec_xy[1], s * vec_xy[0] + c * vec_xy[1]])


def _limb(start_xy: np.ndarray, down_xy: np.ndarray, outward_sign: float, lengths: tuple[float, float],
          swing_rad: float, bend_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-segment limb from ``start_xy``; angles are measured from ``down_xy`` toward the outside."""
    upper_dir = _rot(down_xy, -outward_sign * swing_rad)
    mid = start_xy + lengths[0] * upper_dir
    lower_dir = _rot(upper_dir, bend_rad)
    return mid, mid + lengths[1] * lower_dir


def figure_keypoints(rng: np.random.Generator, height_px: float, origin_xy: np.ndarray) -> np.ndarray:
    """Random pose: (17, 2) image coordinates in COCO order for a figure of ``height_px``."""
    h = float(height_px)
    tilt = rng.uniform(-0.35, 0.35)                      # torso lean, radians
    up = _rot(np.array([0.0, -1.0]), tilt)               # pelvis -> neck
    right_img = _rot(np.array([1.0, 0.0]), tilt)         # toward the image right = anatomical left
    down = -up
    pelvis = origin_xy
    neck = pelvis + 0.30 * h * up
    kp = np.zeros((17, 2))
    half_sh, half_hip = 0.11 * h * rng.uniform(0.85, 1.15), 0.075 * h * rng.uniform(0.85, 1.15)
    kp[5], kp[6] = neck + half_sh * right_img, neck - half_sh * right_img        # l/r shoulder
    kp[11], kp[12] = pelvis + half_hip * right_img, pelvis - half_hip * right_img  # l/r hip
    head = neck + 0.11 * h * up
    yaw = rng.uniform(-0.5, 0.5)                        # face turn, in half-head-widths
    r_head = 0.07 * h
    kp[0] = head + 0.25 * r_head * down + yaw * 0.5 * r_head * right_img           # nose
    for left, idx_eye, idx_ear in ((1.0, 1, 3), (-1.0, 2, 4)):
        side = left * right_img
        kp[idx_eye] = head + 0.35 * r_head * side + 0.25 * r_head * up + yaw * 0.4 * r_head * right_img
        kp[idx_ear] = head + 0.95 * r_head * side
    for sign, sh, el, wr in ((1.0, 5, 7, 9), (-1.0, 6, 8, 10)):
        kp[el], kp[wr] = _limb(kp[sh], down, sign, (0.17 * h, 0.15 * h),
                               rng.uniform(-0.3, 2.8), sign * rng.uniform(0.0, 2.3))
    for sign, hip, kn, an in ((1.0, 11, 13, 15), (-1.0, 12, 14, 16)):
        kp[kn], kp[an] = _limb(kp[hip], down, sign, (0.24 * h, 0.23 * h),
                               rng.uniform(-0.25, 1.0), rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 1.6))
    return kp


def _background(rng: np.random.Generator, image_hw: tuple[int, int]) -> np.ndarray:
    h, w = image_hw
    kind = rng.integers(3)
    if kind == 0:  # two-colour linear gradient
        a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        t = np.linspace(0.0, 1.0, w if rng.random() < 0.5 else h)
        ramp = a[None] * (1 - t[:, None]) + b[None] * t[:, None]
        img = np.broadcast_to(ramp[None] if len(t) == w else ramp[:, None], (h, w, 3))
    elif kind == 1:  # blurred colour noise
        img = cv2.GaussianBlur(rng.uniform(0, 255, (h, w, 3)), (0, 0), rng.uniform(2.0, 8.0))
    else:  # flat colour
        img = np.broadcast_to(rng.uniform(0, 255, 3), (h, w, 3))
    img = np.ascontiguousarray(img, dtype=np.float64)
    img += rng.normal(0.0, 6.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _clutter(rng: np.random.Generator, img_bgr: np.ndarray, count: int) -> None:
    h, w = img_bgr.shape[:2]
    for _ in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.circle(img_bgr, (x, y), int(rng.integers(3, max(4, min(h, w) // 6))), colour, -1, cv2.LINE_AA)
        else:
            x2, y2 = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(img_bgr, (x, y), (x2, y2), colour, int(rng.integers(1, 4)), cv2.LINE_AA)


def _draw_figure(rng: np.random.Generator, img_bgr: np.ndarray, kp: np.ndarray, height_px: float) -> None:
    skin = tuple(int(c) for c in rng.integers(40, 256, 3))
    cloth = tuple(int(c) for c in rng.integers(0, 256, 3))
    pants = tuple(int(c) for c in rng.integers(0, 256, 3))
    thick = max(2, int(round(0.05 * height_px)))
    pt = lambda i: tuple(int(round(v)) for v in kp[i] * 16)  # noqa: E731  (4 fractional bits)
    aa = dict(lineType=cv2.LINE_AA, shift=4)
    torso = np.round(kp[[5, 6, 12, 11]] * 16).astype(np.int32)
    cv2.fillConvexPoly(img_bgr, torso, cloth, cv2.LINE_AA, 4)
    for a, b, colour in ((11, 13, pants), (13, 15, pants), (12, 14, pants), (14, 16, pants),
                         (5, 7, cloth), (7, 9, skin), (6, 8, cloth), (8, 10, skin)):
        cv2.line(img_bgr, pt(a), pt(b), colour, thick, **aa)
    head = (kp[3] + kp[4]) / 2
    cv2.circle(img_bgr, tuple(int(round(v * 16)) for v in head), int(round(0.07 * height_px * 16)), skin, -1, **aa)
    dark = tuple(int(c) // 4 for c in skin)
    for i in (1, 2):
        cv2.circle(img_bgr, pt(i), max(16, int(0.012 * height_px * 16)), dark, -1, **aa)
    cv2.circle(img_bgr, pt(0), max(16, int(0.01 * height_px * 16)), (0, 0, 200), -1, **aa)


def _occluders(rng: np.random.Generator, img_bgr: np.ndarray, kp: np.ndarray, vis: np.ndarray) -> None:
    """Maybe draw one rectangle over part of the figure; covered keypoints become visibility 1."""
    if rng.random() >= 0.3:
        return
    centre = kp[rng.integers(17)]
    half = rng.uniform(4, 14, 2)
    x0, y0 = centre - half
    x1, y1 = centre + half
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    cv2.rectangle(img_bgr, (int(x0), int(y0)), (int(x1), int(y1)), colour, -1)
    inside = (kp[:, 0] >= int(x0)) & (kp[:, 0] <= int(x1)) & (kp[:, 1] >= int(y0)) & (kp[:, 1] <= int(y1))
    vis[inside & (vis == 2)] = 1


def _annotation(kp: np.ndarray, vis: np.ndarray, image_hw: tuple[int, int], height_px: float) -> dict | None:
    h, w = image_hw
    in_img = (kp[:, 0] >= 0) & (kp[:, 0] <= w - 1) & (kp[:, 1] >= 0) & (kp[:, 1] <= h - 1)
    vis = np.where(in_img, vis, 0)
    if (vis > 0).sum() < 4:
        return None
    margin = 0.08 * height_px                                # limbs and head have thickness
    lo = np.clip(kp[vis > 0].min(0) - margin, 0, [w - 1, h - 1])
    hi = np.clip(kp[vis > 0].max(0) + margin, 0, [w - 1, h - 1])
    bbox = [round(float(lo[0]), 2), round(float(lo[1]), 2),
            round(float(hi[0] - lo[0]), 2), round(float(hi[1] - lo[1]), 2)]
    flat: list[float] = []
    for (x, y), v in zip(kp, vis):
        flat += [round(float(x), 2), round(float(y), 2), int(v)] if v > 0 else [0, 0, 0]
    return {"bbox": bbox, "area": round(bbox[2] * bbox[3] * 0.6, 2), "keypoints": flat,
            "num_keypoints": int((vis > 0).sum()), "iscrowd": 0, "category_id": 1}


def render_image(rng: np.random.Generator, spec: SyntheticSpec) -> tuple[np.ndarray, list[dict]]:
    """One image (BGR uint8) and its person annotations (without ids)."""
    h, w = spec.image_hw
    img = _background(rng, spec.image_hw)
    _clutter(rng, img, int(rng.integers(0, 6)))
    anns: list[dict] = []
    n_fig = int(rng.integers(1, spec.max_figures + 1))
    slots = np.linspace(0, w, n_fig + 1)
    for k in range(n_fig):
        fig_h = rng.uniform(*spec.figure_height_px)
        origin = np.array([rng.uniform(slots[k] + 0.25 * (slots[k + 1] - slots[k]),
                                       slots[k] + 0.75 * (slots[k + 1] - slots[k])),
                           rng.uniform(0.45 * fig_h, h - 0.4 * fig_h)])
        kp = figure_keypoints(rng, fig_h, origin)
        _draw_figure(rng, img, kp, fig_h)
        vis = np.full(17, 2)
        _occluders(rng, img, kp, vis)
        ann = _annotation(kp, vis, spec.image_hw, fig_h)
        if ann is not None:
            anns.append(ann)
    return img, anns


def _categories() -> list[dict]:
    info = COCO_BODY_17
    return [{"id": 1, "name": "person", "supercategory": "person",
             "keypoints": list(info.keypoint_names),
             "skeleton": [[a + 1, b + 1] for a, b in info.skeleton]}]


def _write_json_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)


def _write_png_atomic(img_bgr: np.ndarray, path: Path) -> None:
    ok, buf = cv2.imencode(".png", img_bgr)
    if not ok:
        raise OSError(f"{path}: PNG encoding failed")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def make_synthetic_coco(root: str | os.PathLike, spec: SyntheticSpec = SyntheticSpec()) -> dict[str, Path]:
    """Write the train and val splits under ``root``; return ``{split: annotation_path}``.

    Each split draws from its own seeded stream, so ``val`` images are held out from ``train``
    and adding training images does not change the validation set.
    """
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for split_idx, (split, count) in enumerate(zip(SPLITS, (spec.num_train, spec.num_val))):
        rng = np.random.default_rng([spec.seed, split_idx])
        img_dir = root / split
        img_dir.mkdir(exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            img, anns = render_image(rng, spec)
            name = f"{i:06d}.png"
            _write_png_atomic(img, img_dir / name)
            images.append({"id": i + 1, "file_name": name, "height": spec.image_hw[0], "width": spec.image_hw[1]})
            for ann in anns:
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, **ann})
        ann_path = root / "annotations" / f"person_keypoints_{split}.json"
        _write_json_atomic({"info": {"description": "litehrnet-kneron synthetic stick figures", "seed": spec.seed},
                            "images": images, "annotations": annotations, "categories": _categories()}, ann_path)
        out[split] = ann_path
    return out


def synthetic_data_config(root: str | os.PathLike) -> dict:
    """The ``data`` config keys that point a COCO-format dataset at a generated ``root``."""
    return {"root": str(root), "train_ann": "annotations/person_keypoints_train.json", "train_img_dir": "train",
            "val_ann": "annotations/person_keypoints_val.json", "val_img_dir": "val"}
