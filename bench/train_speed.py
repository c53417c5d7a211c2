"""Training throughput on CPU: our litehrnet_18 vs mmpose 1.3.2's LiteHRNet, same run, same step.

    python bench/train_speed.py [--batch 8] [--input-hw 256 192] [--steps 15] [--threads 1]

Both models get the same head (1x1 conv 40 -> 17 with bias), the same loss (our JointsMSELoss with
target weights), the same optimiser (Adam, lr 2e-3) and identical random batches. One training step
is forward + loss + backward + optimiser step. Steps alternate between the two models so that load
from other processes on a shared machine hits both alike. Throughput is batch / median step time
in CPU seconds of this process (time.process_time, one torch thread), which a busy shared machine
disturbs far less than wall time; wall-clock samples/s are printed beside it.
mmpose is the test-only reference install (requirements-ref.txt), imported without its package
``__init__`` through ``tests/conftest.py::import_mmpose_module``.

Ends with ``RESULT train_speed_ratio=<ours/mmpose samples per second>`` (target >= 1.0).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from litehrnet.models import build_model  # noqa: E402
from litehrnet.training import JointsMSELoss  # noqa: E402

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


class MmposeWithHead(nn.Module):
    """mmpose backbone (returns a tuple with the stride-4 map) + the same 1x1 keypoint head."""

    def __init__(self, backbone: nn.Module, num_keypoints: int = 17) -> None:
        super().__init__()
        self.backbone = backbone
        self.final_layer = nn.Conv2d(40, num_keypoints, 1)

    def forward(self, images_nchw: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.backbone(images_nchw)[0])


def build_mmpose_model() -> nn.Module:
    try:
        from conftest import import_mmpose_module

        module = import_mmpose_module("mmpose.models.backbones.litehrnet")
    except BaseException as exc:  # pytest.skip raises a BaseException subclass outside a test
        raise SystemExit(f"error: mmpose 1.3.2 reference not importable ({exc}); "
                         "install it with: pip install --no-deps -r requirements-ref.txt") from None
    backbone = module.LiteHRNet(extra=MMPOSE_LITEHRNET_18)  # default init; speed does not depend on it
    return MmposeWithHead(backbone)


def time_step(model: nn.Module, opt, loss_fn, batch) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) for one training step."""
    img, target, weight = batch
    cpu0, wall0 = time.process_time(), time.perf_counter()
    loss = loss_fn(model(img), target, weight)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.process_time() - cpu0, time.perf_counter() - wall0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--input-hw", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=15, help="timed training steps per model (alternating)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w_in = args.input_hw
    batches = [(torch.randn(args.batch, 3, h, w_in), torch.rand(args.batch, 17, h // 4, w_in // 4),
                torch.ones(args.batch, 17, 1)) for _ in range(2)]
    models = {"ours": build_model("litehrnet_18", 17), "mmpose": build_mmpose_model()}
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    loss_fn = JointsMSELoss()
    opts = {name: torch.optim.Adam(m.parameters(), lr=2e-3) for name, m in models.items()}
    for name, model in models.items():  # warm-up (allocator, first-call overheads)
        model.train()
        for batch in batches:
            time_step(model, opts[name], loss_fn, batch)
    cpu: dict[str, list[float]] = {name: [] for name in models}
    wall: dict[str, list[float]] = {name: [] for name in models}
    for step in range(args.steps):  # alternate step by step: load from other processes hits both alike
        for name, model in models.items():
            c, w = time_step(model, opts[name], loss_fn, batches[step % len(batches)])
            cpu[name].append(c)
            wall[name].append(w)
    print(f"litehrnet_18 training step (forward + JointsMSE + backward + Adam), batch {args.batch}, "
          f"input {h}x{w_in}, {args.threads} thread(s), {args.steps} alternating steps per model")
    rate = {}
    for name in models:
        rate[name] = args.batch / statistics.median(cpu[name])
        wall_rate = args.batch / statistics.median(wall[name])
        print(f"  {name:7s} params {params[name]:,}  {rate[name]:6.2f} samples per CPU-second "
              f"(median step {statistics.median(cpu[name]):.3f} s CPU), wall {wall_rate:6.2f} samples/s")
    ratio = rate["ours"] / rate["mmpose"]
    print(f"RESULT train_samples_per_cpu_s_ours={rate['ours']:.3f}")
    print(f"RESULT train_samples_per_cpu_s_mmpose={rate['mmpose']:.3f}")
    print(f"RESULT train_speed_ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
