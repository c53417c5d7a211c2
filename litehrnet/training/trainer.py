"""The training loop: epochs of top-down heatmap regression with the official recipe.

:func:`train` is what ``train.py`` calls. It runs in one process or, under ``torchrun``, as one
rank of a DistributedDataParallel job (a ``DistributedSampler`` shards every epoch; only rank 0
logs, validates and writes checkpoints). Determinism: the sampler order and the data-loader
worker seeds are functions of (seed, epoch, rank); the global RNG states of every rank are saved
in each checkpoint and restored on resume, so a resumed run continues exactly.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from litehrnet.config import dump_config

from .checkpointing import CheckpointKeeper, TrainingError, load_training_checkpoint
from .distributed import (DistInfo, all_reduce_mean, any_rank, barrier, broadcast_from_main, gather_to_main,
                          init_distributed)
from .logger import JsonLinesLogger
from .loss import JointsMSELoss
from .rng import capture_rng_state, preserved_rng, restore_rng_state, seed_everything
from .schedule import WarmupStepSchedule, build_optimizer, scaled_lr
from .threads import choose_threads


@dataclass
class TrainOptions:
    """Command-line switches of ``train.py`` that are not part of the config."""

    work_dir: str
    resume_from: str | None = None      # a training checkpoint, or "auto" (work_dir/last_checkpoint)
    load_from: str | None = None        # weights only (any format litehrnet.models loads)
    validate: bool = True
    deterministic: bool = False
    autoscale_lr: bool = False
    amp: str | None = None              # None, "fp16" (with a GradScaler) or "bf16"; CUDA only
    device: str = "cpu"
    show_progress: bool = True
    compile: bool = False               # torch.compile the training forward/backward
    threads: int | None = None          # torch intra-op threads (None: litehrnet.training.threads rule)
    qat: bool = False                   # quantisation-aware fine-tuning (litehrnet.training.qat)


@dataclass
class TrainResult:
    epochs_done: int
    iters_done: int
    last_checkpoint: Path | None
    best_checkpoint: Path | None
    best_metric: float | None
    history: list[dict] = field(default_factory=list)   # one record per epoch (rank 0)


def _metric_key(cfg: dict) -> str:
    return "PCKh" if cfg["test"]["metric"] == "PCKh" else "AP"


def _configure_determinism(deterministic: bool, device: torch.device) -> None:
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic


def _build_train_set(cfg: dict):
    """The training dataset, with missing paths and emptiness reported in one line."""
    data = cfg["data"]
    root = Path(data["root"])
    ann = root / data["train_ann"]
    if not root.exists():
        raise TrainingError(f"{root}: dataset root not found; set data.root (e.g. --cfg-options data.root=PATH) "
                            "or create the synthetic set with: python tools/make_synthetic.py --out data/synthetic")
    if not ann.is_file():
        raise TrainingError(f"{ann}: training annotation file not found; check data.root and data.train_ann")
    from litehrnet.data import build_dataset  # imported here: the data package is heavier than this module

    dataset = build_dataset(cfg, "train")
    if len(dataset) == 0:
        raise TrainingError(f"{ann}: the training set is empty (no usable person annotations); "
                            "check the annotation file and data.train_img_dir")
    return dataset


def _describe_val_set(cfg: dict) -> str:
    """Size of the validation set, read now so that a bad validation file fails before training."""
    from litehrnet.data import build_dataset

    dataset = build_dataset(cfg, "val")
    images = len({r["image_file"] for r in dataset.records})
    return f"{len(dataset)} people on {images} images, validated every {cfg['train']['validate_interval']} epochs"


def _loader(dataset, cfg: dict, info: DistInfo, epoch: int, sampler: DistributedSampler) -> DataLoader:
    from litehrnet.data import collate

    seed = int(cfg["train"]["seed"])
    sampler.set_epoch(epoch)
    if hasattr(dataset, "set_epoch"):  # per-item augmentation streams are f(seed, epoch, index)
        dataset.set_epoch(epoch)
    gen = torch.Generator()
    gen.manual_seed(seed * 1_000_003 + epoch * 1_009 + info.rank)  # worker seeds: f(seed, epoch, rank)
    workers = int(cfg["data"]["workers"])
    return DataLoader(dataset, batch_size=int(cfg["train"]["batch_size"]), sampler=sampler, num_workers=workers,
                      collate_fn=collate, generator=gen, drop_last=False, pin_memory=False,
                      persistent_workers=False)


def _build_model(cfg: dict, opts: TrainOptions, device: torch.device):
    from litehrnet.models import build_model_from_config

    model = build_model_from_config(cfg)
    if opts.load_from:
        from litehrnet.models.checkpoint import CheckpointError, load_checkpoint

        try:
            load_checkpoint(model, opts.load_from, strict=True)
        except (CheckpointError, FileNotFoundError) as exc:
            raise TrainingError(f"--load-from: {exc}") from None
        except RuntimeError as exc:  # shape mismatch: weights of another variant / keypoint count
            first = str(exc).strip().splitlines()[0]
            raise TrainingError(f"{opts.load_from}: weights do not fit variant '{cfg['model']['variant']}' "
                                f"({first}); use a checkpoint of the same variant") from None
    if opts.qat:
        from .qat import attach_qat

        qat = attach_qat(model)
        print(f"QAT: int8 fake quantisation on {qat.convs} convs (power-of-two radix per output channel, "
              f"{qat.folded} folded with their BN) and {qat.activations} activations (per channel, Kneron's "
              "scale * 2**radix grid)", flush=True)
    return model.to(device)


class Trainer:
    """Holds the state of one run; :meth:`run` trains from the current epoch to the last one."""

    def __init__(self, cfg: dict, opts: TrainOptions, info: DistInfo, thread_note: str | None = None) -> None:
        self.cfg, self.opts, self.info = cfg, opts, info
        self.thread_note = thread_note
        self.device = torch.device(f"cuda:{info.local_rank}" if opts.device == "cuda" else "cpu")
        if opts.device == "cuda" and not torch.cuda.is_available():
            raise TrainingError("--device cuda: no CUDA device is available; use --device cpu")
        tcfg = cfg["train"]
        _configure_determinism(opts.deterministic, self.device)
        seed_everything(int(tcfg["seed"]) + info.rank)
        self.work_dir = Path(opts.work_dir)
        self.keeper = CheckpointKeeper(self.work_dir, tcfg["max_keep_checkpoints"])
        resume_ckpt = self._read_resume_checkpoint(opts.resume_from) if opts.resume_from else None
        self.train_set = _build_train_set(cfg)
        self.val_size = _describe_val_set(cfg) if opts.validate and info.is_main else "not validated (--no-validate)"
        self.model = _build_model(cfg, opts, self.device)
        total_batch = int(tcfg["batch_size"]) * info.world_size
        self.base_lr = scaled_lr(tcfg, total_batch, opts.autoscale_lr)
        self.optimizer = build_optimizer(self.model.parameters(), tcfg, self.base_lr)
        self.schedule = WarmupStepSchedule.from_config(tcfg, self.base_lr)
        self.criterion = JointsMSELoss(use_target_weight=True)
        if opts.amp not in (None, "fp16", "bf16"):
            raise TrainingError(f"--amp: '{opts.amp}' is not one of fp16, bf16")
        if opts.amp and self.device.type != "cuda":
            raise TrainingError("--amp needs --device cuda: bf16 autocast on CPU made a training step "
                                "1.01-1.16x slower here (docs/training.md); train in fp32 on CPU")
        self.amp_dtype = torch.float16 if opts.amp == "fp16" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=opts.amp == "fp16")  # bf16 needs no loss scaling
        self.sampler = DistributedSampler(self.train_set, num_replicas=info.world_size, rank=info.rank,
                                          shuffle=True, seed=int(tcfg["seed"]), drop_last=False)
        self.epoch = 0          # completed epochs
        self.global_iter = 0    # completed iterations
        self.best_metric: float | None = None
        self.best_path: Path | None = None
        self.last_path: Path | None = None
        self.logger = JsonLinesLogger(self.work_dir / "log.jsonl", enabled=info.is_main)
        if resume_ckpt is not None:
            self._resume(*resume_ckpt)
        self.ddp = (DistributedDataParallel(self.model, device_ids=[info.local_rank] if self.device.type == "cuda"
                                            else None) if info.enabled else self.model)
        if opts.compile:  # the training forward only; checkpoints and validation use the plain module
            self.ddp = torch.compile(self.ddp)
        if info.is_main:
            self._print_start()

    # -- checkpoints -------------------------------------------------------------------------
    def _checkpoint(self, rng_states: list) -> dict:
        return {
            "state_dict": self.model.state_dict(),
            "meta": {"variant": self.cfg["model"]["variant"], "num_keypoints": self.cfg["model"]["num_keypoints"],
                     "epoch": self.epoch, "iter": self.global_iter, "best_metric": self.best_metric,
                     "best_metric_name": _metric_key(self.cfg), "best_checkpoint": str(self.best_path or ""),
                     "config": self.cfg, "world_size": self.info.world_size,
                     "torch_version": str(torch.__version__)},
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rng_states,
        }

    def _read_resume_checkpoint(self, path: str) -> tuple[str, dict]:
        """Find and check the checkpoint first, so a wrong file fails before any data is read."""
        if path == "auto":
            latest = self.keeper.latest()
            if latest is None:
                raise TrainingError(f"{self.work_dir}: --resume-from auto found no epoch_N.pth to resume")
            path = str(latest)
        return path, load_training_checkpoint(path, self.cfg["model"]["variant"])

    def _resume(self, path: str, ckpt: dict) -> None:
        try:
            self.model.load_state_dict(ckpt["state_dict"], strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise TrainingError(f"{path}: weights do not fit this config's model ({first})") from None
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("scaler") and self.scaler.is_enabled():
            self.scaler.load_state_dict(ckpt["scaler"])
        meta = ckpt["meta"]
        self.epoch, self.global_iter = int(meta["epoch"]), int(meta["iter"])
        self.best_metric = meta.get("best_metric")
        self.best_path = Path(meta["best_checkpoint"]) if meta.get("best_checkpoint") else None
        self.last_path = Path(path)
        rng = ckpt["rng"]
        if len(rng) == self.info.world_size:
            restore_rng_state(rng[self.info.rank])
        else:  # another world size: exact continuation is impossible, keep runs reproducible anyway
            seed_everything(int(self.cfg["train"]["seed"]) + 7919 * self.epoch + self.info.rank)
        if self.info.is_main:
            print(f"resumed from {path}: epoch {self.epoch}, iteration {self.global_iter}", flush=True)

    # -- loop --------------------------------------------------------------------------------
    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.opts.amp else nullcontext()

    def _print_start(self) -> None:
        """One block at start: device, threads, data, model size, output folder."""
        tcfg, dcfg = self.cfg["train"], self.cfg["data"]
        images = len({r["image_file"] for r in self.train_set.records}) if hasattr(self.train_set, "records") else "?"
        params = sum(p.numel() for p in self.model.parameters())
        device = str(self.device)
        if self.device.type == "cuda":
            device += f" ({torch.cuda.get_device_name(self.device)})"
        speed = [f"amp {self.opts.amp}"] if self.opts.amp else []
        speed += ["torch.compile (the first step and the first short batch compile: minutes on a CPU)"] \
            if self.opts.compile else []
        threads = self.thread_note or f"{torch.get_num_threads()} torch threads"
        print(f"device: {device}, {threads}, {dcfg['workers']} data workers"
              f"{', ' + ', '.join(speed) if speed else ''}", flush=True)
        print(f"model: {self.cfg['model']['variant']}, {params / 1e6:.2f} M parameters, "
              f"input {self.cfg['model']['input_hw'][0]}x{self.cfg['model']['input_hw'][1]}", flush=True)
        world = f" x {self.info.world_size} processes" if self.info.enabled else ""
        print(f"train set: {len(self.train_set)} people on {images} images, batch {tcfg['batch_size']}{world}, "
              f"{tcfg['epochs']} epochs", flush=True)
        print(f"val set: {self.val_size}", flush=True)
        print(f"output: {self.work_dir.resolve()}", flush=True)

    def _step(self, batch: dict) -> torch.Tensor:
        """One optimisation step; returns the (local) loss before the update."""
        img = batch["img"].to(self.device, non_blocking=True)
        target = batch["target"].to(self.device, non_blocking=True)
        weight = batch["target_weight"].to(self.device, non_blocking=True)
        with self._autocast():
            heatmaps = self.ddp(img)
        loss = self.criterion(heatmaps.float(), target, weight)
        if any_rank(not bool(torch.isfinite(loss)), self.info, self.device):
            return loss.detach() * float("nan")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        grad_clip = self.cfg["train"]["grad_clip"]
        if grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(grad_clip))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return loss.detach()

    def _stop_on_nan(self, epoch: int, it_in_epoch: int) -> None:
        where = f"epoch {epoch + 1}, iteration {self.global_iter + 1} ({it_in_epoch + 1} in epoch)"
        keep = f"last good checkpoint: {self.last_path}" if self.last_path else "no checkpoint was written yet"
        self.logger.log("error", epoch=epoch + 1, iter=self.global_iter + 1, message="non-finite loss")
        raise TrainingError(f"training stopped: loss became NaN/inf at {where}; {keep}; "
                            "lower train.optimizer.lr or set train.grad_clip")

    def _train_epoch(self, epoch: int, bar) -> tuple[float, int]:
        tcfg = self.cfg["train"]
        max_iters = tcfg["max_iters"]
        self.model.train()
        loader = _loader(self.train_set, self.cfg, self.info, epoch, self.sampler)
        loss_sum, count = torch.zeros((), device=self.device), 0
        for i, batch in enumerate(loader):
            if max_iters is not None and self.global_iter >= int(max_iters):
                break
            lr = self.schedule.apply(self.optimizer, self.global_iter, epoch)
            loss = self._step(batch)
            if not bool(torch.isfinite(loss)):
                self._stop_on_nan(epoch, i)
            self.global_iter += 1
            loss_sum += loss
            count += 1
            if self.global_iter % int(tcfg["log_interval"]) == 0 or i == 0:
                mean_loss = float(all_reduce_mean(loss, self.info))
                self.logger.log("train", epoch=epoch + 1, iter=self.global_iter, lr=lr, loss=mean_loss)
                if bar is not None:
                    bar.set_postfix(epoch=epoch + 1, loss=f"{mean_loss:.3e}", lr=f"{lr:.2e}")
            if bar is not None:
                bar.update(1)
        return float(all_reduce_mean(loss_sum / max(count, 1), self.info)), count

    def _validate(self) -> dict | None:
        from litehrnet.training.predict import evaluate_model

        with preserved_rng():  # validation must not change the training's random stream
            metrics = evaluate_model(self.model, self.cfg, "val", use_gt_bbox=True, device=self.device)
        self.model.train()
        return metrics

    def _end_epoch(self, epoch: int, mean_loss: float, iters: int, seconds: float) -> dict:
        tcfg = self.cfg["train"]
        self.epoch = epoch + 1
        rng_states = gather_to_main(capture_rng_state(), self.info)  # before validation touches anything
        record = {"epoch": self.epoch, "iter": self.global_iter, "loss": mean_loss, "iters": iters,
                  "seconds": round(seconds, 3), "lr": self.optimizer.param_groups[0]["lr"]}
        last_epoch = self.epoch == int(tcfg["epochs"])
        if self.info.is_main:
            self.logger.log("epoch", **record)
            metrics = None
            if self.opts.validate and (self.epoch % int(tcfg["validate_interval"]) == 0 or last_epoch):
                metrics = self._validate()
                key = _metric_key(self.cfg)
                value = float(metrics[key])
                record[key] = value
                self.logger.log("val", epoch=self.epoch, iter=self.global_iter,
                                **{k: float(v) for k, v in metrics.items()})
                if self.best_metric is None or value > self.best_metric:
                    self.best_metric = value
                    self.best_path = self.work_dir / f"best_{key}_epoch_{self.epoch}.pth"
                    self.keeper.save_best(self._checkpoint(rng_states), self.epoch, key)
            if self.epoch % int(tcfg["checkpoint_interval"]) == 0 or last_epoch:
                self.last_path = self.keeper.save_epoch(self._checkpoint(rng_states), self.epoch)
            summary = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
            tqdm.write(f"[epoch {self.epoch}/{tcfg['epochs']}] {summary}")
        barrier(self.info)
        self.best_metric = broadcast_from_main(self.best_metric, self.info)
        return record

    def run(self) -> TrainResult:
        tcfg = self.cfg["train"]
        epochs = int(tcfg["epochs"])
        per_epoch = math.ceil(len(self.sampler) / int(tcfg["batch_size"]))
        total = epochs * per_epoch
        if tcfg["max_iters"] is not None:
            total = min(total, int(tcfg["max_iters"]))
        bar = (tqdm(total=total, initial=min(self.global_iter, total), desc="train", unit="it", dynamic_ncols=True,
                    disable=not self.opts.show_progress) if self.info.is_main else None)
        history = []
        try:
            for epoch in range(self.epoch, epochs):
                if tcfg["max_iters"] is not None and self.global_iter >= int(tcfg["max_iters"]):
                    break
                start = time.perf_counter()
                mean_loss, iters = self._train_epoch(epoch, bar)
                if tcfg["max_iters"] is not None and self.global_iter >= int(tcfg["max_iters"]) \
                        and iters < per_epoch:
                    break  # stopped mid-epoch: a partial epoch is never checkpointed
                history.append(self._end_epoch(epoch, mean_loss, iters, time.perf_counter() - start))
        finally:
            if bar is not None:
                bar.close()
            self.logger.close()
        return TrainResult(self.epoch, self.global_iter, self.last_path, self.best_path, self.best_metric, history)


def train(cfg: dict, opts: TrainOptions) -> TrainResult:
    """Train according to ``cfg``; saves the resolved config as ``<work_dir>/config.yaml`` (rank 0)."""
    info = init_distributed(opts.device)
    if info.is_main:
        Path(opts.work_dir).mkdir(parents=True, exist_ok=True)
        dump_config(cfg, Path(opts.work_dir) / "config.yaml")
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.get_num_threads())
    threads = choose_threads(opts.threads)
    torch.set_num_threads(threads.threads)
    try:
        return Trainer(cfg, opts, info, thread_note=threads.describe()).run()
    finally:  # leave the process as it was (tests and notebooks call train() repeatedly)
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.set_num_threads(previous[2])
