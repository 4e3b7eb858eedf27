"""`SystemConfig`: the configuration of the whole multi-modal system (the four encoders, the fusion, the
heads and the loss), with named presets and a plain-dict form for checkpoints.

| preset | use | datacube | graph | spectrum | language | fusion (D) | total |
|---|---|---|---|---|---|---|---|
| tiny | tests (seconds on CPU), demo grid | 0.05M | 0.03M | 0.01M | 0.38M | 0.01M (32) | 0.5M |
| small | the demo on 2 CPU cores, demo grid 8×16×5 | 0.25M | 0.09M | 0.19M | 0.85M | 0.34M (128) | 1.8M |
| base | one GPU, seed grid 32×64×10 | 28M | 26M | 20M | 255M | 14M (512) | 344M |
| xl | the seed's scale, seed grid | 2.48B | 1.20B | 0.15B | 13.1B | 0.42B (2048) | 17.4B |
(meta-device counts; tiny/small LMs use the corpus tokenizer's 2048-token vocabulary)
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict

from astrobio.errors import InputValidationError, choose
from astrobio.models.datacube import DatacubeConfig
from astrobio.models.fusion import FusionConfig
from astrobio.models.graph import GraphVAEConfig
from astrobio.models.language import LanguageConfig
from astrobio.models.losses import LossConfig
from astrobio.models.spectrum import SpectrumEncoderConfig
from astrobio.world.types import OBSERVED_NUMERIC_FIELDS, REGRESSION_KEYS

# THE preset table: every component's configuration (fields of DatacubeConfig, GraphVAEConfig,
# SpectrumEncoderConfig, LanguageConfig, FusionConfig), the system's own fields, and the trainer's per-preset
# defaults (TrainConfig fields; --config and CLI flags override them). Component `from_name` methods, the
# memory planner and `astrobio train` all read it, so what is planned is what is trained.
# Not in the table because they are facts stated elsewhere: the LM's `spectral_dim` (= spectrum.dim) and,
# for tiny/small, its vocabulary (the corpus tokenizer's `TokenizerConfig.vocab_size`); base/xl keep the
# Llama 32000-token vocabulary so Llama checkpoints load.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # tests (seconds on CPU), demo grid
    "tiny": {
        "datacube": dict(n_levels=5, patch_size=(4, 4, 4), stem_channels=4, dim=32, depth=1, n_heads=2),
        "graph": dict(hidden_dim=32, latent_dim=16, n_layers=2, n_heads=2, pe_steps=4),
        "spectrum": dict(stem_channels=8, n_down=4, dim=32, depth=1, n_heads=2),
        "language": dict(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, n_prefix_tokens=2),
        "fusion": dict(dim=32, n_layers=1, n_heads=2, mlp_ratio=2.0),
        "system": dict(dropout=0.0),
        "train": dict(lr=1e-3, batch_size=8, warmup_steps=10, max_steps=200, eval_every=25, log_every=5),
    },
    # the demo on 2 CPU cores, demo grid 8×16×5. Sized by CPU cost per sample: one LM layer over ~110-token
    # observing logs whose auxiliary LM loss sees 256 sampled positions, 2 datacube blocks, 63 spectrum tokens
    # (n_down 4): ~2x cheaper per step than 2 LM layers / depth 3 / 125 tokens at the same validation
    # macro-F1 and log-loss per step (2 seeds, 300 steps; benchmarks/models.py --compare-old measures the step).
    "small": {
        "datacube": dict(n_levels=5, patch_size=(3, 2, 4), stem_channels=8, dim=96, depth=2, n_heads=4),
        "graph": dict(hidden_dim=64, latent_dim=32, n_layers=2, n_heads=4, pe_steps=6),
        "spectrum": dict(stem_channels=32, n_down=4, dim=96, depth=2, n_heads=4),
        "language": dict(hidden_size=128, intermediate_size=344, num_hidden_layers=1, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512, n_prefix_tokens=4, loss_positions=256),
        "fusion": dict(dim=128, n_layers=2, n_heads=4, mlp_ratio=2.0),
        "system": dict(dropout=0.1),
        "train": dict(lr=1e-3, batch_size=8, warmup_steps=20, max_steps=600, eval_every=50, log_every=10),
    },
    # one GPU, seed grid 32×64×10; the LM (~0.27B) has a TinyLlama-like depth/width ratio
    "base": {
        "datacube": dict(n_levels=10, patch_size=(3, 4, 4), stem_channels=32, dim=512, depth=8, n_heads=8,
                         mlp_ratio=4.0),
        "graph": dict(hidden_dim=512, latent_dim=128, n_layers=8, n_heads=8, mlp_ratio=4.0, pe_steps=16),
        "spectrum": dict(stem_channels=128, n_down=3, dim=512, depth=6, n_heads=8, mlp_ratio=4.0, n_fourier=16),
        "language": dict(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=16,
                         num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048,
                         n_prefix_tokens=4),
        "fusion": dict(dim=512, n_layers=4, n_heads=8, mlp_ratio=4.0),
        "system": dict(dropout=0.1),
        "train": dict(lr=3e-4, batch_size=16, warmup_steps=200, max_steps=20_000, eval_every=500, log_every=20,
                      loader_workers=4),
    },
    # the seed's scale, seed grid. Datacube ≈ 2.5B and graph ≈ 1.2B parameters (the seed's scales). The LM is
    # the seed's 13.14B: the Llama-2-13B trunk (d=5120, 40 layers, 40 heads of 128, vocab 32000) with GQA
    # (8 KV heads, as in Llama-2-70B) and the MLP widened 13824 → 16384 so the parameters removed from k/v
    # return to the MLP: 13.12B with the prefix projectors (meta-device count). The trainer keeps the seed's
    # recipe: lr 1e-4, micro-batch 1 × 32 accumulation, 8-bit AdamW and activation checkpointing.
    "xl": {
        "datacube": dict(n_levels=10, patch_size=(3, 4, 4), stem_channels=64, dim=2560, depth=31, n_heads=32,
                         mlp_ratio=4.0),
        "graph": dict(hidden_dim=2048, latent_dim=512, n_layers=24, n_heads=16, mlp_ratio=3.875, pe_steps=20),
        "spectrum": dict(stem_channels=256, n_down=3, dim=1024, depth=12, n_heads=16, mlp_ratio=4.0, n_fourier=16),
        "language": dict(vocab_size=32000, hidden_size=5120, intermediate_size=16384, num_hidden_layers=40,
                         num_attention_heads=40, num_key_value_heads=8, max_position_embeddings=4096,
                         n_prefix_tokens=4),
        "fusion": dict(dim=2048, n_layers=8, n_heads=16, mlp_ratio=4.0),
        "system": dict(dropout=0.1),
        "train": dict(lr=1e-4, batch_size=1, grad_accum_steps=32, warmup_steps=500, max_steps=100_000,
                      eval_every=1000, log_every=20, optimizer="adamw8bit", activation_checkpointing=True,
                      loader_workers=4),
    },
}
PRESET_NAMES = tuple(PRESETS)


def preset_entry(name: str, part: str) -> dict[str, Any]:
    """A copy of `PRESETS[name][part]` (part: datacube, graph, spectrum, language, fusion, system, train);
    an unknown preset name is an InputValidationError naming the allowed ones."""
    return dict(choose("preset", name, PRESETS)[part])


def language_config(name: str, vocab_size: int | None = None) -> LanguageConfig:
    """The preset's LM: its table entry, `spectral_dim` = the preset's spectrum width, and the vocabulary
    `vocab_size` (default: the table's, else the corpus tokenizer's)."""
    from astrobio.data.tokenizer import TokenizerConfig

    lm = preset_entry(name, "language")
    lm["spectral_dim"] = preset_entry(name, "spectrum")["dim"]
    lm["vocab_size"] = vocab_size or lm.get("vocab_size") or TokenizerConfig().vocab_size
    return LanguageConfig(**lm)


def train_defaults(name: str) -> dict[str, Any]:
    """The trainer's defaults for preset `name` (TrainConfig fields)."""
    return preset_entry(name, "train")


N_PHYSICS_FEATURES = 4  # MultiModalBatch.physics_features width


def physics_token_width(n_numerical: int) -> int:
    """Inputs of the fusion's physics token: physics features + observed numbers + their mask."""
    return N_PHYSICS_FEATURES + 2 * n_numerical


@dataclass
class SystemConfig:
    """Everything `UnifiedMultiModalSystem` and `compute_multimodal_loss` need; `from_name` for presets."""

    datacube: DatacubeConfig = field(default_factory=DatacubeConfig)
    """Climate datacube CNN–ViT."""
    graph: GraphVAEConfig = field(default_factory=GraphVAEConfig)
    """Metabolic graph VAE."""
    spectrum: SpectrumEncoderConfig = field(default_factory=SpectrumEncoderConfig)
    """Transmission spectrum encoder."""
    language: LanguageConfig = field(default_factory=LanguageConfig)
    """Conditioned Llama; `spectral_dim` must equal `spectrum.dim`, `n_numerical` must equal `n_numerical`."""
    fusion: FusionConfig = field(default_factory=lambda: FusionConfig(n_physics=physics_token_width(
        len(OBSERVED_NUMERIC_FIELDS))))
    """Cross-modal fusion; `n_physics` must equal `physics_token_width(n_numerical)`."""
    loss: LossConfig = field(default_factory=LossConfig)
    """Weights and tolerances of `compute_multimodal_loss`."""
    num_classes: int = 3
    """habitability_class values (not habitable, habitable, inhabited)."""
    num_regression: int = len(REGRESSION_KEYS)
    """Regression targets (`REGRESSION_KEYS`)."""
    n_numerical: int = len(OBSERVED_NUMERIC_FIELDS)
    """Observed numeric fields F (`OBSERVED_NUMERIC_FIELDS`)."""
    gradient_checkpointing: bool = False
    """Recompute transformer blocks in backward (`torch.utils.checkpoint`, use_reentrant=False)."""
    dropout: float = 0.0
    """Dropout in the classification and regression heads."""

    def __post_init__(self) -> None:
        if self.language.spectral_dim != self.spectrum.dim:
            raise InputValidationError("language.spectral_dim", self.language.spectral_dim,
                                       f"spectrum.dim={self.spectrum.dim} (the LM is conditioned on it)")
        if self.language.n_numerical != self.n_numerical:
            raise InputValidationError("language.n_numerical", self.language.n_numerical, f"{self.n_numerical}")
        if self.fusion.n_physics != physics_token_width(self.n_numerical):
            raise InputValidationError("fusion.n_physics", self.fusion.n_physics,
                                       f"{physics_token_width(self.n_numerical)} (4 physics + 2 × n_numerical)")
        if self.num_classes < 2 or self.num_regression < 1:
            raise InputValidationError("num_classes/num_regression", (self.num_classes, self.num_regression),
                                       ">= 2 classes and >= 1 regression target")

    @classmethod
    def from_name(cls, name: str, vocab_size: int | None = None, **overrides: Any) -> "SystemConfig":
        """Preset `tiny|small|base|xl` from `PRESETS`. `vocab_size` sets the LM vocabulary (default: the corpus
        tokenizer's `TokenizerConfig.vocab_size` for tiny/small, the Llama 32000 for base/xl); `overrides`
        replace top-level fields (e.g. gradient_checkpointing=True)."""
        parts = dict(datacube=DatacubeConfig.from_name(name), graph=GraphVAEConfig.from_name(name),
                     spectrum=SpectrumEncoderConfig.from_name(name), language=language_config(name, vocab_size),
                     fusion=dataclasses.replace(FusionConfig.from_name(name),
                                                n_physics=physics_token_width(len(OBSERVED_NUMERIC_FIELDS))),
                     loss=LossConfig(), **preset_entry(name, "system"))
        return cls(**{**parts, **overrides})

    def to_dict(self) -> Dict[str, Any]:
        """Plain nested dict (tuples become lists), JSON-safe, for checkpoints."""
        def plain(v):
            return [plain(x) for x in v] if isinstance(v, (list, tuple)) else (
                {k: plain(x) for k, x in v.items()} if isinstance(v, dict) else v)
        return plain(asdict(self))

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "SystemConfig":
        """Inverse of `to_dict` (unknown keys are an error, so a stale checkpoint fails loudly)."""
        sub = dict(datacube=DatacubeConfig, graph=GraphVAEConfig, spectrum=SpectrumEncoderConfig,
                   language=LanguageConfig, fusion=FusionConfig, loss=LossConfig)
        known = {f.name for f in fields(cls)}
        if set(d) - known:
            raise InputValidationError("SystemConfig keys", sorted(set(d) - known), f"a subset of {sorted(known)}")
        kw = {k: (_build(sub[k], v) if k in sub else v) for k, v in d.items()}
        return cls(**kw)


def _build(cls, d: Dict[str, Any]):
    """Dataclass `cls` from a plain dict, restoring tuple-typed fields from lists."""
    known = {f.name: f for f in fields(cls)}
    if set(d) - set(known):
        raise InputValidationError(f"{cls.__name__} keys", sorted(set(d) - set(known)), f"a subset of {sorted(known)}")
    defaults = cls()
    return cls(**{k: (tuple(v) if isinstance(getattr(defaults, k), tuple) else v) for k, v in d.items()})
