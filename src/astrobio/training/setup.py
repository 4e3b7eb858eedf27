"""What `astrobio train` runs, without the command line: the config precedence, the system and data of a
run, its fine-tuning set-up, and the whole training run (single process or one rank under `torchrun`).

    cfg = resolve_config(None, None, Path("runs/r"), {"preset": "tiny", "max_steps": 10})
    summary = run_training(cfg, Path("store"), Path("runs/r"))
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import torch
import yaml

from astrobio.data import PlanetRunDataset
from astrobio.data.storage import RealDataStorage
from astrobio.errors import InputValidationError
from astrobio.models import SystemConfig, UnifiedMultiModalSystem, compute_multimodal_loss
from astrobio.models.language import load_pretrained_llama
from astrobio.models.lora import ALL_LINEAR_TARGETS, ATTENTION_TARGETS, PREFIX_MODULES, apply_lora, prepare_qlora
from astrobio.models.memory import device_memory_gib, plan_training
from astrobio.training.checkpoint import atomic_write_text, data_fingerprint, resolve_resume
from astrobio.training.config import TrainConfig, load_yaml
from astrobio.training.distributed import DistContext, barrier, cleanup, init_distributed
from astrobio.training.trainer import Trainer

log = logging.getLogger("astrobio.training")


def resolve_config(config: Optional[Path], resume: Optional[str], out: Path, overrides: dict[str, Any]) -> TrainConfig:
    """The preset's defaults ← the resumed run's config.yaml (so its first flags persist) ← --config YAML ←
    explicit CLI flags (None = not given)."""
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


def build_system_run(cfg: TrainConfig, data: Path, ctx: DistContext) -> dict[str, Any]:
    """Datasets, model, loss and run metadata for `cfg` on the store at `data`.

    Rank 0 opens the datasets first: the first open writes the train-split stats and tokenizer beside
    the data, which the other ranks then read instead of racing to write them.
    """
    if not RealDataStorage.exists(data):
        raise InputValidationError("data", str(data), "a store directory written by `astrobio simulate`")
    datasets = {}
    for turn in (0, 1):  # rank 0 first, then the others
        if (turn == 0) == ctx.is_main:
            datasets = {split: PlanetRunDataset(data, split) for split in ("train", "val")}
        barrier(ctx)
    if len(datasets["train"]) == 0:
        raise InputValidationError("data", str(data), "a store with runs in the train split")
    system_config = SystemConfig.from_name(cfg.preset, gradient_checkpointing=cfg.activation_checkpointing,
                                           loss=cfg.loss_config())
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank (DDP also broadcasts rank 0's)
    model = UnifiedMultiModalSystem(system_config)
    prepare_finetuning(model, cfg)

    def loss_fn(outputs, batch):
        return compute_multimodal_loss(outputs, batch, system_config.loss)

    return {"model": model, "loss_fn": loss_fn, "train": datasets["train"], "val": datasets["val"],
            "system_config": system_config, "fingerprint": data_fingerprint(data)}


def prepare_finetuning(model, cfg: TrainConfig, load_language: bool = True):
    """Apply `cfg`'s fine-tuning to a freshly built system, in place: `init_language_from` replaces the
    language model by a local Hugging Face Llama checkpoint (`load_pretrained_llama`, optionally 4-/8-bit
    through bitsandbytes), and `lora_rank` > 0 freezes the adapted projections of the language model and of
    the fusion (`lora_targets`, default the memory planner's) and trains peft LoRA adapters on them. Used
    by training and, to rebuild the same module tree before loading a checkpoint, by evaluation
    (`load_language=False`: the system config already has the loaded LM's shape and the checkpoint holds its
    weights, so only a quantised LM is read again). The system config is updated to the loaded LM's shape,
    so checkpoints record what was trained."""
    quant = None if cfg.language_quantization == "none" else cfg.language_quantization
    if cfg.init_language_from and (load_language or quant):
        old = model.config.language  # its vocabulary is the corpus tokenizer's, whose ids the data holds
        corpus_vocab = old.vocab_size
        lm = load_pretrained_llama(cfg.init_language_from, quant, seed=cfg.seed, n_numerical=old.n_numerical,
                                   spectral_dim=old.spectral_dim, n_prefix_tokens=old.n_prefix_tokens,
                                   gradient_checkpointing=old.gradient_checkpointing)
        if lm.config.vocab_size < corpus_vocab:
            raise InputValidationError("init_language_from vocab_size", lm.config.vocab_size,
                                       f">= {corpus_vocab}, the corpus tokenizer's vocabulary the data uses")
        if model.config.language.hidden_size != lm.config.hidden_size:  # the fusion's text projection follows
            model.project["text"] = torch.nn.Sequential(torch.nn.LayerNorm(lm.config.hidden_size),
                                                        torch.nn.Linear(lm.config.hidden_size, model.config.fusion.dim))
        model.language, model.config.language = lm, lm.config
    if cfg.lora_rank:
        targets = cfg.lora_targets or (ALL_LINEAR_TARGETS if quant else ATTENTION_TARGETS)
        alpha = 2 * cfg.lora_rank  # the QLoRA paper's r=16, alpha=32 and peft's r=8, alpha=16 ratio
        if quant:
            model.language = prepare_qlora(model.language, r=cfg.lora_rank, alpha=alpha, target_modules=targets,
                                           gradient_checkpointing=True, seed=cfg.seed)
        else:
            train = PREFIX_MODULES if model.config.language.n_prefix_tokens else ()
            model.language = apply_lora(model.language, r=cfg.lora_rank, alpha=alpha, target_modules=targets,
                                        modules_to_train=train, seed=cfg.seed)
        fusion_targets = [t for t in targets if t in ATTENTION_TARGETS]  # the fusion's named projections
        if fusion_targets:
            model.fusion = apply_lora(model.fusion, r=cfg.lora_rank, alpha=alpha, target_modules=fusion_targets,
                                      seed=cfg.seed + 1)
            for name, p in model.fusion.named_parameters():  # only the adapted projections' bases stay frozen
                p.requires_grad = "lora_" in name or ".base_layer." not in name
    return model


def log_plan(cfg: TrainConfig, device: torch.device, train_dataset) -> None:
    """The memory planner's row for exactly this run (what `astrobio memory` shows for these settings)."""
    text_tokens = train_dataset.max_text_tokens
    row = plan_training(cfg, device.type, text_tokens, device_memory_gib(device))
    trainable = "" if not cfg.lora_rank else f", LoRA r={cfg.lora_rank}"
    log.info("plan: preset %s, strategy '%s'%s, micro-batch %d, %d text tokens: weights %.3f + grads %.3f + "
             "optimizer %.3f + activations %.3f = %.3f GiB on %s (%s)", cfg.preset, row.strategy, trainable,
             cfg.batch_size, text_tokens, row.weights_gb, row.gradients_gb, row.optimizer_gb, row.activations_gb,
             row.total_gb, device.type, "fits" if row.fits else "does NOT fit")


def run_training(cfg: TrainConfig, data: Path, out: Path, resume: Optional[str] = None) -> dict[str, Any] | None:
    """Train `cfg` on the store `data` into the run directory `out`; under `torchrun` this process is one DDP
    rank. Returns the training summary on the main rank, None on the others."""
    ctx = init_distributed()
    logging.basicConfig(level=logging.INFO if ctx.is_main else logging.WARNING,
                        format=f"%(asctime)s [rank {ctx.rank}] %(levelname)s %(name)s: %(message)s")
    try:
        run = build_system_run(cfg, data, ctx)
        run_config = {"system": run["system_config"].to_dict(), "data": str(data.resolve())}
        if ctx.is_main:
            log_plan(cfg, ctx.device, run["train"])
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(yaml.safe_dump({"train": cfg.to_dict(), **run_config}, sort_keys=False),
                              out / "config.yaml")
        trainer = Trainer(run["model"], run["loss_fn"], run["train"], run["val"], cfg, out, ctx=ctx,
                          run_config=run_config, data_fingerprint=run["fingerprint"])
        summary = trainer.fit(resume=resume)
    except BaseException:  # a failing rank must not leave the process group waiting for it
        cleanup(ctx, wait=False)
        raise
    cleanup(ctx)
    return summary if ctx.is_main else None
