"""`astrobio train`: the unified multi-modal system on a data store, single process or under `torchrun`.

    astrobio train --preset tiny --data store/ --out runs/tiny --max-steps 200
    torchrun --nproc_per_node 2 -m astrobio.cli train --preset small --data store/ --out runs/small
    astrobio train --preset tiny --data store/ --out runs/tiny --resume auto --max-steps 400
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

import typer

from astrobio.training.config import OPTIMIZERS, PRECISIONS, PRESET_DEFAULTS, TRACKERS, TrainConfig, load_yaml


def build_system_run(cfg: TrainConfig, data: Path, ctx) -> dict[str, Any]:
    """Datasets, model, loss and run metadata for `cfg` on the store at `data`.

    Rank 0 opens the datasets first: the first open writes the train-split stats and tokenizer beside
    the data, which the other ranks then read instead of racing to write them.
    """
    import torch

    from astrobio.data import PlanetRunDataset
    from astrobio.errors import InputValidationError
    from astrobio.models import SystemConfig, UnifiedMultiModalSystem, compute_multimodal_loss
    from astrobio.training.checkpoint import data_fingerprint
    from astrobio.training.distributed import barrier

    if not (data / "index.sqlite").is_file():
        raise InputValidationError("data", str(data), "a store directory written by `astrobio simulate`")
    datasets = {}
    for turn in (0, 1):  # rank 0 first, then the others
        if (turn == 0) == ctx.is_main:
            datasets = {split: PlanetRunDataset(data, split) for split in ("train", "val")}
        barrier(ctx)
    if len(datasets["train"]) == 0:
        raise InputValidationError("data", str(data), "a store with runs in the train split")
    system_config = SystemConfig.from_name(cfg.preset, gradient_checkpointing=cfg.activation_checkpointing)
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    model = UnifiedMultiModalSystem(system_config)

    def loss_fn(outputs, batch):
        return compute_multimodal_loss(outputs, batch, system_config.loss)

    return {"model": model, "loss_fn": loss_fn, "train": datasets["train"], "val": datasets["val"],
            "system_config": system_config, "fingerprint": data_fingerprint(data)}


def resolve_config(config: Optional[Path], resume: Optional[str], out: Path, overrides: dict[str, Any]) -> TrainConfig:
    """The preset's defaults ← the resumed run's config.yaml (so its first flags persist) ← --config YAML ←
    explicit CLI flags (None = not given)."""
    from astrobio.training.checkpoint import resolve_resume

    d: dict[str, Any] = {}
    ckpt_path = resolve_resume(resume, out)
    if ckpt_path is not None:
        run_yaml = ckpt_path.parent.parent / "config.yaml"
        if run_yaml.is_file():
            d.update(load_yaml(run_yaml))
    if config is not None:
        d.update(load_yaml(config))
    d.update({k: v for k, v in overrides.items() if v is not None})
    preset = d.pop("preset", "tiny")
    return TrainConfig.for_preset(preset, **d)


def train(
    data: Path = typer.Option(..., "--data", help="Store directory (index.sqlite + HDF5 shards)."),
    out: Path = typer.Option(..., "--out", help="Run directory (config, history, checkpoints, tensorboard)."),
    preset: Optional[str] = typer.Option(None, help=f"Model preset, one of {tuple(PRESET_DEFAULTS)} (default tiny); "
                                                    "sets recommended lr, batch size, schedule."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML file of TrainConfig fields."),
    resume: Optional[str] = typer.Option(None, help="'auto' (RUN/checkpoints/last.pt if present) or a checkpoint."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes"),
    seed: Optional[int] = typer.Option(None),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Micro-batch size per process."),
    grad_accum_steps: Optional[int] = typer.Option(None, "--grad-accum"),
    lr: Optional[float] = typer.Option(None),
    warmup_steps: Optional[int] = typer.Option(None, "--warmup-steps"),
    lr_decay_steps: Optional[int] = typer.Option(None, "--lr-decay-steps",
                                                 help="Cosine horizon (default max-steps): plan a run trained in legs."),
    optimizer: Optional[str] = typer.Option(None, help=f"One of {OPTIMIZERS}."),
    precision: Optional[str] = typer.Option(None, help=f"One of {PRECISIONS}."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader workers per process."),
    eval_every: Optional[int] = typer.Option(None, "--eval-every"),
    log_every: Optional[int] = typer.Option(None, "--log-every"),
    patience: Optional[int] = typer.Option(None),
    tracking: Optional[str] = typer.Option(None, help=f"One of {TRACKERS}."),
    activation_checkpointing: Optional[bool] = typer.Option(
        None, "--activation-checkpointing/--no-activation-checkpointing"),
    deterministic: Optional[bool] = typer.Option(None, "--deterministic/--no-deterministic"),
) -> None:
    """Train the unified multi-modal system; under `torchrun` it runs DDP automatically."""
    from rich.console import Console

    from astrobio.errors import AstrobioError
    from astrobio.training.checkpoint import atomic_write_text
    from astrobio.training.distributed import cleanup, init_distributed
    from astrobio.training.trainer import Trainer

    overrides = dict(preset=preset, max_steps=max_steps, max_minutes=max_minutes, seed=seed, batch_size=batch_size,
                     grad_accum_steps=grad_accum_steps, lr=lr, warmup_steps=warmup_steps,
                     lr_decay_steps=lr_decay_steps, optimizer=optimizer,
                     precision=precision, num_workers=workers, eval_every=eval_every, log_every=log_every,
                     patience=patience, tracking=tracking, activation_checkpointing=activation_checkpointing,
                     deterministic=deterministic)
    try:
        cfg = resolve_config(config, resume, out, overrides)
    except AstrobioError as exc:
        _fail(exc)
    ctx = init_distributed()
    logging.basicConfig(level=logging.INFO if ctx.is_main else logging.WARNING,
                        format=f"%(asctime)s [rank {ctx.rank}] %(levelname)s %(name)s: %(message)s")
    try:
        run = build_system_run(cfg, data, ctx)
        run_config = {"system": run["system_config"].to_dict(), "data": str(data.resolve())}
        if ctx.is_main:
            import yaml

            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(yaml.safe_dump({"train": cfg.to_dict(), **run_config}, sort_keys=False),
                              out / "config.yaml")
        trainer = Trainer(run["model"], run["loss_fn"], run["train"], run["val"], cfg, out, ctx=ctx,
                          run_config=run_config, data_fingerprint=run["fingerprint"])
        summary = trainer.fit(resume=resume)
    except AstrobioError as exc:  # bad input, unreadable store or checkpoint, instability: a message, not a trace
        cleanup(ctx, wait=False)
        _fail(exc)
    except BaseException:
        cleanup(ctx, wait=False)
        raise
    cleanup(ctx)
    if ctx.is_main:
        Console().print_json(json.dumps(summary))


def _fail(exc: Exception) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {type(exc).__name__}: {exc}", markup=True, highlight=False)
    raise typer.Exit(code=2)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
