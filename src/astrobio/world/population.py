"""Planet populations: a synthetic survey, the real catalog, and the Solar System anchors.

The synthetic survey is M-dwarf heavy (as transit surveys of temperate rocky planets are, e.g.
TESS/ground-based M-dwarf programmes) and spans planets inside, in and outside the habitable zone.
Every planet is drawn from its own generator `default_rng([seed, system_index, planet_index])`, so a
run is identical whatever the batch or worker that simulates it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from importlib import resources

import numpy as np

from astrobio.constants import M_JUP, M_EARTH, R_EARTH, R_JUP
from astrobio.errors import InputValidationError
from astrobio.world import atmosphere, habitable, labels, orbits, planets, stars
from astrobio.world.types import PlanetObserved, PlanetTruth

# --- synthetic survey design (documented choices, not measurements) ---
SPECTRAL_MIX = (("M", 0.55, 2700.0, 3900.0), ("K", 0.25, 3900.0, 5300.0), ("GF", 0.20, 5300.0, 7000.0))
# Survey design in x = S_eff / S_runaway(Teff): (share, low, high); log-uniform inside each range.
HZ_POSITION_MIX = ((0.20, 0.2, 0.62), (0.65, 0.62, 1.0), (0.15, 1.0, 2.5))  # outer, in, inner
CO2_FEEDBACK_DEX = 3.5  # rise of log10 CO2 from the inner edge to x = 0.6 (tuned to the EBM's outer edge)
RADIUS_RANGE_EARTH = (0.5, 1.8)  # rocky planets below the Fulton et al. (2017) radius gap
TRANSIT_CHOICES = (0, 0, 3, 5, 10, 20, 50)  # transits of transmission spectroscopy (0 = none)
P_LIFE_IF_VIABLE = 0.55  # chance that life arose where a metabolism is viable (an assumption, stated)
ABIOTIC_O2_FALSE_POSITIVE = 0.08  # M-dwarf planets with abiotic O2 from early water loss (Luger & Barnes 2015)

# Observation noise (catalog-like 1-sigma): SPEC.md section 3.
OBS_SIGMA = {"teff_k": 100.0, "radius_frac": 0.05, "mass_frac": 0.07, "luminosity_frac": 0.08,
             "planet_radius_frac": 0.05, "planet_mass_frac": 0.15, "a_frac": 0.02, "distance_frac": 0.02,
             "jmag": 0.03, "age_frac": 0.3, "ecc_abs": 0.03}
P_MASS_MISSING_TRANSIT = 0.6  # many transiting planets lack an RV mass
P_AGE_MISSING = 0.7  # ages are rarely measured
P_ECC_MISSING = 0.5

SOLAR_SYSTEM_J_ABS = 3.67  # absolute J magnitude of the Sun (Willmer 2018, ApJS 236, 47)
SOLAR_SYSTEM_DISTANCE_PC = 10.0  # the Solar System "seen as an exoplanet system" from 10 pc


def _draw_star(rng: np.random.Generator) -> dict:
    u = rng.random()
    cum = 0.0
    for _, p, lo, hi in SPECTRAL_MIX:
        cum += p
        if u <= cum:
            teff = rng.uniform(lo, hi)
            break
    ms = stars.main_sequence_from_teff(np.array([teff]))
    age = rng.uniform(0.5, 10.0)
    # Activity lifetime grows toward late M dwarfs (West et al. 2008: ~1 Gyr early M, ~8 Gyr late M).
    tau_gyr = float(np.interp(teff, [2700, 3500, 4000, 5000, 7000], [8.0, 4.0, 1.5, 1.0, 0.8]))
    activity = float(np.clip(math.exp(-age / tau_gyr) + rng.normal(0, 0.08), 0.0, 1.0))
    distance = float(10 ** rng.uniform(math.log10(5.0), math.log10(80.0)))
    lum = float(ms["luminosity_lsun"][0])
    return {
        "star_teff_k": float(teff), "star_radius_rsun": float(ms["radius_rsun"][0]),
        "star_mass_msun": float(ms["mass_msun"][0]), "star_luminosity_lsun": lum,
        "star_age_gyr": age, "star_activity": activity, "distance_pc": distance,
        "star_jmag": float(stars.apparent_j_magnitude(np.array([teff]), np.array([lum]),
                                                       np.array([distance]))[0]),
    }


def _draw_planet(rng: np.random.Generator, star: dict, name: str, system: str) -> PlanetTruth:
    radius = float(rng.uniform(*RADIUS_RANGE_EARTH))
    mass = float(planets.mass_from_radius(radius) * math.exp(rng.normal(0, 0.15)))
    # Instellation relative to the star's runaway-greenhouse limit (Kopparapu et al. 2014), so the
    # survey spans inside, in and outside the habitable zone for every spectral type.
    s_runaway = float(habitable.seff_limits(star["star_teff_k"], 1.0)["runaway_greenhouse"])
    x = _draw_hz_position(rng)
    s_eff = x * s_runaway
    a_au = math.sqrt(star["star_luminosity_lsun"] / s_eff)
    ecc = float(min(abs(rng.normal(0, 0.06)), 0.4))  # small-planet eccentricities (Van Eylen et al. 2019)
    locked = bool(orbits.tidal_locking(np.array([a_au]), np.array([star["star_mass_msun"]]),
                                       np.array([mass]), np.array([radius]),
                                       np.array([star["star_age_gyr"]]))[0])
    period = float(orbits.orbital_period_days(a_au, star["star_mass_msun"]))
    rotation = period if locked else float(10 ** rng.uniform(math.log10(0.5), math.log10(5.0)))
    thin = rng.random() < 0.10
    pressure = float(10 ** (rng.uniform(-2.5, -1.0) if thin else rng.uniform(-0.3, 1.0)))
    # Carbonate–silicate feedback (Walker et al. 1981): CO2 builds up as instellation falls below the
    # runaway limit, from Earth-like 400 ppm at the inner edge to tenths of the atmosphere near the outer.
    log_co2 = float(np.clip(rng.normal(-3.4 + CO2_FEEDBACK_DEX * np.clip((1 - x) / 0.4, 0.0, 1.2), 0.6),
                            -6.0, -0.2))
    comp = {"CO2": 10**log_co2, "CH4": 10 ** rng.uniform(-7.0, -5.3), "H2": 10 ** rng.uniform(-6.5, -2.7),
            "CO": 10 ** rng.uniform(-8, -5), "O2": 10 ** rng.uniform(-10, -8), "N2O": 1e-12, "O3": 1e-12,
            "H2O": 0.0}
    if star["star_teff_k"] < 3900 and rng.random() < ABIOTIC_O2_FALSE_POSITIVE:
        comp["O2"] = 10 ** rng.uniform(-3, -1)
        comp["O3"] = float(atmosphere.ozone_from_o2(comp["O2"]))
    # XUV erosion (Zahnle & Catling 2017 "cosmic shoreline": escape ~ I_xuv vs v_esc^4); activity
    # stands in for the XUV history, so the observing log's flare reports carry real information.
    v_esc = float(planets.escape_velocity_earth(mass, radius))
    erosion = star["star_activity"] * s_eff / v_esc**4
    retained = not (erosion > 1.2 or (erosion > 0.7 and rng.random() < 0.5))
    if not retained:
        pressure = float(10 ** rng.uniform(-3.5, -2.5))
    n_tr = int(rng.choice(TRANSIT_CHOICES))
    method = "transit" if n_tr > 0 or rng.random() < 0.6 else "RV"
    return PlanetTruth(
        name=name, system=system, source="synthetic", **star,
        planet_radius_earth=radius, planet_mass_earth=mass, semimajor_axis_au=a_au, eccentricity=ecc,
        obliquity_deg=float(rng.uniform(0, 45)) if not locked else 0.0,
        rotation_period_days=rotation, tidally_locked=locked, surface_pressure_bar=pressure,
        composition=atmosphere.normalise(comp), ocean_fraction=float(rng.uniform(0.1, 0.9)),
        surface_albedo=float(rng.uniform(0.25, 0.35)),
        cloud_top_pressure_bar=pressure if rng.random() < 0.3 else pressure * float(rng.uniform(0.05, 0.6)),
        biosphere="none", atmosphere_retained=retained, n_transits=n_tr if method == "transit" else 0,
        discovery_method=method, discovery_year=int(rng.integers(2016, 2031)))


def _draw_hz_position(rng: np.random.Generator) -> float:
    u, cum = rng.random(), 0.0
    for share, lo, hi in HZ_POSITION_MIX:
        cum += share
        if u <= cum:
            break
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _system_name(seed: int, k: int) -> str:
    return f"ASB-{seed:04d}-{k:05d}"  # the full seed: ids of different seeds never collide


def sample_abiotic_population(n: int, seed: int = 0) -> list[PlanetTruth]:
    """`n` synthetic planets in systems of 1–3 planets, before any biosphere is assigned."""
    if n < 0:
        raise InputValidationError("n", n, "a non-negative number of planets")
    truths: list[PlanetTruth] = []
    k = 0
    while len(truths) < n:
        srng = np.random.default_rng([seed, k, 0])
        star = _draw_star(srng)
        n_planets = int(srng.choice([1, 1, 2, 3]))
        system = _system_name(seed, k)
        for j in range(min(n_planets, n - len(truths))):
            prng = np.random.default_rng([seed, k, j + 1])
            truths.append(_draw_planet(prng, star, f"{system} {'bcd'[j]}", system))
        k += 1
    return truths


def assign_biospheres(truths: list[PlanetTruth], seed: int = 0, resolution: str = "demo",
                      climate=None) -> list[PlanetTruth]:
    """Let life arise where the true climate and chemistry allow a metabolism (with P_LIFE_IF_VIABLE).

    The climate of the abiotic truth (computed here unless given) decides liquid water; the metabolic
    models decide which biosphere is viable; a viable biosphere then changes the atmosphere (O2/O3
    or CH4). Planets left unchanged are returned as the same objects.
    """
    from astrobio.world import metabolism
    from astrobio.world.simulate import true_climate

    climate = climate if climate is not None else true_climate(truths, resolution)
    out = []
    for i, t in enumerate(truths):
        rng = np.random.default_rng([seed, _stable_hash(t.name), 7])
        habitable = labels.is_habitable(float(climate.liquid_water_fraction[i]), bool(climate.runaway[i]),
                                        t.atmosphere_retained, t.surface_pressure_bar)
        if t.biosphere != "none" or not habitable or rng.random() >= P_LIFE_IF_VIABLE:
            out.append(t)
            continue
        env = metabolism.environment_from_conditions(
            light_available=True, co2_vmr=t.composition["CO2"], h2_vmr=t.composition["H2"],
            o2_vmr=t.composition["O2"], liquid_water=True,
            temperature_k=float(climate.global_mean_surface_temperature_k[i]))
        viable = metabolism.viable_biospheres(env)
        if not viable:
            out.append(t)
            continue
        kind = str(rng.choice(sorted(viable)))
        comp = atmosphere.apply_biosphere(t.composition, kind, rng)
        out.append(replace(t, biosphere=kind, composition=comp))
    return out


def sample_population(n: int, seed: int = 0, resolution: str = "demo") -> list[PlanetTruth]:
    """The default synthetic survey: `n` true planets, biospheres included."""
    return assign_biospheres(sample_abiotic_population(n, seed), seed, resolution)


def _stable_hash(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode())


# ---------------------------------------------------------------- observation
def _noisy(rng, value, frac=None, abs_sigma=None):
    if value is None or not np.isfinite(value):
        return float("nan")
    sigma = abs(value) * frac if frac is not None else abs_sigma
    return float(value + rng.normal(0.0, sigma))


def observe(truth: PlanetTruth, rng: np.random.Generator) -> PlanetObserved:
    """Catalog-like observation of a synthetic truth: noisy values, some missing (NaN)."""
    if truth.source != "synthetic":
        return catalog_observation(truth)
    s = OBS_SIGMA
    transit = truth.discovery_method == "transit"
    teff = _noisy(rng, truth.star_teff_k, abs_sigma=s["teff_k"])
    r_star = _noisy(rng, truth.star_radius_rsun, frac=s["radius_frac"])
    lum = float(stars.luminosity_from_radius_teff(r_star, teff))
    a = _noisy(rng, truth.semimajor_axis_au, frac=s["a_frac"])
    r_p = _noisy(rng, truth.planet_radius_earth, frac=s["planet_radius_frac"]) if transit else float("nan")
    mass_known = (not transit) or rng.random() >= P_MASS_MISSING_TRANSIT
    m_p = _noisy(rng, truth.planet_mass_earth, frac=s["planet_mass_frac"]) if mass_known else float("nan")
    ecc = float("nan") if rng.random() < P_ECC_MISSING else max(0.0, _noisy(rng, truth.eccentricity,
                                                                          abs_sigma=s["ecc_abs"]))
    inst = lum / a**2
    return PlanetObserved(
        name=truth.name, system=truth.system, star_teff_k=teff, star_radius_rsun=r_star,
        star_mass_msun=_noisy(rng, truth.star_mass_msun, frac=s["mass_frac"]), star_luminosity_lsun=lum,
        star_age_gyr=float("nan") if rng.random() < P_AGE_MISSING else _noisy(rng, truth.star_age_gyr,
                                                                               frac=s["age_frac"]),
        distance_pc=_noisy(rng, truth.distance_pc, frac=s["distance_frac"]),
        star_jmag=_noisy(rng, truth.star_jmag, abs_sigma=s["jmag"]), planet_radius_earth=r_p,
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


# ---------------------------------------------------------------- real planets
CATALOG_DEFAULT_AGE_GYR = 5.0  # assumed when the catalog gives no age (mid main-sequence)
CATALOG_TRANSITS = 0  # no transmission spectrum exists for catalog planets in this package
CATALOG_ECC_MAX = 0.9  # values outside [0, 0.9) are treated as unknown (circular orbit assumed)


def _float(row: dict, key: str) -> float:
    v = row.get(key, "")
    return float(v) if v not in ("", None) else float("nan")


def catalog_truth_from_row(row: dict) -> PlanetTruth:
    """A catalog planet as a `PlanetTruth`: catalog values, plus the observer's prior atmosphere.

    Raises InputValidationError (field, value, expected) when the simulator cannot model the planet.
    """
    name = row["name"]
    if not row.get("star_name"):
        raise InputValidationError("star_name", "", "a host star (circumbinary and free-floating planets "
                                   "have none in the catalog)")
    teff, m_star, r_star = _float(row, "star_teff_k"), _float(row, "star_mass_msun"), _float(row, "star_radius_rsun")
    if not np.isfinite(teff) and np.isfinite(m_star):
        teff = float(stars.main_sequence_from_mass(np.array([m_star]))["teff_k"][0])
    lo, hi = stars.TEFF_RANGE_K
    if not (np.isfinite(teff) and lo <= teff <= hi):
        raise InputValidationError("star_teff_k", teff, f"a host-star Teff within the simulator's "
                                   f"validity range {lo:.0f}-{hi:.0f} K (Kopparapu et al. 2014)")
    ms = stars.main_sequence_from_teff(np.array([teff]))
    if not (np.isfinite(r_star) and r_star > 0):
        r_star = float(ms["radius_rsun"][0])
    if not (np.isfinite(m_star) and m_star > 0):
        m_star = float(ms["mass_msun"][0])
    if r_star > 3.0:
        raise InputValidationError("star_radius_rsun", r_star, "a main-sequence host (R <= 3 R_sun); giants "
                                   "and subgiants are outside the stellar model")
    lum = float(stars.luminosity_from_radius_teff(r_star, teff))
    missing = []
    r_p = _float(row, "planet_radius_rjup") * R_JUP / R_EARTH
    m_p = _float(row, "planet_mass_mjup") * M_JUP / M_EARTH
    if not np.isfinite(r_p) and not np.isfinite(m_p):
        raise InputValidationError("planet_radius_rjup", row.get("planet_radius_rjup", ""),
                                   "a planet radius or mass")
    if not np.isfinite(r_p):
        r_p, missing = float(planets.radius_from_mass(m_p)), missing + ["planet_radius_earth"]
    if not np.isfinite(m_p):
        m_p, missing = float(planets.mass_from_radius(r_p)), missing + ["planet_mass_earth"]
    if r_p > planets.MODEL_RADIUS_MAX_EARTH or r_p <= 0:
        raise InputValidationError("planet_radius_earth", round(r_p, 3), f"a rocky/terrestrial planet "
                                   f"(0 < R <= {planets.MODEL_RADIUS_MAX_EARTH} R_earth); larger planets have "
                                   "no surface the climate model applies to")
    a, period = _float(row, "semimajor_axis_au"), _float(row, "period_days")
    if not np.isfinite(a):
        if not np.isfinite(period):
            raise InputValidationError("semimajor_axis_au", "", "a semimajor axis or an orbital period")
        a = float(orbits.semimajor_axis_au(period, m_star))
    ecc = _float(row, "eccentricity")
    if not (np.isfinite(ecc) and 0.0 <= ecc < CATALOG_ECC_MAX):  # a few catalog entries are negative
        ecc, missing = 0.0, missing + ["eccentricity"]
    age = _float(row, "star_age_gyr")
    if not np.isfinite(age):
        age, missing = CATALOG_DEFAULT_AGE_GYR, missing + ["star_age_gyr"]
    dist = _float(row, "distance_pc")
    if not np.isfinite(dist):
        dist, missing = 100.0, missing + ["distance_pc"]
    locked = bool(orbits.tidal_locking(np.array([a]), np.array([m_star]), np.array([m_p]), np.array([r_p]),
                                       np.array([age]))[0])
    period_d = float(orbits.orbital_period_days(a, m_star))
    prior = atmosphere.prior_composition()
    return PlanetTruth(
        name=name, system=row["system"], source="catalog", star_teff_k=teff, star_radius_rsun=r_star,
        star_mass_msun=m_star, star_luminosity_lsun=lum, star_age_gyr=age,
        star_activity=float(np.clip(math.exp(-age / 4.0), 0, 1)) if teff < 3900 else
        float(np.clip(math.exp(-age / 1.0), 0, 1)),
        distance_pc=dist, star_jmag=float(stars.apparent_j_magnitude(np.array([teff]), np.array([lum]),
                                                                        np.array([dist]))[0]),
        planet_radius_earth=r_p, planet_mass_earth=m_p, semimajor_axis_au=a, eccentricity=ecc,
        obliquity_deg=0.0 if locked else 23.44, rotation_period_days=period_d if locked else 1.0,
        tidally_locked=locked, surface_pressure_bar=1.0, composition=prior, ocean_fraction=0.7,
        surface_albedo=0.3, cloud_top_pressure_bar=1.0, biosphere="none", atmosphere_retained=True,
        n_transits=CATALOG_TRANSITS, discovery_method=row.get("discovery_method") or "unknown",
        discovery_year=int(float(row.get("discovery_year") or 0)), catalog_missing=tuple(missing))


def catalog_rows(path=None) -> list[dict]:
    """Rows of the shipped Open Exoplanet Catalogue CSV (or another file with the same columns)."""
    if path is None:
        path = resources.files("astrobio.resources") / "catalog" / "exoplanets_oec.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def catalog_planets(path=None) -> tuple[list[PlanetTruth], list[tuple[str, str]]]:
    """Catalog planets the simulator can model, and (name, reason) for every planet skipped."""
    from astrobio.world.simulate import validate_truth

    truths, skipped = [], []
    for row in catalog_rows(path):
        try:
            truth = catalog_truth_from_row(row)
            validate_truth(truth)  # everything the simulator checks, so no catalog planet fails later
            truths.append(truth)
        except InputValidationError as exc:
            skipped.append((row.get("name", "?"), str(exc)))
    return truths, skipped


# ---------------------------------------------------------------- Solar System anchors
def _sun_star() -> dict:
    return {"star_teff_k": 5772.0, "star_radius_rsun": 1.0, "star_mass_msun": 1.0, "star_luminosity_lsun": 1.0,
            "star_age_gyr": 4.6, "star_activity": 0.05, "distance_pc": SOLAR_SYSTEM_DISTANCE_PC,
            "star_jmag": SOLAR_SYSTEM_J_ABS}


# Present-day values: NASA planetary fact sheets (Williams 2024); Earth composition: dry air (CO2 420 ppm,
# NOAA 2023; CH4 1.9 ppm; N2O 0.33 ppm; O3 column-mean ~0.3 ppm); Venus and Mars: fact-sheet volume fractions.
_SOLAR_SYSTEM = {
    "Earth": dict(planet_radius_earth=1.0, planet_mass_earth=1.0, semimajor_axis_au=1.0, eccentricity=0.0167,
                  obliquity_deg=23.44, rotation_period_days=0.9973, surface_pressure_bar=1.013,
                  composition={"N2": 0.78, "O2": 0.2095, "CO2": 4.2e-4, "CH4": 1.9e-6, "N2O": 3.3e-7,
                               "O3": 3e-7, "CO": 1.2e-7, "H2": 5.5e-7, "H2O": 0.0},
                  ocean_fraction=0.71, surface_albedo=0.3, cloud_top_pressure_bar=0.7, biosphere="oxygenic"),
    "Venus": dict(planet_radius_earth=0.9499, planet_mass_earth=0.815, semimajor_axis_au=0.7233,
                  eccentricity=0.0068, obliquity_deg=2.64, rotation_period_days=243.0,
                  surface_pressure_bar=92.0,
                  composition={"N2": 0.035, "CO2": 0.965, "CO": 1.7e-5, "H2O": 0.0, "O2": 1e-9, "CH4": 1e-12,
                               "O3": 1e-12, "N2O": 1e-12, "H2": 1e-9},
                  ocean_fraction=0.0, surface_albedo=0.3, cloud_top_pressure_bar=0.1, biosphere="none"),
    "Mars": dict(planet_radius_earth=0.532, planet_mass_earth=0.107, semimajor_axis_au=1.5237,
                 eccentricity=0.0934, obliquity_deg=25.19, rotation_period_days=1.026,
                 surface_pressure_bar=0.00636,
                 composition={"N2": 0.0279, "CO2": 0.951, "O2": 1.74e-3, "CO": 7.47e-4, "H2O": 0.0,
                              "CH4": 1e-11, "O3": 1e-10, "N2O": 1e-12, "H2": 1.5e-5},
                 ocean_fraction=0.0, surface_albedo=0.25, cloud_top_pressure_bar=0.00636, biosphere="none"),
}


def solar_system_planet(name: str) -> PlanetTruth:
    """Venus, Earth or Mars with their true (measured) parameters, seen from 10 pc with 10 transits."""
    key = name.strip().capitalize()
    if key not in _SOLAR_SYSTEM:
        raise InputValidationError("name", name, f"one of {sorted(_SOLAR_SYSTEM)}")
    p = dict(_SOLAR_SYSTEM[key])
    comp = atmosphere.normalise(p.pop("composition"))
    return PlanetTruth(name=key, system="Solar System", source="solar_system", **_sun_star(), **p,
                       composition=comp, tidally_locked=False, atmosphere_retained=True, n_transits=10,
                       discovery_method="transit", discovery_year=2024)
