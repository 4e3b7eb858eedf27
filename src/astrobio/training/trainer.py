"""The training loop: AdamW (or 8-bit AdamW), warm-up + cosine schedule, gradient accumulation and
clipping, autocast, NaN/Inf guards, validation with early stopping, checkpoints and history.

The trainer is generic: `model(batch) -> dict` with `logits [B, C]`, `loss_fn(outputs, batch) -> dict`
with `total` and its components, batches with `.to(device)`, `.labels [B]`, `.run_ids` and `len()`.

Steps are optimizer steps, numbered from 1; "step s" in messages and history is the s-th update.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

from astrobio import __version__
from astrobio.data import make_dataloader
from astrobio.errors import InputValidationError, TrainingInstabilityError
from astrobio.metrics import accuracy_macro_f1, pairs_from_confusion
from astrobio.seeding import seed_everything
from astrobio.training.checkpoint import (atomic_torch_save, atomic_write_text, capture_rng_state, dataset_state,
                                          load_resume, remove_stale_temp_files, restore_rng_state, trim_history)
from astrobio.training.config import TRAJECTORY_FIELDS, TrainConfig
from astrobio.training.distributed import DistContext, ResumableDistributedSampler, ShardSampler, all_reduce, wrap_model
from astrobio.training.tracking import environment_info, make_tracker

log = logging.getLogger("astrobio.training")

LossFn = Callable[[dict[str, Any], Any], dict[str, torch.Tensor]]
# make_loader(dataset, batch_size=, sampler=, num_workers=, seed=) -> iterable of batches
LoaderFactory = Callable[..., Iterable]


# ---------------------------------------------------------------- optimisation pieces

def cosine_lr_factor(step: int, warmup_steps: int, max_steps: int, min_lr_ratio: float) -> float:
    """LR multiplier for 0-indexed update `step`: linear warm-up to 1 over `warmup_steps` updates
    ((step+1)/warmup, so the first update is not wasted at lr 0), then cosine decay to `min_lr_ratio`
    at `max_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW with weight decay on ≥2-D tensors only (matrices, kernels); biases and norm gains are
    not decayed (decaying them only hurts, cf. nanoGPT / Loshchilov & Hutter 2019)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    if config.optimizer == "adamw8bit":
        try:
            import bitsandbytes as bnb
        except ImportError:
            raise InputValidationError("optimizer", "adamw8bit",
                                       "bitsandbytes installed (`pip install bitsandbytes`), or 'adamw'") from None
        return bnb.optim.AdamW8bit(groups, lr=config.lr, betas=config.betas)
    # fused: one kernel over all tensors (CUDA, and CPU since torch 2.4: ~3x cheaper than the per-tensor loop)
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, fused=device.type in ("cuda", "cpu"))


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, partial(
        cosine_lr_factor, warmup_steps=config.warmup_steps, max_steps=config.lr_decay_steps or config.max_steps,
        min_lr_ratio=config.min_lr_ratio))


def resolve_precision(precision: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None for fp32, whether a GradScaler is needed). 'auto' = bf16 on CUDA, fp32 on CPU
    (bf16 autocast is 20–45× slower on these CPUs)."""
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputValidationError("precision", "bf16", "a GPU with bf16 support (Ampere or newer), or fp16")
    return {"fp32": (None, False), "bf16": (torch.bfloat16, False), "fp16": (torch.float16, True)}[precision]


# ---------------------------------------------------------------- metrics and monitoring

def classification_metrics(confusion: torch.Tensor) -> dict[str, float]:
    """Accuracy and macro-F1 from a confusion matrix `[C, C]` (rows = true, cols = predicted), by the one
    definition in `astrobio.metrics` (every class counts, F1 0 where undefined)."""
    y_true, y_pred = pairs_from_confusion(confusion.detach().cpu().numpy())
    return accuracy_macro_f1(y_true, y_pred, confusion.shape[0])


def selection_score(metrics: dict[str, float], select_on: str) -> float | None:
    """The validation score `TrainConfig.select_on` names, oriented so that higher is better (None: no
    validation)."""
    value = metrics.get(f"val/{select_on}")
    if value is None:
        return None
    return -value if select_on == "log_loss" else value


def memory_stats(device: torch.device) -> dict[str, float]:
    """Current process RSS (psutil, else /proc/self/statm, else peak RSS from `resource`) and CUDA
    allocated / reserved / peak-allocated memory, in GB."""
    stats: dict[str, float] = {}
    try:
        import psutil

        stats["rss_gb"] = psutil.Process().memory_info().rss / 1e9
    except ImportError:
        try:
            with open("/proc/self/statm") as f:
                stats["rss_gb"] = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9
        except OSError:
            import resource

            stats["rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux
    if device.type == "cuda":
        stats["cuda_allocated_gb"] = torch.cuda.memory_allocated(device) / 1e9
        stats["cuda_reserved_gb"] = torch.cuda.memory_reserved(device) / 1e9
        stats["cuda_max_allocated_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return stats


def memory_limit_gb(device: torch.device, configured: float) -> float:
    """The warning threshold: the configured value, else 90% of the GPU's (or host's) memory."""
    if configured > 0:
        return configured
    if device.type == "cuda":
        return 0.9 * torch.cuda.get_device_properties(device).total_memory / 1e9
    try:
        return 0.9 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError):
        return math.inf


def _progress(enabled: bool, total: int):
    """A rich progress bar on an interactive terminal; None in CI, pipes and non-zero ranks."""
    if not (enabled and sys.stdout.isatty() and not os.environ.get("CI")):
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[info]}"), transient=False)


# ---------------------------------------------------------------- the trainer

def default_loader(dataset: Dataset, *, batch_size: int, sampler: Sampler, num_workers: int, seed: int) -> Iterable:
    return make_dataloader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, seed=seed,
                           sampler=sampler)


class Trainer:
    """Trains `model` on `train_dataset`, validating on `val_dataset`, writing into `out_dir`:
    `history.jsonl`, `checkpoints/{best,last}.pt` (+ `debug-stepN.pt` on instability),
    `run_info.json`, `train_summary.json`, the tracker's files (e.g. `tensorboard/`)."""

    def __init__(self, model: nn.Module, loss_fn: LossFn, train_dataset: Dataset, val_dataset: Dataset | None,
                 config: TrainConfig, out_dir: str | Path, *, ctx: DistContext | None = None,
                 make_loader: LoaderFactory = default_loader, run_config: dict[str, Any] | None = None,
                 data_fingerprint: str = ""):
        self.config, self.ctx = config, ctx or DistContext()
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.loss_fn, self.make_loader = loss_fn, make_loader
        self.train_dataset, self.val_dataset = train_dataset, val_dataset
        self.run_config = {"train": config.to_dict(), **(run_config or {})}
        self.data_fingerprint = data_fingerprint
        self._data_state = dataset_state(train_dataset)  # statistics + tokenizer, saved with every checkpoint
        device = self.ctx.device
        self.raw_model = model.to(device)
        self.model = wrap_model(self.raw_model, self.ctx)
        self.optimizer = build_optimizer(self.raw_model, config, device)
        self.scheduler = build_scheduler(self.optimizer, config)
        self.autocast_dtype, use_scaler = resolve_precision(config.precision, device)
        self.scaler = torch.amp.GradScaler(device.type) if use_scaler else None
        self.sampler = ResumableDistributedSampler(train_dataset, num_replicas=self.ctx.world_size,
                                                   rank=self.ctx.rank, shuffle=True, seed=config.seed)
        self.loader = make_loader(train_dataset, batch_size=config.batch_size, sampler=self.sampler,
                                  num_workers=config.loader_workers, seed=config.seed)
        self.val_loader = None
        if val_dataset is not None and len(val_dataset) >= self.ctx.world_size:  # every rank needs a batch
            self.val_loader = make_loader(val_dataset, batch_size=config.batch_size, num_workers=config.loader_workers,
                                          sampler=ShardSampler(len(val_dataset), self.ctx.world_size, self.ctx.rank),
                                          seed=config.seed)
        if self.val_loader is None:
            log.warning("no validation split (%s items for %d ranks): no evaluation, early stopping or best.pt",
                        0 if val_dataset is None else len(val_dataset), self.ctx.world_size)
        # progress state (all saved in checkpoints)
        self.step = 0
        self.epoch, self.batch_index = 0, 0  # micro-batches of `epoch` this rank has consumed
        # best_score: the `select_on` score, higher is better (-log-loss); best_f1: macro-F1 at that evaluation
        self.best_score, self.best_f1, self.best_step, self.evals_without_improvement = -math.inf, -math.inf, 0, 0
        self.train_time_s, self.samples_seen = 0.0, 0
        self._loader_gen_epoch_state: torch.Tensor | None = None
        self._stop_signal = False
        self._bar_active = False
        self.step_lr = config.lr

    # ------------------------------------------------------------ public API

    def fit(self, resume: str | Path | None = None) -> dict[str, Any]:
        """Train until `max_steps`, `max_minutes`, early stopping or SIGTERM; return the summary dict."""
        cfg, ctx = self.config, self.ctx
        ckpt_path, ckpt = load_resume(resume, self.out_dir)  # falls back to best.pt if last.pt is unreadable
        if ckpt is None:
            seed_everything(cfg.seed + ctx.rank)  # different dropout masks per rank; DDP syncs the weights
        else:
            self._load_state(ckpt)
            log.info("resumed from %s at step %d", ckpt_path, self.step)
        tracker = make_tracker(cfg.tracking if ctx.is_main else "none", self.out_dir)
        if ctx.is_main:
            self._start_files(tracker)
        data_iter = self._epoch_iterator(resuming=ckpt is not None)
        if ckpt is not None:
            # After the iterator exists: creating it may draw from the global RNG, which the
            # uninterrupted run did at the start of the epoch, not here.
            restore_rng_state(ckpt["rng"])
        previous_handler = self._install_sigterm()
        previous_determinism = (torch.are_deterministic_algorithms_enabled(),
                                torch.is_deterministic_algorithms_warn_only_enabled())
        if cfg.deterministic:
            if ctx.device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
            torch.use_deterministic_algorithms(True, warn_only=True)
        progress = _progress(ctx.is_main, cfg.max_steps)
        self._bar_active = progress is not None
        task = progress.add_task("train", total=cfg.max_steps, completed=self.step, info="") if progress else None
        window = _Window()
        stop_reason = "max_steps"
        last_val: dict[str, float] = {}
        start = time.perf_counter() - self.train_time_s
        try:
            if progress:
                progress.start()
            while self.step < cfg.max_steps:
                t0 = time.perf_counter()
                data_iter, losses, grad_norm, n_samples = self._train_step(data_iter)
                self.step += 1
                dt = time.perf_counter() - t0
                self.train_time_s += dt
                self.samples_seen += n_samples * ctx.world_size
                window.add(losses, n_samples * ctx.world_size, dt)
                if self.step % cfg.log_every == 0:
                    self._log_train(window, grad_norm, tracker)
                    window = _Window()
                if progress:
                    progress.update(task, completed=self.step,
                                    info=f"loss {losses['total']:.4f}  {n_samples * ctx.world_size / dt:.1f} samples/s")
                early_stop = False
                if self.step % cfg.eval_every == 0:
                    last_val = self._evaluate_and_checkpoint(tracker, scheduled=True)
                    early_stop = cfg.patience > 0 and self.evals_without_improvement >= cfg.patience
                over_time = cfg.max_minutes > 0 and (time.perf_counter() - start) / 60 > cfg.max_minutes
                flags = all_reduce(torch.tensor([float(early_stop), float(over_time), float(self._stop_signal)]),
                                   ctx, op="max")
                if flags.any():
                    stop_reason = ("early_stopping", "max_minutes", "sigterm")[int(flags.argmax())]
                    break
            rng = capture_rng_state()  # before the final evaluation, which an uninterrupted run would not do
            if self.step % cfg.eval_every != 0:  # else `last` was written at this step's scheduled evaluation
                last_val = self._evaluate_and_checkpoint(tracker, scheduled=False, rng=rng)
            summary = self._summary(stop_reason, last_val, time.perf_counter() - start)
            if ctx.is_main:
                atomic_write_text(json.dumps(summary, indent=2) + "\n", self.out_dir / "train_summary.json")
            return summary
        finally:
            if progress:
                progress.stop()
            tracker.close()
            self._restore_sigterm(previous_handler)
            torch.use_deterministic_algorithms(previous_determinism[0], warn_only=previous_determinism[1])

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation loss (per component), log-loss, Brier score, accuracy and macro-F1, all-reduced over ranks."""
        if self.val_loader is None:
            return {}
        model, device = self.raw_model, self.ctx.device  # unwrapped: no DDP collectives in eval
        was_training = model.training
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        confusion = None
        count = torch.zeros((), dtype=torch.float64, device=device)
        for batch in self.val_loader:
            batch = batch.to(device)
            with self._autocast():
                outputs = model(batch)
                losses = self.loss_fn(outputs, batch)
            n = len(batch)
            for name, value in losses.items():
                sums[name] = sums.get(name, torch.zeros((), dtype=torch.float64, device=device)) + value.double() * n
            logits = outputs["logits"].float()  # (B, C)
            # log-loss and Brier (Brier 1950) as per-sample sums, so they all-reduce like the losses
            probs = logits.softmax(-1)
            onehot = torch.nn.functional.one_hot(batch.labels.long(), logits.shape[-1]).to(probs.dtype)
            for key, value in (("_log_loss", torch.nn.functional.cross_entropy(logits, batch.labels.long(),
                                                                                reduction="sum")),
                               ("_brier", ((probs - onehot) ** 2).sum())):
                sums[key] = sums.get(key, torch.zeros((), dtype=torch.float64, device=device)) + value.double()
            if confusion is None:
                confusion = torch.zeros(logits.shape[-1], logits.shape[-1], dtype=torch.float64, device=device)
            idx = batch.labels.long() * logits.shape[-1] + logits.argmax(-1)
            confusion += torch.bincount(idx, minlength=confusion.numel()).view_as(confusion).double()
            count += n
        model.train(was_training)
        names = sorted(sums)
        packed = torch.stack([sums[k] for k in names] + [count] + list(confusion.flatten()))
        packed = all_reduce(packed, self.ctx, op="sum")
        total = packed[len(names)].item()
        confusion = packed[len(names) + 1:].view_as(confusion)
        def key(name: str) -> str:
            return name[1:] if name.startswith("_") else "loss" if name == "total" else "loss_" + name

        metrics = {f"val/{key(k)}": packed[i].item() / total for i, k in enumerate(names)}
        metrics.update({f"val/{k}": v for k, v in classification_metrics(confusion).items()})
        return metrics

    # ------------------------------------------------------------ one optimizer step

    def _train_step(self, data_iter: Iterator) -> tuple[Iterator, dict[str, float], float, int]:
        cfg, ctx = self.config, self.ctx
        step = self.step + 1
        self.model.train()
        comp_sums: dict[str, torch.Tensor] = {}
        failure: tuple[str, list[str]] | None = None  # (message, run_ids)
        n_samples = 0
        for micro in range(cfg.grad_accum_steps):
            data_iter, batch = self._next_batch(data_iter)
            batch = batch.to(ctx.device)
            n_samples += len(batch)
            last_micro = micro == cfg.grad_accum_steps - 1
            # No all-reduce on the accumulation micro-steps: DDP averages once, on the last one.
            sync = nullcontext() if (last_micro or not ctx.is_distributed) else self.model.no_sync()
            with sync:
                with self._autocast():
                    outputs = self.model(batch)
                    losses = self.loss_fn(outputs, batch)
                bad = _non_finite(losses)
                if bad is not None and failure is None:
                    failure = (f"non-finite loss at step {step} in component '{bad[0]}' (value {bad[1]}; "
                               f"non-finite: {', '.join(bad[2])})", list(getattr(batch, "run_ids", [])))
                    if not ctx.is_distributed:
                        self._raise_instability(step, failure[0], failure[1], losses)
                loss = losses["total"] / cfg.grad_accum_steps
                (self.scaler.scale(loss) if self.scaler else loss).backward()
            for name, value in losses.items():
                comp_sums[name] = comp_sums.get(name, 0.0) + value.detach().float() / cfg.grad_accum_steps
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), max_norm).item()  # pre-clip norm
        if ctx.is_distributed:  # every rank stops together: no rank may wait forever in a collective
            elsewhere = all_reduce(torch.tensor([float(failure is not None)]), ctx, op="max").item() > 0
            if elsewhere and failure is None:
                failure = (f"non-finite loss at step {step} on another rank (see its debug checkpoint)",
                           list(getattr(batch, "run_ids", [])))
        if failure is not None:
            self._raise_instability(step, failure[0], failure[1], comp_sums)
        if not math.isfinite(grad_norm):
            if self.scaler is None:
                self._raise_instability(step, f"non-finite gradient norm at step {step} in component 'grad_norm' "
                                              f"(value {grad_norm})", list(getattr(batch, "run_ids", [])), comp_sums)
            log.warning("step %d: fp16 gradients overflowed (norm %s); GradScaler skips this update", step, grad_norm)
        elif grad_norm > cfg.grad_norm_warn:
            log.warning("step %d: large gradient norm %.2f before clipping (warn above %.1f)", step, grad_norm,
                        cfg.grad_norm_warn)
        self.step_lr = self.optimizer.param_groups[0]["lr"]  # the lr this update uses (logged)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():
            # GradScaler skipping an overflowed fp16 update makes torch think step() was never called;
            # the schedule still advances by one update, as intended.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            self.scheduler.step()
        return data_iter, {k: v.item() for k, v in comp_sums.items()}, grad_norm, n_samples

    def _next_batch(self, data_iter: Iterator) -> tuple[Iterator, Any]:
        try:
            batch = next(data_iter)
        except StopIteration:
            self.epoch, self.batch_index = self.epoch + 1, 0
            data_iter = self._epoch_iterator(resuming=False)
            try:
                batch = next(data_iter)
            except StopIteration:
                raise InputValidationError("train dataset", len(self.train_dataset),
                                           f">= 1 batch per rank (world size {self.ctx.world_size})") from None
        self.batch_index += 1
        return data_iter, batch

    def _epoch_iterator(self, resuming: bool) -> Iterator:
        self.sampler.set_epoch(self.epoch, skip=self.batch_index * self.config.batch_size if resuming else 0)
        generator = getattr(self.loader, "generator", None)
        if generator is not None:
            if resuming and self._loader_gen_epoch_state is not None:
                generator.set_state(self._loader_gen_epoch_state)
            self._loader_gen_epoch_state = generator.get_state()
        return iter(self.loader)

    def _autocast(self):
        dtype = self.autocast_dtype
        return torch.autocast(self.ctx.device.type, dtype=dtype) if dtype is not None else nullcontext()

    # ------------------------------------------------------------ failures

    def _raise_instability(self, step: int, message: str, run_ids: list[str], losses: dict[str, Any]) -> None:
        name = f"debug-step{step}.pt" if self.ctx.is_main else f"debug-step{step}-rank{self.ctx.rank}.pt"
        path = self.ckpt_dir / name
        atomic_torch_save({"model": self.raw_model.state_dict(), "step": step, "message": message,
                           "run_ids": run_ids,
                           "losses": {k: float(torch.as_tensor(v).detach()) for k, v in losses.items()},
                           "config": self.run_config, "rng": capture_rng_state(), "version": __version__}, path)
        raise TrainingInstabilityError(f"{message}; batch run_ids {run_ids}; debug checkpoint {path}")

    # ------------------------------------------------------------ evaluation, checkpoints, logs

    def _evaluate_and_checkpoint(self, tracker, scheduled: bool, rng: dict | None = None) -> dict[str, float]:
        metrics = self.evaluate()
        f1 = metrics.get("val/macro_f1")
        score = selection_score(metrics, self.config.select_on)
        improved = score is not None and score > self.best_score
        if improved:
            self.best_score, self.best_f1, self.best_step = score, f1, self.step
        if scheduled:  # the extra end-of-run evaluation does not count towards patience
            self.evals_without_improvement = 0 if improved else self.evals_without_improvement + 1
        if self.ctx.is_main:
            if metrics:
                row = {"step": self.step, "kind": "val", **metrics, "best_val_macro_f1": self.best_f1}
                self._append_history(row)
                tracker.log_metrics(metrics, self.step)
                log.info("step %d  val loss %.4f  accuracy %.3f  macro-F1 %.3f (best %.3f at step %d)", self.step,
                         metrics["val/loss"], metrics["val/accuracy"], metrics["val/macro_f1"], self.best_f1,
                         self.best_step)
            state = self._state(rng or capture_rng_state())
            if improved:
                atomic_torch_save(state, self.ckpt_dir / "best.pt")
            atomic_torch_save(state, self.ckpt_dir / "last.pt")
        return metrics

    def _state(self, rng: dict[str, Any]) -> dict[str, Any]:
        generator = getattr(self.loader, "generator", None)
        return {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None,
            "rng": rng,
            "data_position": {"epoch": self.epoch, "batch_index": self.batch_index, "sampler_seed": self.config.seed,
                              "batch_size": self.config.batch_size, "world_size": self.ctx.world_size,
                              "loader_generator_epoch_state": self._loader_gen_epoch_state if generator else None},
            "step": self.step,
            "trainer": {"best_score": self.best_score, "best_f1": self.best_f1, "best_step": self.best_step,
                        "evals_without_improvement": self.evals_without_improvement,
                        "train_time_s": self.train_time_s, "samples_seen": self.samples_seen},
            "config": self.run_config,
            "data_state": self._data_state,
            "data_fingerprint": self.data_fingerprint,
            "version": __version__,
        }

    def _load_state(self, ckpt: dict[str, Any]) -> None:
        if self.data_fingerprint and ckpt.get("data_fingerprint") and ckpt["data_fingerprint"] != self.data_fingerprint:
            raise InputValidationError("resume data fingerprint", self.data_fingerprint[:12],
                                       f"the checkpoint's data ({ckpt['data_fingerprint'][:12]}): "
                                       "resume on the same store")
        old = ckpt.get("config", {}).get("train", {})
        new = self.run_config["train"]
        changed = [k for k in TRAJECTORY_FIELDS if k in old and old[k] != new.get(k)]
        if not new["lr_decay_steps"] and old.get("max_steps", new["max_steps"]) != new["max_steps"]:
            changed.append("max_steps (the cosine horizon; set lr_decay_steps to keep it)")
        if changed:
            log.warning("resuming with changed %s: the continuation will not match an uninterrupted run", changed)
        self.raw_model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if self.scaler and ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        # LambdaLR restores only its step counter here (the lambda is rebuilt from the current config),
        # so a resume with a larger max_steps continues on the extended schedule.
        self.step = ckpt["step"]
        pos = ckpt["data_position"]
        if pos["batch_size"] == self.config.batch_size and pos["world_size"] == self.ctx.world_size:
            self.epoch, self.batch_index = pos["epoch"], pos["batch_index"]
            self._loader_gen_epoch_state = pos.get("loader_generator_epoch_state")
        else:
            log.warning("batch size or world size changed since the checkpoint: continuing from epoch %d's start",
                        pos["epoch"] + 1)
            self.epoch, self.batch_index = pos["epoch"] + 1, 0
        t = ckpt["trainer"]
        self.best_score, self.best_f1, self.best_step = t["best_score"], t["best_f1"], t["best_step"]
        self.evals_without_improvement = t["evals_without_improvement"]
        self.train_time_s, self.samples_seen = t["train_time_s"], t["samples_seen"]

    def _start_files(self, tracker) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for directory in (self.out_dir, self.ckpt_dir):  # leftovers of a save killed mid-write
            remove_stale_temp_files(directory)
        trim_history(self.out_dir / "history.jsonl", self.step)  # rows past the resume point, a torn last line
        info = {"config": self.run_config, "environment": environment_info(self.ctx.device, self.ctx.world_size),
                "data_fingerprint": self.data_fingerprint, "resumed_at_step": self.step}
        atomic_write_text(json.dumps(info, indent=2, default=str) + "\n", self.out_dir / "run_info.json")
        tracker.log_config(info)

    def _log_train(self, window: _Window, grad_norm: float, tracker) -> None:
        losses = window.mean_losses(self.ctx)
        row = {"step": self.step, "kind": "train", "epoch": self.epoch,
               **{f"train/{'loss' if k == 'total' else 'loss_' + k}": v for k, v in losses.items()},
               "lr": self.step_lr, "grad_norm": grad_norm,
               "samples_per_s": window.samples / window.seconds if window.seconds else 0.0}
        mem = memory_stats(self.ctx.device)
        limit = memory_limit_gb(self.ctx.device, self.config.memory_warn_gb)
        used = max(mem.get("cuda_allocated_gb", 0.0), mem["rss_gb"])
        if used > limit:
            log.warning("step %d: memory %.2f GB above the %.2f GB threshold (%s)", self.step, used, limit, mem)
        row.update({f"mem/{k}": v for k, v in mem.items()})
        if self.ctx.is_main:
            self._append_history(row)
            tracker.log_metrics({k: v for k, v in row.items() if k not in ("step", "kind")}, self.step)
            if not self._bar_active:  # the progress bar shows the same on a terminal
                log.info("step %d/%d  loss %.4f  lr %.2e  grad norm %.2f  %.1f samples/s", self.step,
                         self.config.max_steps, row["train/loss"], row["lr"], grad_norm, row["samples_per_s"])

    def _append_history(self, row: dict[str, Any]) -> None:
        with open(self.out_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")

    def _summary(self, stop_reason: str, last_val: dict[str, float], wall_s: float) -> dict[str, Any]:
        return {"steps": self.step, "stop_reason": stop_reason, "wall_time_s": wall_s,
                "train_time_s": self.train_time_s, "samples_seen": self.samples_seen,
                "samples_per_s": self.samples_seen / self.train_time_s if self.train_time_s else 0.0,
                "best_val_macro_f1": self.best_f1 if math.isfinite(self.best_f1) else None,
                "best_step": self.best_step, "final_val": last_val, "world_size": self.ctx.world_size,
                "data_fingerprint": self.data_fingerprint}

    # ------------------------------------------------------------ SIGTERM (preemption, torchrun shutdown)

    def _install_sigterm(self):
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            self._stop_signal = True  # finish this step, save `last`, exit cleanly

        return signal.signal(signal.SIGTERM, handler)

    @staticmethod
    def _restore_sigterm(previous) -> None:
        if previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)


class _Window:
    """Running sums between two log steps."""

    def __init__(self) -> None:
        self.losses: dict[str, float] = {}
        self.steps, self.samples, self.seconds = 0, 0, 0.0

    def add(self, losses: dict[str, float], samples: int, seconds: float) -> None:
        for k, v in losses.items():
            self.losses[k] = self.losses.get(k, 0.0) + v
        self.steps, self.samples, self.seconds = self.steps + 1, self.samples + samples, self.seconds + seconds

    def mean_losses(self, ctx: DistContext) -> dict[str, float]:
        names = sorted(self.losses)
        t = all_reduce(torch.tensor([self.losses[k] for k in names], dtype=torch.float64), ctx, "sum")
        return {k: t[i].item() / (self.steps * ctx.world_size) for i, k in enumerate(names)}


def _non_finite(losses: dict[str, torch.Tensor]) -> tuple[str, float, list[str]] | None:
    """(first name, its value, all names) of the non-finite loss components, components before 'total'
    (an aggregate such as 'graph' comes before its parts 'graph_edge', …). One device sync."""
    names = [k for k in losses if k != "total"] + ["total"]
    values = torch.stack([torch.as_tensor(losses[k]).detach().float().reshape(()).cpu() for k in names])
    bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
    if not bad:
        return None
    return names[bad[0]], values[bad[0]].item(), [names[i] for i in bad]
