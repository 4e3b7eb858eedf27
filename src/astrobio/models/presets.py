"""`SystemConfig`: the configuration of the whole multi-modal system (the four encoders, the fusion, the
heads and the loss), with named presets and a plain-dict form for checkpoints.

| preset | use | datacube | graph | spectrum | language | fusion (D) | total |
|---|---|---|---|---|---|---|---|
| tiny | tests (seconds on CPU), demo grid | 0.05M | 0.03M | 0.01M | 0.38M | 0.01M (32) | 0.5M |
| small | the demo on 2 CPU cores, demo grid 8×16×5 | 0.32M | 0.09M | 0.18M | 1.0M | 0.34M (128) | 2.1M |
| base | one GPU, seed grid 32×64×10 | 28M | 26M | 20M | 255M | 14M (512) | 344M |
| xl | the seed's scale, seed grid | 2.48B | 1.20B | 0.15B | 13.1B | 0.42B (2048) | 17.4B |
(meta-device counts; tiny/small LMs use the corpus tokenizer's 2048-token vocabulary)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict

from astrobio.errors import InputValidationError
from astrobio.models.datacube import DatacubeConfig
from astrobio.models.fusion import FusionConfig
from astrobio.models.graph import GraphVAEConfig
from astrobio.models.language import LanguageConfig
from astrobio.models.losses import LossConfig
from astrobio.models.spectrum import SpectrumEncoderConfig
from astrobio.world.types import OBSERVED_NUMERIC_FIELDS, REGRESSION_KEYS

PRESET_NAMES = ("tiny", "small", "base", "xl")
# The demo system narrows the language preset "small" (~5M parameters: ≈ 6·N·tokens ≈ 50 GFLOP per
# forward+backward of 16 × 128 tokens, seconds on 2 CPU cores) so the whole system trains at tens of
# samples/s (benchmarks/models.py).
SYSTEM_LANGUAGE_OVERRIDES = {
    "small": dict(hidden_size=128, intermediate_size=344, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2),
}
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
        """Preset `tiny|small|base|xl`. `vocab_size` sets the LM vocabulary (default: the corpus tokenizer's
        `TokenizerConfig.vocab_size` for tiny/small, the Llama 32000 for base/xl); `overrides` replace
        top-level fields (e.g. gradient_checkpointing=True)."""
        from astrobio.data.tokenizer import TokenizerConfig

        if name not in PRESET_NAMES:
            raise InputValidationError("preset", name, f"one of {PRESET_NAMES}")
        spectrum = SpectrumEncoderConfig.from_name(name)
        fusion = FusionConfig.from_name(name)
        fusion.n_physics = physics_token_width(len(OBSERVED_NUMERIC_FIELDS))
        lm = dict(spectral_dim=spectrum.dim, **SYSTEM_LANGUAGE_OVERRIDES.get(name, {}))
        if vocab_size is not None or name in ("tiny", "small"):
            lm["vocab_size"] = vocab_size or TokenizerConfig().vocab_size
        parts = dict(datacube=DatacubeConfig.from_name(name), graph=GraphVAEConfig.from_name(name),
                     spectrum=spectrum, language=LanguageConfig.from_name(name, **lm),
                     fusion=fusion, loss=LossConfig(), dropout=0.1 if name != "tiny" else 0.0)
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
