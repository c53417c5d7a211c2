"""Shared fixtures.

``shared_dir`` / ``shared_data``: the project's ``../shared`` folder. Absent on a user's clone, so
tests that need it skip with a reason; under ``CI=true`` a missing ``../shared`` is a failure.
``mmpose_ref``: the test-only mmpose 1.3.2 reference (backbone files imported without mmpose's
package ``__init__``); skipped when not installed, a failure under ``CI=true``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

REF_DIR = REPO_ROOT / ".ref"  # test-only mmpose reference: pip install --no-deps --target .ref ...

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
if REF_DIR.is_dir() and str(REF_DIR) not in sys.path:
    sys.path.append(str(REF_DIR))  # after site-packages: never shadows the runtime's packages

try:  # keep the suite predictable on a 2-core machine
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a hard requirement
    pass


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (required under CI=true)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED_DIR / "data").is_dir():
        _missing(f"{SHARED_DIR} not found: real-data tests need ../shared beside the repository")
    return SHARED_DIR


@pytest.fixture(scope="session")
def shared_data(shared_dir: Path) -> Path:
    return shared_dir / "data"


def import_mmpose_module(dotted: str):
    """Import e.g. ``mmpose.models.backbones.litehrnet`` without running mmpose's heavy __init__s.

    Stub packages ``mmpose.models`` and ``mmpose.models.backbones`` are registered whose
    ``__path__`` points at the installed folders, so only the needed files load.
    """
    spec = importlib.util.find_spec("mmpose")
    if spec is None or spec.origin is None:
        _missing("mmpose 1.3.2 (test-only reference) not installed: pip install --no-deps --upgrade --target .ref -r requirements-ref.txt")
    root = Path(spec.origin).parent
    for name in ("mmpose.models", "mmpose.models.backbones", "mmpose.models.heads"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = stub
    return importlib.import_module(dotted)


@pytest.fixture(scope="session")
def mmpose_backbones():
    """Return ``(litehrnet_module, hrnet_module)`` from mmpose 1.3.2."""
    return (
        import_mmpose_module("mmpose.models.backbones.litehrnet"),
        import_mmpose_module("mmpose.models.backbones.hrnet"),
    )
