"""`compute_multimodal_loss`: the weighted training objective of the unified system.

total = 1.0·classification (CE) + 0.3·language (next-token CE) + 0.2·graph (edge recon + node recon + β·KL)
      + 0.2·physics + 0.15·consistency (InfoNCE) + 0.5·datacube (lat-weighted MSE) + 0.5·regression (MSE)
The first five weights are the seed's; all are configurable in `LossConfig`.

Physics constraints on the *predicted* datacube, denormalised with `batch.datacube_stats`:
1. humidity: 0 ≤ q ≤ q_sat(T, p), p = σ·p_surface. The predicted cube is the *true* run, so p_surface is
   the true surface pressure (a regression label, denormalised), or the batch's prior pressure where the
   label is missing;
2. lapse rate: temperature must not increase with height between levels below the tropopause
   (σ ≥ `tropopause_sigma`); an isothermal layer is allowed;
3. energy balance: a planet in balance emits its absorbed flux S(1−A)/4 at an effective temperature
   T_e, and a greenhouse atmosphere can only warm the surface above it (grey Eddington:
   T_s⁴ = T_e⁴(1 + ¾τ) ≥ T_e⁴). So the area- and time-mean σT_surface⁴ must not fall below
   S(1−A_max)/4 for the largest admissible Bond albedo, within a relative `energy_tolerance` (hinge).
   No upper bound is put on the top model level: in an optically thick atmosphere (Venus, the world's
   runaway states) σ ≈ 0.1 still lies far below the emission level and is much warmer than T_e.
Each term is a squared hinge in normalised units: exactly 0 on a physically consistent cube.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F

from astrobio.constants import EPSILON_WATER, L_VAP_WATER, P_TRIPLE_WATER, R_VAPOUR, SIGMA_SB, T_TRIPLE_WATER
from astrobio.data.batch import MODALITIES
from astrobio.errors import InputValidationError
from astrobio.models.datacube import latitude_weighted_mse
from astrobio.models.graph import MetabolicGraphVAE
from astrobio.models.language import causal_lm_loss, labels_from_input_ids
from astrobio.world.types import REGRESSION_KEYS

BAR = 1.0e5  # Pa


@dataclass
class LossConfig:
    classification_weight: float = 1.0
    """Cross-entropy on habitability_class (seed weight 1.0)."""
    language_weight: float = 0.3
    """Next-token LM loss (seed weight 0.3)."""
    graph_weight: float = 0.2
    """Graph VAE: edge reconstruction + node reconstruction + β·KL (seed weight 0.2)."""
    physics_weight: float = 0.2
    """Physics constraints on the predicted datacube (seed weight 0.2)."""
    consistency_weight: float = 0.15
    """InfoNCE alignment of the modality embeddings of one planet (seed weight 0.15)."""
    datacube_weight: float = 0.5
    """Latitude-weighted MSE of the predicted to the true datacube (normalised units)."""
    regression_weight: float = 0.5
    """MSE on the standardised regression targets."""
    spectrum_head_weight: float = 0.0
    """MSE of the spectrum head (`spectrum_head_loss`): the spectrum encoder's pooled features predict the
    standardised regression targets and the hidden `PRIVILEGED_KEYS`, on runs with a spectrum (hidden truth as a
    training target, never an input: learning using privileged information, Vapnik & Vashist 2009). 0 builds
    no head; docs/results.md (twenty-fourth session) measured 0.5."""
    graph_kl_beta: float = 0.1
    """β of the KL term (β-VAE, Higgins et al. 2017); < 1 keeps the latent informative for small graphs."""
    graph_node_weight: float = 1.0
    """Weight of the node-feature reconstruction MSE inside the graph loss."""
    consistency_temperature: float = 0.1
    """InfoNCE temperature τ (CLIP learns it; 0.07–0.1 is the usual fixed value)."""
    tropopause_sigma: float = 0.2
    """Levels with σ = p/p_s ≥ this are 'below the tropopause' for the lapse-rate check (Earth ≈ 0.1–0.25)."""
    albedo_range: Tuple[float, float] = (0.0, 0.8)
    """Admissible Bond albedo (the maximum sets the energy bound); Solar System planets span 0.07 (Mercury)
    to 0.76 (Venus) (NASA fact sheets), the world's ice albedo is 0.77 (Spiegel et al. 2008)."""
    energy_tolerance: float = 0.1
    """Relative slack of the energy bound (the EBM's OLR is not exactly grey-body)."""

    def __post_init__(self) -> None:
        lo, hi = self.albedo_range
        if not 0.0 <= lo <= hi < 1.0:
            raise InputValidationError("albedo_range", self.albedo_range, "0 <= min <= max < 1")
        if self.consistency_temperature <= 0:
            raise InputValidationError("consistency_temperature", self.consistency_temperature, "> 0")
        if not 0.0 <= self.spectrum_head_weight < float("inf"):
            raise InputValidationError("spectrum_head_weight", self.spectrum_head_weight, "a finite weight >= 0")


def saturation_vapour_pressure(temperature_k: torch.Tensor) -> torch.Tensor:
    """Clausius–Clapeyron with constant latent heat, anchored at water's triple point (Pa):
    e_s = e_t · exp[(L/R_v)(1/T_t − 1/T)] (Wallace & Hobbs 2006, eq. 3.61; L, R_v, T_t, e_t in
    `astrobio.constants`), as in `astrobio.world.climate`. Within ~3% of Murphy & Koop (2005) at 260–310 K."""
    return P_TRIPLE_WATER * torch.exp((L_VAP_WATER / R_VAPOUR) * (1.0 / T_TRIPLE_WATER - 1.0 / temperature_k))


def saturation_specific_humidity(temperature_k: torch.Tensor, pressure_pa: torch.Tensor) -> torch.Tensor:
    """q_sat = ε e / (p − (1 − ε) e), e = min(e_s(T), p) in kg/kg (Wallace & Hobbs 2006, eq. 3.57); where
    e_s ≥ p the air would be pure vapour and q_sat = 1. The torch twin of
    `astrobio.world.climate.saturation_specific_humidity` (same formula, same constants)."""
    p = torch.as_tensor(pressure_pa, dtype=temperature_k.dtype, device=temperature_k.device)
    e = torch.minimum(saturation_vapour_pressure(temperature_k), p)
    return EPSILON_WATER * e / (p - (1.0 - EPSILON_WATER) * e).clamp(min=1e-30)


def _area_weights(lat_deg: torch.Tensor) -> torch.Tensor:
    w = torch.cos(torch.deg2rad(lat_deg))
    return w / w.sum()  # (lat,) sums to 1


def physics_losses(cube: torch.Tensor, stats: Dict[str, torch.Tensor], sigma_levels: torch.Tensor,
                   lat_deg: torch.Tensor, instellation_wm2: torch.Tensor, surface_pressure_bar: torch.Tensor,
                   config: LossConfig) -> Dict[str, torch.Tensor]:
    """cube: normalised [B, 2, T, lat, lon, lev] (air temperature, specific humidity) → dict of the
    `humidity`, `lapse_rate`, `energy_balance` penalties (scalars, ≥ 0)."""
    if cube.dim() != 6 or cube.shape[1] < 2:
        raise InputValidationError("datacube prediction shape", tuple(cube.shape), "[B, >=2, T, lat, lon, lev]")
    mean, std = stats["mean"].to(cube), stats["std"].to(cube)
    T = cube[:, 0] * std[0] + mean[0]  # (B, T, lat, lon, L) K
    q = cube[:, 1] * std[1] + mean[1]  # (B, T, lat, lon, L) kg/kg
    p = sigma_levels.to(cube) * (surface_pressure_bar.to(cube) * BAR)[:, None]  # (B, L) Pa
    qs = saturation_specific_humidity(T.clamp(min=1.0), p[:, None, None, None, :])
    humidity = ((F.relu(-q) + F.relu(q - qs)) / std[1]).pow(2).mean()

    order = torch.argsort(sigma_levels, descending=True)  # surface first, upward
    Tz, sig = T[..., order], sigma_levels[order].to(cube)
    below = (sig[1:] >= config.tropopause_sigma)  # layer pairs (k, k+1) both below the tropopause
    warming_upward = F.relu(Tz[..., 1:] - Tz[..., :-1])[..., below] / std[0]  # inversions, normalised
    lapse = warming_upward.pow(2).mean() if below.any() else Tz.sum() * 0.0

    w = _area_weights(lat_deg.to(cube))[None, None, :, None]  # (1, 1, lat, 1)
    n_cells = Tz.shape[1] * Tz.shape[3]  # time × lon
    emit_sfc = SIGMA_SB * (Tz[..., 0].pow(4) * w).sum((1, 2, 3)) / n_cells  # (B,) W m-2
    S = instellation_wm2.to(cube)
    valid = torch.isfinite(S) & (S > 0)
    S = torch.where(valid, S, torch.ones_like(S))
    absorbed_min = S * (1 - config.albedo_range[1]) / 4
    under = F.relu(absorbed_min - emit_sfc * (1 + config.energy_tolerance))  # surface colder than T_e
    energy = ((under / (S / 4)).pow(2) * valid).sum() / valid.sum().clamp(min=1)
    return {"humidity": humidity, "lapse_rate": lapse, "energy_balance": energy}


def target_surface_pressure_bar(batch: Any) -> torch.Tensor:
    """Surface pressure of the true run [bar] per sample: the denormalised `surface_pressure_bar` label,
    falling back to the prior `batch.surface_pressure_bar` where the label is not finite and positive."""
    k = REGRESSION_KEYS.index("surface_pressure_bar")
    st = batch.regression_stats
    ps = batch.regression_targets[:, k] * st["std"][k] + st["mean"][k]  # (B,)
    return torch.where(torch.isfinite(ps) & (ps > 0), ps, batch.surface_pressure_bar)


def consistency_loss(embeddings: Dict[str, torch.Tensor], modality_mask: torch.Tensor,
                     temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP, Radford et al. 2021) between every pair of modality embeddings, over the
    planets where both modalities are present; the positive is the same planet. Mean over pairs."""
    terms = []
    for i, a in enumerate(MODALITIES):
        for j in range(i + 1, len(MODALITIES)):
            both = modality_mask[:, i] & modality_mask[:, j]
            if int(both.sum()) < 2:  # one planet has no negatives to contrast with
                continue
            za = F.normalize(embeddings[a][both], dim=-1)
            zb = F.normalize(embeddings[MODALITIES[j]][both], dim=-1)
            logits = za @ zb.T / temperature  # (n, n)
            target = torch.arange(logits.shape[0], device=logits.device)
            terms.append(0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)))
    if not terms:
        return sum(e.sum() for e in embeddings.values()) * 0.0  # stays in the graph
    return torch.stack(terms).mean()


def graph_loss(graph_out: Dict[str, torch.Tensor], graph: Any, present: torch.Tensor,
               config: LossConfig) -> Dict[str, torch.Tensor]:
    """Edge BCE (positives vs in-graph negatives) + node-feature MSE + β·KL over the present graphs' nodes."""
    node_present = present[graph.batch]  # (N,) nodes of real (not stand-in) graphs
    recon = MetabolicGraphVAE.recon_loss(graph_out["pos_edge_logits"], graph_out["neg_edge_logits"])
    node_err = (graph_out["node_reconstruction"] - graph.x).pow(2).mean(-1)  # (N,)
    node = (node_err * node_present).sum() / node_present.sum().clamp(min=1)
    kl = MetabolicGraphVAE.kl_loss(graph_out["mu"][node_present], graph_out["logvar"][node_present])
    total = recon + config.graph_node_weight * node + config.graph_kl_beta * kl
    return {"graph": total, "graph_edge": recon, "graph_node": node, "graph_kl": kl}


def spectrum_head_loss(prediction: torch.Tensor, batch: Any) -> torch.Tensor:
    """MSE of the spectrum head's prediction [B, R + P] of the standardised regression and privileged targets,
    over the runs with a spectrum (a run without one has nothing to read them from) and the known targets; the
    privileged columns count only when the batch carries them (statistics of an older version do not)."""
    target = batch.regression_targets  # (B, R)
    if batch.privileged_targets is not None:
        target = torch.cat([target, batch.privileged_targets], dim=-1)  # (B, R + P)
    else:
        prediction = prediction[:, : target.shape[-1]]
    on = torch.isfinite(target) & batch.modality_mask[:, MODALITIES.index("spectrum")].unsqueeze(-1)  # (B, R + P)
    err = (prediction - torch.where(on, target, torch.zeros_like(target))).pow(2)
    return (err * on).sum() / on.sum().clamp(min=1)


def compute_multimodal_loss(outputs: Dict[str, Any], batch: Any, config: LossConfig) -> Dict[str, torch.Tensor]:
    """outputs: `UnifiedMultiModalSystem.forward(batch)`; batch: `MultiModalBatch`.
    Returns `total` and every component (each a scalar tensor; components are unweighted)."""
    mask = batch.modality_mask
    out: Dict[str, torch.Tensor] = {}
    out["classification"] = F.cross_entropy(outputs["logits"], batch.labels)
    lm = outputs["language"]
    out["language"] = lm["loss"] if lm.get("loss") is not None else causal_lm_loss(
        lm["logits"], labels_from_input_ids(batch.input_ids, batch.attention_mask), batch.attention_mask)
    out.update(graph_loss(outputs["graph"], batch.graph, mask[:, 1], config))
    phys = physics_losses(outputs["datacube"]["reconstruction"], batch.datacube_stats, batch.sigma_levels,
                          batch.lat_deg, batch.instellation_wm2, target_surface_pressure_bar(batch), config)
    out.update({f"physics_{k}": v for k, v in phys.items()})
    out["physics"] = sum(phys.values())
    out["consistency"] = consistency_loss(outputs["embeddings"], mask, config.consistency_temperature)
    rec, dc_present = outputs["datacube"]["reconstruction"], mask[:, 0]
    out["datacube"] = (latitude_weighted_mse(rec[dc_present], batch.datacube_target[dc_present], batch.lat_deg)
                       if dc_present.any() else rec.sum() * 0.0)
    target = batch.regression_targets
    finite = torch.isfinite(target)
    err = (outputs["regression"] - torch.where(finite, target, torch.zeros_like(target))).pow(2)
    out["regression"] = (err * finite).sum() / finite.sum().clamp(min=1)
    c = config
    out["total"] = (c.classification_weight * out["classification"] + c.language_weight * out["language"]
                    + c.graph_weight * out["graph"] + c.physics_weight * out["physics"]
                    + c.consistency_weight * out["consistency"] + c.datacube_weight * out["datacube"]
                    + c.regression_weight * out["regression"])
    if outputs.get("spectrum_targets") is not None:  # the head exists only when spectrum_head_weight > 0
        out["spectrum_head"] = spectrum_head_loss(outputs["spectrum_targets"], batch)
        out["total"] = out["total"] + c.spectrum_head_weight * out["spectrum_head"]
    return out
