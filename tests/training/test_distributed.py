"""2-process CPU DistributedDataParallel (torchrun, gloo) against one process with the same global batch.

Reference: one process takes the same global batch of 8 that the two ranks share (4 each, the
exact indices ``DistributedSampler`` gives each rank) and, like DDP, normalises BatchNorm over each
rank's 4 samples separately (per-process BN, as in the official multi-GPU recipe), averaging the two
losses. Gradients are then mathematically identical to DDP's all-reduced mean, so the weights after
two Adam steps must agree to float rounding: stated tolerance max |dW| <= 1e-5 (weights are O(0.1)),
while the two steps themselves move weights by > 1e-4.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch
from torch.utils.data import DistributedSampler

from litehrnet.config import load_config
from litehrnet.data import build_dataset, collate
from litehrnet.models import build_model_from_config
from litehrnet.training import JointsMSELoss, WarmupStepSchedule, build_optimizer
from litehrnet.training.rng import seed_everything

from training_helpers import NO_AUG, REPO, write_config

TOLERANCE = 1e-5


def _reference_weights(cfg: dict, world: int) -> tuple[dict, dict]:
    seed = cfg["train"]["seed"]
    seed_everything(seed)                       # what rank 0 of the trainer does before building
    dataset = build_dataset(cfg, "train")
    model = build_model_from_config(cfg)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    opt = build_optimizer(model.parameters(), cfg["train"], cfg["train"]["optimizer"]["lr"])
    schedule = WarmupStepSchedule.from_config(cfg["train"], cfg["train"]["optimizer"]["lr"])
    loss_fn = JointsMSELoss()
    dataset.set_epoch(0)
    shards = []
    for rank in range(world):
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        sampler.set_epoch(0)
        shards.append(list(sampler))
    batch = cfg["train"]["batch_size"]
    model.train()
    for step in range(-(-len(shards[0]) // batch)):
        schedule.apply(opt, step, 0)
        losses = []
        for shard in shards:                    # one "rank" at a time: BN statistics per rank
            items = collate([dataset[i] for i in shard[step * batch:(step + 1) * batch]])
            losses.append(loss_fn(model(items["img"]), items["target"], items["target_weight"]))
        opt.zero_grad()
        torch.stack(losses).mean().backward()
        opt.step()
    return start, model.state_dict()


def test_two_process_ddp_matches_single_process(tmp_path, tiny_synthetic):
    cfg_path = write_config(tmp_path / "cfg.yaml", tiny_synthetic, data={"aug": NO_AUG},
                            train={"epochs": 1, "optimizer": {"lr": 1e-3}, "lr_schedule": {"warmup_iters": 2}})
    work = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(REPO / "train.py"), str(cfg_path), "--work-dir", str(work), "--no-validate", "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(work / "epoch_1.pth", weights_only=True)
    assert ckpt["meta"]["world_size"] == 2 and ckpt["meta"]["iter"] == 2
    assert len(ckpt["rng"]) == 2                         # every rank's RNG state is kept for resuming
    assert not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])
    records = (work / "log.jsonl").read_text().splitlines()
    assert records and not list(work.glob("*rank1*"))   # one log, written by rank 0 only

    cfg = load_config(cfg_path)
    start, expected = _reference_weights(cfg, world=2)
    moved = max((expected[k].float() - start[k].float()).abs().max().item() for k in expected
                if expected[k].is_floating_point() and "running" not in k)
    diff = max((ckpt["state_dict"][k].float() - expected[k].float()).abs().max().item() for k in expected
               if expected[k].is_floating_point() and "running" not in k)
    print(f"DDP vs single-process reference: max abs dW {diff:.2e}, weights moved up to {moved:.2e}")
    assert moved > 1e-4, moved                           # training happened
    assert diff <= TOLERANCE, f"DDP differs from the single-process reference by {diff:.2e} (moved {moved:.2e})"
