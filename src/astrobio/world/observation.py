"""The observation process: what an observer has of a true planet, and what they infer from it.

1. `observe(truth, rng)`: catalog-like values with errors (synthetic planets) or the catalog values
   themselves (catalog and Solar System planets); missing values are NaN.
2. `read_spectrum(...)`: the retrieval of the noisy transmission spectrum (`world/retrieval.py`) and what an
   observer concludes from it (gas detections, a flat spectrum), and the observer's atmosphere: the
   retrieved composition where the spectrum constrains it, the prior elsewhere.
3. `prior_planet_parameters`, `observer_environment`: the planet an observer assumes to run climate and
   metabolic models under that atmosphere.
Nothing here reads hidden truth except `observe`, which draws the catalog errors.

Observed values are drawn from normal errors truncated to their physical ranges (`PHYSICAL_RANGE`), never
clipped: clipping piles draws onto the bound (e.g. a spike of circular orbits), and an unbounded draw can
give a negative stellar age, which the simulator rejects.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from astrobio.world import atmosphere, labels, metabolism, orbits, planets, retrieval, spectrum, stars
from astrobio.world.types import PlanetObserved, PlanetTruth

# Observation noise (catalog-like 1-sigma): SPEC.md section 3.
OBS_SIGMA = {"teff_k": 100.0, "radius_frac": 0.05, "mass_frac": 0.07, "luminosity_frac": 0.08,
             "planet_radius_frac": 0.05, "planet_mass_frac": 0.15, "a_frac": 0.02, "distance_frac": 0.02,
             "jmag": 0.03, "age_frac": 0.3, "ecc_abs": 0.03}
P_MASS_MISSING_TRANSIT = 0.6  # many transiting planets lack an RV mass
P_AGE_MISSING = 0.7  # ages are rarely measured
P_ECC_MISSING = 0.5
UNIVERSE_AGE_GYR = 13.787  # Planck 2018 results VI (A&A 641, A6), table 2: no star is older
# (low, high) of each observed quantity; positive quantities are > 0, an eccentricity is < 1 (bound orbit).
PHYSICAL_RANGE = {"positive": (0.0, math.inf), "age": (0.0, UNIVERSE_AGE_GYR), "eccentricity": (0.0, 1.0),
                  "magnitude": (-math.inf, math.inf)}

# The observer's prior planet (SPEC.md section 3): Earth-like values where nothing is measured.
PRIOR_OBLIQUITY_DEG = 23.44
PRIOR_ROTATION_DAYS = 1.0
PRIOR_ALBEDO = 0.3
PRIOR_OCEAN_FRACTION = 0.7
PRIOR_AGE_GYR = 5.0
TENTATIVE_SIGMA = 3.0  # claims: "tentative" from 3 sigma, "detected" from 5 sigma
DETECTED_SIGMA = 5.0
FLAT_EXCLUSION_SIGMA = 5.0  # "flat spectrum": a clear prior atmosphere would have shown features at >= 5 sigma


def truncated_normal(rng: np.random.Generator, mean: float, sigma: float, lo: float, hi: float) -> float:
    """One draw of N(mean, sigma) restricted to [lo, hi], by inverting the normal CDF (one uniform draw)."""
    a, b = ndtr((lo - mean) / sigma), ndtr((hi - mean) / sigma)
    p = a + rng.random() * (b - a)
    return min(max(mean + sigma * float(ndtri(p)), lo), hi)  # min/max only guard the last ulp of ndtri


def _noisy(rng, value, kind: str, frac=None, abs_sigma=None) -> float:
    if value is None or not np.isfinite(value):
        return float("nan")
    sigma = abs(value) * frac if frac is not None else abs_sigma
    return truncated_normal(rng, float(value), sigma, *PHYSICAL_RANGE[kind])


def observe(truth: PlanetTruth, rng: np.random.Generator) -> PlanetObserved:
    """Catalog-like observation of a synthetic truth: noisy values, some missing (NaN)."""
    if truth.source != "synthetic":
        return catalog_observation(truth)
    s = OBS_SIGMA
    transit = truth.discovery_method == "transit"
    teff = _noisy(rng, truth.star_teff_k, "positive", abs_sigma=s["teff_k"])
    r_star = _noisy(rng, truth.star_radius_rsun, "positive", frac=s["radius_frac"])
    lum = float(stars.luminosity_from_radius_teff(r_star, teff))
    a = _noisy(rng, truth.semimajor_axis_au, "positive", frac=s["a_frac"])
    r_p = _noisy(rng, truth.planet_radius_earth, "positive", frac=s["planet_radius_frac"]) if transit \
        else float("nan")
    mass_known = (not transit) or rng.random() >= P_MASS_MISSING_TRANSIT
    m_p = _noisy(rng, truth.planet_mass_earth, "positive", frac=s["planet_mass_frac"]) if mass_known \
        else float("nan")
    ecc = float("nan") if rng.random() < P_ECC_MISSING else _noisy(rng, truth.eccentricity, "eccentricity",
                                                                   abs_sigma=s["ecc_abs"])
    inst = lum / a**2
    return PlanetObserved(
        name=truth.name, system=truth.system, star_teff_k=teff, star_radius_rsun=r_star,
        star_mass_msun=_noisy(rng, truth.star_mass_msun, "positive", frac=s["mass_frac"]),
        star_luminosity_lsun=lum,
        star_age_gyr=float("nan") if rng.random() < P_AGE_MISSING else _noisy(rng, truth.star_age_gyr, "age",
                                                                               frac=s["age_frac"]),
        distance_pc=_noisy(rng, truth.distance_pc, "positive", frac=s["distance_frac"]),
        star_jmag=_noisy(rng, truth.star_jmag, "magnitude", abs_sigma=s["jmag"]), planet_radius_earth=r_p,
        planet_mass_earth=m_p, semimajor_axis_au=a, period_days=truth.period_days, eccentricity=ecc,
        instellation_searth=inst, equilibrium_temperature_k=float(orbits.equilibrium_temperature_k(inst)),
        n_transits=truth.n_transits, discovery_method=truth.discovery_method)


def catalog_observation(truth: PlanetTruth) -> PlanetObserved:
    """For catalog and Solar System planets the observation *is* the catalog value set."""
    missing = set(truth.catalog_missing)

    def val(k, v):
        return float("nan") if k in missing else float(v)
    inst = truth.instellation_searth
    return PlanetObserved(
        name=truth.name, system=truth.system, star_teff_k=truth.star_teff_k,
        star_radius_rsun=truth.star_radius_rsun, star_mass_msun=truth.star_mass_msun,
        star_luminosity_lsun=truth.star_luminosity_lsun, star_age_gyr=val("star_age_gyr", truth.star_age_gyr),
        distance_pc=val("distance_pc", truth.distance_pc), star_jmag=truth.star_jmag,
        planet_radius_earth=val("planet_radius_earth", truth.planet_radius_earth),
        planet_mass_earth=val("planet_mass_earth", truth.planet_mass_earth),
        semimajor_axis_au=truth.semimajor_axis_au, period_days=truth.period_days,
        eccentricity=val("eccentricity", truth.eccentricity), instellation_searth=inst,
        equilibrium_temperature_k=float(orbits.equilibrium_temperature_k(inst)), n_transits=truth.n_transits,
        discovery_method=truth.discovery_method)


# ---------------------------------------------------------------- the observer's inference
def prior_planet_parameters(obs: PlanetObserved) -> dict:
    """What an observer assumes to run a climate model: observed values, gaps filled with priors."""
    r, m = obs.planet_radius_earth, obs.planet_mass_earth
    if not np.isfinite(r):
        r = float(planets.radius_from_mass(m))
    if not np.isfinite(m):
        m = float(planets.mass_from_radius(r))
    age = obs.star_age_gyr if np.isfinite(obs.star_age_gyr) else PRIOR_AGE_GYR
    locked = bool(orbits.tidal_locking(np.array([obs.semimajor_axis_au]), np.array([obs.star_mass_msun]),
                                       np.array([m]), np.array([r]), np.array([age]))[0])
    return {"radius_earth": r, "mass_earth": m, "tidally_locked": locked,
            "eccentricity": obs.eccentricity if np.isfinite(obs.eccentricity) else 0.0,
            "rotation_period_days": obs.period_days if locked else PRIOR_ROTATION_DAYS,
            "obliquity_deg": 0.0 if locked else PRIOR_OBLIQUITY_DEG}


@dataclass(frozen=True)
class SpectrumReading:
    """What the observer concludes from the noisy spectrum (None fields: no spectrum).

    detection_sigma: per retrieved gas, the retrieval's significance of its absorption (0 = none; empty
    without a spectrum);
    clear_atmosphere_sigma: how strongly the prior atmosphere (clear, 1 bar) would stand out of a flat
    line at this precision; flat: no gas at >= TENTATIVE_SIGMA and a flat line fits the data.
    """

    retrieval: retrieval.RetrievalResult | None
    composition: dict[str, float]  # the observer's atmosphere (retrieved where constrained, else the prior)
    detection_sigma: dict[str, float]
    clear_atmosphere_sigma: float
    flat: bool

    def claims(self) -> list[tuple[str, float]]:
        """(gas, sigma) at >= TENTATIVE_SIGMA, most significant first."""
        return sorted(((g, s) for g, s in self.detection_sigma.items() if s >= TENTATIVE_SIGMA),
                      key=lambda gs: -gs[1])

    @property
    def flat_excludes_clear_atmosphere(self) -> bool:
        return self.flat and self.clear_atmosphere_sigma >= FLAT_EXCLUSION_SIGMA


NO_SPECTRUM = SpectrumReading(None, atmosphere.prior_composition(), {}, 0.0, False)


def _flat_fit(depth: np.ndarray, sigma: np.ndarray) -> tuple[float, float]:
    """(chi2 of the best constant, its weighted mean) for a spectrum."""
    w = 1.0 / sigma**2
    mean = float((w * depth).sum() / w.sum())
    return float((((depth - mean) / sigma) ** 2).sum()), mean


def read_spectrum(obs: PlanetObserved, spec: np.ndarray | None,
                  config: spectrum.SpectrumConfig | None = None) -> SpectrumReading:
    """Retrieve the observed spectrum and judge it, from observed values only."""
    if spec is None:
        return NO_SPECTRUM
    config = config or spectrum.SpectrumConfig()
    prior = prior_planet_parameters(obs)
    result = retrieval.retrieve(spec, planet_radius_earth=prior["radius_earth"],
                                planet_mass_earth=obs.planet_mass_earth, star_radius_rsun=obs.star_radius_rsun,
                                temperature_guess_k=obs.equilibrium_temperature_k, spectrum_config=config)
    depth, sigma = spec[:, 1].astype(np.float64), spec[:, 2].astype(np.float64)
    clear = spectrum.transmission_depth_ppm(
        radius_earth=prior["radius_earth"], mass_earth=prior["mass_earth"], star_radius_rsun=obs.star_radius_rsun,
        temperature_k=obs.equilibrium_temperature_k, surface_pressure_bar=atmosphere.PRIOR_SURFACE_PRESSURE_BAR,
        composition=atmosphere.prior_composition(), config=config)[0]
    clear_chi2, _ = _flat_fit(clear, sigma)  # the features' contrast over the noise: expected delta chi2
    chi2, _ = _flat_fit(depth, sigma)
    dof = depth.size - 1
    flat_fits = chi2 - dof < 3.0 * math.sqrt(2.0 * dof)  # within 3 sigma of the chi2 distribution
    detections = {g: float(result.detection_sigma.get(g, 0.0)) for g in retrieval.RETRIEVED_GASES}
    claimed = any(s >= TENTATIVE_SIGMA for s in detections.values())
    return SpectrumReading(result, retrieval.observer_composition(result), detections, math.sqrt(clear_chi2),
                           flat_fits and not claimed)


def observer_environment(composition: Mapping[str, float], liquid_water_fraction: float, runaway: bool,
                         mean_surface_temperature_k: float) -> metabolism.Environment:
    """The environment an observer infers: starlight, the observer's atmosphere, and liquid water and surface
    temperature from the climate model run under that atmosphere (the datacube input's climate)."""
    liquid = liquid_water_fraction >= labels.LIQUID_WATER_MIN_FRACTION and not runaway
    return metabolism.environment_from_conditions(
        light_available=True, co2_vmr=composition.get("CO2", 0.0), h2_vmr=composition.get("H2", 0.0),
        o2_vmr=composition.get("O2", 0.0), liquid_water=liquid, temperature_k=mean_surface_temperature_k)
