"""PyTorch's default thread count vs the one train.py chooses, under a competing load.

    python bench/thread_choice.py [--load N] [--batch 8] [--input-hw 256 192] [--steps 5]

Starts ``--load`` busy-loop processes (default: one per core; they are stopped at the end), lets
``litehrnet.training.threads.choose_threads`` pick the thread count as ``train.py`` does at start
(the environment's ``OMP_NUM_THREADS`` is ignored here so the rule itself runs), then times
litehrnet_18 training steps (forward + loss + backward + Adam) in wall-clock seconds, alternating
between PyTorch's default (one thread per core) and the chosen count. Wall time is what a user
waits for; the load average at start is printed because other processes change it.

RESULT lines: ``s_per_step_default``, ``s_per_step_chosen``, ``thread_speedup`` (default / chosen
seconds per step; 1.0 when the rule keeps the default).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import torch

from litehrnet.models import build_model
from litehrnet.training import JointsMSELoss
from litehrnet.training.threads import choose_threads, usable_cores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=None, help="busy-loop processes to start (default: cores)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--input-hw", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per setting")
    args = parser.parse_args(argv)
    cores = usable_cores()
    n_load = cores if args.load is None else args.load
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n_load)]
    try:
        time.sleep(1.0)
        choice = choose_threads(environ={})
        default = cores  # what PyTorch uses without OMP_NUM_THREADS
        load = open("/proc/loadavg").read().split()[0]
        print(f"{cores} cores, {n_load} busy-loop processes started, load average {load}; "
              f"default {default} threads, chosen: {choice.describe()}")
        torch.manual_seed(0)
        model = build_model("litehrnet_18").train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        loss_fn = JointsMSELoss()
        h, w = args.input_hw
        img, target = torch.randn(args.batch, 3, h, w), torch.rand(args.batch, 17, h // 4, w // 4)
        weight = torch.ones(args.batch, 17, 1)

        def step(threads: int) -> float:
            torch.set_num_threads(threads)
            t0 = time.perf_counter()
            loss = loss_fn(model(img), target, weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return time.perf_counter() - t0

        settings = {"default": default, "chosen": choice.threads}
        times: dict[str, list[float]] = {k: [] for k in settings}
        for k, n in settings.items():  # warm-up
            step(n)
        for _ in range(args.steps):
            for k, n in settings.items():
                times[k].append(step(n))
    finally:
        for p in busy:
            p.kill()
            p.wait()
    med = {k: statistics.median(v) for k, v in times.items()}
    for k in settings:
        print(f"  {k:8s} {settings[k]} thread(s): {med[k]:.3f} s per step (median of {args.steps}, wall)")
    print(f"RESULT s_per_step_default={med['default']:.3f}")
    print(f"RESULT s_per_step_chosen={med['chosen']:.3f}")
    print(f"RESULT thread_speedup={med['default'] / med['chosen']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
