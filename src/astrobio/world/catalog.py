"""Real planets: the Open Exoplanet Catalogue and the Solar System anchors, as `PlanetTruth`s.

A catalog planet's "truth" is its catalog value set plus the observer's prior atmosphere (nothing more is
known about it); the Solar System planets carry their measured parameters and atmospheres.
"""

from __future__ import annotations

import csv
import math
from importlib import resources

import numpy as np

from astrobio.constants import M_EARTH, M_JUP, R_EARTH, R_JUP
from astrobio.errors import InputValidationError
from astrobio.world import atmosphere, orbits, planets, stars
from astrobio.world.types import PlanetTruth, validate_truth

SOLAR_SYSTEM_J_ABS = 3.67  # absolute J magnitude of the Sun (Willmer 2018, ApJS 236, 47)
SOLAR_SYSTEM_DISTANCE_PC = 10.0  # the Solar System "seen as an exoplanet system" from 10 pc
CATALOG_DEFAULT_AGE_GYR = 5.0  # assumed when the catalog gives no age (mid main-sequence)
CATALOG_TRANSITS = 0  # no transmission spectrum exists for catalog planets in this package
CATALOG_ECC_MAX = 0.9  # values outside [0, 0.9) are treated as unknown (circular orbit assumed)


# The columns `catalog_truth_from_row` reads: a user CSV must have them all (a cell may be empty = unknown).
REQUIRED_COLUMNS = ("name", "system", "star_name", "star_teff_k", "star_radius_rsun", "star_mass_msun",
                    "star_age_gyr", "distance_pc", "planet_mass_mjup", "planet_radius_rjup", "period_days",
                    "semimajor_axis_au", "eccentricity", "discovery_method", "discovery_year")


def _float(row: dict, key: str) -> float:
    """A numeric cell; empty is unknown (NaN), anything else that is not a number is a typed error."""
    v = row.get(key, "")
    if v in ("", None):
        return float("nan")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise InputValidationError(key, v, "a number or an empty cell") from None


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
        discovery_year=int(year) if np.isfinite(year := _float(row, "discovery_year")) else 0,
        catalog_missing=tuple(missing))


def catalog_rows(path=None) -> list[dict]:
    """Rows of the shipped Open Exoplanet Catalogue CSV (or another file with the same columns)."""
    if path is None:
        path = resources.files("astrobio.resources") / "catalog" / "exoplanets_oec.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputValidationError("catalog columns", missing, f"every column of {list(REQUIRED_COLUMNS)} "
                                           "(cells may be empty) in the header of " + str(path))
            return list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputValidationError("catalog", str(path), f"a readable UTF-8 CSV file ({exc})") from None


def catalog_planets(path=None) -> tuple[list[PlanetTruth], list[tuple[str, str]]]:
    """Catalog planets the simulator can model, and (name, reason) for every planet skipped."""
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
