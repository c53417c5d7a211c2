"""``--help`` of every script loads no heavy library (torch, onnx, onnxsim, matplotlib, pycocotools),
which is what keeps it under a second; the wall times are measured by ``bench/help_speed.py``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted([p.name for p in REPO.glob("*.py") if p.name not in ("setup.py", "conftest.py")]) + \
    sorted(f"tools/{p.name}" for p in (REPO / "tools").glob("*.py") if p.name != "__init__.py")
HEAVY = ("torch", "onnx", "onnxsim", "matplotlib", "pycocotools")
PROBE = """
import contextlib, io, runpy, sys
sys.argv = [sys.argv[1], "--help"]
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
assert "usage:" in out.getvalue()
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_imports_no_heavy_library(script):
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), script], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"{script} --help imports {done.stdout.strip()}: import it inside main()"
