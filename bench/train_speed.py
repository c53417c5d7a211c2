"""Training throughput: our litehrnet_18 vs mmpose 1.3.2's LiteHRNet, eager and compiled, same run.

    PYTHONPATH=.ref python bench/train_speed.py [--batches 8 32] [--input-hw 256 192] [--steps 8]
        [--threads 1] [--no-compile] [--device cpu|cuda] [--data-root DIR] [--data-samples 48]

Both networks get the same head (1x1 conv 40 -> 17 with bias), the same loss (our JointsMSELoss
with target weights) and identical random batches. One training step is forward + loss + backward
+ optimiser step; each side uses its usual optimiser (mmpose: ``torch.optim.Adam``, ours:
``litehrnet.training.build_optimizer``, the fused Adam). Steps alternate between the models so
that load from other processes on a shared machine hits all alike. On CPU the rate is batch /
median step time in CPU seconds of this process (``time.process_time``, ``--threads`` torch
threads), which a busy machine disturbs far less than wall time; on CUDA it is wall time after
``torch.cuda.synchronize`` and bf16 autocast is measured as a third setting.

Compiled: ``torch.compile(model)`` exactly as ``train.py --compile`` does (the first batch size
compiles a static graph, a second one recompiles with a dynamic batch dimension, which also serves
the short last batch of an epoch), against mmpose eager (how mmpose trains). The time of each
first compiled step is reported; ``--no-compile`` skips this part (it takes minutes on a CPU).

Data split: the real training pipeline (COCO mini set under ``--data-root``, full augmentation,
JPEG decode, this input size) timed in this process with OpenCV on one thread, i.e. one
``DataLoader`` worker; printed beside the training step's time per sample.

mmpose is the test-only reference (requirements-ref.txt) installed into ``.ref/``; this script
does not touch ``sys.path``, so run it with ``PYTHONPATH=.ref``. Only mmpose's backbone file is
imported (its package ``__init__`` needs dataset libraries the reference install leaves out).

RESULT lines: ``train_speed_ratio`` (eager, our default; the lower over the batch sizes),
``train_speed_ratio_compiled`` (same for compiled), per-batch ratios and samples/s, compile time,
``data_ms_per_sample`` and ``data_headroom`` (documented workers x data rate / rate of the faster
training step; > 1: data loading keeps up). Goal: ratios >= 1.3.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import statistics
import sys
import time
import types
from pathlib import Path

import torch
from torch import nn

from litehrnet.config import SCHEMA, merge
from litehrnet.models import build_model
from litehrnet.training import JointsMSELoss
from litehrnet.training.schedule import build_optimizer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "coco_train2017_mini"

# The official Lite-HRNet-18 architecture in mmpose's config vocabulary (SPEC section 1).
MMPOSE_LITEHRNET_18 = dict(
    stem=dict(stem_channels=32, out_channels=32, expand_ratio=1),
    num_stages=3,
    stages_spec=dict(num_modules=(2, 4, 2), num_branches=(2, 3, 4), num_blocks=(2, 2, 2),
                     module_type=("LITE", "LITE", "LITE"), with_fuse=(True, True, True),
                     reduce_ratios=(8, 8, 8),
                     num_channels=((40, 80), (40, 80, 160), (40, 80, 160, 320))),
    with_head=True,
)


def import_mmpose_litehrnet():
    """mmpose's ``models/backbones/litehrnet.py`` without running mmpose's package ``__init__``s:
    empty stand-in packages whose ``__path__`` points at the installed folders."""
    spec = importlib.util.find_spec("mmpose")
    if spec is None or spec.origin is None:
        raise SystemExit("error: mmpose 1.3.2 reference not importable; install it with "
                         "'pip install --no-deps --target .ref -r requirements-ref.txt' and run "
                         "'PYTHONPATH=.ref python bench/train_speed.py'")
    root = Path(spec.origin).parent
    for name in ("mmpose.models", "mmpose.models.backbones"):
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
            sys.modules[name] = stub
    return importlib.import_module("mmpose.models.backbones.litehrnet")


class MmposeWithHead(nn.Module):
    """mmpose backbone (returns a tuple with the stride-4 map) + the same 1x1 keypoint head."""

    def __init__(self, backbone: nn.Module, num_keypoints: int = 17) -> None:
        super().__init__()
        self.backbone = backbone
        self.final_layer = nn.Conv2d(40, num_keypoints, 1)

    def forward(self, images_nchw: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.backbone(images_nchw)[0])


class Runner:
    """One model + optimiser + optional autocast; ``step`` returns the seconds of one training step."""

    def __init__(self, name: str, model: nn.Module, opt, device: torch.device, amp: bool = False,
                 forward=None) -> None:
        self.name, self.model, self.opt, self.device, self.amp = name, model.to(device).train(), opt, device, amp
        self.forward = forward if forward is not None else self.model
        self.loss_fn = JointsMSELoss()
        self.times: dict[int, list[float]] = {}

    def step(self, batch) -> float:
        img, target, weight = batch
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter() if cuda else time.process_time()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            heatmaps = self.forward(img)
        loss = self.loss_fn(heatmaps.float(), target, weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if cuda:
            torch.cuda.synchronize()
        return (time.perf_counter() if cuda else time.process_time()) - t0

    def rate(self, batch_size: int) -> float:
        return batch_size / statistics.median(self.times[batch_size])


def make_batches(batch_size: int, h: int, w: int, device: torch.device) -> list:
    g = torch.Generator().manual_seed(batch_size)
    return [(torch.randn(batch_size, 3, h, w, generator=g).to(device),
             torch.rand(batch_size, 17, h // 4, w // 4, generator=g).to(device),
             torch.ones(batch_size, 17, 1, device=device)) for _ in range(2)]


def time_alternating(runners: list[Runner], batches: list, steps: int) -> None:
    """Warm-up steps, then ``steps`` timed steps per runner, interleaved."""
    batch_size = batches[0][0].shape[0]
    for r in runners:
        for b in batches:
            r.step(b)
        r.times[batch_size] = []
    for k in range(steps):
        for r in runners:
            r.times[batch_size].append(r.step(batches[k % len(batches)]))


def data_ms_per_sample(root: Path, input_hw: list[int], samples: int) -> float | None:
    """CPU milliseconds per training sample of the real pipeline in this process (= one worker)."""
    import cv2

    from litehrnet.data import build_dataset

    if not (root / "annotations").is_dir():
        print(f"data split skipped: {root} has no annotations/ (set --data-root to a COCO-format set)")
        return None
    cv2.setNumThreads(1)
    ann = sorted((root / "annotations").glob("person_keypoints_*.json"))[0]
    img_dir = ann.stem.replace("person_keypoints_", "")
    cfg = merge(SCHEMA, {"model": {"input_hw": list(input_hw)},
                         "data": {"root": str(root), "train_ann": f"annotations/{ann.name}", "train_img_dir": img_dir}})
    dataset = build_dataset(cfg, "train")
    n = min(samples, len(dataset))
    dataset[0]  # first-call overheads
    t0 = time.process_time()
    for i in range(n):
        dataset[i]
    return (time.process_time() - t0) / n * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--input-hw", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=8, help="timed training steps per model and batch size")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (saves minutes on CPU)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA, help="COCO-format set for the data split")
    parser.add_argument("--data-samples", type=int, default=48)
    parser.add_argument("--workers", type=int, default=int(SCHEMA["data"]["workers"]),
                        help="DataLoader workers assumed for the headroom (default: the config default)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w_in = args.input_hw
    ours = build_model("litehrnet_18", 17)
    mmpose = MmposeWithHead(import_mmpose_litehrnet().LiteHRNet(extra=MMPOSE_LITEHRNET_18))
    params = {"ours": sum(p.numel() for p in ours.parameters()), "mmpose": sum(p.numel() for p in mmpose.parameters())}
    opt_cfg = merge(SCHEMA, {})["train"]
    runners = [Runner("ours", ours, build_optimizer(ours.parameters(), opt_cfg, 2e-3), device),
               Runner("mmpose", mmpose, torch.optim.Adam(mmpose.parameters(), lr=2e-3), device)]
    if device.type == "cuda":
        amp_model = build_model("litehrnet_18", 17)
        runners.append(Runner("ours_amp_bf16", amp_model, build_optimizer(amp_model.parameters(), opt_cfg, 2e-3),
                              device, amp=True))
    unit = "samples/s (wall, CUDA)" if device.type == "cuda" else f"samples per CPU-second ({args.threads} thread(s))"
    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "n/a"
    print(f"litehrnet_18 training step (forward + JointsMSE + backward + Adam), input {h}x{w_in}, device "
          f"{device}, {args.steps} alternating steps per model; load average at start {load}")
    print(f"params: ours {params['ours']:,}, mmpose {params['mmpose']:,}")

    for bs in args.batches:
        time_alternating(runners, make_batches(bs, h, w_in, device), args.steps)
        print(f"batch {bs:3d} eager: " + ", ".join(f"{r.name} {r.rate(bs):7.2f}" for r in runners) + f"  [{unit}]",
              flush=True)
    eager_rate = {(r.name, bs): r.rate(bs) for r in runners for bs in args.batches}  # mmpose is re-timed below
    ratio = {bs: eager_rate["ours", bs] / eager_rate["mmpose", bs] for bs in args.batches}

    compiled_ratio, compile_cpu_s = {}, {}
    if not args.no_compile:
        compiled = Runner("ours_compiled", ours, runners[0].opt, device, forward=torch.compile(ours))
        for bs in args.batches:
            batches = make_batches(bs, h, w_in, device)
            t0, c0 = time.perf_counter(), time.process_time()
            compiled.step(batches[0])
            compile_cpu_s[bs] = time.process_time() - c0
            print(f"compile (first compiled step, batch {bs}): {time.perf_counter() - t0:.0f} s wall, "
                  f"{compile_cpu_s[bs]:.0f} s CPU", flush=True)
            pair = [compiled, runners[1]]
            time_alternating(pair, batches, args.steps)
            compiled_ratio[bs] = compiled.rate(bs) / runners[1].rate(bs)
            print(f"batch {bs:3d} compiled: ours_compiled {compiled.rate(bs):7.2f}, mmpose {runners[1].rate(bs):7.2f}"
                  f"  [{unit}]")

    data_ms = data_ms_per_sample(args.data_root, args.input_hw, args.data_samples) if device.type == "cpu" else None
    if data_ms is not None:
        bs = max(args.batches)
        eager_ms = 1e3 / eager_rate["ours", bs]
        compiled_ms = 1e3 / compiled.rate(bs) if compiled_ratio else None
        train_ms = min(eager_ms, compiled_ms or eager_ms)  # the faster training step
        headroom = args.workers * train_ms / data_ms
        print(f"data split (per sample, CPU ms, batch {bs}): data loading {data_ms:.1f} (one worker, full "
              f"augmentation) | training eager {eager_ms:.1f}"
              + (f", compiled {compiled_ms:.1f}" if compiled_ms else "")
              + f" -> data is {data_ms / (data_ms + train_ms):.0%} of the CPU per sample; {args.workers} workers "
              f"deliver {headroom:.1f}x what the faster training step consumes")

    for bs in args.batches:
        for r in runners:
            print(f"RESULT train_samples_per_s_{r.name}_b{bs}={eager_rate[r.name, bs]:.3f}")
        if bs in compiled_ratio:
            print(f"RESULT train_samples_per_s_ours_compiled_b{bs}={compiled.rate(bs):.3f}")
        print(f"RESULT train_speed_ratio_b{bs}={ratio[bs]:.3f}")
        if bs in compiled_ratio:
            print(f"RESULT train_speed_ratio_compiled_b{bs}={compiled_ratio[bs]:.3f}")
    print(f"RESULT train_speed_ratio={min(ratio.values()):.3f}")
    if compiled_ratio:
        print(f"RESULT train_speed_ratio_compiled={min(compiled_ratio.values()):.3f}")
        for bs, seconds in compile_cpu_s.items():
            print(f"RESULT compile_cpu_s_b{bs}={seconds:.1f}")
    if data_ms is not None:
        print(f"RESULT data_ms_per_sample={data_ms:.2f}")
        print(f"RESULT data_headroom={headroom:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
