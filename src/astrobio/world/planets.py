"""Bulk planet relations: mass–radius, surface gravity, escape velocity, bulk density.

Mass–radius: Chen & Kipping (2017, ApJ 834, 17) "Forecaster" mean relations, Terran regime
R = M^0.279 below 2.04 M_earth and Neptunian regime R = 0.808 M^0.589 above (continuous at 2.04).
"""

from __future__ import annotations

import numpy as np

from astrobio.constants import G, M_EARTH, R_EARTH, RHO_EARTH, V_ESC_EARTH

_TERRAN_EXP = 0.279  # Chen & Kipping 2017, Table 1 (Terran worlds)
_NEPTUNIAN_EXP = 0.589  # Chen & Kipping 2017, Table 1 (Neptunian worlds)
_TRANSITION_MASS = 2.04  # M_earth, Chen & Kipping 2017
_NEPTUNIAN_COEF = _TRANSITION_MASS**_TERRAN_EXP / _TRANSITION_MASS**_NEPTUNIAN_EXP  # continuity (~0.808)
ROCKY_RADIUS_MAX_EARTH = 1.8  # above this most planets keep H/He envelopes (Fulton et al. 2017 radius gap)
MODEL_RADIUS_MAX_EARTH = 2.5  # the surface/EBM model is not applied to larger (sub-Neptune/giant) planets


def radius_from_mass(mass_earth):
    """Mean radius [R_earth] for a mass [M_earth] (Chen & Kipping 2017)."""
    m = np.asarray(mass_earth, dtype=float)
    return np.where(m < _TRANSITION_MASS, m**_TERRAN_EXP, _NEPTUNIAN_COEF * m**_NEPTUNIAN_EXP)


def mass_from_radius(radius_earth):
    """Mean mass [M_earth] for a radius [R_earth]: the inverse of `radius_from_mass`."""
    r = np.asarray(radius_earth, dtype=float)
    r_t = _TRANSITION_MASS**_TERRAN_EXP
    return np.where(r < r_t, r ** (1 / _TERRAN_EXP), (r / _NEPTUNIAN_COEF) ** (1 / _NEPTUNIAN_EXP))


def surface_gravity(mass_earth, radius_earth):
    """Surface gravity [m s^-2]."""
    return G * np.asarray(mass_earth) * M_EARTH / (np.asarray(radius_earth) * R_EARTH) ** 2


def escape_velocity_earth(mass_earth, radius_earth):
    """Escape velocity in Earth units (11.186 km/s = 1)."""
    v = np.sqrt(2 * G * np.asarray(mass_earth) * M_EARTH / (np.asarray(radius_earth) * R_EARTH))
    return v / V_ESC_EARTH


def density_earth(mass_earth, radius_earth):
    """Bulk density in Earth units (5513 kg m^-3 = 1)."""
    rho = np.asarray(mass_earth) * M_EARTH / (4 / 3 * np.pi * (np.asarray(radius_earth) * R_EARTH) ** 3)
    return rho / RHO_EARTH
