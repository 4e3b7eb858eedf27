"""Hand-made planet runs for the data-layer tests (tiny arrays with physically plausible values)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from astrobio.world.atmosphere import PRIOR_SURFACE_PRESSURE_BAR
from astrobio.world.features import physics_features
from astrobio.world.types import PlanetObserved, PlanetRun, PlanetTruth

SIGMA = np.array([1.0, 0.6, 0.3], dtype=np.float32)
LAT = np.array([-67.5, -22.5, 22.5, 67.5], dtype=np.float32)
LON = np.arange(8, dtype=np.float32) * 45.0
MONTH = np.arange(1, 13, dtype=np.int32)


def _bolton_qsat(t_k: np.ndarray, p_pa: np.ndarray) -> np.ndarray:
    """Saturation specific humidity from Bolton (1980) e_s, independent of the code under test."""
    e = 611.2 * np.exp(17.67 * (t_k - 273.15) / (t_k - 29.65))
    return 0.622 * e / (p_pa - 0.378 * e)


def make_cube(t_surface_k: float, p_surface_bar: float, rng: np.random.Generator) -> np.ndarray:
    """[2, 12, 4, 8, 3] cube: dry-adiabat-like temperature profile, 50 % relative humidity."""
    month = np.arange(12)[:, None, None, None]
    lat = np.deg2rad(LAT)[None, :, None, None]
    t_s = t_surface_k + 25.0 * (0.3 - np.sin(lat) ** 2) + 4.0 * np.sin(2 * math.pi * month / 12) * np.sin(lat)
    t = t_s * SIGMA[None, None, None, :] ** (287.0 / 1004.0)  # (12, 4, 1, 3): poisson relation T ∝ σ^(R/cp)
    t = np.broadcast_to(t, (12, 4, 8, 3)) + rng.normal(0.0, 0.5, (12, 4, 8, 3))
    q = 0.5 * _bolton_qsat(t, SIGMA * p_surface_bar * 1e5)
    return np.stack([t, q]).astype(np.float32)


def make_run(i: int, *, habitable: bool = True, spectrum: bool = True, seed: int = 0) -> PlanetRun:
    rng = np.random.default_rng(1000 + i)
    name = f"Test-{i} b"
    truth = PlanetTruth(
        name=name, system=f"Test-{i}", source="synthetic", star_teff_k=4800.0 + 10 * i, star_radius_rsun=0.76,
        star_mass_msun=0.78, star_luminosity_lsun=0.28, star_age_gyr=4.2, star_activity=0.1, distance_pc=12.5,
        star_jmag=7.9, planet_radius_earth=1.1, planet_mass_earth=1.3, semimajor_axis_au=0.53,
        eccentricity=0.02, obliquity_deg=23.0, rotation_period_days=1.0, tidally_locked=False,
        surface_pressure_bar=1.2, composition={"N2": 0.78, "O2": 0.21, "CO2": 4e-4, "CH4": 1.8e-6,
                                               "H2O": 0.01, "O3": 1e-7, "N2O": 3e-7, "CO": 1e-7, "H2": 5e-7},
        ocean_fraction=0.7, surface_albedo=0.12, cloud_top_pressure_bar=0.6, biosphere="oxygenic",
        atmosphere_retained=True, n_transits=10 if spectrum else 0)
    observed = PlanetObserved(
        name=name, system=f"Test-{i}", star_teff_k=4790.0 + 10 * i, star_radius_rsun=0.75, star_mass_msun=0.8,
        star_luminosity_lsun=0.27, star_age_gyr=float("nan"), distance_pc=12.4, star_jmag=7.9,
        planet_radius_earth=1.08, planet_mass_earth=float("nan"), semimajor_axis_au=0.53, period_days=146.0,
        eccentricity=0.02, instellation_searth=0.96, equilibrium_temperature_k=251.0,
        n_transits=truth.n_transits)
    t_mean = 288.0 if habitable else 200.0
    labels = {"habitability_class": 2 if habitable else 0, "mean_surface_temperature_k": t_mean,
              "liquid_water_fraction": 0.6 if habitable else 0.0, "surface_pressure_bar": 1.2,
              "log10_co2": math.log10(4e-4), "log10_ch4": math.log10(1.8e-6), "log10_o2": math.log10(0.21),
              "log10_h2o": -2.0}
    spec = None
    if spectrum:
        wl = np.linspace(0.6, 12.0, 50)
        depth = 8000.0 + 30.0 * np.exp(-((wl - 2.7) / 0.2) ** 2) + rng.normal(0.0, 5.0, 50)
        spec = np.stack([wl, depth, np.full(50, 15.0)], axis=1).astype(np.float32)
    g = torch.Generator().manual_seed(i)
    graph = Data(x=torch.rand(5, 64, generator=g),
                 edge_index=torch.tensor([[0, 1, 2, 3, 4, 0], [1, 2, 3, 4, 0, 2]], dtype=torch.int64))
    return PlanetRun(
        run_id=f"run-{i:04d}", system=f"Test-{i}", truth=truth, observed=observed,
        datacube_prior=make_cube(270.0, 1.0, rng), datacube_true=make_cube(t_mean, 1.2, rng),
        spectrum=spec, graph=graph,
        text=f"Night {i}: {truth.n_transits} transits of {name} scheduled; host star quiet, no flares seen.",
        labels=labels, coords={"lat_deg": LAT, "lon_deg": LON, "sigma": SIGMA, "month": MONTH},
        physics_features=physics_features(observed, PRIOR_SURFACE_PRESSURE_BAR), resolution="demo", seed=seed, extras={"runaway": False, "esi": 0.91, "hz_au": np.array([0.4, 0.9])})


@pytest.fixture
def runs() -> list[PlanetRun]:
    return [make_run(0), make_run(1, habitable=False), make_run(2, spectrum=False), make_run(3)]


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "store"


@pytest.fixture(name="make_run")
def make_run_fixture():
    """The run factory, for tests that need a run with particular properties."""
    return make_run
