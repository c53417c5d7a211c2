"""MPII PCKh: fraction of keypoints within ``thr`` x head size of the ground truth.

MPII convention (the official evaluation script and mmpose follow it):

- head size of a person = ``0.6 * ||bottom_right - top_left||`` of its annotated head box
  (``SC_BIAS = 0.6``);
- a joint counts only where it is annotated (``joints_vis``);
- a prediction is correct when ``||pred - gt|| / head_size <= thr``;
- the summary averages over all annotated joints *except pelvis and thorax* (weighted by how many
  of each are annotated) and reports Head (head top), Shoulder, Elbow, Wrist, Hip, Knee, Ankle as the
  mean of the left and right joints, PCKh at 0.5 and PCKh@0.1. Values are in **percent**.

Ground truth, two sources:

- the **official** ``mpii_gt_val.mat`` (:func:`load_mpii_gt_mat`, read with scipy): ``pos_gt_src``
  (16 x 2 x N, 1-based MATLAB pixels), ``jnt_missing`` (16 x N, 1 = not annotated),
  ``headboxes_src`` (2 x 2 x N: top-left, bottom-right) and ``dataset_joints`` (joint names, checked
  against :data:`MPII_MAT_JOINTS`). Its N people are the entries of mmpose's ``mpii_val.json`` in
  the same order; predictions are compared in 1-based pixels as the official script does.
- **per-entry head boxes** in the JSON (mmpose MPII layout: a list of records with ``joints``
  (16x2), ``joints_vis``, ``image``, ``center``, ``scale``) as either ``headbox``
  (``[[x1, y1], [x2, y2]]``, the MPII head rectangle) or ``head_size`` (pixels, already x0.6)
  (:func:`load_mpii_gt`). mmpose's released ``mpii_val.json`` has neither; :func:`load_mpii_gt`
  says so.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from litehrnet.keypoints import MPII_16

MPII_HEAD_SIZE_FACTOR = 0.6  # SC_BIAS of the official MPII evaluation
# MPII summary groups: name -> joint indices (0-based, MPII_16 order)
MPII_SUMMARY = {
    "Head": (9,),           # head_top
    "Shoulder": (12, 13),
    "Elbow": (11, 14),
    "Wrist": (10, 15),
    "Hip": (2, 3),
    "Knee": (1, 4),
    "Ankle": (0, 5),
}
MPII_EXCLUDED_FROM_MEAN = (6, 7)  # pelvis, thorax
# ``dataset_joints`` of the official mpii_gt_val.mat, in MPII_16 order
MPII_MAT_JOINTS = ("rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thor", "neck", "head",
                   "rwri", "relb", "rsho", "lsho", "lelb", "lwri")


class PCKhError(ValueError):
    """PCKh inputs are missing or inconsistent."""


def head_size_from_headbox(headbox_n22: np.ndarray) -> np.ndarray:
    """``0.6 x`` the diagonal of each ``[[x1, y1], [x2, y2]]`` head box; returns ``(N,)`` pixels."""
    headbox_n22 = np.asarray(headbox_n22, dtype=np.float64).reshape(-1, 2, 2)
    return MPII_HEAD_SIZE_FACTOR * np.linalg.norm(headbox_n22[:, 1] - headbox_n22[:, 0], axis=1)


def pckh_correct(
    pred_xy_nk2: np.ndarray, gt_xy_nk2: np.ndarray, visible_nk: np.ndarray, head_size_n: np.ndarray,
    thr: float,
) -> np.ndarray:
    """Boolean ``(N, K)``: annotated joints predicted within ``thr`` x head size."""
    pred = np.asarray(pred_xy_nk2, dtype=np.float64)
    gt = np.asarray(gt_xy_nk2, dtype=np.float64)
    head_size_n = np.asarray(head_size_n, dtype=np.float64)
    if pred.shape != gt.shape or pred.shape[:1] != head_size_n.shape:
        raise PCKhError(f"shape mismatch: pred {pred.shape}, gt {gt.shape}, head sizes {head_size_n.shape}")
    if np.any(head_size_n <= 0):
        raise PCKhError(f"{int(np.sum(head_size_n <= 0))} head sizes are <= 0; every person needs a head box")
    dist_nk = np.linalg.norm(pred - gt, axis=2) / head_size_n[:, None]
    return (dist_nk <= thr) & (np.asarray(visible_nk) > 0)


def evaluate_pckh(
    pred_xy_nk2: np.ndarray, gt_xy_nk2: np.ndarray, visible_nk: np.ndarray, head_size_n: np.ndarray,
) -> dict[str, float]:
    """MPII summary (percent), as the official protocol reports it: Head, Shoulder, Elbow, Wrist,
    Hip, Knee, Ankle (@0.5; left/right averaged), ``PCKh`` (mean @0.5 over the annotated joints
    except pelvis and thorax), ``PCKh@0.1``; plus the groups @0.1 (``Head@0.1``, ...) and per-joint
    ``PCKh_<name>`` @0.5.

    Joints are in :data:`litehrnet.keypoints.MPII_16` order.
    """
    visible_nk = np.asarray(visible_nk) > 0
    if visible_nk.shape[1] != MPII_16.num_keypoints:
        raise PCKhError(f"MPII PCKh needs {MPII_16.num_keypoints} joints, got {visible_nk.shape[1]}")
    count_k = visible_nk.sum(axis=0).astype(np.float64)
    weight_k = count_k.copy()
    weight_k[list(MPII_EXCLUDED_FROM_MEAN)] = 0.0
    if weight_k.sum() == 0:
        raise PCKhError("no annotated joints to evaluate")
    weight_k /= weight_k.sum()
    out: dict[str, float] = {}
    for thr, key in ((0.5, "PCKh"), (0.1, "PCKh@0.1")):
        hits_k = pckh_correct(pred_xy_nk2, gt_xy_nk2, visible_nk, head_size_n, thr).sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            pck_k = np.where(count_k > 0, 100.0 * hits_k / np.maximum(count_k, 1), 0.0)
        out[key] = float(np.sum(pck_k * weight_k))
        suffix = "" if thr == 0.5 else "@0.1"
        for name, ids in MPII_SUMMARY.items():
            out[name + suffix] = float(np.mean(pck_k[list(ids)]))
        if thr == 0.5:
            for k, name in enumerate(MPII_16.keypoint_names):
                out[f"PCKh_{name}"] = float(pck_k[k])
    return out


def _mat_array(mat: dict, key: str, shape_head: tuple[int, ...], path: Path) -> np.ndarray:
    if key not in mat:
        raise PCKhError(f"{path}: no '{key}' variable; expected the official mpii_gt_val.mat "
                        "(jnt_missing, pos_gt_src, headboxes_src)")
    arr = np.asarray(mat[key], dtype=np.float64)
    if arr.ndim != len(shape_head) + 1 or arr.shape[:-1] != shape_head:
        raise PCKhError(f"{path}: '{key}' has shape {arr.shape}, expected {shape_head + ('N',)}")
    return arr


def load_mpii_gt_mat(mat_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the official ``mpii_gt_val.mat``: ``joints_xy_nk2`` (1-based, as stored), ``visible_nk``
    (``1 - jnt_missing``) and ``head_size_n`` (0.6 x head box diagonal), one row per person."""
    from scipy.io import loadmat

    mat_path = Path(mat_path)
    try:
        mat = loadmat(str(mat_path))
    except FileNotFoundError:
        raise PCKhError(f"{mat_path}: MPII ground-truth .mat not found") from None
    except (ValueError, TypeError, OSError) as exc:
        raise PCKhError(f"{mat_path}: not a readable MATLAB file ({exc})") from None
    k = MPII_16.num_keypoints
    missing = _mat_array(mat, "jnt_missing", (k,), mat_path)
    pos = _mat_array(mat, "pos_gt_src", (k, 2), mat_path)
    boxes = _mat_array(mat, "headboxes_src", (2, 2), mat_path)
    if not missing.shape[-1] == pos.shape[-1] == boxes.shape[-1]:
        raise PCKhError(f"{mat_path}: jnt_missing, pos_gt_src and headboxes_src disagree on the number of people "
                        f"({missing.shape[-1]}, {pos.shape[-1]}, {boxes.shape[-1]})")
    if "dataset_joints" in mat:
        names = tuple(str(np.ravel(v)[0]) for v in np.ravel(mat["dataset_joints"]))
        if names != MPII_MAT_JOINTS:
            raise PCKhError(f"{mat_path}: dataset_joints {list(names)} are not the MPII order {list(MPII_MAT_JOINTS)}")
    return {
        "joints_xy_nk2": pos.transpose(2, 0, 1),
        "visible_nk": 1.0 - missing.T,
        "head_size_n": head_size_from_headbox(boxes.transpose(2, 0, 1)),
    }


def load_mpii_gt(json_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an mmpose-layout MPII JSON: ``joints_xy_nk2``, ``visible_nk``, ``head_size_n``, ``image``.

    Coordinates are returned exactly as stored (MPII JSON files use 1-based MATLAB pixels; the
    caller must compare them with predictions in the same convention).
    """
    json_path = Path(json_path)
    try:
        with open(json_path, "r", encoding="utf-8") as f:
            records = json.load(f)
    except FileNotFoundError:
        raise PCKhError(f"{json_path}: MPII annotation file not found; set data.val_ann") from None
    except json.JSONDecodeError as exc:
        raise PCKhError(f"{json_path}: not valid JSON ({exc})") from None
    if not isinstance(records, list) or not records:
        raise PCKhError(f"{json_path}: expected a non-empty list of MPII records")
    heads = []
    for i, rec in enumerate(records):
        if "head_size" in rec:
            heads.append(float(rec["head_size"]))
        elif "headbox" in rec:
            heads.append(float(head_size_from_headbox(rec["headbox"])[0]))
        else:
            raise PCKhError(
                f"{json_path}: record {i} ({rec.get('image', '?')}) has no 'headbox' or 'head_size'; PCKh "
                "needs MPII head boxes: add 'headbox' [[x1, y1], [x2, y2]] per record (from mpii_gt_val.mat)"
            )
    return {
        "joints_xy_nk2": np.array([r["joints"] for r in records], dtype=np.float64),
        "visible_nk": np.array([r["joints_vis"] for r in records], dtype=np.float64),
        "head_size_n": np.array(heads, dtype=np.float64),
        "image": np.array([r["image"] for r in records]),
    }
