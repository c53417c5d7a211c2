"""Training checkpoints: atomic writes, ``weights_only=True`` loading, rotation, best-by-metric.

A training checkpoint is the mmpose 0.x full-model layout that ``litehrnet.models`` loads, plus
what resuming needs::

    {"state_dict": model weights,
     "meta": {"variant", "num_keypoints", "epoch" (completed), "iter" (global), "best_metric",
              "best_metric_name", "config", "world_size", "torch_version"},
     "optimizer": optimizer.state_dict(),
     "scaler": GradScaler state (AMP on CUDA) or {},
     "rng": [per-rank RNG states from litehrnet.training.rng]}

Every value is a tensor, a container of them, or a plain Python type, so the file loads with
``torch.load(path, weights_only=True)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch


class TrainingError(RuntimeError):
    """A problem that ends training; the message is one line meant for the user."""


def save_atomic(obj: dict, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file beside ``path``, then ``os.replace`` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_training_checkpoint(path: str | os.PathLike, variant: str) -> dict:
    """Load a checkpoint written by the trainer for resuming; check it belongs to ``variant``."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"{path}: checkpoint not found; pass an existing file to --resume-from")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt, truncated, or a pickle with arbitrary objects
        raise TrainingError(f"{path}: cannot be read as a weights-only torch checkpoint "
                            f"({exc.__class__.__name__}); is the file complete?") from None
    missing = [k for k in ("state_dict", "meta", "optimizer", "rng") if k not in ckpt]
    if not isinstance(ckpt, dict) or missing:
        raise TrainingError(f"{path}: not a training checkpoint of this project (missing {missing}); "
                            "use --load-from to start from plain weights")
    ckpt_variant = ckpt["meta"].get("variant")
    if ckpt_variant != variant:
        raise TrainingError(f"{path}: checkpoint is for variant '{ckpt_variant}' but the config builds "
                            f"'{variant}'; use the matching config or another checkpoint")
    return ckpt


_EPOCH_RE = re.compile(r"^epoch_(\d+)\.pth$")
_BEST_RE = re.compile(r"^best_.*_epoch_(\d+)\.pth$")


class CheckpointKeeper:
    """Writes ``epoch_N.pth`` files in ``work_dir``, keeps the newest ``max_keep``, and the best one.

    The best checkpoint is ``best_<metric>_epoch_N.pth`` (older best files are removed when a
    better one arrives). ``last_checkpoint`` (a text file) names the newest epoch checkpoint, so
    ``--resume-from auto`` can find it.
    """

    def __init__(self, work_dir: str | os.PathLike, max_keep: int) -> None:
        self.work_dir = Path(work_dir)
        self.max_keep = max(1, int(max_keep))

    def save_epoch(self, ckpt: dict, epoch: int) -> Path:
        path = save_atomic(ckpt, self.work_dir / f"epoch_{epoch}.pth")
        pointer = self.work_dir / "last_checkpoint"
        tmp = pointer.with_name(".last_checkpoint.tmp")
        tmp.write_text(path.name + "\n", encoding="utf-8")
        os.replace(tmp, pointer)
        self._rotate(epoch)
        return path

    def save_best(self, ckpt: dict, epoch: int, metric_name: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9]+", "", metric_name) or "metric"
        path = save_atomic(ckpt, self.work_dir / f"best_{safe}_epoch_{epoch}.pth")
        for old in self.work_dir.iterdir():
            if _BEST_RE.match(old.name) and old != path:
                old.unlink()
        return path

    def epoch_checkpoints(self) -> list[Path]:
        found = [(int(m.group(1)), p) for p in self.work_dir.glob("epoch_*.pth") if (m := _EPOCH_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def _rotate(self, epoch: int) -> None:
        """Keep the newest ``max_keep`` checkpoints up to ``epoch`` (the one just written is always kept).

        Checkpoints with a higher epoch number are another run's (a fresh run started in a folder
        that held a longer one): they are left alone, never mistaken for newer ones.
        """
        mine = [p for p in self.epoch_checkpoints() if int(_EPOCH_RE.match(p.name).group(1)) <= epoch]
        for old in mine[:-self.max_keep]:
            old.unlink()

    def latest(self) -> Path | None:
        pointer = self.work_dir / "last_checkpoint"
        if pointer.is_file():
            path = self.work_dir / pointer.read_text(encoding="utf-8").strip()
            if path.is_file():
                return path
        found = self.epoch_checkpoints()
        return found[-1] if found else None
