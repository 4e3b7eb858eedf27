"""Climate datacube model (seed name `RebuiltDatacubeCNN`): a CNN–ViT hybrid that predicts the true
climate datacube from the prior one and encodes it into features.

Input `[B, vars, time, lat, lon, lev]`, the levels folded into the channels of each variable.
1. Local structure: per-variable factorised 3-D convolutions, a spatial (lat, lon) 3×3 conv then a
   temporal 3-tap conv (separable, as in R(2+1)D, Tran et al. 2018). Longitude and the 12-month annual
   cycle are periodic, so both are padded circularly; latitude is padded by replication.
2. Variable tokenisation (ClimaX, Nguyen et al. 2023): a separate patch embedding per variable, a learned
   embedding per variable *name*, then one learned query cross-attends over the variables at each
   space–time patch, giving one token per patch.
3. Transformer blocks over the space–time patch tokens (fixed 3-D sin-cos positions, so any grid whose
   sizes divide by the patch works).
4. Decoder: a linear head per token (un-patchified) plus a 1×1×1 conv skip from the local features predict
   a residual over the input, i.e. reconstruction = prior + Δ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from astrobio.errors import InputValidationError
from astrobio.models.fusion import Attention, Block, run_blocks
from astrobio.models.presets import preset_entry


@dataclass
class DatacubeConfig:
    var_names: Tuple[str, ...] = ("air_temperature", "specific_humidity")
    """Input variable names, in channel order; each gets a learned name embedding."""
    out_vars: int = 2
    """Predicted variables (the first `out_vars` inputs; the residual is added to them)."""
    n_levels: int = 5
    """Vertical levels (5 on the demo grid, 10 on the seed grid); folded into the stem channels."""
    patch_size: Tuple[int, int, int] = (4, 4, 4)
    """Patch (time, lat, lon); must divide the grid (12 months × lat × lon)."""
    stem_channels: int = 4
    """Channels per variable of the local convolutional stem."""
    dim: int = 32
    """Token width D."""
    depth: int = 1
    """Transformer blocks over the space–time patches."""
    n_heads: int = 2
    """Attention heads (divide `dim`)."""
    mlp_ratio: float = 2.0
    """MLP hidden width as a multiple of `dim`."""
    dropout: float = 0.0
    """Dropout in the transformer blocks."""

    @classmethod
    def from_name(cls, name: str) -> "DatacubeConfig":
        """Preset `name` from the one table, `astrobio.models.presets.PRESETS`."""
        return cls(**preset_entry(name, "datacube"))


def sincos_1d(n: int, dim: int, device=None) -> torch.Tensor:
    """Transformer sin-cos positions for 0..n-1 → [n, dim] (dim even)."""
    pos = torch.arange(n, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32, device=device) / dim)
    return torch.cat([torch.sin(pos * freq), torch.cos(pos * freq)], dim=-1)


def sincos_3d(t: int, h: int, w: int, dim: int, device=None) -> torch.Tensor:
    """Factorised 3-D sin-cos positions of a (t, h, w) patch grid → [t*h*w, dim]."""
    d = (dim // 3) // 2 * 2
    et = sincos_1d(t, d, device)[:, None, None].expand(t, h, w, d)
    eh = sincos_1d(h, d, device)[None, :, None].expand(t, h, w, d)
    ew = sincos_1d(w, d, device)[None, None, :].expand(t, h, w, d)
    pe = torch.cat([et, eh, ew], dim=-1).reshape(t * h * w, 3 * d)
    return F.pad(pe, (0, dim - 3 * d))


def latitude_weighted_mse(pred: torch.Tensor, target: torch.Tensor, lat_deg: torch.Tensor) -> torch.Tensor:
    """MSE with cos(latitude) area weights normalised to mean 1 (WeatherBench, Rasp et al. 2020).

    pred, target: [..., lat, lon, lev]; lat_deg: [lat]."""
    if pred.shape != target.shape:
        raise InputValidationError("pred.shape", tuple(pred.shape), f"target shape {tuple(target.shape)}")
    if lat_deg.shape[0] != pred.shape[-3]:
        raise InputValidationError("lat_deg", tuple(lat_deg.shape), f"[{pred.shape[-3]}] (the lat axis)")
    w = torch.cos(torch.deg2rad(lat_deg.to(pred.dtype)))
    w = w / w.mean()
    return ((pred - target) ** 2 * w[:, None, None]).mean()


class ClimateDatacubeModel(nn.Module):
    """CNN–ViT hybrid over `[B, vars, time, lat, lon, lev]`. Seed alias: `RebuiltDatacubeCNN`."""

    def __init__(self, config: DatacubeConfig):
        super().__init__()
        if not 1 <= config.out_vars <= len(config.var_names):
            raise InputValidationError("out_vars", config.out_vars, f"1..{len(config.var_names)}")
        self.config = config
        V, L, C, D = len(config.var_names), config.n_levels, config.stem_channels, config.dim
        self.gradient_checkpointing = False
        # per-variable (grouped) separable stem: spatial 3×3 then temporal 3-tap
        self.spatial_conv = nn.Conv3d(V * L, V * C, (1, 3, 3), groups=V)
        self.temporal_conv = nn.Conv3d(V * C, V * C, (3, 1, 1), groups=V)
        self.patch_embed = nn.Conv3d(V * C, V * D, config.patch_size, stride=config.patch_size, groups=V)
        self.var_embedding = nn.Parameter(torch.randn(V, D) * 0.02)  # one per variable name
        self.agg_query = nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.agg_attn = Attention(D, config.n_heads)
        self.blocks = nn.ModuleList(Block(D, config.n_heads, config.mlp_ratio, config.dropout)
                                    for _ in range(config.depth))
        self.norm = nn.LayerNorm(D)
        pt, ph, pw = config.patch_size
        self.head = nn.Linear(D, config.out_vars * L * pt * ph * pw)
        self.skip = nn.Conv3d(V * C, config.out_vars * L, 1)

    def _check(self, x: torch.Tensor) -> None:
        c = self.config
        if x.dim() != 6 or x.shape[1] != len(c.var_names) or x.shape[-1] != c.n_levels:
            raise InputValidationError("datacube shape", tuple(x.shape),
                                       f"[B, {len(c.var_names)}, time, lat, lon, {c.n_levels}]")
        for size, p, name in zip(x.shape[2:5], c.patch_size, ("time", "lat", "lon")):
            if size % p:
                raise InputValidationError(f"datacube {name} size", size, f"a multiple of patch {p}")

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        B, V, T, H, W, L = x.shape
        s = x.permute(0, 1, 5, 2, 3, 4).reshape(B, V * L, T, H, W)  # levels folded into channels
        s = torch.cat([s[..., -1:], s, s[..., :1]], dim=-1)  # periodic longitude
        s = torch.cat([s[..., :1, :], s, s[..., -1:, :]], dim=-2)  # latitude edges (poles): replicate
        s = F.gelu(self.spatial_conv(s))  # (B, V*C, T, H, W)
        s = torch.cat([s[:, :, -1:], s, s[:, :, :1]], dim=2)  # periodic annual cycle
        return F.gelu(self.temporal_conv(s))  # (B, V*C, T, H, W)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: [B, V, T, lat, lon, L] (normalised prior cube) → `reconstruction [B, out_vars, T, lat, lon, L]`,
        `features [B, D]`, `tokens [B, N, D]` with N = (T/pt)(lat/ph)(lon/pw)."""
        self._check(x)
        c = self.config
        B, V, T, H, W, L = x.shape
        D, (pt, ph, pw) = c.dim, c.patch_size
        t, h, w = T // pt, H // ph, W // pw
        s = self._stem(x)  # (B, V*C, T, H, W)
        p = self.patch_embed(s).view(B, V, D, t * h * w)  # (B, V, D, N)
        p = p.permute(0, 3, 1, 2) + self.var_embedding  # (B, N, V, D)
        N = t * h * w
        q = self.agg_query.expand(B * N, 1, D)
        tok = self.agg_attn(q, p.reshape(B * N, V, D)).view(B, N, D)  # variables → one token per patch
        tok = tok + sincos_3d(t, h, w, D, x.device).to(tok.dtype)
        tok = self.norm(run_blocks(self.blocks, tok, self.gradient_checkpointing and self.training))  # (B, N, D)
        # decode the residual: per-token patches + local skip
        O = c.out_vars
        d = self.head(tok).view(B, t, h, w, O, L, pt, ph, pw)
        d = d.permute(0, 4, 5, 1, 6, 2, 7, 3, 8).reshape(B, O * L, T, H, W)
        d = (d + self.skip(s)).view(B, O, L, T, H, W).permute(0, 1, 3, 4, 5, 2)  # (B, O, T, H, W, L)
        return {"reconstruction": x[:, :O] + d, "features": tok.mean(1), "tokens": tok}
