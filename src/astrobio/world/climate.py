"""Seasonal energy-balance climate on a lat x lon grid, vectorised over planets, plus vertical structure.

Surface (mixed-layer) temperature T [K] of every cell obeys

    C dT/dt = Q (1 - alpha(T)) - OLR(T) + div(D grad T)

- Q: diurnal-mean insolation of an eccentric, oblique orbit (`orbits.daily_mean_insolation`); tidally
  locked planets have a fixed substellar point at (lat 0, lon 0) and zero obliquity.
- alpha(T): ice-albedo feedback of Spiegel et al. (2008, ApJ 681, 1609),
  alpha = 0.525 - 0.245 tanh[(T - 268 K)/5 K], i.e. a cold value 0.77 blended with a warm value; the warm
  value is the planet's ice-free albedo (`surface_albedo`, 0.28 in Spiegel's Earth). Planets without
  water (ocean_fraction = 0) have no ice and keep their surface albedo.
- OLR(T): North, Cahalan & Coakley (1981, Rev. Geophys. 19, 91) linear fit A + B (T - 273.15 K),
  A = 203.3 W m^-2, B = 2.09 W m^-2 K^-1 (water-vapour feedback included), minus the Myhre et al. (1998,
  GRL 25, 2715) forcings of CO2 (5.35 ln(C/C0)) and CH4 (0.036 (sqrt M - sqrt M0) minus the N2O overlap)
  relative to the pre-industrial 280 ppm / 700 ppb of a 1-bar column (partial pressures, not mixing
  ratios, so a thin or thick atmosphere scales them). Our closures, stated plainly:
  * the greenhouse needs pressure broadening: its weight w_p = 1 - exp(-p / 0.2 bar) blends the fit
    with bare-surface emission sigma T^4 (Mars-like 6 mbar atmospheres are nearly bare);
  * the water-vapour part needs water: dry planets emit sigma T^4 minus the (positive) CO2/CH4 forcing;
  * below T_tan = (4/3)(273.15 K - A/B) = 234.5 K the linear fit would imply a greenhouse that grows as
    the air dries (it reaches zero OLR at 176 K); there we continue it as grey emission through the
    tangent point, OLR = OLR(T_tan) (T/T_tan)^4, which is C1-continuous.
- C: Williams & Kasting (1997, Icarus 129, 254) C_land = 5.25e6 J m^-2 K^-1, C_ocean = 40 C_land (a ~50 m
  mixed layer), weighted by ocean fraction, plus the atmospheric column c_p p / g.
- D: Earth value 0.8 W m^-2 K^-1, scaled D ∝ p / Omega^2 (Williams & Kasting 1997, after Stone 1972)
  and capped at 3 x Earth for slow rotators (eddy scaling breaks down once the deformation radius
  exceeds the planet). Diffusion acts in latitude and longitude on the sphere. North et al. (1981)
  have 0.649 with an ice albedo of 0.62; with Spiegel's stronger 0.77 present Earth then has no warm
  state on the T21 grid (the small-ice-cap instability), so we calibrated D so that present Earth
  (seasonal, 32 x 64 grid) sits stably on the warm branch at 288-290 K; the price is a weaker
  equator-to-pole contrast (~26 K in the annual mean vs ~40 K observed).
- Runaway greenhouse: mean instellation above the Kopparapu et al. (2014) runaway S_eff for the star's
  Teff and the planet's mass (with an atmosphere above water's triple point). The surface temperature
  is then the grey radiative-equilibrium value T_s = T_e (1 + 3 tau / 4)^(1/4) of a column holding the
  atmosphere plus the evaporated ocean; the grey mass absorption coefficient is calibrated so that
  Venus (92 bar CO2, 0.723 AU) has its observed 737 K (Seiff et al. 1985). It is an estimate, not a
  radiative-convective steam calculation (Goldblatt et al. 2013 find ~1500 K+ for a full steam ocean).

Integration: implicit in the linearised emission and the diffusion (delta form, so the steady state is
exact whatever the step), explicit in the albedo. A pseudo-time spin-up with annual-mean insolation
from a warm 300 K start (so the warm branch is chosen where the ice-albedo feedback allows two states;
pseudo steps are kept short against the ice-albedo feedback, C/dt = 20 dOLR/dT, so the spin-up
follows the physical path instead of jumping into the snowball basin; each planet leaves the batch once
its global budget closes to 0.05 W m^-2) is followed by `n_orbits` seasonal orbits of 12 months x
`steps_per_month` steps (one orbit when the orbit is < 0.1 C/B, where the seasonal transient is
negligible; more, up to 3 x n_orbits, while the orbit-mean budget is off by > 0.5 W m^-2). The last
orbit's monthly means are returned. Near an ice-albedo bifurcation a planet may still be drifting
(we have seen up to ~8 W m^-2 imbalance in a synthetic population); the result then is a transient.
Runaway planets report OLR = absorbed flux (the hot state radiates what it absorbs).

Vertical structure on sigma = p / p_surface (surface first): a pseudo-adiabat (moist where the planet
has water, dry otherwise; R and c_p of an N2/CO2 mixture) from the surface up to the skin temperature
T_skin = T_e 2^(-1/4), isothermal above. Humidity q = RH(sigma) q_sat(T, p) with the Manabe & Wetherald
(1967, J. Atmos. Sci. 24, 241) profile RH = 0.77 (sigma - 0.02) / 0.98, cold-trapped (q never increases
upward); q = 0 without water or below water's triple-point pressure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from astrobio.constants import (DAY, EPSILON_WATER, G_EARTH, L_VAP_WATER, MOLAR_MASS, P_CRIT_WATER,
                                P_EARTH, P_TRIPLE_WATER, R_GAS, R_VAPOUR, S_EARTH, SIGMA_SB, T_CRIT_WATER,
                                T_FREEZE, T_TRIPLE_WATER)
from astrobio.errors import InputValidationError
from astrobio.world import habitable, orbits, stars
from astrobio.world.stars import validated_array

# --- energy balance (sources in the module docstring) ---
OLR_A = 203.3  # W m^-2, North et al. 1981
OLR_B = 2.09  # W m^-2 K^-1, North et al. 1981
T_TANGENT = 4.0 / 3.0 * (T_FREEZE - OLR_A / OLR_B)  # K, where the linear fit meets grey emission tangentially
D_EARTH = 0.8  # W m^-2 K^-1, calibrated (module docstring); North et al. 1981 have 0.649
D_MAX_FACTOR = 3.0
SPINUP_FACTOR = 20.0  # pseudo-time C/dt in units of dOLR/dT during spin-up (module docstring)
REFRESH_STEPS = 10  # spin-up steps between refreshes of the implicit operator (and convergence checks)
SEASONAL_REFRESH_MONTHS, STALE_OPERATOR_RATIO = 3, 50.0  # reuse the seasonal operator 3 months if C/dt > 50 B
MIN_SPINUP_STEPS, SPINUP_TOL_WM2 = 60, 0.05  # a planet leaves the spin-up once its global imbalance is below
SHORT_ORBIT_FRACTION = 0.1  # orbits shorter than this fraction of C/B need a single seasonal orbit
SEASONAL_TOL_WM2, MAX_ORBIT_FACTOR = 0.5, 3  # extra orbits (up to 3 x n_orbits) until the budget closes
OMEGA_EARTH = 2 * np.pi / (0.99727 * DAY)  # rad s^-1, sidereal day
ALBEDO_ICE = 0.77  # Spiegel et al. 2008: 0.525 + 0.245
T_ICE, DT_ICE = 268.0, 5.0  # K, Spiegel et al. 2008
C_LAND = 5.25e6  # J m^-2 K^-1, Williams & Kasting 1997
C_OCEAN = 40.0 * C_LAND  # Williams & Kasting 1997
P_BROADENING_BAR = 0.2  # e-folding pressure of the greenhouse weight (our closure, see docstring)
CO2_REF_BAR = 280e-6  # pre-industrial CO2 partial pressure of a 1-bar column (Myhre et al. 1998)
CH4_REF_PPB, N2O_REF_PPB = 700.0, 270.0  # pre-industrial (Myhre et al. 1998)
CH4_MAX_PPB = 1.0e5  # Myhre's fit is for ppm levels; above 100 ppm (Archean-like) the forcing is held
# Specific heats at 300 K, J kg^-1 K^-1 (NIST-JANAF / Chase 1998): N2 and CO2.
CP_N2, CP_CO2 = 1040.0, 846.0
# --- runaway greenhouse ---
T_SURFACE_VENUS = 737.0  # K, Seiff et al. 1985 (Venus International Reference Atmosphere)
OCEAN_COLUMN_KG_M2 = 1.37e21 / 5.10e14 / 0.71  # Earth's ocean mass (Charette & Smith 2010) per ocean area
# --- vertical structure ---
RH_SURFACE = 0.77  # Manabe & Wetherald 1967
RH_SIGMA0 = 0.02  # Manabe & Wetherald 1967
# Chen & Kipping (2017) terran M-R relation R = M^0.279 gives g ∝ M^0.442: used to recover a mass from g.
_G_MASS_EXPONENT = 1.0 - 2 * 0.279


@dataclass(eq=False)
class ClimateGrid:
    """Regular grid: cell-centre latitudes and longitudes, sigma levels from the surface up."""

    nlat: int  # latitude cells (equal spacing, pole to pole)
    nlon: int  # longitude cells; lon 0 is the substellar meridian of tidally locked planets
    nlev: int  # sigma levels, 1.0 (surface) to sigma_top, equally spaced
    n_months: int = 12  # equal-time slices of the orbit
    sigma_top: float = 0.1  # top level (100 hPa on Earth: above the tropopause)
    lat_deg: np.ndarray = field(init=False)  # (nlat,)
    lon_deg: np.ndarray = field(init=False)  # (nlon,)
    sigma: np.ndarray = field(init=False)  # (nlev,)

    def __post_init__(self):
        if self.nlat < 2 or self.nlon < 1 or self.nlev < 2 or self.n_months < 1:
            raise InputValidationError("ClimateGrid", (self.nlat, self.nlon, self.nlev, self.n_months),
                                       "nlat >= 2, nlon >= 1, nlev >= 2, n_months >= 1")
        if not 0.0 < self.sigma_top < 1.0:
            raise InputValidationError("sigma_top", self.sigma_top, "0 < sigma_top < 1")
        self.lat_deg = -90.0 + (np.arange(self.nlat) + 0.5) * 180.0 / self.nlat
        self.lon_deg = np.arange(self.nlon) * 360.0 / self.nlon
        self.sigma = np.linspace(1.0, self.sigma_top, self.nlev)

    def lat_edges_rad(self) -> np.ndarray:
        return np.deg2rad(np.linspace(-90.0, 90.0, self.nlat + 1))

    def cell_area_weights(self) -> np.ndarray:
        """(nlat, nlon) exact spherical cell-area fractions, summing to 1."""
        band = np.diff(np.sin(self.lat_edges_rad())) / 2.0  # (nlat,) fraction of the sphere per band
        return np.repeat(band[:, None] / self.nlon, self.nlon, axis=1)


GRIDS = {"demo": ClimateGrid(8, 16, 5), "seed": ClimateGrid(32, 64, 10)}  # seed: ExoPlaSim T21 32x64x10


@dataclass
class ClimateInputs:
    """Per-planet inputs, arrays of shape (P,). Optional fields are derived when None."""

    luminosity_lsun: np.ndarray
    semimajor_axis_au: np.ndarray
    eccentricity: np.ndarray
    obliquity_deg: np.ndarray
    tidally_locked: np.ndarray  # bool
    rotation_period_days: np.ndarray  # sidereal
    surface_pressure_bar: np.ndarray
    co2_vmr: np.ndarray
    ch4_vmr: np.ndarray
    gravity_ms2: np.ndarray
    surface_albedo: np.ndarray  # ice-free (warm) albedo
    ocean_fraction: np.ndarray
    star_teff_k: np.ndarray | None = None  # default: mean dwarf of that luminosity (runaway limit)
    star_mass_msun: np.ndarray | None = None  # default: mean dwarf of that luminosity (orbital period)
    planet_mass_earth: np.ndarray | None = None  # default: from gravity, terran M-R relation
    orbital_period_days: np.ndarray | None = None  # default: Kepler's law (rotation period if locked)

    def validated(self) -> ClimateInputs:
        """A copy with float (P,) arrays, optional fields filled; InputValidationError names bad fields."""
        bounds = {"luminosity_lsun": (None, None, True), "semimajor_axis_au": (None, None, True),
                  "eccentricity": (0.0, orbits.ECC_MAX, False), "obliquity_deg": (0.0, 180.0, False),
                  "rotation_period_days": (None, None, True), "surface_pressure_bar": (0.0, 1.0e4, False),
                  "co2_vmr": (0.0, 1.0, False), "ch4_vmr": (0.0, 1.0, False), "gravity_ms2": (None, None, True),
                  "surface_albedo": (0.0, 1.0, False), "ocean_fraction": (0.0, 1.0, False),
                  "star_teff_k": (None, None, True), "star_mass_msun": (None, None, True),
                  "planet_mass_earth": (None, None, True), "orbital_period_days": (None, None, True)}
        out = {}
        n = np.atleast_1d(np.asarray(self.luminosity_lsun)).shape[0]
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                out[f.name] = None
                continue
            if f.name == "tidally_locked":
                x = np.atleast_1d(np.asarray(v, dtype=bool))
            else:
                lo, hi, pos = bounds[f.name]
                x = np.atleast_1d(validated_array(f.name, v, lo, hi, positive=pos))
            if x.shape != (n,):
                raise InputValidationError(f.name, f"shape {x.shape}", f"shape ({n},) like luminosity_lsun")
            out[f.name] = x
        res = ClimateInputs(**out)
        lum = np.clip(res.luminosity_lsun, *stars.LUMINOSITY_RANGE_LSUN)
        ms = stars.main_sequence_from_luminosity(lum)
        if res.star_teff_k is None:
            res.star_teff_k = ms["teff_k"]
        if res.star_mass_msun is None:
            res.star_mass_msun = ms["mass_msun"]
        if res.planet_mass_earth is None:
            res.planet_mass_earth = (res.gravity_ms2 / G_EARTH) ** (1.0 / _G_MASS_EXPONENT)
        if res.orbital_period_days is None:
            kepler = orbits.orbital_period_days(res.semimajor_axis_au, res.star_mass_msun)
            res.orbital_period_days = np.where(res.tidally_locked, res.rotation_period_days, kepler)
        return res


@dataclass
class ClimateResult:
    """Monthly-mean climate of P planets on `grid` (docs/architecture.md)."""

    air_temperature: np.ndarray  # (P, 12, lat, lon, lev) K, float32
    specific_humidity: np.ndarray  # (P, 12, lat, lon, lev) kg/kg, float32
    surface_temperature: np.ndarray  # (P, 12, lat, lon) K
    global_mean_surface_temperature_k: np.ndarray  # (P,) area- and time-weighted
    liquid_water_fraction: np.ndarray  # (P,) area- and time-weighted
    runaway: np.ndarray  # (P,) bool
    absorbed_flux_wm2: np.ndarray  # (P,) global, annual mean
    olr_wm2: np.ndarray  # (P,) global, annual mean
    tropopause_sigma: np.ndarray  # (P,) of the global-mean column
    column_h2o_vmr: np.ndarray  # (P,) mass-weighted column-mean H2O volume mixing ratio
    grid: ClimateGrid

    def datacube(self, i: int) -> np.ndarray:
        """float32 (2, 12, lat, lon, lev): air temperature [K], specific humidity [kg/kg] of planet i."""
        return np.stack([self.air_temperature[i], self.specific_humidity[i]]).astype(np.float32)


# ---------------------------------------------------------------- water thermodynamics
def saturation_vapour_pressure(temperature_k):
    """Clausius–Clapeyron with constant latent heat through the triple point [Pa]:
    e_s = P_t exp[(L / R_v)(1/T_t - 1/T)], L = 2.501e6 J/kg, R_v = 461.5 J/(kg K), T_t = 273.16 K,
    P_t = 611.657 Pa (1701 Pa at 288 K vs 1705 Pa measured)."""
    t = np.asarray(temperature_k, dtype=float)
    return P_TRIPLE_WATER * np.exp(L_VAP_WATER / R_VAPOUR * (1.0 / T_TRIPLE_WATER - 1.0 / t))


def saturation_specific_humidity(temperature_k, pressure_pa):
    """q_sat = eps e / (p - (1 - eps) e), e = min(e_s(T), p), eps = 0.622 [kg/kg], in [0, 1].

    e_s from `saturation_vapour_pressure`; where e_s >= p the air would be pure vapour, q_sat = 1.
    The models' physics loss reimplements exactly this formula in torch.
    """
    p = np.asarray(pressure_pa, dtype=float)
    e = np.minimum(saturation_vapour_pressure(temperature_k), p)
    return EPSILON_WATER * e / np.maximum(p - (1.0 - EPSILON_WATER) * e, 1e-30)


# Antoine equation for water, log10(P/mmHg) = A - B / (C + T/degC): 1-100 degC and 99-374 degC ranges
# (Dortmund Data Bank constants, as tabulated e.g. in the CRC Handbook).
_ANTOINE_LOW, _ANTOINE_HIGH = (8.07131, 1730.63, 233.426), (8.14019, 1810.94, 244.485)
_MMHG = 101325.0 / 760.0


def boiling_point_k(pressure_pa):
    """Boiling temperature at pressure p [K]: Antoine, capped at the critical point; NaN below P_triple."""
    p = np.asarray(pressure_pa, dtype=float)
    logp = np.log10(np.maximum(p, P_TRIPLE_WATER) / _MMHG)
    a, b, c = (np.where(p <= P_EARTH, lo, hi) for lo, hi in zip(_ANTOINE_LOW, _ANTOINE_HIGH))
    tb = b / (a - logp) - c + T_FREEZE
    tb = np.where(p >= P_CRIT_WATER, T_CRIT_WATER, np.minimum(tb, T_CRIT_WATER))
    return np.where(p < P_TRIPLE_WATER, np.nan, tb)


# ---------------------------------------------------------------- radiation closures
def _greenhouse_forcing(p_bar, co2_vmr, ch4_vmr):
    """Myhre et al. (1998) CO2 + CH4 forcing [W m^-2] relative to a pre-industrial 1-bar column."""
    dco2 = 5.35 * np.log(np.maximum(co2_vmr * p_bar, 1e-12) / CO2_REF_BAR)
    m = np.minimum(ch4_vmr * p_bar * 1e9, CH4_MAX_PPB)  # ppb of a 1-bar-equivalent column

    def overlap(mm, nn):
        return 0.47 * np.log(1 + 2.01e-5 * (mm * nn) ** 0.75 + 5.31e-15 * mm * (mm * nn) ** 1.52)

    dch4 = 0.036 * (np.sqrt(m) - np.sqrt(CH4_REF_PPB)) - (overlap(m, N2O_REF_PPB) - overlap(CH4_REF_PPB, N2O_REF_PPB))
    return dco2 + dch4


def _olr(t, w, forcing, cold_gain):
    """OLR [W m^-2] for water-greenhouse weight w and greenhouse forcing F (broadcast).

    Warm: (1 - w) sigma T^4 + w (A + B (T - 273.15)) - F. Cold (T < T_TANGENT): the same with the fit and
    the forcing scaled by (T / T_TANGENT)^4, which collapses to cold_gain * sigma T^4 (`_cold_gain`).
    """
    t2 = t * t
    bare = SIGMA_SB * t2 * t2
    warm = (1 - w) * bare + w * (OLR_A + OLR_B * (t - T_FREEZE)) - forcing
    return np.where(t < T_TANGENT, cold_gain * bare, warm)


def _olr_slope(t, olr, w):
    """dOLR/dT (floored at 0.1 W m^-2 K^-1 to keep the implicit operator well conditioned)."""
    warm = (1 - w) * 4 * SIGMA_SB * t**3 + w * OLR_B
    return np.maximum(np.where(t < T_TANGENT, 4 * olr / t, warm), 0.1)


def _cold_gain(w, forcing):
    """Emissivity below T_TANGENT: (1 - w) + (w OLR_fit(T_tan) - F) / (sigma T_tan^4)."""
    lin_tan = OLR_A + OLR_B * (T_TANGENT - T_FREEZE)
    return (1 - w) + (w * lin_tan - forcing) / (SIGMA_SB * T_TANGENT**4)


def _albedo(t, warm, wet):
    """Spiegel et al. (2008) ice-albedo blend: warm albedo -> 0.77 below ~268 K where there is water."""
    ice = 0.5 * (1.0 - np.tanh((t - T_ICE) / DT_ICE))
    return warm + wet * np.maximum(ALBEDO_ICE - warm, 0.0) * ice


# ---------------------------------------------------------------- diffusion operators
def _lat_operator(grid: ClimateGrid):
    """Finite-volume coefficients of (1/cos)d/dphi(cos dT/dphi): L T_j = lo_j T_{j-1} + up_j T_{j+1} - (lo+up) T_j."""
    edges = grid.lat_edges_rad()
    dsin = np.diff(np.sin(edges))  # (nlat,)
    dphi = np.deg2rad(180.0 / grid.nlat)
    cos_e = np.cos(edges)
    up = cos_e[1:] / dphi / dsin
    lo = cos_e[:-1] / dphi / dsin
    up[-1], lo[0] = 0.0, 0.0  # no flux through the poles
    return lo, up


def _lon_coefficient(grid: ClimateGrid) -> np.ndarray:
    """(nlat,) finite-volume coefficient of the zonal term (1/cos^2) d2/dlambda2 per latitude row."""
    dsin = np.diff(np.sin(grid.lat_edges_rad()))
    dphi, dlam = np.deg2rad(180.0 / grid.nlat), 2 * np.pi / grid.nlon
    return dphi / (np.cos(np.deg2rad(grid.lat_deg)) * dsin) / dlam**2


def _tridiag_factor(sub, diag, sup):
    """Thomas-algorithm factors of tridiagonal systems along the last axis (arrays broadcast)."""
    sub, diag, sup = np.broadcast_arrays(sub, diag, sup)
    cp, den = np.empty(diag.shape), np.empty(diag.shape)
    den[..., 0] = diag[..., 0]
    cp[..., 0] = sup[..., 0] / den[..., 0]
    for i in range(1, diag.shape[-1]):
        den[..., i] = diag[..., i] - sub[..., i] * cp[..., i - 1]
        cp[..., i] = sup[..., i] / den[..., i]
    return sub, cp, den


def _tridiag_solve(factor, rhs):
    sub, cp, den = factor
    x = np.empty(np.broadcast_shapes(rhs.shape, den.shape))
    x[..., 0] = rhs[..., 0] / den[..., 0]
    for i in range(1, x.shape[-1]):
        x[..., i] = (rhs[..., i] - sub[..., i] * x[..., i - 1]) / den[..., i]
    for i in range(x.shape[-1] - 2, -1, -1):
        x[..., i] -= cp[..., i] * x[..., i + 1]
    return x


def _cyclic_factor(diag, off):
    """Factors of periodic systems diag_i x_i - off (x_{i-1} + x_{i+1}) = r_i (Sherman–Morrison)."""
    gamma = -diag[..., :1]
    mod = diag.copy()
    mod[..., 0] -= gamma[..., 0]
    mod[..., -1] -= off[..., 0] ** 2 / gamma[..., 0]  # alpha beta / gamma with alpha = beta = -off
    fac = _tridiag_factor(-off, mod, -off)
    u = np.zeros(diag.shape)
    u[..., :1], u[..., -1:] = gamma, -off
    z = _tridiag_solve(fac, u)
    return fac, z, gamma, off


def _cyclic_solve(factor, rhs):
    fac, z, gamma, off = factor
    y = _tridiag_solve(fac, rhs)
    vy = y[..., :1] - off * y[..., -1:] / gamma
    vz = z[..., :1] - off * z[..., -1:] / gamma
    return y - z * vy / (1 + vz)


def _apply_lat(t, lo, up):
    """L_lat T for t (..., nlat, nlon)."""
    out = np.zeros_like(t)
    out[..., 1:, :] += lo[1:, None] * (t[..., :-1, :] - t[..., 1:, :])
    out[..., :-1, :] += up[:-1, None] * (t[..., 1:, :] - t[..., :-1, :])
    return out


def _apply_lon(t, coef):
    """L_lon T for t (..., nlat, nlon), periodic in longitude; coef (nlat,) from `_lon_coefficient`."""
    return coef[:, None] * (np.roll(t, 1, axis=-1) - 2 * t + np.roll(t, -1, axis=-1))


def _lat_inverse(diag, d, lo, up):
    """Inverse of (diag - d L_lat), (P, nlat, nlat); diag (P, nlat, 1) or (P, 1, 1), d (P, 1, 1).

    The systems are small (nlat <= 32) and reused for several steps, so a batched dense inverse
    followed by matmuls beats a Python Thomas loop over latitudes.
    """
    p, n = diag.shape[0], lo.size
    idx = np.arange(n)
    m = np.zeros((p, n, n))
    dd = d[:, :, 0]  # (P, 1)
    m[:, idx, idx] = np.broadcast_to(diag[:, :, 0], (p, n)) + dd * (lo + up)[None, :]
    m[:, idx[1:], idx[:-1]] = -dd * lo[None, 1:]
    m[:, idx[:-1], idx[1:]] = -dd * up[None, :-1]
    return np.linalg.inv(m)


# ---------------------------------------------------------------- energy-balance integration
@dataclass
class _Planets:
    """Per-planet EBM coefficients, each shaped (P, 1, 1) to broadcast over (lat, lon)."""

    s0: np.ndarray  # W m^-2 at the semimajor axis
    ecc: np.ndarray
    obliquity: np.ndarray
    locked: np.ndarray
    period_s: np.ndarray
    heat_capacity: np.ndarray  # J m^-2 K^-1
    diffusion: np.ndarray  # W m^-2 K^-1
    warm_albedo: np.ndarray
    wet: np.ndarray  # 1.0 where the planet has water
    w_water: np.ndarray  # weight of the water-vapour greenhouse fit
    forcing: np.ndarray  # W m^-2
    cold_gain: np.ndarray  # emissivity below T_TANGENT

    def subset(self, mask):
        return _Planets(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})


def _planet_coefficients(x: ClimateInputs) -> _Planets:
    col = lambda v: np.asarray(v, dtype=float)[:, None, None]  # noqa: E731
    p = x.surface_pressure_bar
    wet = (x.ocean_fraction > 0).astype(float)
    w_p = 1.0 - np.exp(-p / P_BROADENING_BAR)
    df = _greenhouse_forcing(p, x.co2_vmr, x.ch4_vmr)
    w_water = w_p * wet
    forcing = w_water * df + (w_p - w_water) * np.maximum(df, 0.0)  # dry: no negative "anti-greenhouse"
    cp_air = _specific_heat(x.co2_vmr)
    heat = x.ocean_fraction * C_OCEAN + (1 - x.ocean_fraction) * C_LAND + cp_air * p * 1e5 / x.gravity_ms2
    omega = 2 * np.pi / (x.rotation_period_days * DAY)
    diff = np.minimum(D_EARTH * (p * 1e5 / P_EARTH) * (OMEGA_EARTH / omega) ** 2, D_MAX_FACTOR * D_EARTH)
    return _Planets(s0=col(S_EARTH * x.luminosity_lsun / x.semimajor_axis_au**2), ecc=col(x.eccentricity),
                    obliquity=col(x.obliquity_deg), locked=col(x.tidally_locked.astype(float)),
                    period_s=col(x.orbital_period_days * DAY), heat_capacity=col(heat), diffusion=col(diff),
                    warm_albedo=col(x.surface_albedo), wet=col(wet), w_water=col(w_water), forcing=col(forcing),
                    cold_gain=col(_cold_gain(w_water, forcing)))


def _specific_heat(co2_vmr):
    """c_p [J kg^-1 K^-1] of an N2/CO2 mixture (mass-weighted)."""
    m_co2 = co2_vmr * MOLAR_MASS["CO2"]
    mass_frac = m_co2 / (m_co2 + (1 - co2_vmr) * MOLAR_MASS["N2"])
    return mass_frac * CP_CO2 + (1 - mass_frac) * CP_N2


class _EnergyBalance:
    """Time stepper for one group of planets sharing a zonal resolution (1 = rotating, nlon = locked).

    Methods take the planets' coefficients `pl` so that a subset (the planets still converging, or
    still needing seasonal orbits) can be stepped on its own.
    """

    def __init__(self, grid: ClimateGrid, nlon: int):
        self.grid, self.nlon = grid, nlon
        self.lat = np.deg2rad(grid.lat_deg)[None, :, None]  # (1, lat, 1)
        self.lo, self.up = _lat_operator(grid)
        self.band = np.diff(np.sin(grid.lat_edges_rad())) / 2.0  # (lat,) area fraction per band
        if nlon > 1:
            self.lon_coef = _lon_coefficient(grid)  # (lat,)
            lon = np.deg2rad(grid.lon_deg)[None, None, :]
            self.locked_pattern = orbits.locked_insolation(1.0, self.lat, lon)  # (1, lat, lon)

    def orbit_insolation(self, pl: _Planets, n_steps: int) -> np.ndarray:
        """(n_steps, P, lat, nlon) W m^-2 at the mid-points of n equal-time steps from the equinox."""
        frac = (np.arange(n_steps) + 0.5) / n_steps
        m = orbits.equinox_mean_anomaly(pl.ecc)[None] + 2 * np.pi * frac[:, None, None, None]
        dist2, decl = orbits.orbital_state(m, pl.ecc[None], pl.obliquity[None])  # (n, P, 1, 1)
        s = pl.s0[None] * dist2
        if self.nlon > 1:
            return s * self.locked_pattern[None]
        return orbits.daily_mean_insolation(s, self.lat[None], decl)

    def fluxes(self, pl: _Planets, t, q):
        """Absorbed stellar flux and OLR, (P, lat, nlon) W m^-2."""
        return q * (1 - _albedo(t, pl.warm_albedo, pl.wet)), _olr(t, pl.w_water, pl.forcing, pl.cold_gain)

    def global_mean(self, field_):
        """(P,) area-weighted mean of a (P, lat, nlon) field."""
        return (field_ * self.band[:, None]).mean(axis=2).sum(axis=1)

    def operator(self, pl: _Planets, t, c_over_dt=None):
        """Implicit operator for the next steps; c_over_dt None = spin-up pseudo time.

        Delta form: the operator only sets the path and the stability, never the fixed point, so it
        is refreshed every few steps. Rotating planets: a dense inverse of the latitude system.
        Locked planets: the factorisation (c - D L_lat) c^-1 (c - D L_lon) with the pointwise
        diagonal c, i.e. tridiagonal latitude lines and periodic longitude rows.
        """
        slope = _olr_slope(t, _olr(t, pl.w_water, pl.forcing, pl.cold_gain), pl.w_water)
        if c_over_dt is None:
            c_over_dt = SPINUP_FACTOR * slope
        diag = c_over_dt + slope  # (P, lat, nlon)
        d = pl.diffusion
        if self.nlon == 1:
            return (_lat_inverse(diag, d, self.lo, self.up),)
        d_lat = np.swapaxes(diag, 1, 2)  # (P, lon, lat): lines along latitude
        lat_fac = _tridiag_factor(-d * self.lo, d_lat + d * (self.lo + self.up), -d * self.up)
        off = d * self.lon_coef[None, :, None]  # (P, lat, 1)
        return lat_fac, _cyclic_factor(diag + 2 * off, off), diag

    def step(self, pl: _Planets, t, q, op):
        """One delta-form implicit step with operator `op` from `operator`."""
        absorbed, olr = self.fluxes(pl, t, q)
        div = _apply_lat(t, self.lo, self.up)
        if self.nlon > 1:
            div = div + _apply_lon(t, self.lon_coef)
        resid = absorbed - olr + pl.diffusion * div
        if self.nlon == 1:
            dt = op[0] @ resid
        else:
            lat_fac, lon_fac, diag = op
            x = np.swapaxes(_tridiag_solve(lat_fac, np.swapaxes(resid, 1, 2)), 1, 2) * diag
            dt = _cyclic_solve(lon_fac, x)
        return np.maximum(t + dt, 10.0)

    def spin_up(self, pl: _Planets, t, q_mean, max_steps: int):
        """Pseudo-time iteration to annual-mean balance; converged planets drop out of the batch."""
        active = np.arange(t.shape[0])
        for k in range(0, max_steps, REFRESH_STEPS):
            sub = pl.subset(active)
            if k >= MIN_SPINUP_STEPS:
                absorbed, olr = self.fluxes(sub, t[active], q_mean[active])
                keep = np.abs(self.global_mean(absorbed - olr)) >= SPINUP_TOL_WM2
                active, sub = active[keep], sub.subset(keep)
                if active.size == 0:
                    break
            ta, qa = t[active], q_mean[active]
            op = self.operator(sub, ta)
            for _ in range(REFRESH_STEPS):
                ta = self.step(sub, ta, qa, op)
            t[active] = ta
        return t

    def run(self, pl: _Planets, max_spinup: int, n_orbits: int, steps_per_month: int, t_start: float):
        """Monthly-mean T (P, 12, lat, nlon), and global annual-mean absorbed and OLR fluxes (P,)."""
        g = self.grid
        n = pl.s0.shape[0]
        n_steps = g.n_months * steps_per_month
        q_orbit = self.orbit_insolation(pl, n_steps)  # (n_steps, P, lat, nlon)
        t = self.spin_up(pl, np.full((n, g.nlat, self.nlon), t_start), q_orbit.mean(axis=0), max_spinup)
        # Orbits much shorter than the thermal time C/B have a negligible seasonal transient: one orbit.
        short = (pl.period_s < SHORT_ORBIT_FRACTION * pl.heat_capacity / OLR_B)[:, 0, 0]
        min_orbits = np.where(short, 1, n_orbits)
        c_over_dt = pl.heat_capacity / (pl.period_s / n_steps)
        monthly = np.zeros((n, g.n_months, g.nlat, self.nlon))
        absorbed_mean, olr_mean = np.zeros(n), np.zeros(n)
        active = np.arange(n)
        for orbit in range(MAX_ORBIT_FACTOR * n_orbits):
            sub, ta, cdt = pl.subset(active), t[active], c_over_dt[active]
            # Stale slopes only matter where C/dt does not dominate dOLR/dT (thin or dry surfaces).
            refresh = steps_per_month * (1 if cdt.min() < STALE_OPERATOR_RATIO * OLR_B else SEASONAL_REFRESH_MONTHS)
            month_sum = np.zeros((active.size,) + monthly.shape[1:])
            abs_sum, olr_sum = np.zeros(active.size), np.zeros(active.size)
            for s in range(n_steps):
                q = q_orbit[s][active]
                if s % refresh == 0:
                    op = self.operator(sub, ta, cdt)
                ta = self.step(sub, ta, q, op)
                month_sum[:, s // steps_per_month] += ta / steps_per_month
                absorbed, olr = self.fluxes(sub, ta, q)
                abs_sum += self.global_mean(absorbed) / n_steps
                olr_sum += self.global_mean(olr) / n_steps
            t[active], monthly[active], absorbed_mean[active], olr_mean[active] = ta, month_sum, abs_sum, olr_sum
            # Done once a planet has had its orbits and its orbit-mean budget closes (periodic state);
            # short orbits cannot relax further within a few orbits, so they stop after one.
            balanced = short[active] | (np.abs(abs_sum - olr_sum) < SEASONAL_TOL_WM2)
            done = (orbit + 1 >= min_orbits[active]) & balanced
            active = active[~done]
            if active.size == 0:
                break
        return monthly, absorbed_mean, olr_mean


def _surface_climate(x: ClimateInputs, grid: ClimateGrid, n_spinup, n_orbits, steps_per_month, t_start):
    """EBM for rotating (zonally symmetric) and tidally locked (2-D) planets; T_s (P, 12, lat, lon)."""
    pl = _planet_coefficients(x)
    n = x.luminosity_lsun.shape[0]
    ts = np.zeros((n, grid.n_months, grid.nlat, grid.nlon))
    absorbed, olr = np.zeros(n), np.zeros(n)
    for locked in (False, True):
        mask = x.tidally_locked == locked
        if not mask.any():
            continue
        ebm = _EnergyBalance(grid, grid.nlon if locked else 1)
        t, absorbed[mask], olr[mask] = ebm.run(pl.subset(mask), n_spinup, n_orbits, steps_per_month, t_start)
        ts[mask] = np.broadcast_to(t, t.shape[:-1] + (grid.nlon,))
    return ts, absorbed, olr


# ---------------------------------------------------------------- runaway greenhouse
def _grey_temperature(s_eff, albedo, column_kg_m2, kappa):
    """Eddington grey radiative equilibrium surface temperature [K]."""
    t_e = (S_EARTH * s_eff * (1 - albedo) / (4 * SIGMA_SB)) ** 0.25
    return t_e * (1 + 0.75 * kappa * column_kg_m2) ** 0.25


def _venus_kappa() -> float:
    """Grey mass absorption coefficient [m^2 kg^-1] that gives Venus its 737 K (module docstring)."""
    s_eff = 1.0 / 0.7233**2  # NASA Venus fact sheet semimajor axis
    g_venus = 8.87  # m s^-2, NASA fact sheet
    t_e = (S_EARTH * s_eff * (1 - 0.3) / (4 * SIGMA_SB)) ** 0.25  # warm albedo as for any planet here
    return ((T_SURFACE_VENUS / t_e) ** 4 - 1) / (0.75 * 92.0e5 / g_venus)


KAPPA_GREY = _venus_kappa()


def _runaway(x: ClimateInputs):
    """(runaway flag, steam/CO2 surface temperature) per planet."""
    s_eff = x.luminosity_lsun / x.semimajor_axis_au**2 / np.sqrt(1 - x.eccentricity**2)
    teff = np.clip(x.star_teff_k, *stars.TEFF_RANGE_K)
    limit = habitable.seff_limits(teff, x.planet_mass_earth)["runaway_greenhouse"]
    runaway = (s_eff > limit) & (x.surface_pressure_bar * 1e5 >= P_TRIPLE_WATER)
    column = x.surface_pressure_bar * 1e5 / x.gravity_ms2 + x.ocean_fraction * OCEAN_COLUMN_KG_M2
    return runaway, _grey_temperature(s_eff, x.surface_albedo, column, KAPPA_GREY)


# ---------------------------------------------------------------- vertical structure
def _gas_constants(co2_vmr):
    """Dry-air gas constant R [J kg^-1 K^-1] and c_p of an N2/CO2 mixture."""
    mmw = co2_vmr * MOLAR_MASS["CO2"] + (1 - co2_vmr) * MOLAR_MASS["N2"]
    return R_GAS / (mmw * 1e-3), _specific_heat(co2_vmr)


def _lapse_dlnp(t, p, r_dry, cp, wet):
    """dT/dln p of the saturated pseudo-adiabat (AMS Glossary / Wallace & Hobbs 2006 eq. 3.70 form):
    (R T + L r) / (c_p + eps L^2 r / (R T^2)), r = saturation mixing ratio (0 when dry, capped at 1)."""
    e = np.minimum(saturation_vapour_pressure(t), 0.999 * p)
    r = wet * np.minimum(EPSILON_WATER * e / (p - e), 1.0)
    return (r_dry * t + L_VAP_WATER * r) / (cp + EPSILON_WATER * L_VAP_WATER**2 * r / (r_dry * t**2))


def _adiabat(ts, ps, r_dry, cp, wet, sigma, n_sub: int = 4):
    """Temperatures (P, K, len(sigma)) along the pseudo-adiabat from surface temperatures ts (P, K)."""
    out = [ts]
    t = ts.copy()
    for k in range(1, sigma.size):
        h = np.log(sigma[k] / sigma[k - 1]) / n_sub
        lnp = np.log(np.maximum(ps, 1.0) * sigma[k - 1])  # 1 Pa floor: airless planets get a (moot) dry adiabat
        for _ in range(n_sub):  # midpoint (RK2) in ln p
            k1 = _lapse_dlnp(t, np.exp(lnp), r_dry, cp, wet)
            k2 = _lapse_dlnp(t + 0.5 * h * k1, np.exp(lnp + 0.5 * h), r_dry, cp, wet)
            t = t + h * k2
            lnp = lnp + h
        out.append(t)
    return np.stack(out, axis=-1)


def _column_temperature(ts, ps, t_skin, r_dry, cp, wet, sigma, n_table: int = 24):
    """(P, N, lev) air temperature: adiabat (tabulated per planet in T_s, interpolated) above T_skin.

    ts: (P, N) surface temperatures; per-planet arrays shaped (P, 1)."""
    lo, hi = ts.min(axis=1, keepdims=True), ts.max(axis=1, keepdims=True) + 1e-6
    nodes = lo + (hi - lo) * np.linspace(0.0, 1.0, n_table)[None, :]  # (P, n_table)
    table = _adiabat(nodes, ps, r_dry, cp, wet, sigma)  # (P, n_table, lev)
    pos = (ts - lo) / (hi - lo) * (n_table - 1)
    i0 = np.clip(np.floor(pos).astype(int), 0, n_table - 2)
    w = (pos - i0)[..., None]
    t0 = np.take_along_axis(table, i0[..., None], axis=1)
    t1 = np.take_along_axis(table, i0[..., None] + 1, axis=1)
    t_ad = (1 - w) * t0 + w * t1
    t_ad[..., 0] = ts  # the surface level is exact
    return np.maximum(t_ad, t_skin[..., None])


def _tropopause_sigma(ts_mean, ps, t_skin, r_dry, cp, wet, n: int = 80):
    """sigma where the global-mean column's adiabat meets T_skin (1 when T_s <= T_skin)."""
    sig = np.exp(np.linspace(0.0, np.log(1e-3), n))
    t = _adiabat(ts_mean[:, None], ps, r_dry, cp, wet, sig, n_sub=1)[:, 0]  # (P, n)
    below = t > t_skin
    k = np.clip(below.sum(axis=1), 1, n - 1)  # first index at or above the tropopause
    rows = np.arange(t.shape[0])
    t_a, t_b = t[rows, k - 1], t[rows, k]
    frac = np.clip((t_a - t_skin[:, 0]) / np.maximum(t_a - t_b, 1e-9), 0.0, 1.0)
    lns = np.log(sig[k - 1]) + frac * (np.log(sig[k]) - np.log(sig[k - 1]))
    return np.where(ts_mean <= t_skin[:, 0], 1.0, np.exp(lns))


def _humidity(t_air, ps, sigma, has_water):
    """q = RH(sigma) q_sat(T, sigma p_s), cold-trapped upward; (P, N, lev)."""
    rh = np.clip(RH_SURFACE * (sigma - RH_SIGMA0) / (1 - RH_SIGMA0), 0.0, 1.0)
    q = rh * saturation_specific_humidity(t_air, ps[..., None] * sigma)
    q = np.minimum.accumulate(q, axis=-1)
    return q * has_water[..., None]


# ---------------------------------------------------------------- public entry point
def _vertical_structure(ts, x: ClimateInputs, t_skin, grid: ClimateGrid, chunk: int = 32):
    """Air temperature and specific humidity (P, 12, lat, lon, lev) float32 and the column H2O vmr (P,).

    Planets are processed `chunk` at a time to bound the float64 intermediates on the seed grid.
    """
    n = ts.shape[0]
    ps = x.surface_pressure_bar * 1e5
    r_dry, cp = (v[:, None] for v in _gas_constants(x.co2_vmr))
    wet = (x.ocean_fraction > 0).astype(float)[:, None]
    has_water = ((x.ocean_fraction > 0) & (ps >= P_TRIPLE_WATER)).astype(float)[:, None]
    dsig = np.abs(np.gradient(grid.sigma))  # level mass weights
    w_area = grid.cell_area_weights()
    t_air = np.empty(ts.shape + (grid.nlev,), dtype=np.float32)
    q_out = np.empty_like(t_air)
    col_vmr = np.empty(n)
    for lo in range(0, n, chunk):
        sl = slice(lo, min(lo + chunk, n))
        flat = ts[sl].reshape(sl.stop - lo, -1)  # (p, N)
        t = _column_temperature(flat, ps[sl, None], t_skin[sl], r_dry[sl], cp[sl], wet[sl], grid.sigma)
        q = _humidity(t, ps[sl, None], grid.sigma, has_water[sl])
        t_air[sl] = t.reshape(t_air[sl].shape)
        q_out[sl] = q.reshape(q_out[sl].shape)
        vmr = (q / EPSILON_WATER) / (1 - q + q / EPSILON_WATER)
        col = ((vmr * dsig).sum(axis=-1) / dsig.sum()).reshape(ts[sl].shape)  # (p, 12, lat, lon)
        col_vmr[sl] = (col * w_area).sum(axis=(2, 3)).mean(axis=1)
    return t_air, q_out, col_vmr


def run_climate(inputs: ClimateInputs, grid: ClimateGrid = GRIDS["demo"], n_spinup: int = 2000, n_orbits: int = 5,
                steps_per_month: int = 4, initial_temperature_k: float = 300.0) -> ClimateResult:
    """Run the seasonal EBM and build the (P, 12, lat, lon, lev) temperature/humidity datacube.

    n_spinup is the most pseudo-time spin-up steps (a planet leaves once it is in balance); then
    n_orbits seasonal orbits of 12 x steps_per_month steps (one for orbits much shorter than the
    thermal time), continued up to 3 x n_orbits while the orbit-mean budget is off by > 0.5 W m^-2.
    initial_temperature_k: uniform start; the default warm start picks the warm branch where the
    ice-albedo feedback allows two climates (a cold start finds the snowball: hysteresis).
    """
    x = inputs.validated()
    t_start = float(validated_array("initial_temperature_k", initial_temperature_k, 10.0, 1000.0))
    ts, absorbed, olr = _surface_climate(x, grid, n_spinup, n_orbits, steps_per_month, t_start)
    runaway, t_hot = _runaway(x)
    ts = np.where(runaway[:, None, None, None], t_hot[:, None, None, None], ts)
    olr = np.where(runaway, absorbed, olr)  # the hot state re-establishes balance (Goldblatt et al. 2013)

    w_area = grid.cell_area_weights()  # (lat, lon)
    t_mean = (ts * w_area).sum(axis=(2, 3)).mean(axis=1)
    ps = x.surface_pressure_bar * 1e5
    boil = boiling_point_k(ps)
    liquid = (ts > T_FREEZE) & (ts < np.nan_to_num(boil, nan=0.0)[:, None, None, None])
    liquid_frac = np.where(runaway | (ps < P_TRIPLE_WATER), 0.0, (liquid * w_area).sum(axis=(2, 3)).mean(axis=1))

    t_e = (np.maximum(absorbed, 1e-3) / SIGMA_SB) ** 0.25
    t_skin = (t_e * 2**-0.25)[:, None]  # (P, 1)
    t_air, q, col_vmr = _vertical_structure(ts, x, t_skin, grid)
    r_dry, cp = (v[:, None] for v in _gas_constants(x.co2_vmr))
    wet = (x.ocean_fraction > 0).astype(float)[:, None]
    return ClimateResult(
        air_temperature=t_air, specific_humidity=q, surface_temperature=ts,
        global_mean_surface_temperature_k=t_mean, liquid_water_fraction=liquid_frac, runaway=runaway,
        absorbed_flux_wm2=absorbed, olr_wm2=olr,
        tropopause_sigma=_tropopause_sigma(t_mean, ps[:, None], t_skin, r_dry, cp, wet),
        column_h2o_vmr=col_vmr, grid=grid)
