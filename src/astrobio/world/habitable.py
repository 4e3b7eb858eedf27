"""Habitable-zone limits (Kopparapu et al. 2013, 2014) and the Earth Similarity Index.

S_eff = S_sun + a T* + b T*^2 + c T*^3 + d T*^4 with T* = Teff - 5780 K, distance d = sqrt(L / S_eff) AU,
valid for 2600 K <= Teff <= 7200 K. Cooler host stars (down to stars.TEFF_RANGE_K[0] = 2300 K) get the
2600 K limits, held: `limits_held` says where, and runs carry that flag in their provenance. Coefficients: Kopparapu et al. (2014, ApJL 787, L29) script
(1 M_earth; runaway greenhouse also for 0.1 and 5 M_earth) and, for the moist greenhouse, Kopparapu
et al. (2013, ApJ 765, 131; erratum ApJ 770, 82). Between the three planet masses the runaway limit is
interpolated linearly in log10(mass) and clamped outside 0.1–5 M_earth (Kopparapu 2014 give no fits
outside that range).
"""

from __future__ import annotations

import numpy as np

from astrobio.constants import T_EARTH_MEAN
from astrobio.errors import InputValidationError
from astrobio.world.stars import TEFF_RANGE_K, validated_array

T_REF_K = 5780.0  # Kopparapu's reference Teff
KOPPARAPU_TEFF_RANGE_K = (2600.0, 7200.0)  # validity of the fits
HZ_KEYS = ("recent_venus", "runaway_greenhouse", "moist_greenhouse", "maximum_greenhouse", "early_mars")
_COEFFS = {  # S_sun, a, b, c, d
    "recent_venus": (1.776, 2.136e-4, 2.533e-8, -1.332e-11, -3.097e-15),
    "runaway_greenhouse": (1.107, 1.332e-4, 1.580e-8, -8.308e-12, -1.931e-15),
    "moist_greenhouse": (1.0140, 8.1774e-5, 1.7063e-9, -4.3241e-12, -6.6462e-16),
    "maximum_greenhouse": (0.356, 6.171e-5, 1.698e-9, -3.198e-12, -5.575e-16),
    "early_mars": (0.320, 5.547e-5, 1.526e-9, -2.874e-12, -5.011e-16),
}
_RUNAWAY_BY_MASS = {  # planet mass [M_earth] -> coefficients (Kopparapu et al. 2014)
    0.1: (0.99, 1.209e-4, 1.404e-8, -7.418e-12, -1.713e-15),
    1.0: _COEFFS["runaway_greenhouse"],
    5.0: (1.188, 1.433e-4, 1.707e-8, -8.968e-12, -2.084e-15),
}
ESI_WEIGHTS = {"radius": 0.57, "density": 1.07, "escape_velocity": 0.70, "temperature": 5.58}  # Schulze-Makuch 2011


def _poly(coeffs, t_star):
    s, a, b, c, d = coeffs
    return s + a * t_star + b * t_star**2 + c * t_star**3 + d * t_star**4


def seff_limits(teff_k, planet_mass_earth=1.0) -> dict[str, np.ndarray]:
    """Effective instellation S_eff (S/S_earth) of each habitable-zone limit (keys `HZ_KEYS`)."""
    teff = validated_array("teff_k", teff_k, *TEFF_RANGE_K)
    t_star = np.maximum(teff, KOPPARAPU_TEFF_RANGE_K[0]) - T_REF_K  # held below 2600 K (module docstring)
    mass = validated_array("planet_mass_earth", planet_mass_earth, positive=True)
    out = {k: _poly(c, t_star) for k, c in _COEFFS.items()}
    log_m = np.clip(np.log10(mass), -1.0, np.log10(5.0))
    masses = np.log10(np.array(sorted(_RUNAWAY_BY_MASS)))
    runaway = np.stack([_poly(_RUNAWAY_BY_MASS[m], t_star) for m in sorted(_RUNAWAY_BY_MASS)])
    # Piecewise-linear interpolation in log mass between the three fits, per star.
    w_hi = np.clip((log_m - masses[0]) / (masses[1] - masses[0]), 0, 1)
    low = runaway[0] + w_hi * (runaway[1] - runaway[0])
    w_top = np.clip((log_m - masses[1]) / (masses[2] - masses[1]), 0, 1)
    high = runaway[1] + w_top * (runaway[2] - runaway[1])
    out["runaway_greenhouse"] = np.where(log_m <= masses[1], low, high)
    return {k: out[k] for k in HZ_KEYS}


def limits_held(teff_k) -> np.ndarray:
    """True where Teff is below the fits' 2600 K and the limits are held at their 2600 K values."""
    return validated_array("teff_k", teff_k, *TEFF_RANGE_K) < KOPPARAPU_TEFF_RANGE_K[0]


def habitable_zone(teff_k, luminosity_lsun, planet_mass_earth=1.0) -> dict[str, np.ndarray]:
    """Orbital distances [AU] of the habitable-zone limits, d = sqrt(L / S_eff)."""
    lum = validated_array("luminosity_lsun", luminosity_lsun, positive=True)
    return {k: np.sqrt(lum / s) for k, s in seff_limits(teff_k, planet_mass_earth).items()}


def earth_similarity_index(radius_earth, density_earth, escape_velocity_earth, surface_temperature_k):
    """ESI = prod_i (1 - |(x_i - x0)/(x_i + x0)|)^(w_i / n), n = 4 (Schulze-Makuch et al. 2011, Astrobiology 11, 1041).

    Radius, bulk density and escape velocity in Earth units; surface temperature in K (Earth 288 K).
    """
    values = {
        "radius": (validated_array("radius_earth", radius_earth, positive=True), 1.0),
        "density": (validated_array("density_earth", density_earth, positive=True), 1.0),
        "escape_velocity": (validated_array("escape_velocity_earth", escape_velocity_earth, positive=True), 1.0),
        "temperature": (validated_array("surface_temperature_k", surface_temperature_k, positive=True),
                        T_EARTH_MEAN),
    }
    try:
        np.broadcast_shapes(*(x.shape for x, _ in values.values()))
    except ValueError:
        raise InputValidationError("earth_similarity_index inputs", [x.shape for x, _ in values.values()],
                                   "arrays of one broadcastable shape") from None
    esi = 1.0
    for key, (x, x0) in values.items():
        esi = esi * (1.0 - np.abs((x - x0) / (x + x0))) ** (ESI_WEIGHTS[key] / len(values))
    return esi
