"""How many CPU threads a training process gives PyTorch.

PyTorch's default is one intra-op thread per core. Its OpenMP threads wait for each other at
every operator, so when other processes keep a core busy, the thread on that core is descheduled
and the others spin: on a 2-core machine with two busy processes a training step with 2 threads
took 5.4x longer than with 1 (``bench/thread_choice.py``, docs/training.md). The rule, in order:

1. ``--threads N`` on the command line;
2. ``OMP_NUM_THREADS`` in the environment (the user's explicit choice);
3. otherwise ``min(cores // processes, cores - busy)``, at least 1, where ``cores`` is the number
   of cores this process may run on, ``processes`` the training processes on this machine
   (``LOCAL_WORLD_SIZE`` under torchrun) and ``busy`` the work of other processes, rounded: the
   larger of the 1-minute load average and the cores kept busy during a 0.3 s sample of
   ``/proc/stat`` (the load average lags a load that has just started). Training has not started
   when this runs, so both measure other processes only.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str        # one phrase for the start-up line

    def describe(self) -> str:
        plural = "s" if self.threads != 1 else ""
        return f"{self.threads} torch thread{plural} ({self.reason})"


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / container limits where visible)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat; None where unavailable."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(cores: int, sample_s: float = 0.3) -> float:
    """Cores' worth of work by other processes: max(1-minute load average, busy share of all CPUs
    over ``sample_s`` seconds x ``cores``)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    first = _cpu_times()
    if first is None:
        return load
    time.sleep(sample_s)
    second = _cpu_times()
    busy, total = second[0] - first[0], second[1] - first[1]
    now = cores * busy / total if total > 0 else 0.0
    return max(load, now)


def choose_threads(requested: int | None = None, environ: dict | None = None, cores: int | None = None,
                   load: float | None = None) -> ThreadChoice:
    """Apply the module's rule; the keyword arguments exist for tests (defaults: this machine)."""
    env = os.environ if environ is None else environ
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads must be >= 1, got {requested}")
        return ThreadChoice(requested, "--threads")
    omp = env.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) >= 1:
        return ThreadChoice(int(omp), "OMP_NUM_THREADS")
    cores = usable_cores() if cores is None else cores
    processes = max(1, int(env.get("LOCAL_WORLD_SIZE", "1") or 1))
    if load is None:
        load = busy_cores(cores)
    busy = int(round(load))
    threads = max(1, min(cores // processes, cores - busy))
    return ThreadChoice(threads, f"{cores} cores, {processes} process{'es' if processes > 1 else ''}, "
                                 f"load {load:.1f}; set OMP_NUM_THREADS or --threads to override")
