"""A small hand-built `MultiModalBatch` on the demo grid, physically consistent by construction.

Datacube: surface temperature 288 K − 40 K·sin²(lat) with a ±5 K seasonal cycle, a dry-adiabat-like
profile T = T_s·σ^(R_d Γ / g) (Γ = 6.5 K/km) up to the tropopause σ = 0.2, isothermal above; humidity at
70% of saturation (losses.saturation_specific_humidity) at p = σ·1 bar. Missing modalities follow the
conventions of `astrobio.data.batch` (zeros, a one-node placeholder graph, a `<bos>`-only text).
"""

from __future__ import annotations

import math

import pytest
import torch

from astrobio.data.batch import MODALITIES, MultiModalBatch, missing_graph
from astrobio.data.tokenizer import BOS_ID, PAD_ID
from astrobio.world.types import OBSERVED_NUMERIC_FIELDS, PRIVILEGED_KEYS, REGRESSION_KEYS, SPECTRUM_READING_FIELDS

LAT, LON, LEV, MONTHS = 8, 16, 5, 12
SIGMA = torch.tensor([1.0, 0.8, 0.6, 0.4, 0.2])
LAT_DEG = torch.linspace(-90 + 90 / LAT, 90 - 90 / LAT, LAT)  # band centres
KAPPA_LAPSE = 287.0 * 6.5e-3 / 9.81  # R_d Γ / g


def physical_cube(t_offset: float = 0.0, lat: int = LAT, lon: int = LON, sigma: torch.Tensor = SIGMA):
    """Raw [2, 12, lat, lon, lev] cube (air temperature K, specific humidity kg/kg)."""
    from astrobio.models.losses import saturation_specific_humidity

    lat_deg = torch.linspace(-90 + 90 / lat, 90 - 90 / lat, lat)
    month = torch.arange(MONTHS, dtype=torch.float32)
    season = 5.0 * torch.cos(2 * math.pi * month / 12)[:, None] * torch.sign(lat_deg)[None, :]  # (12, lat)
    ts = 288.0 + t_offset - 40.0 * torch.sin(torch.deg2rad(lat_deg)) ** 2 + season  # (12, lat)
    ts = ts[:, :, None].expand(MONTHS, lat, lon)
    prof = sigma.clamp(min=0.2) ** KAPPA_LAPSE  # isothermal above σ = 0.2
    T = ts[..., None] * prof  # (12, lat, lon, lev)
    q = 0.7 * saturation_specific_humidity(T, sigma * 1.0e5)
    return torch.stack([T, q])


def make_batch(B: int = 4, seed: int = 0, missing: dict | None = None, vocab: int = 1024,
               n_text: int = 12, lat: int = LAT, lon: int = LON, sigma: torch.Tensor = SIGMA) -> MultiModalBatch:
    """missing: {modality: [sample indices]} to drop."""
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    missing = missing or {}
    raw_t = torch.stack([physical_cube(float(torch.randn(1, generator=g)) * 10, lat, lon, sigma) for _ in range(B)])
    raw_p = torch.stack([physical_cube(float(torch.randn(1, generator=g)) * 10, lat, lon, sigma) for _ in range(B)])
    mean = raw_p.mean(dim=(0, 2, 3, 4, 5))
    std = raw_p.std(dim=(0, 2, 3, 4, 5))
    norm = lambda x: (x - mean[None, :, None, None, None, None]) / std[None, :, None, None, None, None]  # noqa: E731
    datacube, target = norm(raw_p), norm(raw_t)

    graphs = []
    for i in range(B):
        n = int(torch.randint(5, 20, (1,), generator=g))
        e = torch.randint(0, n, (2, 2 * n), generator=g)
        graphs.append(Data(x=torch.rand(n, 64, generator=g), edge_index=e))

    wl = torch.linspace(0.6, 12.0, 1000)
    spectra = []
    for i in range(B):
        depth = 5000 + 200 * torch.exp(-((wl - 4.3) / 0.2) ** 2) * float(torch.rand(1, generator=g)) \
            + 30 * torch.randn(1000, generator=g)
        spectra.append(torch.stack([wl, depth, torch.full_like(wl, 30.0)], dim=-1))
    spectrum = torch.stack(spectra)

    ids = torch.randint(4, vocab, (B, n_text), generator=g)
    ids[:, 0] = BOS_ID
    attn = torch.ones(B, n_text, dtype=torch.int64)
    for i in range(B):
        L = int(torch.randint(n_text // 2, n_text + 1, (1,), generator=g))
        ids[i, L:], attn[i, L:] = PAD_ID, 0

    F = len(OBSERVED_NUMERIC_FIELDS)
    nmask = torch.rand(B, F, generator=g) > 0.2
    mask = torch.ones(B, len(MODALITIES), dtype=torch.bool)
    for name, idx in missing.items():
        j = MODALITIES.index(name)
        for i in idx:
            mask[i, j] = False
            if name == "datacube":
                datacube[i] = 0
            elif name == "graph":
                graphs[i] = missing_graph()
            elif name == "spectrum":
                spectrum[i] = 0
            else:
                ids[i], attn[i] = PAD_ID, 0
                ids[i, 0], attn[i, 0] = BOS_ID, 1

    regression = torch.randn(B, len(REGRESSION_KEYS), generator=g)
    regression[:, REGRESSION_KEYS.index("surface_pressure_bar")] = 1.0  # 1 bar (stats are mean 0, std 1)
    return MultiModalBatch(
        run_ids=[f"run-{seed}-{i}" for i in range(B)],
        datacube=datacube, datacube_target=target, datacube_stats={"mean": mean, "std": std},
        sigma_levels=sigma.clone(), lat_deg=torch.linspace(-90 + 90 / lat, 90 - 90 / lat, lat),
        graph=Batch.from_data_list(graphs), spectrum=spectrum, input_ids=ids, attention_mask=attn,
        numerical_data=torch.randn(B, F, generator=g) * nmask, numerical_mask=nmask,
        physics_features=torch.randn(B, 4, generator=g),
        spectrum_reading=torch.randn(B, len(SPECTRUM_READING_FIELDS), generator=g) * mask[:, 2:3],
        spectrum_reading_mask=mask[:, 2:3].expand(-1, len(SPECTRUM_READING_FIELDS)).clone(),
        instellation_wm2=1361.0 * (0.5 + torch.rand(B, generator=g)),
        surface_pressure_bar=torch.ones(B),
        labels=torch.randint(0, 3, (B,), generator=g),
        regression_targets=regression,
        regression_stats={"mean": torch.zeros(len(REGRESSION_KEYS)), "std": torch.ones(len(REGRESSION_KEYS))},
        modality_mask=mask,
        privileged_targets=torch.randn(B, len(PRIVILEGED_KEYS), generator=g),  # drawn last: earlier values unchanged
    )


@pytest.fixture
def batch() -> MultiModalBatch:
    """B = 4; sample 1 lacks the spectrum and the text, sample 2 the graph, sample 3 the datacube."""
    return make_batch(4, seed=0, missing={"spectrum": [1], "text": [1], "graph": [2], "datacube": [3]})


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tiny-model training loops on one intra-op thread, restoring the setting after.

    Tiny models are dominated by per-op overhead, where a second thread gains little; on a shared 2-core
    machine a spinning second OpenMP thread made the 32-sample overfit test 10-20× slower (measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
