"""`UnifiedMultiModalSystem`: the four encoders, the cross-modal fusion and the heads; `SystemConfig`: its
configuration (with the loss's), built from a preset of `astrobio.models.presets.PRESETS` or from a checkpoint's
plain dict.

datacube [B,2,12,lat,lon,lev] ─ ClimateDatacubeModel ─ features ─┐
graph (PyG Batch)              ─ MetabolicGraphVAE   ─ graph_embedding ─┤ LayerNorm+Linear → D each
spectrum [B,1000,3]            ─ SpectrumEncoder     ─ features ─┤        → CrossModalFusion → heads
text [B,T] + numbers + spectrum features ─ ConditionedLlama ─ masked mean of hidden states ─┘

- The LM is conditioned on the observed numbers (`numerical_data` + `numerical_mask`) and on the
  spectrum encoder's *pooled* features `[B, D_spec]` (`spectral_data`, with the spectrum presence as
  `spectral_mask`), both as prefix tokens; its text feature is the mean of its last hidden states over
  `attention_mask`.
- The fusion tokenizes every number on its own (FT-Transformer style, `fusion.py`): `physics_features`, the
  observed values (a learned token where one is unknown) and the observer's reading of the spectrum
  (`spectrum_reading`: detection significances and retrieved abundances, unknown without a spectrum), so the
  numbers reach the heads even when the text is missing.
- Every submodule runs on every batch; a missing modality's features are replaced inside the fusion by a
  learned token by blending with the mask, so no parameter is ever unused (DDP-safe).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict

import torch
import torch.nn as nn

from astrobio.errors import InputValidationError
from astrobio.models.datacube import ClimateDatacubeModel, DatacubeConfig
from astrobio.models.fusion import MODALITIES, CrossModalFusion, FusionConfig
from astrobio.models.graph import GraphVAEConfig, MetabolicGraphVAE
from astrobio.models.language import LanguageConfig, RebuiltLLMIntegration, labels_from_input_ids, language_config
from astrobio.models.losses import LossConfig
from astrobio.models.presets import preset_entry
from astrobio.models.spectrum import SpectrumEncoder, SpectrumEncoderConfig
from astrobio.world.types import (OBSERVED_NUMERIC_FIELDS, PHYSICS_FEATURES, PRIVILEGED_KEYS, REGRESSION_KEYS,
                                  SPECTRUM_READING_FIELDS)

N_PHYSICS_FEATURES = len(PHYSICS_FEATURES)  # MultiModalBatch.physics_features width
N_READING = len(SPECTRUM_READING_FIELDS)  # MultiModalBatch.spectrum_reading width


def physics_token_width(n_numerical: int) -> int:
    """Numbers the fusion tokenizes one by one: physics features + observed numbers + the spectrum reading."""
    return N_PHYSICS_FEATURES + n_numerical + N_READING


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
                                       f"{physics_token_width(self.n_numerical)} "
                                       f"({N_PHYSICS_FEATURES} physics + n_numerical + {N_READING} reading)")
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


def _head(dim: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, out))


class UnifiedMultiModalSystem(nn.Module):
    """forward(batch: MultiModalBatch) → dict `fused [B, D]`, `logits [B, C]`, `regression [B, R]`,
    `spectrum_targets [B, R + P]` (None unless `LossConfig.spectrum_head_weight` > 0), `modality_weights [B, 4]`,
    `embeddings {modality: [B, D]}`, and the per-encoder output dicts `datacube`, `graph`, `language`,
    `spectrum`."""

    def __init__(self, config: SystemConfig):
        super().__init__()
        self.config = config
        D = config.fusion.dim
        self.datacube = ClimateDatacubeModel(config.datacube)
        self.graph = MetabolicGraphVAE(config.graph)
        self.spectrum = SpectrumEncoder(config.spectrum)
        self.language = RebuiltLLMIntegration(config.language)
        widths = {"datacube": config.datacube.dim, "graph": config.graph.hidden_dim,
                  "spectrum": config.spectrum.dim, "text": config.language.hidden_size}
        self.project = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(w), nn.Linear(w, D)) for m, w in widths.items()})
        self.fusion = CrossModalFusion(config.fusion)
        self.classifier = _head(D, config.num_classes, config.dropout)
        self.regressor = _head(D, config.num_regression, config.dropout)
        # a learned retrieval: what the spectrum alone says of the targets and of the hidden planet (training only)
        self.spectrum_head = (_head(config.spectrum.dim, config.num_regression + len(PRIVILEGED_KEYS),
                                    config.dropout) if config.loss.spectrum_head_weight > 0 else None)
        self.set_gradient_checkpointing(config.gradient_checkpointing)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Switch activation checkpointing of every transformer stack (same gradients, less memory)."""
        self.config.gradient_checkpointing = enabled
        self.config.language.gradient_checkpointing = enabled  # the LM reads its config
        for m in (self.datacube, self.graph, self.spectrum, self.fusion):
            m.gradient_checkpointing = enabled

    def forward(self, batch: Any, with_language_loss: bool = True) -> Dict[str, Any]:
        """Outputs of every encoder, the fusion and the heads. `with_language_loss=False` (prediction) skips the
        language model's vocabulary head and loss, which the class and regression heads do not read: about half
        of an inference forward of `small`."""
        B = len(batch)
        mask = batch.modality_mask  # (B, 4) bool, order MODALITIES
        if mask.shape != (B, len(MODALITIES)):
            raise InputValidationError("modality_mask.shape", tuple(mask.shape), f"({B}, {len(MODALITIES)})")
        if int(batch.graph.num_graphs) != B:
            raise InputValidationError("graph.num_graphs", int(batch.graph.num_graphs), f"{B} (one graph per sample)")
        dc = self.datacube(batch.datacube)
        gr = self.graph(batch.graph)
        sp = self.spectrum(batch.spectrum)
        labels = labels_from_input_ids(batch.input_ids, batch.attention_mask) if with_language_loss else None
        lm = self.language(batch.input_ids, batch.attention_mask, labels=labels,
                           numerical_data=batch.numerical_data, spectral_data=sp["features"],
                           numerical_mask=batch.numerical_mask, spectral_mask=mask[:, 2],
                           return_logits=with_language_loss)
        am = batch.attention_mask.to(lm["hidden_states"].dtype).unsqueeze(-1)  # (B, T, 1)
        text = (lm["hidden_states"] * am).sum(1) / am.sum(1).clamp(min=1.0)  # (B, H)
        feats = {"datacube": dc["features"], "graph": gr["graph_embedding"], "spectrum": sp["features"], "text": text}
        emb = {m: self.project[m](feats[m]) for m in MODALITIES}  # each (B, D)
        # one fusion token per number: physics features (always known), observed values (known where measured)
        # and the spectrum's reading (known where there is a spectrum)
        physics = torch.cat([batch.physics_features, batch.numerical_data, batch.spectrum_reading], dim=-1)  # (B, P)
        known = torch.cat([torch.ones_like(batch.physics_features, dtype=torch.bool), batch.numerical_mask,
                           batch.spectrum_reading_mask], dim=-1)  # (B, P)
        fu = self.fusion(emb, mask, physics, known)
        return {
            "fused": fu["fused"],  # (B, D) what the heads read
            "logits": self.classifier(fu["fused"]),  # (B, C)
            "regression": self.regressor(fu["fused"]),  # (B, R)
            "modality_weights": fu["modality_weights"],  # (B, 4)
            "embeddings": emb,
            "datacube": dc,
            "graph": gr,
            "language": lm,
            "spectrum": sp,
            # (B, R + P) regression then PRIVILEGED_KEYS, standardised; None without a spectrum head
            "spectrum_targets": None if self.spectrum_head is None else self.spectrum_head(sp["features"]),
        }
