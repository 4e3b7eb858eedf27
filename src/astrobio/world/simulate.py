"""Planet runs: the truth/observation split of SPEC.md section 3, vectorised over planets.

Truth: labels, the datacube target and the spectrum come from the true planet and its true climate.
Observer (`world/observation.py`): the catalog-like values, the retrieval of the noisy spectrum, and the
observer's atmosphere (retrieved where the spectrum constrains it, the prior elsewhere).
Datacube input = climate of the observed planet under the observer's atmosphere. Graph = the metabolisms
the environment of that climate and atmosphere permits. Text = the observing log, written from the observed
values, the spectrum's reading and the log's own facts (`observing_log.LogFacts`). No observed modality
reads hidden truth.

The entry points (`simulate_runs`, `simulate_population_runs`, `sample_population`) take the resolution's
name and turn it into a grid once (`grid_for`).
"""

from __future__ import annotations

import zlib
from dataclasses import fields, replace

import numpy as np

from astrobio.errors import choose
from astrobio.world import atmosphere, climate, features, habitable, labels, metabolism, observation, observing_log
from astrobio.world import planets, spectrum, stars, survey
from astrobio.world.types import PlanetObserved, PlanetRun, PlanetTruth, run_id_for, validate_truth

CHUNK = 256  # planets per vectorised climate call


def grid_for(resolution: str) -> climate.ClimateGrid:
    """The climate grid a resolution name stands for; InputValidationError for an unknown name."""
    return choose("resolution", resolution, climate.GRIDS)


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


def true_climate(truths: list[PlanetTruth], grid: climate.ClimateGrid) -> climate.ClimateResult:
    """The true planets' climate (labels, datacube target, spectrum temperature)."""
    g = lambda k: [getattr(t, k) for t in truths]  # noqa: E731
    inputs = _climate_inputs(g("star_luminosity_lsun"), g("semimajor_axis_au"), g("eccentricity"),
                             g("obliquity_deg"), g("tidally_locked"), g("rotation_period_days"),
                             g("surface_pressure_bar"), [t.composition["CO2"] for t in truths],
                             [t.composition["CH4"] for t in truths], g("planet_mass_earth"),
                             g("planet_radius_earth"), g("surface_albedo"), g("ocean_fraction"),
                             g("star_teff_k"), g("star_mass_msun"))
    # Earth itself gets its real belts of land and ocean (Sellers 1965); other planets a uniform ocean.
    inputs.earth_geography = np.array([t.source == "solar_system" and t.name == "Earth" for t in truths], dtype=bool)
    return climate.run_climate(inputs, grid)


def prior_climate(observed: list[PlanetObserved], compositions: list[dict[str, float]],
                  grid: climate.ClimateGrid) -> climate.ClimateResult:
    """Climate of the observed planets under the observer's atmospheres (the datacube input)."""
    pri = [observation.prior_planet_parameters(o) for o in observed]
    n = len(observed)
    inputs = _climate_inputs([o.star_luminosity_lsun for o in observed], [o.semimajor_axis_au for o in observed],
                             [p["eccentricity"] for p in pri], [p["obliquity_deg"] for p in pri],
                             [p["tidally_locked"] for p in pri], [p["rotation_period_days"] for p in pri],
                             np.full(n, atmosphere.PRIOR_SURFACE_PRESSURE_BAR), [c["CO2"] for c in compositions],
                             [c["CH4"] for c in compositions], [p["mass_earth"] for p in pri],
                             [p["radius_earth"] for p in pri], np.full(n, observation.PRIOR_ALBEDO),
                             np.full(n, observation.PRIOR_OCEAN_FRACTION),
                             [o.star_teff_k for o in observed], [o.star_mass_msun for o in observed])
    return climate.run_climate(inputs, grid)


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


def with_water_vapour(composition: dict[str, float], h2o_vmr: float) -> dict[str, float]:
    """The true composition with the climate's column water vapour. N2 makes room for it where it can (the
    other gases keep their mixing ratios); an atmosphere with too little N2 (e.g. pure CO2) is diluted as a
    whole, so every gas keeps its share of the dry air and the total stays 1."""
    h2o = min(max(float(h2o_vmr), 0.0), 1.0)
    dry = {g: v for g, v in composition.items() if g != "H2O"}
    if sum(v for g, v in dry.items() if g != "N2") + h2o <= 1.0:
        return atmosphere.normalise(dict(dry, H2O=h2o))
    total = sum(dry.values())
    return atmosphere.normalise({**{g: v * (1.0 - h2o) / total for g, v in dry.items() if g != "N2"}, "H2O": h2o})


def _observed_hz(obs: PlanetObserved) -> dict[str, float]:
    lo, hi = stars.TEFF_RANGE_K
    if not lo <= obs.star_teff_k <= hi:
        return {}
    return {k: float(v) for k, v in habitable.habitable_zone(obs.star_teff_k, obs.star_luminosity_lsun).items()}


def _chunk_runs(truths: list[PlanetTruth], seed: int, grid: climate.ClimateGrid, resolution: str,
                spec_cfg: spectrum.SpectrumConfig, true_res: climate.ClimateResult | None) -> list[PlanetRun]:
    true_res = true_res if true_res is not None else true_climate(truths, grid)
    truths = [replace(t, composition=with_water_vapour(t.composition, true_res.column_h2o_vmr[i]))
              for i, t in enumerate(truths)]
    observed = [observation.observe(t, _rng(seed, t.name, 1)) for t in truths]
    spectra = [spectrum.spectrum_from_truth(t, _atmosphere_temperature(true_res, i), t.composition["H2O"],
                                            spec_cfg, _rng(seed, t.name, 2)) for i, t in enumerate(truths)]
    # --- from here on, only what the observer has: observed values, spectra, log facts, the seed
    readings = [observation.read_spectrum(o, s, spec_cfg) for o, s in zip(observed, spectra)]
    prior_res = prior_climate(observed, [r.composition for r in readings], grid)
    coords = {"lat_deg": grid.lat_deg.astype(np.float32), "lon_deg": grid.lon_deg.astype(np.float32),
              "sigma": grid.sigma.astype(np.float32), "month": np.arange(1, 13, dtype=np.float32)}
    runs = []
    for i, t in enumerate(truths):
        obs, reading = observed[i], readings[i]
        env = observation.observer_environment(
            reading.composition, float(prior_res.liquid_water_fraction[i]), bool(prior_res.runaway[i]),
            float(prior_res.global_mean_surface_temperature_k[i]))
        text = observing_log.observing_log(obs, observing_log.log_facts(t), reading, _rng(seed, t.name, 3))
        lab = labels.compute_labels(t, true_res, i)
        extras = {
            "runaway": bool(true_res.runaway[i]),
            # Host cooler than Kopparapu et al.'s 2600 K: habitable-zone limits held at their 2600 K values.
            "hz_limits_held_at_2600k": bool(true_res.hz_limits_held[i]),
            "prior_runaway": bool(prior_res.runaway[i]),
            "prior_mean_surface_temperature_k": float(prior_res.global_mean_surface_temperature_k[i]),
            "prior_liquid_water_fraction": float(prior_res.liquid_water_fraction[i]),
            "absorbed_flux_wm2": float(true_res.absorbed_flux_wm2[i]),
            "esi": float(habitable.earth_similarity_index(
                t.planet_radius_earth, planets.density_earth(t.planet_mass_earth, t.planet_radius_earth),
                planets.escape_velocity_earth(t.planet_mass_earth, t.planet_radius_earth),
                lab["mean_surface_temperature_k"])),
            "observed_hz_au": _observed_hz(obs),
            "detection_sigma": dict(reading.detection_sigma),
            "observer_composition": dict(reading.composition),
            "clear_atmosphere_sigma": reading.clear_atmosphere_sigma,
        }
        runs.append(PlanetRun(
            run_id=run_id_for(t), system=t.system, truth=t, observed=obs,
            datacube_prior=prior_res.datacube(i), datacube_true=true_res.datacube(i), spectrum=spectra[i],
            graph=metabolism.metabolic_graph(env), text=text, labels=lab, coords=coords,
            physics_features=features.physics_features(obs, atmosphere.PRIOR_SURFACE_PRESSURE_BAR),
            resolution=resolution, seed=seed, extras=extras))
    return runs


def _simulate(truths: list[PlanetTruth], seed: int, grid: climate.ClimateGrid, resolution: str,
              spec_cfg: spectrum.SpectrumConfig, true_res: climate.ClimateResult | None) -> list[PlanetRun]:
    if true_res is not None:
        return _chunk_runs(truths, seed, grid, resolution, spec_cfg, true_res)
    runs: list[PlanetRun] = []
    for start in range(0, len(truths), CHUNK):
        runs.extend(_chunk_runs(truths[start:start + CHUNK], seed, grid, resolution, spec_cfg, None))
    return runs


def simulate_runs(truths: list[PlanetTruth], seed: int = 0, resolution: str = "demo",
                  spectrum_config: spectrum.SpectrumConfig | None = None,
                  true_climate_result: climate.ClimateResult | None = None) -> list[PlanetRun]:
    """Simulate many planets; climates are computed in vectorised chunks. Same seed, same runs.

    `true_climate_result`, when given, is the already computed true climate of exactly `truths`.
    """
    grid = grid_for(resolution)
    for t in truths:
        validate_truth(t)
    return _simulate(truths, seed, grid, resolution, spectrum_config or spectrum.SpectrumConfig(),
                     true_climate_result)


def _with_biospheres(abiotic: list[PlanetTruth], seed: int, grid: climate.ClimateGrid):
    """(truths with biospheres, their true climate): the climate is re-run only for planets whose
    atmosphere a new biosphere changed."""
    for t in abiotic:
        validate_truth(t)
    base = true_climate(abiotic, grid)
    truths = survey.assign_biospheres(abiotic, base, seed)
    changed = [i for i, (a, t) in enumerate(zip(abiotic, truths)) if a is not t]
    if changed:
        base = merge_climates(base, true_climate([truths[i] for i in changed], grid), changed)
    return truths, base


def simulate_population_runs(abiotic: list[PlanetTruth], seed: int = 0, resolution: str = "demo",
                             survey_name: str = survey.DEFAULT_SURVEY) -> list[PlanetRun]:
    """Assign biospheres to abiotic survey planets and simulate them with the survey design's instrument."""
    grid = grid_for(resolution)
    design = survey.survey_design(survey_name)
    runs: list[PlanetRun] = []
    for start in range(0, len(abiotic), CHUNK):
        truths, base = _with_biospheres(abiotic[start:start + CHUNK], seed, grid)
        runs.extend(_simulate(truths, seed, grid, resolution, design.spectrum_config(), base))
    return runs


def sample_population(n: int, seed: int = 0, resolution: str = "demo",
                      survey_name: str = survey.DEFAULT_SURVEY) -> list[PlanetTruth]:
    """The synthetic survey: `n` true planets, biospheres included."""
    grid = grid_for(resolution)
    abiotic = survey.sample_abiotic_population(n, seed, survey.survey_design(survey_name))
    truths: list[PlanetTruth] = []
    for start in range(0, len(abiotic), CHUNK):
        truths.extend(_with_biospheres(abiotic[start:start + CHUNK], seed, grid)[0])
    return truths


def simulate_run(truth: PlanetTruth, seed: int = 0, resolution: str = "demo") -> PlanetRun:
    """One planet run (see `simulate_runs`)."""
    return simulate_runs([truth], seed=seed, resolution=resolution)[0]
