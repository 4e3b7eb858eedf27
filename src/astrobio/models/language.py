"""Llama-architecture causal language model conditioned on numbers and spectra.

Architecture follows Llama 2 (Touvron et al. 2023, arXiv:2307.09288): pre-norm decoder blocks with
RMSNorm (Zhang & Sennrich 2019), rotary position embeddings (RoPE, Su et al. 2021,
arXiv:2104.09864), grouped-query attention (GQA, Ainslie et al. 2023, arXiv:2305.13245) and a SwiGLU
MLP (Shazeer 2020, arXiv:2002.05202). Module names match HF `LlamaForCausalLM`, so a HF Llama state
dict loads one-to-one (`from_hf_pretrained`), including 4-bit/8-bit bitsandbytes checkpoints.

Conditioning: the observed numbers (`numerical_data [B, F]` + mask) and the spectrum embedding
(`spectral_data [B, S]` or tokens `[B, T, S]`) are each mapped by a small MLP to `n_prefix_tokens`
embeddings that are prepended to the token embeddings (prefix conditioning, as in Li & Liang 2021 /
LLaVA-style projectors). Outputs are returned for the text positions only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from astrobio.data.tokenizer import TokenizerConfig
from astrobio.errors import InputValidationError
from astrobio.models.presets import preset_entry
from astrobio.world.types import OBSERVED_NUMERIC_FIELDS

IGNORE_INDEX = -100  # label value excluded from the loss (PyTorch/HF convention)


@dataclass
class LanguageConfig:
    """Shape and behaviour of the conditioned Llama."""

    vocab_size: int = 1024
    """Number of token ids (the corpus tokenizer's vocabulary size)."""
    hidden_size: int = 64
    """Width of the residual stream (model dimension d)."""
    intermediate_size: int = 176
    """Width of the SwiGLU MLP (≈ 8/3·d, rounded up, as in Llama)."""
    num_hidden_layers: int = 2
    """Number of decoder blocks."""
    num_attention_heads: int = 4
    """Number of query heads; head_dim = hidden_size / num_attention_heads."""
    num_key_value_heads: int = 2
    """Number of key/value heads (GQA): each is shared by num_attention_heads / num_key_value_heads queries."""
    max_position_embeddings: int = 256
    """Longest sequence (prefix + text) the model accepts."""
    rope_theta: float = 10000.0
    """RoPE base θ: frequencies θ^(-2i/head_dim) (10000 in Llama 1/2)."""
    rms_norm_eps: float = 1e-5
    """Epsilon inside RMSNorm's square root (Llama 2 value)."""
    n_numerical: int = len(OBSERVED_NUMERIC_FIELDS)
    """Number of observed numeric fields F in `numerical_data [B, F]`."""
    spectral_dim: int = 32
    """Width S of the spectral conditioning vector from the spectrum encoder (set by SystemConfig)."""
    n_prefix_tokens: int = 2
    """Prefix embeddings produced per conditioning source (numbers, spectrum); 0 disables conditioning."""
    attn_implementation: str = "sdpa"
    """"sdpa" (torch scaled_dot_product_attention: flash / memory-efficient kernels on GPU) or "eager"."""
    gradient_checkpointing: bool = False
    """Recompute each decoder block in backward instead of storing its activations."""
    dropout: float = 0.0
    """Attention-probability dropout during training (Llama pre-training used 0)."""
    loss_positions: int = 0
    """In training, the LM head and next-token loss are computed at this many target positions of the batch,
    drawn uniformly without replacement among the valid ones (an unbiased estimate of the mean CE over all of
    them); 0 = every position. The head and the log-softmax over the vocabulary at every position are the
    largest cost of a small LM whose loss is an auxiliary term; evaluation always uses every position."""

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                     "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "n_numerical",
                     "spectral_dim"):
            if int(getattr(self, name)) < 1:
                raise InputValidationError(name, getattr(self, name), "a positive integer")
        if self.n_prefix_tokens < 0:
            raise InputValidationError("n_prefix_tokens", self.n_prefix_tokens, "an integer >= 0")
        if self.loss_positions < 0:
            raise InputValidationError("loss_positions", self.loss_positions, "an integer >= 0 (0 = all)")
        if self.hidden_size % self.num_attention_heads:
            raise InputValidationError("num_attention_heads", self.num_attention_heads,
                                       f"a divisor of hidden_size={self.hidden_size}")
        if self.head_dim % 2:
            raise InputValidationError("num_attention_heads", self.num_attention_heads,
                                       "a value giving an even head_dim (RoPE rotates pairs)")
        if self.num_attention_heads % self.num_key_value_heads:
            raise InputValidationError("num_key_value_heads", self.num_key_value_heads,
                                       f"a divisor of num_attention_heads={self.num_attention_heads}")
        if self.attn_implementation not in ("sdpa", "eager"):
            raise InputValidationError("attn_implementation", self.attn_implementation, '"sdpa" or "eager"')
        if not 0.0 <= self.dropout < 1.0:
            raise InputValidationError("dropout", self.dropout, "a probability in [0, 1)")
        if self.rope_theta <= 0 or self.rms_norm_eps <= 0:
            raise InputValidationError("rope_theta/rms_norm_eps", (self.rope_theta, self.rms_norm_eps),
                                       "positive numbers")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def n_prefix_total(self) -> int:
        """Prefix positions in front of the text (numbers + spectrum)."""
        return 2 * self.n_prefix_tokens

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> "LanguageConfig":
        """The LM `astrobio train --preset name` builds (`language_config`), then `overrides`."""
        return replace(language_config(name), **overrides)


def language_config(name: str, vocab_size: int | None = None) -> LanguageConfig:
    """The preset's LM: its table entry, `spectral_dim` = the preset's spectrum width, and the vocabulary
    `vocab_size` (default: the table's, else the corpus tokenizer's)."""
    lm = preset_entry(name, "language")
    lm["spectral_dim"] = preset_entry(name, "spectrum")["dim"]
    lm["vocab_size"] = vocab_size or lm.get("vocab_size") or TokenizerConfig().vocab_size
    return LanguageConfig(**lm)


class RMSNorm(nn.Module):
    """y = x / sqrt(mean(x²) + eps) · w, computed in fp32 (as HF LlamaRMSNorm)."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


def rope_cos_sin(position_ids: torch.Tensor, head_dim: int, theta: float,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin `[B, L, head_dim]` for integer positions `[B, L]`; angles in fp32 for accuracy."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=position_ids.device,
                                             dtype=torch.float32) / head_dim))  # (hd/2,)
    angles = position_ids.float()[..., None] * inv_freq  # (B, L, hd/2)
    emb = torch.cat((angles, angles), dim=-1)  # (B, L, hd): half-split layout, as HF Llama weights use
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate `x [B, nh, L, hd]` by the position angles (cos/sin `[B, L, hd]`)."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, n_kv, L, hd) → (B, n_kv·n_rep, L, hd): each KV head serves n_rep query heads."""
    if n_rep == 1:
        return x
    b, n_kv, length, hd = x.shape
    return x[:, :, None].expand(b, n_kv, n_rep, length, hd).reshape(b, n_kv * n_rep, length, hd)


def eager_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                    dropout_p: float) -> torch.Tensor:
    """Reference path: softmax(QKᵀ/√d + bias)·V with q, k, v `[B, nh, L, hd]`, additive bias `[B, 1, L, L]`."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]) + bias  # (B, nh, L, L)
    probs = F.softmax(scores.float(), dim=-1).to(q.dtype)
    probs = F.dropout(probs, p=dropout_p, training=dropout_p > 0)
    return probs @ v


class LlamaAttention(nn.Module):
    def __init__(self, config: LanguageConfig):
        super().__init__()
        self.config = config
        h, hd = config.hidden_size, config.head_dim
        self.q_proj = nn.Linear(h, config.num_attention_heads * hd, bias=False)
        self.k_proj = nn.Linear(h, config.num_key_value_heads * hd, bias=False)
        self.v_proj = nn.Linear(h, config.num_key_value_heads * hd, bias=False)
        self.o_proj = nn.Linear(config.num_attention_heads * hd, h, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        c = self.config
        b, length, _ = x.shape
        q = self.q_proj(x).view(b, length, c.num_attention_heads, c.head_dim).transpose(1, 2)  # (B, nh, L, hd)
        k = self.k_proj(x).view(b, length, c.num_key_value_heads, c.head_dim).transpose(1, 2)  # (B, nkv, L, hd)
        v = self.v_proj(x).view(b, length, c.num_key_value_heads, c.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        n_rep = c.num_attention_heads // c.num_key_value_heads
        k, v = repeat_kv(k, n_rep), repeat_kv(v, n_rep)
        dropout_p = c.dropout if self.training else 0.0
        if c.attn_implementation == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout_p)
        else:
            y = eager_attention(q, k, v, bias, dropout_p)
        return self.o_proj(y.transpose(1, 2).reshape(b, length, -1))  # (B, L, H)


class LlamaMLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) ⊙ up(x))."""

    def __init__(self, config: LanguageConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config: LanguageConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = LlamaAttention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = LlamaMLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                bias: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, bias)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaBackbone(nn.Module):
    """Token embeddings, decoder stack and final norm (HF `LlamaModel` naming)."""

    def __init__(self, config: LanguageConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class PrefixProjector(nn.Module):
    """Small MLP: a conditioning vector `[B, D_in]` → `n_tokens` prefix embeddings `[B, n_tokens, H]`."""

    def __init__(self, in_dim: int, hidden_size: int, n_tokens: int):
        super().__init__()
        self.n_tokens = n_tokens
        self.fc1 = nn.Linear(in_dim, hidden_size)
        self.fc2 = nn.Linear(hidden_size, n_tokens * hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(F.silu(self.fc1(x)))  # (B, n·H)
        return y.view(x.shape[0], self.n_tokens, -1)


class ConditionedLlama(nn.Module):
    """Llama causal LM with numeric and spectral prefix conditioning (seed name: RebuiltLLMIntegration)."""

    def __init__(self, config: LanguageConfig):
        super().__init__()
        self.config = config
        self.model = LlamaBackbone(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.n_prefix_tokens:
            # numbers enter with their presence mask, so "missing" differs from "standardised value 0"
            self.numerical_prefix = PrefixProjector(2 * config.n_numerical, config.hidden_size,
                                                    config.n_prefix_tokens)
            self.spectral_prefix = PrefixProjector(config.spectral_dim, config.hidden_size, config.n_prefix_tokens)
        self.apply(self._init_weights)

    @classmethod
    def from_hf_pretrained(cls, path: str | Path, quantization: str | None = None,
                           **kwargs: Any) -> "ConditionedLlama":
        """A local HF Llama checkpoint as a ConditionedLlama (see `load_pretrained_llama`)."""
        return load_pretrained_llama(path, quantization, **kwargs)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # Llama's initializer_range 0.02 for every matrix; RMSNorm weights stay 1
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    # ---- conditioning -------------------------------------------------------------------------
    def _numerical_prefix(self, numerical_data: torch.Tensor, numerical_mask: torch.Tensor | None,
                          batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if numerical_data.shape != (batch, c.n_numerical):
            raise InputValidationError("numerical_data.shape", tuple(numerical_data.shape),
                                       f"({batch}, {c.n_numerical})")
        mask = (torch.ones_like(numerical_data, dtype=torch.bool) if numerical_mask is None
                else numerical_mask.to(torch.bool))
        values = torch.where(mask, numerical_data, torch.zeros_like(numerical_data))  # NaN-safe
        x = torch.cat([values, mask.to(values.dtype)], dim=-1)  # (B, 2F)
        x = x.to(self.numerical_prefix.fc1.weight.dtype)
        keep = mask.any(dim=-1)  # (B,) a planet with no known number gets no numeric prefix
        return self.numerical_prefix(x), keep[:, None].expand(batch, c.n_prefix_tokens)

    def _spectral_prefix(self, spectral_data: torch.Tensor, spectral_mask: torch.Tensor | None,
                         batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        if spectral_data.dim() not in (2, 3) or spectral_data.shape[0] != batch \
                or spectral_data.shape[-1] != c.spectral_dim:
            raise InputValidationError("spectral_data.shape", tuple(spectral_data.shape),
                                       f"({batch}, {c.spectral_dim}) or ({batch}, T, {c.spectral_dim})")
        if spectral_data.dim() == 3:  # tokens (B, T, S): masked mean over T
            tok_mask = (torch.ones(spectral_data.shape[:2], dtype=torch.bool, device=spectral_data.device)
                        if spectral_mask is None or spectral_mask.dim() == 1 else spectral_mask.to(torch.bool))
            w = tok_mask.to(spectral_data.dtype)[..., None]
            pooled = (spectral_data * w).sum(1) / w.sum(1).clamp(min=1.0)  # (B, S)
            present = tok_mask.any(dim=1)
            if spectral_mask is not None and spectral_mask.dim() == 1:
                present = present & spectral_mask.to(torch.bool)
        else:
            pooled = spectral_data
            present = (torch.ones(batch, dtype=torch.bool, device=spectral_data.device)
                       if spectral_mask is None else spectral_mask.to(torch.bool).reshape(batch))
        pooled = pooled.to(self.spectral_prefix.fc1.weight.dtype)
        return self.spectral_prefix(pooled), present[:, None].expand(batch, c.n_prefix_tokens)

    def _embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               numerical_data: torch.Tensor | None, numerical_mask: torch.Tensor | None,
               spectral_data: torch.Tensor | None, spectral_mask: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Token embeddings with the prefixes prepended: (B, P+T, H), mask (B, P+T), P."""
        b = input_ids.shape[0]
        embeds, masks = [], []
        if self.config.n_prefix_tokens:
            if numerical_data is not None:
                e, m = self._numerical_prefix(numerical_data, numerical_mask, b)
                embeds.append(e)
                masks.append(m)
            if spectral_data is not None:
                e, m = self._spectral_prefix(spectral_data, spectral_mask, b)
                embeds.append(e)
                masks.append(m)
        elif numerical_data is not None or spectral_data is not None:
            raise InputValidationError("n_prefix_tokens", 0, "> 0 to condition on numerical/spectral data")
        tok = self.model.embed_tokens(input_ids)  # (B, T, H)
        n_prefix = sum(e.shape[1] for e in embeds)
        x = torch.cat([e.to(tok.dtype) for e in embeds] + [tok], dim=1)
        mask = torch.cat(masks + [attention_mask.to(torch.bool)], dim=1)
        return x, mask, n_prefix

    # ---- forward ------------------------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, numerical_data: torch.Tensor | None = None,
                spectral_data: torch.Tensor | None = None, *, numerical_mask: torch.Tensor | None = None,
                spectral_mask: torch.Tensor | None = None, return_logits: bool = True) -> dict[str, torch.Tensor | None]:
        """input_ids/attention_mask/labels `[B, T]`; numerical_data `[B, F]` (+ mask `[B, F]`);
        spectral_data `[B, S]` or `[B, T_s, S]` (+ mask `[B]` or `[B, T_s]`, True = present).

        Returns `logits [B, T, V]` and `hidden_states [B, T, H]` at the text positions, and `loss`:
        next-token cross-entropy over labels ≠ -100 at unpadded positions (None without labels). In training
        with labels and `config.loss_positions` > 0 the loss is estimated at that many sampled positions
        (`sampled_lm_loss`) and `logits` is None: the full [B, T, V] head is never computed. Without labels and
        with `return_logits=False` (prediction, which reads only the hidden states) the head is skipped too.
        """
        c = self.config
        if input_ids.dim() != 2:
            raise InputValidationError("input_ids.shape", tuple(input_ids.shape), "(B, T)")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if attention_mask.shape != input_ids.shape:
            raise InputValidationError("attention_mask.shape", tuple(attention_mask.shape), str(tuple(input_ids.shape)))
        x, mask, n_prefix = self._embed(input_ids, attention_mask, numerical_data, numerical_mask,
                                        spectral_data, spectral_mask)
        b, length, _ = x.shape
        if length > c.max_position_embeddings:
            raise InputValidationError("sequence length", length, f"<= max_position_embeddings={c.max_position_embeddings}")
        # positions count only real tokens, so left padding does not shift RoPE phases
        position_ids = (mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L)
        cos, sin = rope_cos_sin(position_ids, c.head_dim, c.rope_theta, x.dtype)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        eye = torch.eye(length, dtype=torch.bool, device=x.device)
        # a padded query attends at least to itself, so no softmax row is empty (no NaN); its output is unused
        allowed = ((causal & mask[:, None, :]) | eye)[:, None]  # (B, 1, L, L)
        # one additive bias shared by all layers (a bool mask would be converted to float in every layer)
        bias = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device).masked_fill(
            ~allowed, torch.finfo(x.dtype).min)
        for layer in self.model.layers:
            if c.gradient_checkpointing and self.training and torch.is_grad_enabled():
                x = checkpoint(layer, x, cos, sin, bias, use_reentrant=False)
            else:
                x = layer(x, cos, sin, bias)
        hidden = self.model.norm(x)[:, n_prefix:]  # (B, T, H)
        if labels is not None and self.training and c.loss_positions > 0:
            loss = sampled_lm_loss(self.lm_head, hidden, labels, attention_mask, c.loss_positions)
            return {"logits": None, "loss": loss, "hidden_states": hidden}
        if labels is None and not return_logits:
            return {"logits": None, "loss": None, "hidden_states": hidden}
        logits = self.lm_head(hidden)  # (B, T, V)
        loss = None if labels is None else causal_lm_loss(logits, labels, attention_mask)
        return {"logits": logits, "loss": loss, "hidden_states": hidden}


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token CE: position t predicts labels[t+1]; -100 and padded targets are ignored."""
    if labels.shape != logits.shape[:2]:
        raise InputValidationError("labels.shape", tuple(labels.shape), str(tuple(logits.shape[:2])))
    # Shift the targets, not the logits: position t's target is labels[t+1] and the last position has none,
    # so the [B·T, V] logits enter the loss as a view (slicing them would copy B·T·V floats, and again in backward).
    target = next_token_targets(labels, attention_mask)  # (B, T)
    total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1),
                            ignore_index=IGNORE_INDEX, reduction="sum")
    # no host sync (and meta-traceable); a batch without any text target gives 0 with a graph
    return total / (target != IGNORE_INDEX).sum().clamp(min=1)


def next_token_targets(labels: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) targets of each position: labels[t+1], -100 where padded, ignored or past the end."""
    target = labels.masked_fill(attention_mask == 0, IGNORE_INDEX)
    return torch.cat([target[:, 1:], target.new_full((target.shape[0], 1), IGNORE_INDEX)], dim=1)


def sampled_lm_loss(lm_head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor,
                    n_positions: int) -> torch.Tensor:
    """Next-token CE at `n_positions` target positions drawn uniformly without replacement among the valid
    ones (all of them when fewer), from the torch RNG: an unbiased estimate of `causal_lm_loss`'s mean whose
    head costs n_positions·H·V instead of B·T·H·V."""
    if labels.shape != hidden.shape[:2]:
        raise InputValidationError("labels.shape", tuple(labels.shape), str(tuple(hidden.shape[:2])))
    target = next_token_targets(labels, attention_mask).reshape(-1)  # (B·T,)
    valid = target != IGNORE_INDEX
    # random keys, -1 at invalid positions: the top k keys are a uniform k-subset of the valid positions
    keys = torch.rand(target.shape, device=target.device).masked_fill(~valid, -1.0)
    pick = keys.topk(min(n_positions, keys.numel())).indices
    pick = pick[valid[pick]]  # fewer valid positions than n_positions: all of them
    logits = lm_head(hidden.reshape(-1, hidden.shape[-1])[pick])  # (k, V)
    if pick.numel() == 0:
        return logits.sum() * 0.0  # no text target in the batch: 0, still in the graph
    return F.cross_entropy(logits.float(), target[pick])


def labels_from_input_ids(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """LM labels for plain text: the ids themselves with padding set to -100."""
    return input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)


# Seed name (spec section 4); the primary name says what the model is.
RebuiltLLMIntegration = ConditionedLlama


# ---- loading user-supplied Hugging Face Llama checkpoints ----------------------------------------
def language_config_from_hf(hf_config: Any, **overrides: Any) -> LanguageConfig:
    """LanguageConfig with the trunk shape of a HF `LlamaConfig`; conditioning fields from `overrides`."""
    rope = getattr(hf_config, "rope_parameters", None) or {}
    rope_type = rope.get("rope_type", "default") if isinstance(rope, dict) else "default"
    legacy_scaling = getattr(hf_config, "rope_scaling", None)
    if rope_type != "default" or (legacy_scaling and legacy_scaling.get("rope_type", "default") != "default"):
        raise InputValidationError("rope_type", rope_type, '"default" RoPE (scaled RoPE variants are not implemented)')
    if getattr(hf_config, "attention_bias", False) or getattr(hf_config, "mlp_bias", False):
        raise InputValidationError("attention_bias/mlp_bias", True, "bias-free Llama projections")
    head_dim = getattr(hf_config, "head_dim", None)
    if head_dim is not None and head_dim * hf_config.num_attention_heads != hf_config.hidden_size:
        raise InputValidationError("head_dim", head_dim, "hidden_size / num_attention_heads")
    theta = rope.get("rope_theta") if isinstance(rope, dict) and "rope_theta" in rope else hf_config.rope_theta
    trunk = dict(vocab_size=hf_config.vocab_size, hidden_size=hf_config.hidden_size,
                 intermediate_size=hf_config.intermediate_size, num_hidden_layers=hf_config.num_hidden_layers,
                 num_attention_heads=hf_config.num_attention_heads,
                 num_key_value_heads=hf_config.num_key_value_heads or hf_config.num_attention_heads,
                 max_position_embeddings=hf_config.max_position_embeddings, rope_theta=float(theta),
                 rms_norm_eps=hf_config.rms_norm_eps)
    known = {f.name for f in fields(LanguageConfig)}
    bad = set(overrides) - known
    if bad:
        raise InputValidationError("overrides", sorted(bad), f"LanguageConfig fields {sorted(known)}")
    return LanguageConfig(**{**trunk, **overrides})


def load_pretrained_llama(path: str | Path, quantization: str | None = None,
                          compute_dtype: torch.dtype = torch.float32, seed: int = 0,
                          **config_overrides: Any) -> ConditionedLlama:
    """Load a local HF Llama checkpoint directory into a ConditionedLlama.

    quantization: None (weights copied into our fp modules), "4bit" (NF4 with double quantisation,
    Dettmers et al. 2023 QLoRA) or "8bit" (LLM.int8). Quantised checkpoints keep bitsandbytes'
    Linear4bit/Linear8bitLt modules, moved into our module tree under the same names; the prefix
    projectors are freshly initialised from `seed` (they are not part of a text-only Llama). Offline: `path` must
    be a directory holding `config.json` and the weights.
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise InputValidationError("path", str(path), "a local HF checkpoint directory with config.json")
    if quantization not in (None, "4bit", "8bit"):
        raise InputValidationError("quantization", quantization, 'None, "4bit" or "8bit"')
    config = language_config_from_hf(LlamaConfig.from_pretrained(path), **config_overrides)
    kwargs: dict[str, Any] = {"dtype": compute_dtype}
    if quantization is not None:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                               bnb_4bit_compute_dtype=compute_dtype)
            if quantization == "4bit" else BitsAndBytesConfig(load_in_8bit=True))
        kwargs["device_map"] = "cuda" if torch.cuda.is_available() else "cpu"
    hf = LlamaForCausalLM.from_pretrained(path, local_files_only=True, **kwargs)
    with torch.device("meta"):  # no second copy of the weights: every tensor comes from `hf`
        model = ConditionedLlama(config)
    if quantization is None:
        missing, unexpected = model.load_state_dict(hf.state_dict(), strict=False, assign=True)
        unexpected = [k for k in unexpected if not k.endswith("rotary_emb.inv_freq")]
        if unexpected or any(not k.startswith(("numerical_prefix", "spectral_prefix")) for k in missing):
            raise InputValidationError("checkpoint", str(path),
                                       f"a Llama state dict (missing {missing}, unexpected {unexpected})")
    else:  # move the quantised HF submodules into our tree: same names, same maths
        model.model.embed_tokens, model.model.norm, model.lm_head = hf.model.embed_tokens, hf.model.norm, hf.lm_head
        for ours, theirs in zip(model.model.layers, hf.model.layers):
            for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
                setattr(ours.self_attn, name, getattr(theirs.self_attn, name))
            for name in ("gate_proj", "up_proj", "down_proj"):
                setattr(ours.mlp, name, getattr(theirs.mlp, name))
            ours.input_layernorm, ours.post_attention_layernorm = theirs.input_layernorm, theirs.post_attention_layernorm
    _materialise_prefix(model, hf.device, compute_dtype, seed)
    model.quantization = quantization
    return model


def _materialise_prefix(model: ConditionedLlama, device: torch.device, dtype: torch.dtype, seed: int) -> None:
    """Allocate and initialise the prefix projectors (not part of a text-only checkpoint), seeded."""
    gen = torch.Generator().manual_seed(seed)
    for name in ("numerical_prefix", "spectral_prefix"):
        proj = getattr(model, name, None)
        if proj is None:
            continue
        proj.to_empty(device="cpu")
        for lin in (proj.fc1, proj.fc2):
            with torch.no_grad():
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) * 0.02)
                lin.bias.zero_()
        proj.to(device=device, dtype=dtype)
