"""Main-sequence stars: Teff/mass/radius/luminosity relations and the apparent J magnitude.

Source: E. Mamajek, "A Modern Mean Dwarf Stellar Color and Effective Temperature Sequence"
(version 2019.3.22, http://www.pas.rochester.edu/~emamajek/EEM_dwarf_UBVIJHK_colors_Teff.txt), much
of which is Table 5 of Pecaut & Mamajek (2013, ApJS 208, 9). The rows F0V..M8V are embedded below,
verbatim in the columns we use. Relations interpolate linearly in Teff (or log mass / log L) and
logarithmically in radius, mass and luminosity; they describe a *mean* dwarf (real stars scatter by
~0.1 dex in L at fixed Teff, more for young or metal-poor stars).
"""

from __future__ import annotations

import numpy as np

from astrobio.constants import TEFF_SUN
from astrobio.errors import InputValidationError

# Host stars the simulator models. Kopparapu et al. (2014) fit the habitable zone for 2600-7200 K
# (habitable.KOPPARAPU_TEFF_RANGE_K); cooler stars down to 2300 K (TRAPPIST-1 is ~2566 K) get the limits
# held at their 2600 K values, and below M8V (2500 K) the mean-dwarf relations hold the M8V row.
TEFF_RANGE_K = (2300.0, 7200.0)
M_BOL_SUN = 4.74  # mag, IAU 2015 Resolution B2 (L0 = 3.0128e28 W zero point, nominal L_sun)

# Mamajek (2019.3.22) rows: SpT, Teff [K], log10 L/Lsun, Mbol, M_J [2MASS mag], R [Rsun], M [Msun].
_MAMAJEK_ROWS = (
    ("F0V", 7220, 0.89, 2.50, 1.90, 1.79, 1.59),
    ("F1V", 7030, 0.77, 2.78, 2.13, 1.64, 1.50),
    ("F2V", 6810, 0.70, 2.97, 2.26, 1.61, 1.44),
    ("F4V", 6640, 0.61, 3.19, 2.42, 1.53, 1.39),
    ("F5V", 6510, 0.54, 3.36, 2.55, 1.46, 1.33),
    ("F6V", 6340, 0.43, 3.65, 2.78, 1.36, 1.25),
    ("F7V", 6240, 0.36, 3.81, 2.90, 1.30, 1.21),
    ("F8V", 6170, 0.31, 3.96, 3.01, 1.25, 1.18),
    ("F9V", 6060, 0.26, 4.07, 3.11, 1.23, 1.14),
    ("G0V", 5920, 0.14, 4.40, 3.34, 1.12, 1.08),
    ("G2V", 5770, 0.01, 4.68, 3.57, 1.01, 1.02),
    ("G5V", 5660, -0.05, 4.84, 3.74, 0.982, 0.98),
    ("G8V", 5490, -0.17, 5.15, 3.97, 0.909, 0.94),
    ("K0V", 5280, -0.33, 5.54, 4.29, 0.817, 0.87),
    ("K1V", 5170, -0.36, 5.65, 4.37, 0.814, 0.85),
    ("K2V", 5040, -0.47, 5.88, 4.57, 0.763, 0.78),
    ("K3V", 4830, -0.58, 6.16, 4.76, 0.729, 0.75),
    ("K4V", 4600, -0.67, 6.42, 4.92, 0.726, 0.72),
    ("K5V", 4410, -0.78, 6.68, 5.18, 0.698, 0.68),
    ("K6V", 4230, -0.90, 6.99, 5.41, 0.661, 0.65),
    ("K7V", 4070, -0.98, 7.18, 5.60, 0.654, 0.63),
    ("M0V", 3870, -1.20, 7.75, 6.04, 0.559, 0.55),
    ("M1V", 3700, -1.40, 8.25, 6.51, 0.496, 0.49),
    ("M2V", 3550, -1.57, 8.65, 6.89, 0.434, 0.44),
    ("M3V", 3410, -1.78, 9.17, 7.40, 0.369, 0.36),
    ("M4V", 3200, -2.20, 10.21, 8.39, 0.258, 0.22),
    ("M5V", 3030, -2.52, 11.02, 9.25, 0.199, 0.16),
    ("M6V", 2850, -3.02, 12.26, 10.28, 0.127, 0.10),
    ("M7V", 2650, -3.21, 12.75, 10.76, 0.118, 0.090),
    ("M8V", 2500, -3.36, 13.14, 11.23, 0.111, 0.082),
)
# Ascending order for np.interp (all columns are monotonic along the sequence).
_TAB = np.array([r[1:] for r in _MAMAJEK_ROWS[::-1]], dtype=float)
_TEFF, _LOGL, _MBOL, _MJ, _LOGR, _LOGM = (_TAB[:, 0], _TAB[:, 1], _TAB[:, 2], _TAB[:, 3],
                                          np.log10(_TAB[:, 4]), np.log10(_TAB[:, 5]))
MASS_RANGE_MSUN = (float(10 ** _LOGM[0]), float(10 ** _LOGM[-1]))
LUMINOSITY_RANGE_LSUN = (float(10 ** _LOGL[0]), float(10 ** _LOGL[-1]))
# Bolometric correction to 2MASS J, BC_J = Mbol - M_J, from the same rows.
_BC_J = _MBOL - _MJ


def validated_array(field: str, value, lo: float | None = None, hi: float | None = None,
                    positive: bool = False) -> np.ndarray:
    """`value` as a float array, or InputValidationError naming `field` and the first bad element.

    NaN/inf always fail; `lo`/`hi` are inclusive bounds; `positive` demands > 0.
    """
    try:
        x = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise InputValidationError(field, value, "a number or array of numbers") from None
    bad = ~np.isfinite(x)
    if lo is not None:
        bad |= x < lo
    if hi is not None:
        bad |= x > hi
    if positive:
        bad |= x <= 0
    if bad.any():
        first = x[bad].flat[0] if x.ndim else float(x)
        rng = f"[{lo}, {hi}]" if lo is not None and hi is not None else (
            f">= {lo}" if lo is not None else (f"<= {hi}" if hi is not None else ""))
        expected = " ".join(s for s in ("finite", "positive" if positive else "", rng) if s)
        raise InputValidationError(field, float(first), f"{expected} values")
    return x


def _bundle(teff, log_l, log_r, log_m) -> dict[str, np.ndarray]:
    return {"radius_rsun": 10**log_r, "mass_msun": 10**log_m, "luminosity_lsun": 10**log_l, "teff_k": teff}


def main_sequence_from_teff(teff_k) -> dict[str, np.ndarray]:
    """Mean dwarf radius, mass and luminosity for an effective temperature in TEFF_RANGE_K."""
    t = validated_array("teff_k", teff_k, *TEFF_RANGE_K)
    return _bundle(t, np.interp(t, _TEFF, _LOGL), np.interp(t, _TEFF, _LOGR), np.interp(t, _TEFF, _LOGM))


def main_sequence_from_mass(mass_msun) -> dict[str, np.ndarray]:
    """Mean dwarf Teff, radius and luminosity for a mass within MASS_RANGE_MSUN (M8V..F0V)."""
    m = validated_array("mass_msun", mass_msun, *MASS_RANGE_MSUN)
    lm = np.log10(m)
    return _bundle(np.interp(lm, _LOGM, _TEFF), np.interp(lm, _LOGM, _LOGL), np.interp(lm, _LOGM, _LOGR), lm)


def main_sequence_from_luminosity(luminosity_lsun) -> dict[str, np.ndarray]:
    """Mean dwarf Teff, radius and mass for a luminosity within LUMINOSITY_RANGE_LSUN."""
    ll = np.log10(validated_array("luminosity_lsun", luminosity_lsun, *LUMINOSITY_RANGE_LSUN))
    return _bundle(np.interp(ll, _LOGL, _TEFF), ll, np.interp(ll, _LOGL, _LOGR), np.interp(ll, _LOGL, _LOGM))


def luminosity_from_radius_teff(radius_rsun, teff_k):
    """Stefan–Boltzmann: L/Lsun = (R/Rsun)^2 (Teff/Teff_sun)^4 with the IAU 2015 nominal Sun."""
    r = validated_array("radius_rsun", radius_rsun, positive=True)
    t = validated_array("teff_k", teff_k, positive=True)
    return r**2 * (t / TEFF_SUN) ** 4


def bolometric_correction_j(teff_k):
    """BC_J = Mbol - M_J [mag] of a mean dwarf (Mamajek table, interpolated in Teff)."""
    return np.interp(validated_array("teff_k", teff_k, *TEFF_RANGE_K), _TEFF, _BC_J)


def apparent_j_magnitude(teff_k, luminosity_lsun, distance_pc):
    """2MASS J magnitude: m_J = Mbol(L) - BC_J(Teff) + 5 log10(d / 10 pc).

    Mbol = 4.74 - 2.5 log10 L (IAU 2015 B2). BC_J comes from the mean dwarf sequence, so a star that
    follows it reproduces the table's M_J exactly; against 2MASS photometry of nearby dwarfs the
    error is ~0.1 mag for FGK stars and ~0.2 mag for mid/late M dwarfs (e.g. Proxima Cen: 5.56
    predicted vs 5.357 observed). No extinction (nearby stars).
    """
    lum = validated_array("luminosity_lsun", luminosity_lsun, positive=True)
    d = validated_array("distance_pc", distance_pc, positive=True)
    m_bol = M_BOL_SUN - 2.5 * np.log10(lum)
    return m_bol - bolometric_correction_j(teff_k) + 5.0 * np.log10(d / 10.0)
