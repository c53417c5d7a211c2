"""Training throughput on CPU: our litehrnet_18 vs mmpose 1.3.2's LiteHRNet, same run, same step.

    python bench/train_speed.py [--batch 16] [--input-hw 256 192] [--steps 8] [--rounds 5] [--threads 1]

Both models get the same head (1x1 conv 40 -> 17 with bias), the same loss (our JointsMSELoss with
target weights), the same optimiser (Adam, lr 2e-3) and identical random batches. One training step
is forward + loss + backward + optimiser step. Rounds alternate between the two models so that load
from other processes on a shared machine hits both alike; the median round is reported.
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


def time_round(model: nn.Module, opt, loss_fn, batches, steps: int) -> float:
    """Seconds for ``steps`` training steps."""
    start = time.perf_counter()
    for i in range(steps):
        img, target, weight = batches[i % len(batches)]
        loss = loss_fn(model(img), target, weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input-hw", type=int, nargs=2, default=[256, 192], metavar=("H", "W"))
    parser.add_argument("--steps", type=int, default=6, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per model (alternating)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w = args.input_hw
    batches = [(torch.randn(args.batch, 3, h, w), torch.rand(args.batch, 17, h // 4, w // 4),
                torch.ones(args.batch, 17, 1)) for _ in range(2)]
    models = {"ours": build_model("litehrnet_18", 17), "mmpose": build_mmpose_model()}
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    loss_fn = JointsMSELoss()
    opts = {name: torch.optim.Adam(m.parameters(), lr=2e-3) for name, m in models.items()}
    for name, model in models.items():  # warm-up (allocator, first-call overheads)
        model.train()
        time_round(model, opts[name], loss_fn, batches, 2)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            seconds[name].append(time_round(model, opts[name], loss_fn, batches, args.steps))
    print(f"litehrnet_18 training step, batch {args.batch}, input {h}x{w}, {args.threads} thread(s), "
          f"{args.rounds} rounds x {args.steps} steps")
    rate = {}
    for name in models:
        med = statistics.median(seconds[name])
        rate[name] = args.batch * args.steps / med
        spread = ", ".join(f"{args.batch * args.steps / s:.2f}" for s in seconds[name])
        print(f"  {name:7s} params {params[name]:,}  median {rate[name]:.2f} samples/s  (rounds: {spread})")
    ratio = rate["ours"] / rate["mmpose"]
    print(f"RESULT train_samples_per_s_ours={rate['ours']:.3f}")
    print(f"RESULT train_samples_per_s_mmpose={rate['mmpose']:.3f}")
    print(f"RESULT train_speed_ratio={ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
