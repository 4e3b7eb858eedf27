"""Cross-modal fusion (seed name `RebuiltMultimodalIntegration`) and the transformer layers shared by
the datacube, spectrum and fusion models.

Every attention layer here names its projections `q_proj`, `k_proj`, `v_proj`, `o_proj` so LoRA
(`astrobio.models.lora`) can target them by name across the whole system.

Fusion: one token per modality (+ modality-type embedding), a learned token substituted for each missing
modality (so no attention row is ever fully masked), one token per physics number (the FT-Transformer's
feature tokenizer, Gorishniy et al. 2021, "Revisiting Deep Learning Models for Tabular Data", NeurIPS:
token_j = x_j·w_j + b_j, with a learned per-feature token where the value is missing) and a summary token, a
stack of self-attention blocks across all of them (cross-modal attention), then adaptive per-sample modality
weights (softmax over modalities of a gating MLP, missing modalities pushed down by the mask) that mix the
modality tokens into one fused vector, read out together with the summary token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from astrobio.data.batch import MODALITIES  # order of `MultiModalBatch.modality_mask`
from astrobio.errors import InputValidationError
from astrobio.models.presets import preset_entry

# Added to the gating score of a missing modality: its weight becomes ~e^-30 of a present one's.
MISSING_GATE_PENALTY = 30.0


class Attention(nn.Module):
    """Multi-head attention with named projections; self-attention when `context` is None."""

    def __init__(self, dim: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % n_heads:
            raise InputValidationError("n_heads", n_heads, f"a divisor of dim={dim}")
        self.n_heads, self.dropout = n_heads, dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.o_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: Optional[torch.Tensor] = None) -> torch.Tensor:
        context = x if context is None else context
        B, Tq, D = x.shape
        Tk = context.shape[1]
        h = self.n_heads
        q = self.q_proj(x).view(B, Tq, h, D // h).transpose(1, 2)  # (B, h, Tq, D/h)
        k = self.k_proj(context).view(B, Tk, h, D // h).transpose(1, 2)  # (B, h, Tk, D/h)
        v = self.v_proj(context).view(B, Tk, h, D // h).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.o_proj(y.transpose(1, 2).reshape(B, Tq, D))  # (B, Tq, D)


class MLP(nn.Module):
    def __init__(self, dim: int, mlp_ratio: float, dropout: float = 0.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.fc = nn.Linear(dim, hidden)
        self.proj = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block (ViT / GPT-2 layout)."""

    def __init__(self, dim: int, n_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, n_heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, use_checkpoint: bool) -> torch.Tensor:
    """Apply `blocks` in order; with `use_checkpoint`, recompute activations in backward (saves memory,
    same gradients: the RNG state is restored for dropout)."""
    for block in blocks:
        x = checkpoint(block, x, use_reentrant=False) if use_checkpoint and torch.is_grad_enabled() else block(x)
    return x


@dataclass
class FusionConfig:
    dim: int = 64
    """Width D of every modality token and of the fused output."""
    n_layers: int = 1
    """Self-attention blocks across the modality + physics tokens."""
    n_heads: int = 4
    """Attention heads (must divide `dim`)."""
    mlp_ratio: float = 2.0
    """Hidden width of the block MLPs, as a multiple of `dim`."""
    n_physics: int = 4
    """Physics numbers per sample, one token each (the system passes physics features, observed values and the
    spectrum reading: `system.physics_token_width`)."""
    dropout: float = 0.0
    """Dropout in attention and MLPs."""

    @classmethod
    def from_name(cls, name: str) -> "FusionConfig":
        """Preset `name` from the one table, `astrobio.models.presets.PRESETS`."""
        return cls(**preset_entry(name, "fusion"))


class CrossModalFusion(nn.Module):
    """Fuse per-modality vectors `[B, D]` into one `[B, D]` with cross-modal attention and adaptive
    modality weights. Seed alias: `RebuiltMultimodalIntegration`."""

    def __init__(self, config: FusionConfig):
        super().__init__()
        self.config = config
        D, M = config.dim, len(MODALITIES)
        self.gradient_checkpointing = False
        P = config.n_physics
        self.type_embedding = nn.Parameter(torch.randn(M + 1, D) * 0.02)  # modalities + summary token
        self.missing_token = nn.Parameter(torch.randn(M, D) * 0.02)
        # feature tokenizer (FT-Transformer): a weight and a bias per physics number, a token where it is missing
        self.physics_weight = nn.Parameter(torch.randn(P, D) * 0.02)
        self.physics_bias = nn.Parameter(torch.randn(P, D) * 0.02)
        self.physics_missing = nn.Parameter(torch.randn(P, D) * 0.02)
        self.blocks = nn.ModuleList(
            Block(D, config.n_heads, config.mlp_ratio, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(D)
        # no final bias: a bias shared by all modalities cancels in the softmax
        self.gate = nn.Sequential(nn.Linear(D, D), nn.GELU(), nn.Linear(D, 1, bias=False))
        self.out = nn.Linear(2 * D, D)

    def forward(self, modality_features: Dict[str, torch.Tensor], modality_mask: Optional[torch.Tensor] = None,
                physics_features: Optional[torch.Tensor] = None,
                physics_mask: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """modality_features: {name: [B, D]} for every name in MODALITIES; modality_mask: bool [B, 4]
        (True = present; default all present); physics_features: [B, n_physics] (default zeros); physics_mask:
        bool [B, n_physics] (True = known; default all known; an unknown value is never read).
        Returns `fused [B, D]`, `modality_weights [B, 4]` (rows sum to 1), `tokens [B, 5 + n_physics, D]`
        (modalities, summary, physics numbers)."""
        missing = [m for m in MODALITIES if m not in modality_features]
        if missing:
            raise InputValidationError("modality_features", sorted(modality_features), f"keys {MODALITIES}")
        feats = torch.stack([modality_features[m] for m in MODALITIES], dim=1)  # (B, M, D)
        B, M, D = feats.shape
        if D != self.config.dim:
            raise InputValidationError("modality_features dim", D, f"{self.config.dim}")
        if modality_mask is None:
            modality_mask = torch.ones(B, M, dtype=torch.bool, device=feats.device)
        P = self.config.n_physics
        if physics_features is None:
            physics_features = feats.new_zeros(B, P)
        if physics_features.shape != (B, P):
            raise InputValidationError("physics_features.shape", tuple(physics_features.shape), f"({B}, {P})")
        known = (torch.ones_like(physics_features) if physics_mask is None
                 else physics_mask.to(feats.dtype)).unsqueeze(-1)  # (B, P, 1)
        present = modality_mask.to(feats.dtype).unsqueeze(-1)  # (B, M, 1)
        # Blend (not branch) so every encoder stays in the autograd graph on every batch (DDP).
        tokens = feats * present + self.missing_token * (1.0 - present)  # (B, M, D)
        value = torch.where(known > 0, physics_features.unsqueeze(-1), 0.0)  # (B, P, 1); an unknown value never enters
        numbers = (value * self.physics_weight + self.physics_bias) * known + self.physics_missing * (1.0 - known)
        summary = self.type_embedding[M].expand(B, 1, D)  # (B, 1, D) learned query of the physics numbers
        x = torch.cat([tokens + self.type_embedding[:M], summary, numbers], dim=1)  # (B, M+1+P, D)
        x = self.norm(run_blocks(self.blocks, x, self.gradient_checkpointing and self.training))
        scores = self.gate(x[:, :M]).squeeze(-1) - MISSING_GATE_PENALTY * (1.0 - present.squeeze(-1))  # (B, M)
        weights = torch.softmax(scores, dim=-1)  # (B, M), rows sum to 1 even when all are missing
        mixed = (weights.unsqueeze(-1) * x[:, :M]).sum(1)  # (B, D)
        fused = self.out(torch.cat([mixed, x[:, M]], dim=-1))  # (B, D)
        return {"fused": fused, "modality_weights": weights, "tokens": x}
