"""Transmission spectra of rocky planets: analytic isothermal transit radius, band-model opacities,
and JWST-like noise.

Transit radius (de Wit & Seager 2013, Science 342, 1473; Heng & Kitzmann 2017, MNRAS 470, 2972).
For an isothermal, well-mixed atmosphere with scale height H = k T / (mu m_u g) the slant optical
depth at impact height z above the reference radius R0 (pressure P0) is tau(z) = tau0 exp(-z/H),
tau0 = kappa(lambda) P0 / g * sqrt(2 pi R0 / H) (kappa: cross-section per unit mass). The planet
blocks like an opaque disc of radius R0 + h with

    h = integral_0^inf [1 - exp(-tau(z))] dz = H [gamma + ln tau0 + E1(tau0)],

gamma = 0.5772 (Euler-Mascheroni). For tau0 >> 1, E1 -> 0 and this is exactly Heng & Kitzmann's
R = R0 + H [gamma + ln(P0 kappa / g sqrt(2 pi R0 / H))]; the E1 term is what a solid surface at R0
adds (h -> H tau0 -> 0 for a thin atmosphere, never below the surface). Depth = (R(lambda)/R_star)^2.
- Unresolved lines: a band-mean cross-section would put saturated band cores far too high (the
  mean of ln tau over a line forest is much less than ln of the mean). Each band uses the Goody
  random-band transmission (exponential line-strength distribution, Lorentz lines; Goody & Yung
  1989 ch. 4), tau_eff = tau / sqrt(1 + tau d / (pi gamma)), with line spacing d and half-width
  gamma = gamma_1bar p; along a slant path the Curtis-Godson pressure is p_tangent / sqrt(2), so
  tau_eff / p stays constant with height and the E1 solution still holds with tau0 -> tau0_eff.
  Doppler broadening is neglected: above the ~10 mbar level it would widen saturated lines, so
  strong band cores here sit somewhat low.
- O2-O2 / O2-N2 collision-induced absorption scales as n^2, so it has scale height H/2; where it
  matters, h is integrated numerically over the sum of both optical depths.
- A grey cloud deck with top pressure P_c < P0 is opaque: the surface moves up to
  R_c = R0 + H ln(P0 / P_c) and the optical depths above it are those at P_c.
- Refraction (Betremieux & Kaltenegger 2014), non-isothermal profiles and hazes are not modelled.

Opacity: kappa = sum_i x_i sigma_i(lambda) / (mu m_u) with band-model cross-sections per molecule
(`BANDS`: Gaussian envelopes in wavenumber with HITRAN-scale integrated band intensities), Rayleigh
scattering (`RAYLEIGH_532NM`, lambda^-4) and CIA (`CIA_BANDS`). Accuracy: band-model, +-factor of a
few in cross-section (temperature-independent widths at 296 K, a statistical band model instead of
line-by-line); features sit at the right wavelengths with the right relative strengths. Earth
around the Sun gives ~1 ppm features above the 84 ppm disc, as in Kaltenegger & Traub 2009.

Noise: photon noise from the star's J magnitude (blackbody SED normalised at J), JWST's collecting
area and NIRSpec PRISM (< 5.3 um) or MIRI LRS (> 5.3 um) throughput, counted over the transit and an
equal out-of-transit baseline, divided by sqrt(N_transits) and added in quadrature to a per-bin
noise floor that does not average down: sigma = sqrt(sigma_phot^2 / N + floor^2).

Published detection anchors this model is checked against (tests/world/test_spectrum.py):
~10 NIRSpec PRISM transits detect CO2 (and constrain CH4) for TRAPPIST-1e-like planets with
N2-CO2 atmospheres (Krissansen-Totton et al. 2018, AJ 156, 114); biogenic O2/O3 at TRAPPIST-1 are
extremely hard, needing far more transits than JWST's lifetime allows (Lustig-Yaeger, Meadows &
Lincowski 2019, AJ 158, 27).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import exp1

from astrobio.constants import AMU, AU, C_LIGHT, DAY, G, H_PLANCK, K_B, M_EARTH, R_EARTH, R_SUN
from astrobio.errors import InputValidationError, check_finite_range
from astrobio.world.atmosphere import composition_array, mean_molecular_weight
from astrobio.world.types import GASES

EULER_GAMMA = 0.5772156649015329
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_GAS_INDEX = {g: i for i, g in enumerate(GASES)}

# Molecular bands: (gas, centre um, Gaussian 1-sigma width cm^-1, integrated intensity cm/molecule,
# mean line spacing cm^-1; 0 = continuum). Intensities are band-system sums at 296 K on the HITRAN
# scale (Rothman et al. 2013 HITRAN2012, JQSRT 130, 4; Goody & Yung 1989 "Atmospheric Radiation"
# ch. 5; Pugh & Rao 1976); widths are rotational envelopes (~sqrt(2 B k T / h c) widened by P/R
# branches, hot bands and polyads); spacings from rotational constants (2B, 4B for 12C16O2; dense
# asymmetric/spherical tops smaller).
BANDS: tuple[tuple[str, float, float, float, float], ...] = (
    # H2O: nu2 6.3 um, (nu1, nu3, 2nu2) 2.7 um, nu2+nu3 1.9 um, nu1+nu3 1.4 um, nu1+nu2+nu3
    # 1.14 um, 2nu1+nu3 0.94 um.
    ("H2O", 6.27, 90.0, 1.0e-17, 1.0),
    ("H2O", 2.69, 100.0, 8.5e-18, 1.0),
    ("H2O", 1.87, 90.0, 8.5e-19, 1.0),
    ("H2O", 1.38, 100.0, 7.5e-19, 1.0),
    ("H2O", 1.14, 90.0, 6.5e-20, 1.0),
    ("H2O", 0.94, 90.0, 6.5e-20, 1.0),
    # CO2: nu2 15 um (its wing reaches 12 um in CO2-rich air), 10.4/9.4 um laser bands, nu3
    # 4.3 um, Fermi dyad 2.7 um, 2.0 um triad, 1.6 um pair.
    ("CO2", 14.99, 40.0, 1.0e-17, 1.5),
    ("CO2", 10.41, 25.0, 3.0e-22, 1.5),
    ("CO2", 9.40, 25.0, 3.0e-22, 1.5),
    ("CO2", 4.26, 25.0, 1.0e-16, 1.5),
    ("CO2", 2.74, 55.0, 2.5e-18, 1.5),
    ("CO2", 2.02, 80.0, 2.0e-20, 1.5),
    ("CO2", 1.59, 60.0, 1.0e-21, 1.5),
    # CH4: nu4 7.7 um, nu3 3.3 um, tetradecad 2.3 um, icosad 1.7 um.
    ("CH4", 7.66, 55.0, 5.5e-18, 2.0),
    ("CH4", 3.31, 70.0, 1.2e-17, 2.0),
    ("CH4", 2.32, 110.0, 6.5e-19, 2.0),
    ("CH4", 1.67, 120.0, 5.0e-20, 2.0),
    # O2: A band 0.76 um, B band 0.69 um, a-X 1.27 um (magnetic dipole, weak).
    ("O2", 0.762, 40.0, 2.2e-22, 2.0),
    ("O2", 0.688, 40.0, 1.4e-23, 2.0),
    ("O2", 1.268, 45.0, 3.2e-24, 2.0),
    # O3: Chappuis continuum 0.6 um (peak 5.1e-21 cm^2 at 603 nm, Serdyuchenko et al. 2014, AMT 7,
    # 625; intensity = peak * sqrt(2 pi) * width), nu3 9.6 um, nu1+nu3 4.7 um.
    ("O3", 0.603, 1300.0, 5.1e-21 * _SQRT_2PI * 1300.0, 0.0),
    ("O3", 9.60, 25.0, 1.5e-17, 0.3),
    ("O3", 4.74, 30.0, 1.1e-19, 0.3),
    # N2O: nu3 4.5 um, nu1 7.8 um.
    ("N2O", 4.50, 25.0, 5.0e-17, 0.84),
    ("N2O", 7.78, 25.0, 9.0e-18, 0.84),
    # CO: fundamental 4.67 um, first overtone 2.35 um.
    ("CO", 4.67, 35.0, 1.0e-17, 3.8),
    ("CO", 2.35, 35.0, 7.8e-20, 3.8),
)

# Air-broadened Lorentz half-widths at 1 bar, 296 K, cm^-1 (typical HITRAN2012 values per molecule).
LORENTZ_HWHM_1BAR = {"H2O": 0.08, "CO2": 0.07, "CH4": 0.06, "O2": 0.045, "O3": 0.075, "N2O": 0.075,
                     "CO": 0.06}

# Rayleigh cross-sections at 532 nm, cm^2 (Sneep & Ubachs 2005, JQSRT 92, 293: N2, CO2, CH4, N2O,
# CO; O2 from Bates 1984, PSS 32, 785; H2 from Dalgarno & Williams 1962, ApJ 136, 690; H2O and O3
# scaled from N2 by the squared polarizability ratio, CRC Handbook). Scaled as lambda^-4.
RAYLEIGH_532NM = {"N2": 5.1e-27, "O2": 4.5e-27, "CO2": 12.4e-27, "CH4": 12.47e-27, "H2O": 3.8e-27,
                  "O3": 15.2e-27, "N2O": 15.9e-27, "CO": 6.19e-27, "H2": 1.0e-27}

# O2 collision-induced bands: (centre um, Gaussian width cm^-1, integrated O2-O2 and O2-N2
# intensities in cm^-2 (molecule cm^-3)^-2, i.e. integral of alpha d(nu) / (n_O2 n_X)).
# 1.27 um: Mate et al. 1999, JGR 104, 30585 (296 K). 1.06 um: Banerjee et al. 2019, PCCP 21, 3388
# (2.10e-4 cm^-2 amagat^-2); no O2-N2 term is included there.
CIA_BANDS: tuple[tuple[float, float, float, float], ...] = (
    (1.268, 55.0, 4.847e-43, 0.941e-43),
    (1.064, 60.0, 2.10e-4 / 2.6868e19**2, 0.0),
)

# --- noise reference (photon counting for JWST; see photon_noise_ppm) ---
J_ZERO_POINT_W_M2_UM = 3.129e-9  # 2MASS J zero-magnitude flux density (Cohen et al. 2003, AJ 126, 1090)
J_WAVELENGTH_UM = 1.235  # 2MASS J isophotal wavelength (Cohen et al. 2003)
JWST_AREA_M2 = 25.4  # JWST collecting area (Gardner et al. 2023, PASP 135, 068001)
# PRISM system throughput: prism 0.81 x 14 mirrors 0.58 x detector QE 0.75 x telescope 0.9 (Shabram et
# al. 2011; Rustamkulov et al. 2022); MIRI LRS photon-to-electron conversion ~0.2 over 5-12 um
# (Kendrew et al. 2015, PASP 127, 623).
PRISM_THROUGHPUT = 0.81 * 0.58 * 0.75 * 0.9
MIRI_LRS_THROUGHPUT = 0.2
PRISM_MAX_UM = 5.3


@dataclass(frozen=True)
class SpectrumConfig:
    """Wavelength grid and noise model. 1000 log-spaced bins over 0.6-12 um (R ~ 330 per bin)
    oversample JWST NIRSpec PRISM (R ~ 30-300, ~220 independent elements over 0.6-5.3 um); every
    field can be changed, and the noise follows the bin widths."""

    wl_min_um: float = 0.6  # blue edge of the first bin (NIRSpec PRISM blue limit)
    wl_max_um: float = 12.0  # longest bin edge (MIRI LRS red limit)
    n_bins: int = 1000  # number of output bins (seed spectrum shape [1000, 3])
    noise_floor_ppm: float = 15.0  # per-bin systematic floor; PRISM lab floor < 14 ppm (SPEC.md)
    spacing: str = "log"  # "log" (constant R) or "linear" bin edges
    oversample: int = 2  # sub-samples per bin, averaged in depth, so narrow bands are not aliased
    ref_star_teff_k: float = 2566.0  # SED used for photon noise when no Teff is given (TRAPPIST-1, Agol et al. 2021)
    transit_duration_h: float = 0.95  # in-transit time per transit (TRAPPIST-1e ~57 min, Agol et al. 2021)
    baseline_ratio: float = 1.0  # out-of-transit / in-transit time per visit

    def __post_init__(self) -> None:
        check_finite_range("wl_min_um", self.wl_min_um, 0.1, 100.0, "um")
        check_finite_range("wl_max_um", self.wl_max_um, self.wl_min_um * 1.0001, 100.0, "um")
        if not isinstance(self.n_bins, int) or self.n_bins < 2:
            raise InputValidationError("n_bins", self.n_bins, "an int >= 2")
        check_finite_range("noise_floor_ppm", self.noise_floor_ppm, 0.0, 1e5, "ppm")
        if self.spacing not in ("log", "linear"):
            raise InputValidationError("spacing", self.spacing, "'log' or 'linear'")
        if not isinstance(self.oversample, int) or self.oversample < 1:
            raise InputValidationError("oversample", self.oversample, "an int >= 1")
        check_finite_range("ref_star_teff_k", self.ref_star_teff_k, 1000.0, 50000.0, "K")
        check_finite_range("transit_duration_h", self.transit_duration_h, 0.01, 100.0, "h")
        check_finite_range("baseline_ratio", self.baseline_ratio, 0.1, 100.0)


@lru_cache(maxsize=8)
def wavelength_grid(config: SpectrumConfig) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres [W] and edges [W + 1] in um (geometric centres for log spacing); read-only."""
    if config.spacing == "log":
        edges = np.geomspace(config.wl_min_um, config.wl_max_um, config.n_bins + 1)
        centres = np.sqrt(edges[:-1] * edges[1:])
    else:
        edges = np.linspace(config.wl_min_um, config.wl_max_um, config.n_bins + 1)
        centres = 0.5 * (edges[:-1] + edges[1:])
    centres.flags.writeable = edges.flags.writeable = False  # cached: shared by every caller
    return centres, edges


def _gaussian_band(nu_cm: np.ndarray, centre_um: float, width_cm: float, strength: float) -> np.ndarray:
    """Band envelope with integral `strength` over wavenumber."""
    x = (nu_cm - 1e4 / centre_um) / width_cm
    return strength / (_SQRT_2PI * width_cm) * np.exp(-0.5 * x * x)


def band_cross_sections_m2(wavelength_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band-mean absorption cross-section per molecule [G, W] in m^2, and the line-saturation
    parameter d / gamma_1bar [G, W] (band-weighted line spacing over Lorentz half-width)."""
    nu = 1e4 / np.asarray(wavelength_um, dtype=np.float64)
    sigma = np.zeros((len(GASES), nu.size))
    spacing = np.zeros_like(sigma)
    for gas, centre, width, strength, d in BANDS:
        band = _gaussian_band(nu, centre, width, strength)
        sigma[_GAS_INDEX[gas]] += band
        spacing[_GAS_INDEX[gas]] += band * d / LORENTZ_HWHM_1BAR[gas]
    ratio = np.divide(spacing, sigma, out=np.zeros_like(sigma), where=sigma > 0)
    return sigma * 1e-4, ratio  # cm^2 -> m^2


def rayleigh_cross_sections_m2(wavelength_um: np.ndarray) -> np.ndarray:
    """Rayleigh scattering cross-section per molecule, m^2, [G, W]."""
    lam = np.asarray(wavelength_um, dtype=np.float64)
    return np.array([RAYLEIGH_532NM.get(g, 0.0) * (0.532 / lam) ** 4 for g in GASES]) * 1e-4


def cia_coefficients_m5(wavelength_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """O2-O2 and O2-N2 binary absorption coefficients k [W] in m^5 (alpha = k n_O2 n_X, m^-1)."""
    nu = 1e4 / np.asarray(wavelength_um, dtype=np.float64)
    k_oo = sum(_gaussian_band(nu, c, w, s_oo) for c, w, s_oo, _ in CIA_BANDS)
    k_on = sum(_gaussian_band(nu, c, w, s_on) for c, w, _, s_on in CIA_BANDS)
    return k_oo * 1e-10, k_on * 1e-10  # cm^5 -> m^5


# Band cross-sections below this (m^2) give tau < 1e-6 even for 1e4 bar of pure gas: skipped.
_SIGMA_NEGLIGIBLE_M2 = 1e-40


@lru_cache(maxsize=8)
def _opacity_tables(config: SpectrumConfig):
    """Sub-sampled wavelengths [W*S]; per gas with bands: (gas index, slice of the sub-samples from
    the first to the last where the gas matters, band sigma [n], d/gamma [n] over that slice, sigma
    0 where it is negligible); Rayleigh sigma [G, W*S]; CIA [2, W*S]."""
    _, edges = wavelength_grid(config)
    s = config.oversample
    frac = (np.arange(s) + 0.5) / s  # [S] positions inside each bin
    if config.spacing == "log":
        sub = np.exp(np.log(edges[:-1])[:, None] + np.diff(np.log(edges))[:, None] * frac).ravel()
    else:
        sub = (edges[:-1, None] + np.diff(edges)[:, None] * frac).ravel()
    sigma, ratio = band_cross_sections_m2(sub)
    bands = []
    for i in range(len(GASES)):
        idx = np.flatnonzero(sigma[i] > _SIGMA_NEGLIGIBLE_M2)
        if idx.size:  # d/gamma pre-scaled by sqrt(2)/pi per bar in Pa (Goody term below)
            # A contiguous slice, not the index list: a slice is several times cheaper to update than a
            # scattered index, and a zero sigma adds exactly 0 to the optical depth.
            span = slice(idx[0], idx[-1] + 1)
            matters = sigma[i, span] > _SIGMA_NEGLIGIBLE_M2
            bands.append((i, span, np.where(matters, sigma[i, span], 0.0),
                          np.where(matters, ratio[i, span], 0.0) * np.sqrt(2.0) / np.pi * 1e5))
    return sub, tuple(bands), rayleigh_cross_sections_m2(sub), np.stack(cia_coefficients_m5(sub))


# Composite Simpson weights on 65 nodes of [0, 1] (error ~ step^4: < 1e-5 H here).
_SIMPSON_X = np.linspace(0.0, 1.0, 65)
_SIMPSON_W = np.where(np.arange(65) % 2 == 1, 4.0, 2.0) / (3.0 * 64)
_SIMPSON_W[[0, -1]] = 1.0 / (3.0 * 64)


def _cia_excess_height(tau: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Extra height / H from an n^2 absorber: integral of exp(-tau e^-u) (1 - exp(-b e^-2u)) du."""
    u_max = np.maximum(0.5 * np.log(b), 0.0) + 8.0  # the tail beyond adds < 1e-7 H
    u = u_max[:, None] * _SIMPSON_X  # [n, 65]
    f = np.exp(-tau[:, None] * np.exp(-u)) * -np.expm1(-b[:, None] * np.exp(-2.0 * u))
    return (f @ _SIMPSON_W) * u_max


# gamma + y + E1(e^y) tabulated on y = ln tau in [-14, 4]: scipy's exp1 costs ~0.5 us per call
# and this smooth curve interpolates linearly to < 1e-5 H. Outside: series and asymptote.
_LN_TAU_TABLE = np.linspace(-14.0, 4.0, 4001)
_H_TABLE = EULER_GAMMA + _LN_TAU_TABLE + exp1(np.exp(_LN_TAU_TABLE))
# The nodes are equally spaced, so the cell is found by arithmetic instead of np.interp's binary
# search (the retrieval's hot loop evaluates this ~10^6 times per spectrum).
_H_STEP = float(_LN_TAU_TABLE[1] - _LN_TAU_TABLE[0])
_H_SLOPE = np.diff(_H_TABLE)  # per cell


def _interp_h_table(y: np.ndarray) -> np.ndarray:
    """np.interp(y, _LN_TAU_TABLE, _H_TABLE) for y inside the table (clamped outside), equal to it
    within float round-off; NaN stays NaN (its cell index is clipped, its weight is NaN)."""
    pos = y - _LN_TAU_TABLE[0]
    pos /= _H_STEP
    np.maximum(pos, 0.0, out=pos)
    np.minimum(pos, _H_SLOPE.size - 1e-9, out=pos)
    with np.errstate(invalid="ignore"):
        i = pos.astype(np.intp)
    pos -= i  # the weight inside the cell
    h = _H_SLOPE.take(i, mode="clip")
    h *= pos
    h += _H_TABLE.take(i, mode="clip")
    return h


def effective_height_over_h(tau: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """h / H for slant optical depth tau e^-u (linear absorbers) plus b e^-2u (CIA) above a surface.

    Linear part: gamma + ln tau + E1(tau) (series tau - tau^2/4 for tau < e^-14; E1 < 1e-23
    beyond tau = e^4).
    """
    shape = np.shape(tau)
    tau = np.maximum(np.atleast_1d(np.asarray(tau, dtype=np.float64)), 0.0)
    with np.errstate(divide="ignore"):
        y = np.log(tau)
    h = _interp_h_table(y)  # a new array: filled in place below
    high, low = y > _LN_TAU_TABLE[-1], y < _LN_TAU_TABLE[0]
    if high.any():
        h[high] = EULER_GAMMA + y[high]
    if low.any():
        thin = tau[low]
        h[low] = thin * (1.0 - 0.25 * thin)
    if b is not None:
        b = np.broadcast_to(np.asarray(b, dtype=np.float64), h.shape)
        cia = b > 1e-6  # below, the n^2 term adds < 1e-6 H
        if cia.any():
            h[cia] += _cia_excess_height(tau[cia], b[cia])
    return h.reshape(shape)


def _as_planet_array(field: str, value, n: int, lo: float, hi: float, unit: str) -> np.ndarray:
    a = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))
    bad = ~np.isfinite(a) | (a < lo) | (a > hi)
    if bad.any():
        raise InputValidationError(field, a[bad][0], f"finite values in [{lo}, {hi}] {unit}".strip())
    return a


def _vmr_matrix(composition) -> np.ndarray:
    if isinstance(composition, np.ndarray):
        vmr = np.asarray(composition, dtype=np.float64)
        if vmr.ndim != 2 or vmr.shape[1] != len(GASES):
            raise InputValidationError("composition", vmr.shape, f"an array [P, {len(GASES)}] in GASES order")
        if not np.all(np.isfinite(vmr)) or np.any(vmr < 0) or np.any(np.abs(vmr.sum(1) - 1) > 1e-6):
            raise InputValidationError("composition", "array", "finite non-negative VMRs summing to 1 per planet")
        return vmr
    return composition_array(composition)


def transmission_depth_ppm(*, radius_earth, mass_earth, star_radius_rsun, temperature_k,
                           surface_pressure_bar, composition, cloud_top_pressure_bar=None,
                           config: SpectrumConfig | None = None) -> np.ndarray:
    """Noise-free transit depth in ppm, float64 [P, W] on `wavelength_grid(config)`.

    Planet arguments are scalars or arrays [P]; `composition` is a dict, a list of P dicts, or VMRs
    [P, G] in GASES order. `cloud_top_pressure_bar` None (or >= surface pressure) means no cloud
    deck. A surface pressure of 0 gives the airless, flat depth (R0 / R_star)^2.
    """
    config = config or SpectrumConfig()
    vmr = _vmr_matrix(composition)  # [P, G]
    n = vmr.shape[0]
    r0 = _as_planet_array("radius_earth", radius_earth, n, 0.05, 30.0, "R_earth") * R_EARTH
    mass = _as_planet_array("mass_earth", mass_earth, n, 1e-3, 3000.0, "M_earth") * M_EARTH
    r_star = _as_planet_array("star_radius_rsun", star_radius_rsun, n, 0.05, 100.0, "R_sun") * R_SUN
    temp = _as_planet_array("temperature_k", temperature_k, n, 20.0, 5000.0, "K")
    p0 = _as_planet_array("surface_pressure_bar", surface_pressure_bar, n, 0.0, 1e4, "bar") * 1e5
    if cloud_top_pressure_bar is None:
        p_cloud = p0
    else:
        p_cloud = _as_planet_array("cloud_top_pressure_bar", cloud_top_pressure_bar, n, 1e-9, 1e6, "bar") * 1e5
    if np.any(r0 >= r_star):
        raise InputValidationError("radius_earth", radius_earth, "a planet smaller than its star")
    return depth_ppm_unchecked(vmr, r0, mass, r_star, temp, p0, p_cloud, config)


def depth_ppm_unchecked(vmr: np.ndarray, r0: np.ndarray, mass: np.ndarray, r_star: np.ndarray, temp: np.ndarray,
                        p0: np.ndarray, p_cloud: np.ndarray, config: SpectrumConfig) -> np.ndarray:
    """`transmission_depth_ppm` without its input checks, in SI units: VMRs [P, G] summing to 1, radius
    and star radius in m, mass in kg, temperature in K, surface and cloud-top pressures in Pa, all [P].
    For callers whose inputs are valid by construction (the retrieval's model, evaluated thousands of
    times per spectrum inside its bounds); the checks cost about a fifth of a small batch's evaluation."""
    n = vmr.shape[0]
    mu = mean_molecular_weight(vmr)  # [P] g/mol = molecular mass in u
    g = G * mass / r0**2  # [P] m s^-2
    h_scale = K_B * temp / (mu * AMU * g)  # [P] m
    column = p0 / (mu * AMU * g)  # [P] molecules m^-2 above the surface
    n0 = p0 / (K_B * temp)  # [P] m^-3 at the surface

    _, bands, sigma_ray, cia = _opacity_tables(config)
    slant = np.sqrt(2 * np.pi * r0 / h_scale)  # [P] slant / vertical path ratio (Fortney 2005)
    tau_surface = (vmr @ sigma_ray) * (column * slant)[:, None]  # [P, W*S] Rayleigh
    per_pa = slant / (mu * AMU * g)  # [P] slant column per Pa of tangent pressure
    for i, span, sigma_i, ratio_i in bands:
        if not vmr[:, i].any():
            continue
        tau_per_pa = (vmr[:, i] * per_pa)[:, None] * sigma_i  # [P, n]
        # Goody random band: tau_eff = tau / sqrt(1 + tau d / (pi gamma_1bar p / sqrt 2)); the
        # ratio tau / p, hence the correction, is the same at every height.
        strong = ratio_i * tau_per_pa
        strong += 1.0
        np.sqrt(strong, out=strong)
        tau_per_pa *= p0[:, None]
        tau_per_pa /= strong
        tau_surface[:, span] += tau_per_pa
    x_o2, x_n2 = vmr[:, _GAS_INDEX["O2"]], vmr[:, _GAS_INDEX["N2"]]
    pair = np.stack([x_o2 * x_o2, x_o2 * x_n2], axis=1)  # [P, 2]
    b_surface = (pair @ cia) * (n0**2 * np.sqrt(np.pi * r0 * h_scale))[:, None]  # [P, W*S]

    # An opaque deck lifts the effective surface to the cloud top and thins the column above it.
    frac = np.where((p_cloud < p0) & (p0 > 0), p_cloud / np.where(p0 > 0, p0, 1.0), 1.0)  # [P]
    base = r0 + h_scale * -np.log(frac)  # [P] m
    h = effective_height_over_h(tau_surface * frac[:, None], b_surface * (frac**2)[:, None])
    # In place (one [P, W*S] buffer): radius = base + H h, depth = 1e6 (radius / R_star)^2.
    h *= h_scale[:, None]
    h += base[:, None]
    h /= r_star[:, None]
    np.square(h, out=h)
    h *= 1e6
    return h.reshape(n, config.n_bins, config.oversample).mean(axis=2)  # [P, W]


def _planck_ratio(lam_um: np.ndarray, teff_k: np.ndarray) -> np.ndarray:
    """B_lambda(lam, T) / B_lambda(J, T), [P, W]."""
    c2 = H_PLANCK * C_LIGHT / K_B * 1e6  # um K
    lam, t = lam_um[None, :], teff_k[:, None]
    return (J_WAVELENGTH_UM / lam) ** 5 * np.expm1(c2 / (J_WAVELENGTH_UM * t)) / np.expm1(c2 / (lam * t))


def photon_noise_ppm(star_jmag, config: SpectrumConfig, star_teff_k=None,
                     transit_duration_h=None) -> np.ndarray:
    """1-sigma photon noise on the depth for ONE transit, ppm, [P, W] on `wavelength_grid(config)`.

    Electrons per bin = F_lambda Delta-lambda lambda / (h c) x area x throughput x time, with F_lambda
    from J and a blackbody SED; sigma = sqrt(1/N_in + 1/N_out). For TRAPPIST-1 (J = 11.35, 57 min
    transits) this gives ~85-130 ppm per R = 100 bin per transit at 1-4.5 um (~155-235 ppm in the
    default R ~ 334 bins), the same order as the ~90 ppm two-visit precision JWST reached for
    TRAPPIST-1 b (Lim et al. 2023, ApJL 955, L22). Red noise, detector saturation of bright stars
    (J < ~10.5 for PRISM) and stellar contamination are not modelled.
    """
    jmag = np.atleast_1d(np.asarray(star_jmag, dtype=np.float64))
    n = jmag.size
    jmag = _as_planet_array("star_jmag", jmag, n, -3.0, 30.0, "mag")
    teff = _as_planet_array("star_teff_k", config.ref_star_teff_k if star_teff_k is None else star_teff_k,
                            n, 1000.0, 50000.0, "K")
    hours = _as_planet_array("transit_duration_h", config.transit_duration_h if transit_duration_h is None
                             else transit_duration_h, n, 0.01, 100.0, "h")
    lam, edges = wavelength_grid(config)
    flux = J_ZERO_POINT_W_M2_UM * 10.0 ** (-0.4 * jmag)[:, None] * _planck_ratio(lam, teff)  # [P, W] W m^-2 um^-1
    throughput = np.where(lam <= PRISM_MAX_UM, PRISM_THROUGHPUT, MIRI_LRS_THROUGHPUT)  # [W]
    photons_per_s = flux * np.diff(edges) * (lam * 1e-6) / (H_PLANCK * C_LIGHT) * JWST_AREA_M2 * throughput
    n_in = photons_per_s * (hours * 3600.0)[:, None]  # [P, W]
    return 1e6 * np.sqrt((1.0 + 1.0 / config.baseline_ratio) / n_in)


def add_instrument_noise(depth_ppm, star_jmag, n_transits, config: SpectrumConfig | None,
                         rng: np.random.Generator | None, *, star_teff_k=None,
                         transit_duration_h=None) -> tuple[np.ndarray, np.ndarray]:
    """(noisy depth, sigma) in ppm, both shaped like `depth_ppm` ([W] or [P, W]).

    sigma = sqrt(sigma_phot^2 / n_transits + floor^2): photon noise averages down, the floor does
    not. With `rng` None the returned depth is the noise-free input (sigma still computed).
    """
    config = config or SpectrumConfig()
    depth = np.asarray(depth_ppm, dtype=np.float64)
    if depth.ndim not in (1, 2) or depth.shape[-1] != config.n_bins:
        raise InputValidationError("depth_ppm", depth.shape, f"[{config.n_bins}] or [P, {config.n_bins}]")
    if not np.all(np.isfinite(depth)) or np.any(depth <= 0):
        raise InputValidationError("depth_ppm", "array", "finite positive depths")
    depth2 = depth.reshape(-1, config.n_bins)  # [P, W]
    n = depth2.shape[0]
    transits = _as_planet_array("n_transits", n_transits, n, 1.0, 1e5, "")
    if np.any(transits != np.round(transits)):
        raise InputValidationError("n_transits", n_transits, "whole numbers of transits >= 1")
    jmag = np.broadcast_to(np.asarray(star_jmag, dtype=np.float64), (n,))
    phot = photon_noise_ppm(jmag, config, star_teff_k, transit_duration_h)  # [P, W]
    sigma = np.sqrt(phot**2 / transits[:, None] + config.noise_floor_ppm**2)
    if rng is None:
        noisy = depth2.copy()
    elif isinstance(rng, np.random.Generator):
        noisy = depth2 + rng.normal(0.0, 1.0, depth2.shape) * sigma
    else:
        raise InputValidationError("rng", rng, "a numpy.random.Generator or None")
    return noisy.reshape(depth.shape), sigma.reshape(depth.shape)


def simulate_spectrum(*, radius_earth: float, mass_earth: float, star_radius_rsun: float,
                      star_jmag: float, temperature_k: float, surface_pressure_bar: float,
                      composition: Mapping[str, float], cloud_top_pressure_bar: float | None,
                      n_transits: int, config: SpectrumConfig | None = None,
                      rng: np.random.Generator | None, star_teff_k: float | None = None,
                      transit_duration_h: float | None = None) -> np.ndarray | None:
    """One planet's observed spectrum, float32 [n_bins, 3] = (wavelength um, depth ppm, sigma ppm).

    None when n_transits == 0 (no transmission spectroscopy). An airless planet (surface pressure
    0) still transits: its spectrum is flat at (R0 / R_star)^2 plus noise, which is informative.
    """
    config = config or SpectrumConfig()
    if isinstance(n_transits, bool) or not isinstance(n_transits, (int, np.integer)) or n_transits < 0:
        raise InputValidationError("n_transits", n_transits, "an int >= 0")
    if n_transits == 0:
        return None
    check_finite_range("star_jmag", star_jmag, -3.0, 30.0, "mag")
    depth = transmission_depth_ppm(
        radius_earth=radius_earth, mass_earth=mass_earth, star_radius_rsun=star_radius_rsun,
        temperature_k=temperature_k, surface_pressure_bar=surface_pressure_bar,
        composition=composition, cloud_top_pressure_bar=cloud_top_pressure_bar, config=config)[0]
    noisy, sigma = add_instrument_noise(depth, star_jmag, n_transits, config, rng,
                                        star_teff_k=star_teff_k, transit_duration_h=transit_duration_h)
    wavelength, _ = wavelength_grid(config)
    return np.stack([wavelength, noisy, sigma], axis=1).astype(np.float32)


def transit_duration_h(period_days, star_radius_rsun, semimajor_axis_au):
    """Central-transit duration in hours, P / pi * asin(R_star / a) (circular orbit, R_p << R_star;
    Seager & Mallen-Ornelas 2003, ApJ 585, 1038)."""
    ratio = np.asarray(star_radius_rsun, dtype=np.float64) * R_SUN / (np.asarray(semimajor_axis_au) * AU)
    if np.any(~np.isfinite(ratio)) or np.any(ratio <= 0) or np.any(ratio >= 1):
        raise InputValidationError("semimajor_axis_au", semimajor_axis_au, "an orbit outside the star")
    return np.asarray(period_days) * DAY / np.pi * np.arcsin(ratio) / 3600.0


def spectrum_from_truth(truth, temperature_k: float, h2o_vmr: float, config: SpectrumConfig | None,
                        rng: np.random.Generator | None) -> np.ndarray | None:
    """`simulate_spectrum` for a PlanetTruth (docs/architecture.md): its true composition with the
    climate's column H2O, its star's Teff and its own transit duration; an eroded atmosphere
    (atmosphere_retained False) is airless."""
    composition = dict(truth.composition)
    composition["H2O"] = check_finite_range("h2o_vmr", h2o_vmr, 0.0, 1.0)
    return simulate_spectrum(
        radius_earth=truth.planet_radius_earth, mass_earth=truth.planet_mass_earth,
        star_radius_rsun=truth.star_radius_rsun, star_jmag=truth.star_jmag, temperature_k=temperature_k,
        surface_pressure_bar=truth.surface_pressure_bar if truth.atmosphere_retained else 0.0,
        composition=composition, cloud_top_pressure_bar=truth.cloud_top_pressure_bar,
        n_transits=int(truth.n_transits), config=config, rng=rng, star_teff_k=truth.star_teff_k,
        transit_duration_h=float(transit_duration_h(truth.period_days, truth.star_radius_rsun,
                                                    truth.semimajor_axis_au)))
