"""Planet runs: the truth/observation split of SPEC.md section 3, vectorised over planets.

Datacube input = climate of the *observed* parameters under the observer's prior atmosphere.
Datacube target, labels and the spectrum = the *true* planet and its true climate.
Graph = metabolisms the *observed* environment permits. Text = the observing log.
"""

from __future__ import annotations

import zlib
from dataclasses import fields, replace

import numpy as np

from astrobio.errors import InputValidationError
from astrobio.world import atmosphere, climate, habitable, labels, metabolism, observing_log, orbits
from astrobio.world import planets, population, spectrum, stars
from astrobio.world.types import PlanetObserved, PlanetRun, PlanetTruth
from astrobio.world.types import run_id_for, validate_truth  # noqa: F401  (importable from here for now)

PRIOR_PRESSURE_BAR = 1.0  # observer's prior atmosphere: 1 bar N2 with Earth-like CO2 (SPEC.md section 3)
PRIOR_OBLIQUITY_DEG = 23.44
PRIOR_ROTATION_DAYS = 1.0
PRIOR_ALBEDO = 0.3
PRIOR_OCEAN_FRACTION = 0.7
PRIOR_AGE_GYR = 5.0
CHUNK = 256  # planets per vectorised climate call


def _rng(seed: int, name: str, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), stream])


def _climate_inputs(lum, a, ecc, obl, locked, rot, p_bar, co2, ch4, mass, radius, albedo, ocean, teff, mstar):
    f = lambda x: np.asarray(x, dtype=float)  # noqa: E731
    return climate.ClimateInputs(
        luminosity_lsun=f(lum), semimajor_axis_au=f(a), eccentricity=f(ecc), obliquity_deg=f(obl),
        tidally_locked=np.asarray(locked, dtype=bool), rotation_period_days=f(rot),
        surface_pressure_bar=f(p_bar), co2_vmr=f(co2), ch4_vmr=f(ch4),
        gravity_ms2=planets.surface_gravity(f(mass), f(radius)), surface_albedo=f(albedo), ocean_fraction=f(ocean),
        star_teff_k=np.clip(f(teff), *stars.TEFF_RANGE_K), star_mass_msun=f(mstar), planet_mass_earth=f(mass))


def true_climate(truths: list[PlanetTruth], resolution: str = "demo") -> climate.ClimateResult:
    """The true planets' climate (labels, datacube target, spectrum temperature)."""
    g = lambda k: [getattr(t, k) for t in truths]  # noqa: E731
    inputs = _climate_inputs(g("star_luminosity_lsun"), g("semimajor_axis_au"), g("eccentricity"),
                             g("obliquity_deg"), g("tidally_locked"), g("rotation_period_days"),
                             g("surface_pressure_bar"), [t.composition["CO2"] for t in truths],
                             [t.composition["CH4"] for t in truths], g("planet_mass_earth"),
                             g("planet_radius_earth"), g("surface_albedo"), g("ocean_fraction"),
                             g("star_teff_k"), g("star_mass_msun"))
    return climate.run_climate(inputs, climate.GRIDS[resolution])


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


def prior_climate(observed: list[PlanetObserved], resolution: str = "demo") -> climate.ClimateResult:
    """Climate of the observed planets under the prior atmosphere (the datacube input)."""
    pri = [prior_planet_parameters(o) for o in observed]
    comp = atmosphere.prior_composition()
    n = len(observed)
    inputs = _climate_inputs([o.star_luminosity_lsun for o in observed], [o.semimajor_axis_au for o in observed],
                             [p["eccentricity"] for p in pri], [p["obliquity_deg"] for p in pri],
                             [p["tidally_locked"] for p in pri], [p["rotation_period_days"] for p in pri],
                             np.full(n, PRIOR_PRESSURE_BAR), np.full(n, comp["CO2"]), np.full(n, comp["CH4"]),
                             [p["mass_earth"] for p in pri], [p["radius_earth"] for p in pri],
                             np.full(n, PRIOR_ALBEDO), np.full(n, PRIOR_OCEAN_FRACTION),
                             [o.star_teff_k for o in observed], [o.star_mass_msun for o in observed])
    return climate.run_climate(inputs, climate.GRIDS[resolution])


GREENHOUSE_OFFSET_K = 33.0  # Earth's greenhouse warming: the observer's surface-temperature guess is T_eq + 33 K


def _observed_environment(obs: PlanetObserved) -> metabolism.Environment:
    """The environment an observer can infer: starlight, the prior atmosphere, and liquid water where the
    observed orbit lies in the optimistic habitable zone (Kopparapu et al. 2014: recent Venus to early Mars)."""
    comp = atmosphere.prior_composition()
    lo, hi = stars.TEFF_RANGE_K
    in_hz = False
    if lo <= obs.star_teff_k <= hi:
        hz = habitable.habitable_zone(obs.star_teff_k, obs.star_luminosity_lsun)
        in_hz = bool(hz["recent_venus"] <= obs.semimajor_axis_au <= hz["early_mars"])
    return metabolism.environment_from_conditions(
        light_available=True, co2_vmr=comp["CO2"], h2_vmr=comp.get("H2", 0.0), o2_vmr=comp.get("O2", 0.0),
        liquid_water=in_hz, temperature_k=float(obs.equilibrium_temperature_k + GREENHOUSE_OFFSET_K))


def _atmosphere_temperature(res: climate.ClimateResult, i: int) -> float:
    """Isothermal temperature for the transit radius: the mean of the upper levels (limb probes them)."""
    t = res.air_temperature[i]  # (time, lat, lon, lev)
    return float(t[..., t.shape[-1] // 2:].mean())


def merge_climates(base: climate.ClimateResult, update: climate.ClimateResult, index) -> climate.ClimateResult:
    """`base` with the planets at `index` replaced by the planets of `update` (in order)."""
    out = {}
    for f in fields(base):
        value = getattr(base, f.name)
        if isinstance(value, np.ndarray):
            value = value.copy()
            value[np.asarray(index)] = getattr(update, f.name)
        out[f.name] = value
    return type(base)(**out)


def _chunk_runs(truths: list[PlanetTruth], seed: int, resolution: str, spec_cfg: spectrum.SpectrumConfig,
                true_res: climate.ClimateResult | None) -> list[PlanetRun]:
    true_res = true_res if true_res is not None else true_climate(truths, resolution)
    observed = [population.observe(t, _rng(seed, t.name, 1)) for t in truths]
    prior_res = prior_climate(observed, resolution)
    grid = climate.GRIDS[resolution]
    coords = {"lat_deg": grid.lat_deg.astype(np.float32), "lon_deg": grid.lon_deg.astype(np.float32),
              "sigma": grid.sigma.astype(np.float32), "month": np.arange(1, 13, dtype=np.float32)}
    runs = []
    for i, t in enumerate(truths):
        comp = dict(t.composition)
        comp["H2O"] = float(true_res.column_h2o_vmr[i])
        t = replace(t, composition=atmosphere.normalise(comp))
        obs = observed[i]
        spec = spectrum.spectrum_from_truth(t, _atmosphere_temperature(true_res, i), t.composition["H2O"],
                                            spec_cfg, _rng(seed, t.name, 2))
        graph = metabolism.metabolic_graph(_observed_environment(obs))
        text = observing_log.observing_log(t, obs, _rng(seed, t.name, 3))
        lab = labels.compute_labels(t, true_res, i)
        hz = habitable.habitable_zone(obs.star_teff_k, obs.star_luminosity_lsun) if (
            stars.TEFF_RANGE_K[0] <= obs.star_teff_k <= stars.TEFF_RANGE_K[1]) else {}
        extras = {
            "runaway": bool(true_res.runaway[i]),
            "prior_runaway": bool(prior_res.runaway[i]),
            "prior_mean_surface_temperature_k": float(prior_res.global_mean_surface_temperature_k[i]),
            "prior_liquid_water_fraction": float(prior_res.liquid_water_fraction[i]),
            "absorbed_flux_wm2": float(true_res.absorbed_flux_wm2[i]),
            "esi": float(habitable.earth_similarity_index(
                t.planet_radius_earth, planets.density_earth(t.planet_mass_earth, t.planet_radius_earth),
                planets.escape_velocity_earth(t.planet_mass_earth, t.planet_radius_earth),
                lab["mean_surface_temperature_k"])),
            "observed_hz_au": {k: float(v) for k, v in hz.items()},
        }
        runs.append(PlanetRun(
            run_id=run_id_for(t), system=t.system, truth=t, observed=obs,
            datacube_prior=prior_res.datacube(i), datacube_true=true_res.datacube(i), spectrum=spec,
            graph=graph, text=text, labels=lab, coords=coords, resolution=resolution, seed=seed, extras=extras))
    return runs


def simulate_runs(truths: list[PlanetTruth], seed: int = 0, resolution: str = "demo",
                  spectrum_config: spectrum.SpectrumConfig | None = None,
                  true_climate_result: climate.ClimateResult | None = None) -> list[PlanetRun]:
    """Simulate many planets; climates are computed in vectorised chunks. Same seed, same runs.

    `true_climate_result`, when given, is the already computed true climate of exactly `truths`.
    """
    if resolution not in climate.GRIDS:
        raise InputValidationError("resolution", resolution, f"one of {sorted(climate.GRIDS)}")
    for t in truths:
        validate_truth(t)
    cfg = spectrum_config or spectrum.SpectrumConfig()
    if true_climate_result is not None:
        return _chunk_runs(truths, seed, resolution, cfg, true_climate_result)
    runs: list[PlanetRun] = []
    for start in range(0, len(truths), CHUNK):
        runs.extend(_chunk_runs(truths[start:start + CHUNK], seed, resolution, cfg, None))
    return runs


def simulate_population_runs(abiotic: list[PlanetTruth], seed: int = 0, resolution: str = "demo") -> list[PlanetRun]:
    """Assign biospheres to abiotic survey planets and simulate them, re-running the true climate
    only for planets whose atmosphere a new biosphere changed."""
    for t in abiotic:
        validate_truth(t)
    base = true_climate(abiotic, resolution)
    truths = population.assign_biospheres(abiotic, seed, resolution, climate=base)
    changed = [i for i, (a, t) in enumerate(zip(abiotic, truths)) if a is not t]
    if changed:
        base = merge_climates(base, true_climate([truths[i] for i in changed], resolution), changed)
    return simulate_runs(truths, seed, resolution, true_climate_result=base)


def simulate_run(truth: PlanetTruth, seed: int = 0, resolution: str = "demo") -> PlanetRun:
    """One planet run (see `simulate_runs`)."""
    return simulate_runs([truth], seed=seed, resolution=resolution)[0]
