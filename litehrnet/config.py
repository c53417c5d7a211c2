"""Experiment configs: YAML files with ``_base_`` inheritance and strict keys.

A config file is plain YAML read with ``yaml.safe_load`` (never evaluated). It may name one or
more parent files in ``_base_`` (paths relative to the file itself); parents are merged first, in
order, then the file's own keys are merged over them (dicts merge recursively, everything else
replaces). The result is checked against :data:`SCHEMA`: an unknown key anywhere is an error that
lists the valid keys at that level, and a value of the wrong type is an error naming the key.

Every key has a default in :data:`SCHEMA`, so a config only states what differs. The resolved
config is a nested ``dict``; :func:`dump_config` writes it back as YAML (saved next to checkpoints).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Iterable

import yaml

# Default values double as the schema: the set of valid keys and their types.
# ``None`` means "no default; any type (or null) accepted".
SCHEMA: dict[str, Any] = {
    "model": {
        "variant": "litehrnet_18",          # a key of litehrnet.models.VARIANTS
        "num_keypoints": 17,
        "input_hw": [256, 192],             # network input, height x width (divisible by 32)
        "head": {
            "num_deconv_layers": 0,
            "num_deconv_filters": [256, 256, 256],
            "num_deconv_kernels": [4, 4, 4],
            "final_conv_kernel": 1,
        },
    },
    "data": {
        "dataset": "coco",                  # coco | mpii | coco_custom
        "keypoint_layout": "coco",          # coco | mpii (see litehrnet.keypoints)
        "root": "data/coco",                # relative paths resolve against the working directory
        "train_ann": "annotations/person_keypoints_train2017.json",
        "train_img_dir": "train2017",
        "val_ann": "annotations/person_keypoints_val2017.json",
        "val_img_dir": "val2017",
        "val_gt_mat": None,                 # MPII: official mpii_gt_val.mat (null: next to val_ann when present)
        "det_file": None,                   # person detections (COCO results JSON) for testing
        "det_score_thr": 0.0,
        "use_gt_bbox": True,                # validation/test boxes: GT (True) or det_file (False)
        "bbox_padding": 1.25,
        "norm": "torch",                    # prepostprocess.normalize.NORM_MODES (docs/data.md)
        "channel_order": "rgb",             # rgb | bgr: order of the network's input channels
        "sigma": 2.0,                       # Gaussian target sigma (heatmap px)
        "subpixel_target": True,            # Gaussian centred at the exact position (False: mmpose 0.x rounding)
        "target_weight_by_visibility": True,
        "aug": {
            "flip_prob": 0.5,
            "half_body_prob": 0.3,
            "half_body_min_joints": 8,
            "rot_factor": 30.0,
            "rot_prob": 0.6,
            "scale_factor": 0.25,
            "shift_factor": 0.0,
            "shift_prob": 0.0,
        },
        "workers": 2,
    },
    "train": {
        "epochs": 210,
        "batch_size": 64,                   # per process
        "optimizer": {"type": "adam", "lr": 2.0e-3, "weight_decay": 0.0, "momentum": 0.9},
        "lr_schedule": {
            "warmup_iters": 500,
            "warmup_ratio": 1.0e-3,
            "steps": [170, 200],
            "gamma": 0.1,
        },
        "autoscale_base_batch": 512,        # total batch the official lr was tuned for
        "grad_clip": None,
        "log_interval": 50,
        "checkpoint_interval": 1,
        "validate_interval": 10,
        "max_keep_checkpoints": 3,
        "seed": 0,
        "max_iters": None,                  # stop after this many iterations in total (smoke runs, benchmarks)
    },
    "test": {
        "batch_size": 32,
        "flip_test": True,
        "shift_heatmap": True,
        "decode": "default",                # default | dark
        "dark_kernel": 11,
        "oks_nms_thr": 0.9,
        "kpt_score_thr": 0.2,
        "metric": "mAP",                    # mAP | PCKh
        "nms": "oks",                       # oks | soft_oks | none (per-image pose NMS before COCO eval)
        "only_predicted_images": False,     # COCO eval over images that got predictions only (det subsets)
    },
    "export": {
        "opset": 11,
        "simplify": True,
        "check_npu": [],
    },
}


class ConfigError(ValueError):
    """A config file is unreadable, malformed, or has an unknown key / wrong type."""




class SafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also reads ``4e-5`` / ``1E3`` as floats.

    YAML 1.1 (PyYAML) only accepts exponents with a dot (``4.0e-5``), so ``lr: 4e-5`` became the
    string ``'4e-5'`` and failed validation with a puzzling "must be float" message.
    """


SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)

def _read_yaml(path: Path) -> dict:
    try:
        with open(path, "r", encoding="utf-8") as f:
            data = yaml.load(f, Loader=SafeLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__}: {exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (dicts merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"{path}: _base_ cycle ({chain})")
    data = _read_yaml(path)
    bases = data.pop("_base_", [])
    if isinstance(bases, str):
        bases = [bases]
    merged: dict = {}
    for base in bases:
        merged = merge(merged, _load_with_bases(path.parent / base, (*seen, path)))
    return merge(merged, data)


def _check_type(key: str, value: Any, default: Any, source: str) -> None:
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float):
            ok = value.is_integer()
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, (list, tuple))
    elif isinstance(default, dict):
        ok = isinstance(value, dict)
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"{source}: key '{key}' must be {type(default).__name__} (like {default!r}), "
            f"got {type(value).__name__} {value!r}"
        )


def validate(cfg: dict, schema: dict = SCHEMA, source: str = "config", prefix: str = "") -> None:
    """Raise :class:`ConfigError` on the first unknown key or wrongly typed value."""
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            valid = ", ".join(sorted(schema))
            where = f"under '{prefix[:-1]}'" if prefix else "at top level"
            raise ConfigError(f"{source}: unknown key '{dotted}' {where}; valid keys: {valid}")
        default = schema[key]
        _check_type(dotted, value, default, source)
        if isinstance(default, dict) and isinstance(value, dict):
            validate(value, default, source, dotted + ".")


def parse_cli_options(options: Iterable[str]) -> dict:
    """Turn ``["train.lr=0.1", "model.input_hw=[384,288]"]`` into a nested override dict.

    Values are parsed as YAML (:class:`SafeLoader`) so numbers (``4e-5`` too), booleans and lists work.
    """
    out: dict = {}
    for item in options:
        if "=" not in item:
            raise ConfigError(f"--cfg-options: expected key=value, got {item!r}")
        key, raw = item.split("=", 1)
        value = yaml.load(raw, Loader=SafeLoader)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def load_config(path: str | os.PathLike, overrides: dict | None = None) -> dict:
    """Load ``path`` (with its ``_base_`` chain) over :data:`SCHEMA` defaults, validate, return it."""
    path = Path(path)
    data = _load_with_bases(path)
    validate(data, source=str(path))
    if overrides:
        validate(overrides, source=f"{path} (overrides)")
        data = merge(data, overrides)
    cfg = merge(SCHEMA, data)
    h, w = cfg["model"]["input_hw"]
    if h % 32 or w % 32:
        raise ConfigError(f"{path}: model.input_hw {h}x{w} must be divisible by 32")
    return cfg


def dump_config(cfg: dict, path: str | os.PathLike) -> None:
    """Write a resolved config as YAML, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    os.replace(tmp, path)
