"""Runner parameter files (``utils/*_init_params.yaml``): strict schemas, paths relative to the file.

Each runner has a schema: required keys, optional keys with defaults, and a check per key. A
missing or unknown key, or a value of the wrong kind, raises :class:`ParamsError` naming the file,
the key and what is expected. ``*_path`` values are resolved against the YAML file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from prepostprocess.heatmap import DECODE_METHODS
from prepostprocess.normalize import CHANNEL_ORDERS, NORM_MODES
DETECTOR_PREPROCESS = ("official", "kneron")


class ParamsError(ValueError):
    """A runner parameter file is missing, unreadable or does not match its schema."""


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _positive_number(v: Any) -> bool:
    return _number(v) and v > 0


def _fraction(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0


def _choice(options: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in options


def _class_list(v: Any) -> bool:
    return v is None or (isinstance(v, list) and all(isinstance(c, int) and c >= 0 for c in v))


_REQUIRED = object()

# key -> (default or _REQUIRED, check, human description)
SCHEMAS: dict[str, dict[str, tuple[Any, Callable[[Any], bool], str]]] = {
    "yolov5": {
        "onnx_path": (_REQUIRED, lambda v: isinstance(v, str) and v, "path to the detector .onnx"),
        "input_w": (_REQUIRED, _positive_int, "positive int (network input width)"),
        "input_h": (_REQUIRED, _positive_int, "positive int (network input height)"),
        "conf_thres": (_REQUIRED, _fraction, "number in [0, 1]"),
        "iou_thres": (_REQUIRED, _fraction, "number in [0, 1]"),
        "top_k_num": (_REQUIRED, _positive_int, "positive int (boxes kept after NMS)"),
        "classes": (_REQUIRED, _class_list, "list of class ids (person = 0) or null for all"),
        "preprocess": (_REQUIRED, _choice(DETECTOR_PREPROCESS), f"one of {DETECTOR_PREPROCESS}"),
        "pad_value": (None, lambda v: v is None or (isinstance(v, int) and 0 <= v <= 255),
                      "null (mode default: 114 official, 0 kneron) or an int in [0, 255]"),
        "nc": (None, lambda v: v is None or _positive_int(v), "number of classes (checked against the ONNX)"),
        "model_type": (None, lambda v: v is None or isinstance(v, str), "e.g. yolov5n (checked against the ONNX)"),
    },
    "affine": {
        "input_w": (_REQUIRED, _positive_int, "positive int (crop width, = pose input width)"),
        "input_h": (_REQUIRED, _positive_int, "positive int (crop height, = pose input height)"),
        "padding": (_REQUIRED, lambda v: isinstance(v, (int, float)) and v >= 1.0, "number >= 1 (box enlargement)"),
    },
    "pose": {
        "onnx_path": (_REQUIRED, lambda v: isinstance(v, str) and v, "path to the pose .onnx"),
        "input_w": (_REQUIRED, _positive_int, "positive int (network input width)"),
        "input_h": (_REQUIRED, _positive_int, "positive int (network input height)"),
        "norm": (_REQUIRED, _choice(NORM_MODES), f"one of {NORM_MODES}"),
        "channel_order": (_REQUIRED, _choice(CHANNEL_ORDERS), f"one of {CHANNEL_ORDERS}"),
        "decode": (_REQUIRED, _choice(DECODE_METHODS), f"one of {DECODE_METHODS}"),
        "flip_test": (_REQUIRED, lambda v: isinstance(v, bool), "true or false"),
        "shift_heatmap": (True, lambda v: isinstance(v, bool), "true or false (flip-test 1-px shift)"),
        "dark_kernel": (11, lambda v: _positive_int(v) and v % 2 == 1, "odd positive int"),
        "batch_size": (None, lambda v: v is None or _positive_int(v),
                       "null (the model's static batch, else 4) or a positive int: people per chunk"),
        "workers": (None, lambda v: v is None or _positive_int(v),
                    "null (1; 2 in the pipelined video chain with --det-interval > 1) or a positive int: "
                    "sessions running a chunk's crops at once"),
        # One-Euro smoothing of video keypoints (--smooth one-euro; litehrnet/deploy/smoothing.py)
        "smooth_min_cutoff": (1.0, _positive_number, "positive number (Hz, cut-off of a still keypoint)"),
        "smooth_beta": (0.05, lambda v: _number(v) and v >= 0, "number >= 0 (s/px, cut-off rise with speed)"),
        "smooth_d_cutoff": (1.0, _positive_number, "positive number (Hz, cut-off of the speed)"),
    },
}


def validate_params(raw: Any, kind: str, source: str, base_dir: Path | None = None) -> dict[str, Any]:
    """Check ``raw`` against the schema of ``kind``; fill defaults; resolve ``*_path`` against ``base_dir``."""
    schema = SCHEMAS[kind]
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping of {kind} runner parameters, got {type(raw).__name__}")
    if kind == "yolov5" and "pt_path" in raw:
        raise ParamsError(f"{source}: 'pt_path' is not supported (the deploy runner has no torch); convert the "
                          "checkpoint with tools/yolov5_to_onnx.py and set onnx_path")
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise ParamsError(f"{source}: unknown key(s) {unknown} for the {kind} runner; valid keys: {sorted(schema)}")
    params: dict[str, Any] = {}
    for key, (default, check, what) in schema.items():
        if key not in raw:
            if default is _REQUIRED:
                raise ParamsError(f"{source}: missing key {key!r} ({what})")
            params[key] = default
            continue
        if not check(raw[key]):
            raise ParamsError(f"{source}: key {key!r} = {raw[key]!r} is invalid; expected {what}")
        params[key] = raw[key]
    for key in params:
        if key.endswith("_path") and base_dir is not None:
            params[key] = str((base_dir / params[key]).resolve()) if not Path(params[key]).is_absolute() else params[key]
    return params


def load_params(path: str | Path, kind: str) -> dict[str, Any]:
    """Read and validate a runner YAML (``kind`` in ``yolov5``, ``affine``, ``pose``)."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: {kind} parameter file not found (see utils/*_init_params.yaml for examples)")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc})") from exc
    return validate_params(raw, kind, str(path), path.resolve().parent)
