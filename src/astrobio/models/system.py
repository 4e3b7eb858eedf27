"""`UnifiedMultiModalSystem`: the four encoders, the cross-modal fusion and the heads.

datacube [B,2,12,lat,lon,lev] ─ ClimateDatacubeModel ─ features ─┐
graph (PyG Batch)              ─ MetabolicGraphVAE   ─ graph_embedding ─┤ LayerNorm+Linear → D each
spectrum [B,1000,3]            ─ SpectrumEncoder     ─ features ─┤        → CrossModalFusion → heads
text [B,T] + numbers + spectrum features ─ ConditionedLlama ─ masked mean of hidden states ─┘

- The LM is conditioned on the observed numbers (`numerical_data` + `numerical_mask`) and on the
  spectrum encoder's *pooled* features `[B, D_spec]` (`spectral_data`, with the spectrum presence as
  `spectral_mask`), both as prefix tokens; its text feature is the mean of its last hidden states over
  `attention_mask`.
- The fusion's physics token carries `physics_features` and the observed numbers with their mask, so the
  numbers reach the heads even when the text is missing.
- Every submodule runs on every batch; a missing modality's features are replaced inside the fusion by a
  learned token by blending with the mask, so no parameter is ever unused (DDP-safe).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn as nn

from astrobio.errors import InputValidationError
from astrobio.models.datacube import ClimateDatacubeModel
from astrobio.models.fusion import MODALITIES, CrossModalFusion
from astrobio.models.graph import MetabolicGraphVAE
from astrobio.models.language import RebuiltLLMIntegration, labels_from_input_ids
from astrobio.models.presets import SystemConfig
from astrobio.models.spectrum import SpectrumEncoder


def _head(dim: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, out))


class UnifiedMultiModalSystem(nn.Module):
    """forward(batch: MultiModalBatch) → dict `logits [B, C]`, `regression [B, R]`, `modality_weights [B, 4]`,
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
        self.set_gradient_checkpointing(config.gradient_checkpointing)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Switch activation checkpointing of every transformer stack (same gradients, less memory)."""
        self.config.gradient_checkpointing = enabled
        self.config.language.gradient_checkpointing = enabled  # the LM reads its config
        for m in (self.datacube, self.graph, self.spectrum, self.fusion):
            m.gradient_checkpointing = enabled

    def forward(self, batch: Any) -> Dict[str, Any]:
        B = len(batch)
        mask = batch.modality_mask  # (B, 4) bool, order MODALITIES
        if mask.shape != (B, len(MODALITIES)):
            raise InputValidationError("modality_mask.shape", tuple(mask.shape), f"({B}, {len(MODALITIES)})")
        if int(batch.graph.num_graphs) != B:
            raise InputValidationError("graph.num_graphs", int(batch.graph.num_graphs), f"{B} (one graph per sample)")
        dc = self.datacube(batch.datacube)
        gr = self.graph(batch.graph)
        sp = self.spectrum(batch.spectrum)
        lm = self.language(batch.input_ids, batch.attention_mask,
                           labels=labels_from_input_ids(batch.input_ids, batch.attention_mask),
                           numerical_data=batch.numerical_data, spectral_data=sp["features"],
                           numerical_mask=batch.numerical_mask, spectral_mask=mask[:, 2])
        am = batch.attention_mask.to(lm["hidden_states"].dtype).unsqueeze(-1)  # (B, T, 1)
        text = (lm["hidden_states"] * am).sum(1) / am.sum(1).clamp(min=1.0)  # (B, H)
        feats = {"datacube": dc["features"], "graph": gr["graph_embedding"], "spectrum": sp["features"], "text": text}
        emb = {m: self.project[m](feats[m]) for m in MODALITIES}  # each (B, D)
        nmask = batch.numerical_mask.to(batch.numerical_data.dtype)
        physics = torch.cat([batch.physics_features, batch.numerical_data * nmask, nmask], dim=-1)  # (B, 4+2F)
        fu = self.fusion(emb, mask, physics)
        return {
            "logits": self.classifier(fu["fused"]),  # (B, C)
            "regression": self.regressor(fu["fused"]),  # (B, R)
            "modality_weights": fu["modality_weights"],  # (B, 4)
            "embeddings": emb,
            "datacube": dc,
            "graph": gr,
            "language": lm,
            "spectrum": sp,
        }
