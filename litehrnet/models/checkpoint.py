"""Load official and own checkpoints into a :class:`PoseModel`.

Accepted layouts (all read with ``torch.load(..., weights_only=True)``):

- mmpose 0.x full model / our training checkpoints: ``{"state_dict": {"backbone.*",
  "keypoint_head.*"}, "meta": {...}, ...}``;
- mmpose 1.x: the same with the head under ``head.*`` (``data_preprocessor.*`` entries dropped);
- a bare backbone state dict (``stem.conv1.conv.weight``, ... or ``conv1.weight`` for HRNet), at
  top level or under ``state_dict``: only the backbone is loaded, the head keeps its init;
- any of the above with a ``module.`` (DataParallel) prefix.

A mismatch raises one :class:`CheckpointError` whose message names the file, the model's
variant, the first missing / unexpected / wrongly shaped keys, and the variant (and config) the
checkpoint most likely belongs to.
"""

from __future__ import annotations

import functools
import os
import pickle
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .variants import VARIANTS

SHOW_KEYS = 3  # keys listed per category in error messages


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model."""


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict]:
    """Return ``(state_dict, meta)`` of a checkpoint file, keys as stored (not normalised)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found; check the path")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "Unsupported" in line), "")
        detail = detail.split("Unsupported", 1)[-1].split(" was not an allowed")[0]
        detail = f" (unsupported{detail})" if detail else ""
        raise CheckpointError(
            f"{path}: refused by torch.load(weights_only=True){detail}; it is not a PyTorch "
            "checkpoint or it pickles Python objects: re-save it as a plain state_dict") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged files
        raise CheckpointError(
            f"{path}: unreadable checkpoint ({type(exc).__name__}); the file is truncated or not a "
            "PyTorch checkpoint: download / copy it again") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(obj).__name__}")
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    state = obj["state_dict"] if isinstance(obj.get("state_dict"), dict) else obj
    tensors = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if not tensors:
        raise CheckpointError(
            f"{path}: no tensors found (top-level keys: {', '.join(map(str, list(obj)[:8]))}); "
            "expected a state_dict or a dict with 'state_dict'")
    return tensors, meta


def to_model_layout(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], str]:
    """Rename keys to our (= mmpose 0.x) layout; return ``(state, layout)`` where layout is
    ``mmpose0`` (incl. ours), ``mmpose1`` or ``backbone`` (bare backbone, keys without prefix)."""
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("data_preprocessor.")}
    if any(k.startswith("head.") for k in state):
        renamed = {("keypoint_head." + k[len("head."):] if k.startswith("head.") else k): v
                   for k, v in state.items()}
        return renamed, "mmpose1"
    if any(k.startswith(("backbone.", "keypoint_head.")) for k in state):
        return state, "mmpose0"
    return {"backbone." + k: v for k, v in state.items()}, "backbone"


# ----------------------------------------------------------------------------------------------
# Diagnosis
# ----------------------------------------------------------------------------------------------
# a key only one architecture has, to avoid building the other family's backbones
_ARCH_MARKERS = {"litehrnet": "backbone.stem.conv1.conv.weight", "hrnet": "backbone.layer1.0.conv1.weight"}


@functools.lru_cache(maxsize=None)
def _backbone_signature(variant: str) -> frozenset:
    """``{(key, shape)}`` of a variant's backbone state dict (built once, default init)."""
    from . import BACKBONE_BUILDERS

    row = VARIANTS[variant]
    backbone = BACKBONE_BUILDERS[row["arch"]](row)  # no mmpose init: only names and shapes matter
    return frozenset((k, tuple(v.shape)) for k, v in backbone.state_dict().items())


def guess_variant(state: dict[str, Tensor]) -> str | None:
    """The variant whose backbone keys and shapes best match ``state`` (model layout), or None."""
    sig = frozenset((k[len("backbone."):], tuple(v.shape)) for k, v in state.items()
                    if k.startswith("backbone."))
    archs = [arch for arch, marker in _ARCH_MARKERS.items() if marker in state]
    best, best_score = None, 0.0
    for variant, row in VARIANTS.items():
        if not sig or row["arch"].split("_")[0] not in archs:  # e.g. "litehrnet_npu" -> litehrnet
            continue
        ref = _backbone_signature(variant)
        score = len(sig & ref) / len(sig | ref)
        if score > best_score:
            best, best_score = variant, score
    return best if best_score > 0.5 else None


def _num_keypoints(state: dict[str, Tensor]) -> int | None:
    w = state.get("keypoint_head.final_layer.weight")
    return int(w.shape[0]) if w is not None else None


def suggest_config(variant: str, num_keypoints: int | None) -> str:
    """Config path matching a variant and keypoint count (MPII for 16, COCO otherwise)."""
    if num_keypoints == 16:
        return f"configs/mpii/{variant}_mpii_256x256.yaml"
    return f"configs/coco/{variant}_coco_256x192.yaml"


def _first(keys, n: int = SHOW_KEYS) -> str:
    keys = sorted(keys)
    more = f", ... (+{len(keys) - n})" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def mismatch_message(path: Path, model: nn.Module, layout: str, missing: set, unexpected: set,
                     wrong_shape: dict, state: dict[str, Tensor]) -> str:
    variant = getattr(model, "variant", type(model).__name__)
    parts = [f"{path}: checkpoint ({layout} layout) does not fit model '{variant}'"]
    if missing:
        parts.append(f"{len(missing)} missing keys ({_first(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_first(unexpected)})")
    if wrong_shape:
        k = sorted(wrong_shape)[0]
        ckpt_shape, model_shape = wrong_shape[k]
        parts.append(f"{len(wrong_shape)} shape mismatches (e.g. {k}: checkpoint {ckpt_shape} vs model {model_shape})")
    guess = guess_variant(state)
    k_ckpt = _num_keypoints(state)
    if guess is not None:
        hint = f"it looks like a '{guess}' checkpoint"
        if k_ckpt is not None:
            hint += f" with {k_ckpt} keypoints"
        hint += f": use {suggest_config(guess, k_ckpt)} (or model.variant={guess}"
        hint += f", model.num_keypoints={k_ckpt})" if k_ckpt is not None else ")"
        parts.append(hint)
    else:
        parts.append("it matches no known variant: check that it is a Lite-HRNet/HRNet pose checkpoint")
    return "; ".join(parts)


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def load_checkpoint(model: nn.Module, path: str | os.PathLike, strict: bool = True) -> dict:
    """Load ``path`` into ``model`` (a :class:`PoseModel`) and return the checkpoint's ``meta``.

    ``strict=True``: every key must exist on both sides with the same shape (a bare backbone
    checkpoint is compared with the backbone only; missing BN ``num_batches_tracked`` counters
    are tolerated), else :class:`CheckpointError`.
    ``strict=False``: load what fits, warn about the rest (e.g. a 17-keypoint head into a
    16-keypoint model).
    """
    path = Path(path)
    state, meta = read_checkpoint(path)
    state, layout = to_model_layout(state)
    target = model.state_dict()
    if layout == "backbone":
        target = {k: v for k, v in target.items() if k.startswith("backbone.")}
    # BN ``num_batches_tracked`` counters are absent from older checkpoints and unused at inference
    missing = {k for k in set(target) - set(state) if not k.endswith("num_batches_tracked")}
    unexpected = set(state) - set(target)
    wrong_shape = {k: (tuple(state[k].shape), tuple(target[k].shape))
                   for k in set(state) & set(target) if state[k].shape != target[k].shape}
    if missing or unexpected or wrong_shape:
        message = mismatch_message(path, model, layout, missing, unexpected, wrong_shape, state)
        if strict:
            raise CheckpointError(message)
        warnings.warn(message + " (strict=False: loading the matching keys only)", stacklevel=2)
    loadable = {k: v for k, v in state.items() if k in target and k not in wrong_shape}
    model.load_state_dict(loadable, strict=False)
    return meta
