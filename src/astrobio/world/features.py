"""Physics features of an observed planet (the four numbers the models' physics tokens carry) and the observer's
reading of its spectrum as numbers (`spectrum_reading`).

They are physics on observed values only (no truth), computed once when a run is assembled
(world/simulate.py) and stored with it, so every reader of the run sees the same vector.

Vector (`types.PHYSICS_FEATURES` order), float64 [4]:
- log10 S/S_earth;
- habitable-zone position (S_maxGH - S)/(S_maxGH - S_runaway) with the Kopparapu et al. (2014) limits for the
  observed Teff (clamped to their fit range) and planet mass (1 M_earth when unknown): 0 = outer edge,
  1 = inner edge, clipped to HZ_POSITION_RANGE (beyond it log10 S carries the information);
- T_eq / 300 K;
- log10 prior surface pressure / bar.
An unknown S is rebuilt from L / a^2, an unknown T_eq from S (Bond albedo 0.3, full redistribution), an
unknown Teff is Kopparapu's reference 5780 K.

The spectrum reading (`types.SPECTRUM_READING_FIELDS` order, float64 [11]) turns what the observer's retrieval
concluded (`observation.SpectrumReading`, kept in a run's extras as `detection_sigma`, `observer_composition` and
`clear_atmosphere_sigma`) into model-ready numbers: asinh keeps sigma ~linear below 1 and logarithmic above (a
50 sigma detection is not 10x more telling than a 5 sigma one), log10 VMRs are floored at 1e-12 (a zero
abundance) and scaled to (log10 x + 6) / 6, so 1 ppm is 0, a pure gas 1 and the floor -1 (the other
numbers the models tokenize are O(1) too). All NaN for a planet without a spectrum: the retrieval never ran.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from astrobio.constants import S_EARTH
from astrobio.errors import InputValidationError
from astrobio.world.habitable import T_REF_K, seff_limits
from astrobio.world.orbits import equilibrium_temperature_k
from astrobio.world.stars import TEFF_RANGE_K
from astrobio.world.types import READING_GASES, SPECTRUM_READING_FIELDS, PlanetObserved

HZ_POSITION_RANGE = (-1.0, 2.0)
VMR_FLOOR = 1e-12  # log10 of a zero abundance
VMR_LOG_CENTRE, VMR_LOG_SCALE = -6.0, 6.0  # reading: (log10 VMR - centre) / scale
BOND_ALBEDO = 0.3  # for a T_eq rebuilt from S (as PlanetObserved.equilibrium_temperature_k)


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def physics_features(observed: PlanetObserved | Mapping[str, Any], prior_surface_pressure_bar: float) -> np.ndarray:
    """The physics feature vector (float64 [4], module docstring) of observed values (a PlanetObserved or its
    `to_dict()`); InputValidationError when the instellation is unknown and not derivable from L / a^2."""
    obs = observed.to_dict() if isinstance(observed, PlanetObserved) else observed
    s = _as_float(obs.get("instellation_searth"))
    if not (s > 0):
        s = _as_float(obs.get("star_luminosity_lsun")) / _as_float(obs.get("semimajor_axis_au")) ** 2
    if not (s > 0 and math.isfinite(s)):
        raise InputValidationError(f"{obs.get('name')}.instellation_searth", obs.get("instellation_searth"),
                                   "a positive value, or star_luminosity_lsun and semimajor_axis_au to derive it")
    if not (prior_surface_pressure_bar > 0):
        raise InputValidationError("prior_surface_pressure_bar", prior_surface_pressure_bar, "> 0 bar")
    teff = _as_float(obs.get("star_teff_k"))
    teff = float(np.clip(teff, *TEFF_RANGE_K)) if math.isfinite(teff) else T_REF_K
    mass = _as_float(obs.get("planet_mass_earth"))
    lim = seff_limits(teff, mass if mass > 0 else 1.0)
    s_max, s_run = float(lim["maximum_greenhouse"]), float(lim["runaway_greenhouse"])
    hz = float(np.clip((s_max - s) / (s_max - s_run), *HZ_POSITION_RANGE))
    t_eq = _as_float(obs.get("equilibrium_temperature_k"))
    if not (t_eq > 0):
        t_eq = float(equilibrium_temperature_k(s, BOND_ALBEDO))
    out = np.array([math.log10(s), hz, t_eq / 300.0, math.log10(prior_surface_pressure_bar)], dtype=np.float64)
    return out


def instellation_wm2(features: np.ndarray) -> float:
    """The instellation [W m^-2] a physics feature vector stands for (its first entry is log10 S/S_earth)."""
    return float(10.0 ** float(features[0]) * S_EARTH)


def spectrum_reading(extras: Mapping[str, Any]) -> np.ndarray:
    """The observer's spectrum reading (float64 [11], module docstring) from a run's extras; NaN where the run has
    no spectrum (its `detection_sigma` is empty). Only observer keys are read: the extras' true-planet entries
    (runaway, esi, absorbed flux) never reach an input."""
    detections = extras.get("detection_sigma") or {}
    if not detections:
        return np.full(len(SPECTRUM_READING_FIELDS), np.nan)
    comp = extras["observer_composition"]
    return np.array([*(math.asinh(float(detections.get(g, 0.0))) for g in READING_GASES),
                     *((math.log10(max(float(comp.get(g, 0.0)), VMR_FLOOR)) - VMR_LOG_CENTRE) / VMR_LOG_SCALE
                       for g in READING_GASES),
                     math.asinh(float(extras["clear_atmosphere_sigma"]))], dtype=np.float64)
