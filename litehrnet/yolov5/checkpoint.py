"""Read official YOLOv5 ``*.pt`` checkpoints without the YOLOv5 code and without running pickle code.

An official checkpoint is a torch zip archive whose ``data.pkl`` pickles a whole ``models.yolo.Model``
object (``{"model": Model, "ema": ..., "epoch": ...}``). Loading it normally imports the YOLOv5
repository and lets the pickle call any global. Here a restricted :class:`pickle.Unpickler`
answers ``find_class`` from a fixed allowlist:

* module classes (``models.*`` and ``torch.nn.modules.*``) become :class:`PickledObject`, a plain
  container that only stores its class name and the state dict the pickle hands it;
* ``collections.OrderedDict`` and ``builtins.set`` are the real (harmless) types;
* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` and the ``torch.*Storage`` types are
  replaced by our own functions that build tensors from the raw bytes in ``data/<key>``;
* anything else raises :class:`YoloCheckpointError` naming the refused global.

:func:`read_yolov5_checkpoint` returns a :class:`YoloCheckpoint`: the model ``yaml`` dict, the class
names, the Detect anchors/strides and a flat ``state_dict`` whose keys match the official module
tree (``model.0.conv.weight``, ``model.24.m.0.bias``...), which :mod:`litehrnet.yolov5.model`
reproduces.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class YoloCheckpointError(ValueError):
    """An official YOLOv5 checkpoint could not be read; the message names the file and the fix."""


_STORAGE_DTYPES = {
    "HalfStorage": np.float16,
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "BFloat16Storage": None,  # numpy has no bfloat16; refused with a clear message
}

_MODULE_PREFIXES = ("models.", "torch.nn.modules.", "utils.")


class PickledObject:
    """Stand-in for any pickled module object: keeps the class name and the pickled ``__dict__``."""

    qualname = "object"

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"PickledObject({self.qualname})"


@dataclass
class _StorageType:
    """Marker for a ``torch.XStorage`` global: remembers the element dtype."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        dtype = _STORAGE_DTYPES.get(self.name)
        if dtype is None:
            raise YoloCheckpointError(f"unsupported tensor storage {self.name!r} in checkpoint")
        return np.dtype(dtype)


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_args: Any) -> torch.Tensor:
    """Our replacement for ``torch._utils._rebuild_tensor_v2``: a strided view copied to a tensor."""
    flat = torch.from_numpy(storage.copy())
    if len(size) == 0:
        return flat[offset].clone()
    return torch.as_strided(flat, size, stride, offset).clone()


def _rebuild_parameter(tensor: torch.Tensor, *_args: Any) -> torch.Tensor:
    """Parameters are read as plain tensors (requires_grad and hooks are irrelevant here)."""
    return tensor


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only builds containers, tensors and allow-listed builtins."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: Path) -> None:
        super().__init__(file)
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self.globals_seen: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        self.globals_seen.add(qualname)
        if qualname == "collections.OrderedDict":
            return collections.OrderedDict
        if qualname in ("__builtin__.set", "builtins.set"):
            return set
        if qualname == "torch._utils._rebuild_tensor_v2":
            return _rebuild_tensor
        if qualname == "torch._utils._rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        if module.startswith(_MODULE_PREFIXES):
            return type(name, (PickledObject,), {"qualname": qualname})
        raise YoloCheckpointError(
            f"{self._path}: refusing pickle global {qualname!r}; this does not look like an official "
            "YOLOv5 v6/v7 checkpoint"
        )

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise YoloCheckpointError(f"{self._path}: unexpected persistent id {pid!r}")
        storage_type, key = pid[1], str(pid[2])
        if not isinstance(storage_type, _StorageType):
            raise YoloCheckpointError(f"{self._path}: unexpected storage type {storage_type!r}")
        raw = self._archive.read(f"{self._prefix}data/{key}")
        return np.frombuffer(raw, dtype=storage_type.dtype)


@dataclass
class YoloCheckpoint:
    """What our YOLOv5 model needs from an official checkpoint."""

    yaml: dict
    names: list[str]
    stride: list[float]
    anchors_px: np.ndarray  # (num_levels, num_anchors, 2) anchor w/h in input pixels
    state_dict: dict[str, torch.Tensor]
    globals_seen: set[str] = field(default_factory=set)


def _load_pickle(path: Path) -> tuple[Any, set[str]]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise YoloCheckpointError(f"{path}: not a torch zip checkpoint ({exc}); pass an official yolov5*.pt") from exc
    with archive:
        pkl_names = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pkl_names) != 1:
            raise YoloCheckpointError(f"{path}: expected exactly one data.pkl in the archive, found {len(pkl_names)}")
        prefix = pkl_names[0][: -len("data.pkl")]
        with archive.open(pkl_names[0]) as fh:
            unpickler = _RestrictedUnpickler(fh, archive, prefix, path)
            try:
                obj = unpickler.load()
            except YoloCheckpointError:
                raise
            except Exception as exc:  # corrupt pickle stream
                raise YoloCheckpointError(f"{path}: cannot unpickle checkpoint ({exc})") from exc
    return obj, unpickler.globals_seen


def _collect_state_dict(module: PickledObject, prefix: str, out: dict[str, torch.Tensor]) -> None:
    """Walk ``_parameters`` / ``_buffers`` / ``_modules`` like ``nn.Module.state_dict`` does."""
    state = module.state
    for group in ("_parameters", "_buffers"):
        for name, tensor in state.get(group, {}).items():
            if tensor is not None and name not in state.get("_non_persistent_buffers_set", set()):
                out[prefix + name] = tensor.float() if tensor.is_floating_point() else tensor
    for name, child in state.get("_modules", {}).items():
        if child is not None:
            _collect_state_dict(child, f"{prefix}{name}.", out)


def read_yolov5_checkpoint(path: str | Path) -> YoloCheckpoint:
    """Read an official YOLOv5 checkpoint into plain data (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise YoloCheckpointError(f"{path}: checkpoint file not found")
    obj, globals_seen = _load_pickle(path)
    model = obj.get("ema") or obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(model, PickledObject) or not model.qualname.endswith("yolo.Model"):
        raise YoloCheckpointError(f"{path}: no YOLOv5 'model' entry found; pass an official yolov5*.pt checkpoint")
    attrs = model.state
    yaml_dict = attrs.get("yaml")
    if not isinstance(yaml_dict, dict) or "backbone" not in yaml_dict or "head" not in yaml_dict:
        raise YoloCheckpointError(f"{path}: model has no architecture yaml (backbone/head); not a YOLOv5 v6 model")
    state_dict: dict[str, torch.Tensor] = {}
    _collect_state_dict(model, "", state_dict)
    detect = list(attrs["_modules"]["model"].state["_modules"].values())[-1]
    stride = [float(s) for s in detect.state["stride"].tolist()]
    anchors_grid = detect.state["_buffers"]["anchors"].float().numpy()
    anchors_px = anchors_grid * np.asarray(stride, np.float32)[:, None, None]
    names = attrs.get("names", [])
    names = [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
    return YoloCheckpoint(yaml_dict, names, stride, anchors_px, state_dict, globals_seen)
