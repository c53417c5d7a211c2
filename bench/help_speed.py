"""Wall time of ``--help`` for every script (goal: under 1 s), against a bare interpreter start.

    python bench/help_speed.py [--repeats 5]

Each script's ``--help`` and ``python -c pass`` (the reference) run ``--repeats`` times,
interleaved so that background load touches all alike; the median is reported. ``help_max_s`` is
the slowest script's median; ``help_max_minus_python_s`` subtracts the interpreter's own start,
the part the scripts control (lazy imports). Ends with ``RESULT`` lines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def scripts() -> list[str]:
    root = sorted(p.name for p in REPO.glob("*.py"))
    return root + sorted(f"tools/{p.name}" for p in (REPO / "tools").glob("*.py") if p.name != "__init__.py")


def wall_s(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    names = scripts()
    times: dict[str, list[float]] = {name: [] for name in ["python -c pass", *names]}
    for _ in range(args.repeats):
        times["python -c pass"].append(wall_s([sys.executable, "-c", "pass"]))
        for name in names:
            times[name].append(wall_s([sys.executable, name, "--help"]))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:<28} {value * 1000:7.0f} ms")
    slowest = max(names, key=medians.get)
    print(f"RESULT help_max_s={medians[slowest]:.3f}")
    print(f"RESULT help_max_script={slowest}")
    print(f"RESULT python_start_s={medians['python -c pass']:.3f}")
    print(f"RESULT help_max_minus_python_s={medians[slowest] - medians['python -c pass']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
