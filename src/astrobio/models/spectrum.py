"""Transmission spectrum encoder: `[B, n_bins, 3]` (wavelength µm, transit depth ppm, 1σ ppm) → tokens.

The 1σ uncertainty is used, not dropped:
- the depth is whitened per spectrum as (depth − median depth) / σ, so a bin's value is its significance
  above the spectrum's own baseline (the planet's grey radius), the quantity a retrieval fits;
- log10 σ is a channel (where the spectrum is informative), plus a presence flag per bin;
- the baseline itself (log10 median depth ≈ (Rp/R★)², log10 median σ) enters as a global token.
Wavelength enters as Fourier features of normalised log λ (spectral features are ~uniform in log λ at
fixed resolving power). A conv stem with stride-2 downsampling then transformer blocks give
`tokens [B, 1 + T, D]` (global token first) and mean-pooled `features [B, D]`.
An all-zero spectrum (missing modality) gives finite outputs: σ is clamped, log λ is clamped to the band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict

import torch
import torch.nn as nn

from astrobio.errors import InputValidationError
from astrobio.models.fusion import Block, run_blocks
from astrobio.models.presets import preset_entry

SIGMA_FLOOR_PPM = 1.0  # below any instrument noise floor (JWST NIRSpec PRISM ≳ 10 ppm); guards σ = 0


@dataclass
class SpectrumEncoderConfig:
    n_bins: int = 1000
    """Wavelength bins per spectrum (`world.spectrum.SpectrumConfig.n_bins`)."""
    wl_min_um: float = 0.6
    """Band edges used to normalise log λ (default 0.6–12 µm)."""
    wl_max_um: float = 12.0
    """Upper band edge in µm."""
    n_fourier: int = 8
    """Fourier frequencies of the log-λ positional encoding (sin + cos each)."""
    stem_channels: int = 16
    """Channels of the conv stem."""
    n_down: int = 3
    """Stride-2 conv stages: T = ceil(n_bins / 2^n_down) tokens."""
    dim: int = 32
    """Token width D."""
    depth: int = 1
    """Transformer blocks."""
    n_heads: int = 2
    """Attention heads (divide `dim`)."""
    mlp_ratio: float = 2.0
    """MLP hidden width as a multiple of `dim`."""
    dropout: float = 0.0
    """Dropout in the transformer blocks."""

    @classmethod
    def from_name(cls, name: str) -> "SpectrumEncoderConfig":
        """Preset `name` from the one table, `astrobio.models.presets.PRESETS`."""
        return cls(**preset_entry(name, "spectrum"))


class SpectrumEncoder(nn.Module):
    """1-D conv + transformer encoder of a noisy transmission spectrum."""

    def __init__(self, config: SpectrumEncoderConfig):
        super().__init__()
        c = self.config = config
        if not 0 < c.wl_min_um < c.wl_max_um:
            raise InputValidationError("wl_min_um/wl_max_um", (c.wl_min_um, c.wl_max_um), "0 < min < max")
        self.gradient_checkpointing = False
        in_ch = 3 + 2 * c.n_fourier  # whitened depth, log σ, present flag, Fourier(log λ)
        stages, ch = [], in_ch
        for i in range(c.n_down):
            out = c.stem_channels if i < c.n_down - 1 else c.dim
            stages += [nn.Conv1d(ch, out, 5, stride=2, padding=2), nn.GELU()]
            ch = out
        self.stem = nn.Sequential(*stages)
        self.global_embed = nn.Sequential(nn.Linear(3, c.dim), nn.GELU(), nn.Linear(c.dim, c.dim))
        self.blocks = nn.ModuleList(Block(c.dim, c.n_heads, c.mlp_ratio, c.dropout) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)

    def featurize(self, spectrum: torch.Tensor):
        """[B, n_bins, 3] → per-bin channels [B, C_in, n_bins] and global scalars [B, 3]."""
        c = self.config
        wl, depth, sigma = spectrum.unbind(-1)  # (B, n) each
        present = (sigma > 0).to(spectrum.dtype)  # (B, n); missing spectra are all zeros
        sig = sigma.clamp(min=SIGMA_FLOOR_PPM)
        base = depth.median(dim=-1, keepdim=True).values  # (B, 1) grey-radius baseline
        z = (depth - base) / sig * present  # significance above the baseline
        u = (torch.log(wl.clamp(c.wl_min_um, c.wl_max_um) / c.wl_min_um)
             / math.log(c.wl_max_um / c.wl_min_um))  # (B, n) in [0, 1]
        freqs = math.pi * 2.0 ** torch.arange(c.n_fourier, device=spectrum.device, dtype=spectrum.dtype)
        ang = u.unsqueeze(-1) * freqs  # (B, n, F)
        chans = torch.cat([z.unsqueeze(-1), torch.log10(sig).unsqueeze(-1) * present.unsqueeze(-1),
                           present.unsqueeze(-1), torch.sin(ang), torch.cos(ang)], dim=-1)  # (B, n, C_in)
        any_present = present.amax(-1)  # (B,)
        glob = torch.stack([torch.log10(base.squeeze(-1).clamp(min=1.0)) * any_present,
                            torch.log10(sig.median(-1).values) * any_present, any_present], dim=-1)  # (B, 3)
        return chans.transpose(1, 2), glob

    def forward(self, spectrum: torch.Tensor) -> Dict[str, torch.Tensor]:
        """spectrum: [B, n_bins, 3] raw (zeros = missing) → `tokens [B, 1+T, D]`, `features [B, D]`."""
        if spectrum.dim() != 3 or spectrum.shape[1:] != (self.config.n_bins, 3):
            raise InputValidationError("spectrum shape", tuple(spectrum.shape), f"[B, {self.config.n_bins}, 3]")
        chans, glob = self.featurize(spectrum)
        tok = self.stem(chans).transpose(1, 2)  # (B, T, D)
        tok = torch.cat([self.global_embed(glob).unsqueeze(1), tok], dim=1)  # (B, 1+T, D)
        tok = self.norm(run_blocks(self.blocks, tok, self.gradient_checkpointing and self.training))
        return {"tokens": tok, "features": tok.mean(1)}
