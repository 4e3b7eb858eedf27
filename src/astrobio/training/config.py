"""Training configuration: one typed dataclass, loadable from YAML, overridable from the CLI.

Defaults follow the seed report (AdamW, lr 1e-4 with cosine annealing, β = (0.9, 0.999), weight
decay 0.01, gradient clipping 1.0, large-gradient warning above 10) and nanoGPT's schedule
(linear warm-up, cosine decay to `min_lr_ratio · lr`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from astrobio.errors import InputValidationError
from astrobio.models.presets import train_defaults

OPTIMIZERS = ("adamw", "adamw8bit")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TRACKERS = ("tensorboard", "wandb", "mlflow", "none")
QUANTIZATIONS = ("none", "4bit", "8bit")

# Fields that change the training trajectory: a resume that changes one of them is no longer exact.
TRAJECTORY_FIELDS = ("preset", "lr", "min_lr_ratio", "weight_decay", "betas", "optimizer", "warmup_steps",
                     "lr_decay_steps", "batch_size", "grad_accum_steps", "grad_clip", "precision", "seed",
                     "lora_rank", "lora_targets", "init_language_from", "language_quantization", "select_on")
SELECTION_METRICS = ("macro_f1", "log_loss")


@dataclass
class TrainConfig:
    """Everything the trainer needs besides the model, the loss and the data."""

    preset: str = "tiny"
    """Model size preset passed to `SystemConfig.from_name`; it also sets its recommended training settings
    (lr, batch size, schedule, loader workers), which replace the defaults shown here."""
    lr: float = 1e-4
    """Peak learning rate (reached at the end of warm-up). The seed used 1e-4; tiny models train faster with ~1e-3."""
    min_lr_ratio: float = 0.1
    """Learning rate at the end of the cosine decay, as a fraction of `lr` (nanoGPT/Chinchilla use 0.1)."""
    weight_decay: float = 0.01
    """Decoupled AdamW weight decay, applied to matrices/kernels only (not to biases, norms, embeddings' 1-D params)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam β1, β2."""
    optimizer: str = "adamw"
    """'adamw' (torch, fused on CUDA) or 'adamw8bit' (bitsandbytes AdamW8bit: 8-bit optimizer states)."""
    warmup_steps: int = 10
    """Optimizer steps of linear warm-up from lr/warmup_steps to lr (a run shorter than this ends in warm-up)."""
    max_steps: int = 200
    """Optimizer steps to train for (the cosine schedule ends here unless `lr_decay_steps` is set)."""
    lr_decay_steps: int = 0
    """Cosine horizon in optimizer steps; 0 = max_steps. Set it to plan a long run trained in shorter legs
    (`--max-steps k`, then `--resume auto --max-steps N`) with the same schedule as one uninterrupted run."""
    max_minutes: float = 0.0
    """Wall-clock budget in minutes; 0 = no limit. Training stops cleanly (checkpoint saved) when exceeded."""
    batch_size: int = 8
    """Micro-batch size per process."""
    grad_accum_steps: int = 1
    """Micro-batches accumulated per optimizer step (effective batch = batch_size · grad_accum_steps · world size)."""
    grad_clip: float = 1.0
    """Max global gradient L2 norm; 0 disables clipping (the norm is still measured and checked)."""
    grad_norm_warn: float = 10.0
    """Warn when the pre-clip gradient norm exceeds this (seed report: 10)."""
    precision: str = "auto"
    """'auto' (bf16 autocast on CUDA, fp32 on CPU), 'fp32', 'bf16' (autocast) or 'fp16' (autocast + GradScaler)."""
    activation_checkpointing: bool = False
    """Recompute activations in the backward pass (sets the model config switch) to trade compute for memory."""
    spectrum_head_weight: float = 0.0
    """Loss weight of the spectrum head (sets `LossConfig.spectrum_head_weight`): the spectrum encoder learns the
    targets and the hidden planet's `PRIVILEGED_KEYS` as a training target, never an input; 0 = no head."""
    eval_every: int = 50
    """Validate (and save `last`, maybe `best`) every this many optimizer steps, and at the end."""
    log_every: int = 10
    """Write a history.jsonl row, tracker scalars and memory stats every this many optimizer steps."""
    patience: int = 0
    """Stop after this many evaluations without a validation improvement (of `select_on`); 0 = never stop early."""
    select_on: str = "macro_f1"
    """Validation score that picks `best.pt` and drives `patience`: 'macro_f1' (higher is better) or 'log_loss'
    (classification cross-entropy, lower is better: far less noisy than macro-F1 on a few hundred runs)."""
    loader_workers: int = 0
    """DataLoader worker processes per training process (0 = load in the training process)."""
    seed: int = 0
    """Seeds python, numpy and torch, model initialisation and the data order."""
    memory_warn_gb: float = 0.0
    """Warn when process RSS or CUDA allocated memory exceeds this many GB; 0 = 90% of the device/host total."""
    tracking: str = "tensorboard"
    """Experiment tracker: 'tensorboard' (offline, default), 'wandb', 'mlflow' or 'none'."""
    deterministic: bool = False
    """Use torch deterministic algorithms (exact CPU resume and reproducible curves; slower on GPU)."""
    lora_rank: int = 0
    """LoRA rank r (Hu et al. 2021, via peft) on the language model's and the fusion's `lora_targets`
    projections: their base weights are frozen, adapters (alpha = 2r) trained; 0 = train every weight.
    The memory planner's `lora` / `qlora` rows are this with r = 8 / 16 (qlora: `language_quantization` 4bit)."""
    lora_targets: tuple[str, ...] = ()
    """Projection names to adapt; () = the planner's: q,k,v,o (QLoRA: every LM linear layer, as the paper)."""
    init_language_from: str = ""
    """A local Hugging Face Llama checkpoint directory whose trunk initialises the language model (its
    vocabulary must cover the corpus tokenizer's ids); "" = random initialisation."""
    language_quantization: str = "none"
    """Load `init_language_from` in 4-bit NF4 (QLoRA) or 8-bit (LLM.int8) through bitsandbytes, frozen
    (needs `lora_rank` > 0), or 'none'."""

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # YAML gives lists
        self.lora_targets = tuple(str(t) for t in self.lora_targets)
        self.validate()

    def validate(self) -> None:
        _positive("lr", self.lr)
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise InputValidationError("min_lr_ratio", self.min_lr_ratio, "a fraction in [0, 1]")
        if self.weight_decay < 0:
            raise InputValidationError("weight_decay", self.weight_decay, ">= 0")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise InputValidationError("betas", self.betas, "two values in [0, 1)")
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("precision", self.precision, PRECISIONS)
        _choice("tracking", self.tracking, TRACKERS)
        _choice("language_quantization", self.language_quantization, QUANTIZATIONS)
        _choice("select_on", self.select_on, SELECTION_METRICS)
        if self.language_quantization != "none" and not self.init_language_from:
            raise InputValidationError("language_quantization", self.language_quantization,
                                       "'none' unless --init-language-from names a checkpoint to quantise")
        if self.language_quantization != "none" and self.lora_rank == 0:
            raise InputValidationError("lora_rank", 0, "a rank >= 1: a quantised language model is frozen, "
                                                       "only adapters train")
        if self.lora_targets and self.lora_rank == 0:
            raise InputValidationError("lora_targets", list(self.lora_targets), "used only with --lora-rank >= 1")
        for name in ("max_steps", "batch_size", "grad_accum_steps", "eval_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputValidationError(name, value, "an integer >= 1")
        for name in ("warmup_steps", "lr_decay_steps", "patience", "loader_workers", "seed", "lora_rank"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InputValidationError(name, value, "an integer >= 0")
        for name in ("max_minutes", "grad_clip", "grad_norm_warn", "memory_warn_gb", "spectrum_head_weight"):
            if getattr(self, name) < 0:
                raise InputValidationError(name, getattr(self, name), ">= 0")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["betas"], d["lora_targets"] = list(self.betas), list(self.lora_targets)
        return d

    @classmethod
    def for_preset(cls, preset: str, **overrides: Any) -> TrainConfig:
        """Recommended settings for a model preset (its `train` entry in `astrobio.models.presets.PRESETS`),
        then `overrides`."""
        return cls(**{"preset": preset, **train_defaults(preset), **overrides})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputValidationError("train config keys", unknown, f"a subset of {sorted(known)}")
        return cls(**d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(load_yaml(path))

    def loss_config(self) -> Any:
        """The `LossConfig` this run trains with: the seed's weights, and this config's spectrum head."""
        from astrobio.models.losses import LossConfig  # here, not at start-up: the CLI reads TrainConfig without torch

        return LossConfig(spectrum_head_weight=self.spectrum_head_weight)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with `overrides` applied; None values mean 'not given' (CLI flags left unset)."""
        d = self.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        return TrainConfig.from_dict(d)


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputValidationError("config", str(path), "an existing YAML file")
    data = yaml.safe_load(path.read_text())
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputValidationError("config", str(path), "a YAML mapping of TrainConfig fields")
    # A run's config.yaml nests the train config under "train"; accept both layouts.
    return dict(data["train"]) if "train" in data and isinstance(data["train"], dict) else data


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise InputValidationError(name, value, "> 0")


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputValidationError(name, value, f"one of {choices}")
