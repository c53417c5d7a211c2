"""Seeding and RNG state capture/restore in ``weights_only=True``-loadable form.

Python's ``random`` state becomes a list of ints, numpy's legacy global state a dict of plain
values plus an int64 tensor, torch's CPU (and CUDA) states stay uint8 tensors. Nothing needs
pickle beyond what ``torch.load(weights_only=True)`` accepts.
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng_state() -> dict:
    """The global RNG states as plain types and tensors."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": int(version), "state": [int(v) for v in internal], "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state((nps["kind"], nps["keys"].numpy().astype(np.uint32), nps["pos"],
                         nps["has_gauss"], nps["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class preserved_rng:
    """Context manager: whatever runs inside leaves the global RNG states as they were."""

    def __enter__(self) -> "preserved_rng":
        self._state = capture_rng_state()
        return self

    def __exit__(self, *exc) -> None:
        restore_rng_state(self._state)
