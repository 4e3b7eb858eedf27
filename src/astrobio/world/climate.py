"""Seasonal energy-balance climate on a lat x lon grid, vectorised over planets, plus vertical structure.

Surface temperature T [K] of every surface tile obeys

    C dT/dt = Q (1 - A(T, mu)) - OLR(T) + div(D grad T) + land-ocean exchange

- Q: diurnal-mean insolation of an eccentric, oblique orbit (`orbits.daily_mean_insolation`), with mu
  its daytime-mean cosine zenith angle; tidally locked planets have a fixed substellar point at
  (lat 0, lon 0), zero obliquity and mu = cos(zenith) of each cell.
- OLR(T, pCO2) and the planetary albedo A(T, pCO2, mu, a_s, Teff): the Haqq-Misra et al. (2016, ApJ
  827, 120) fits to a 1-D radiative-convective model with a saturated troposphere, valid to 10 bar of
  CO2, so thick-CO2 warming, CO2 Rayleigh scattering and hence the maximum-greenhouse limit emerge
  (`world.radiation`). pCO2 is the CO2 partial pressure. Methane adds the Myhre et al. (1998, GRL 25,
  2715) forcing relative to 700 ppb of a 1-bar column (held above 100 ppm, beyond Myhre's fit).
  Our closures, stated plainly:
  * the fits assume a 1-bar N2 column; thin atmospheres blend them with the bare surface (emission
    sigma T^4, albedo a_s) with the weight w_p = 1 - exp(-p / 0.2 bar) (Mars-like 6 mbar is nearly bare);
  * dry planets (ocean_fraction = 0) keep only the CO2 part of the greenhouse:
    OLR = sigma T^4 - max(0, OLR_fit(T, 1e-5 bar) - OLR_fit(T, pCO2));
  * other gases (N2 beyond 1 bar, H2 collision-induced absorption) add no greenhouse here.
- Surface albedo a_s: the ice-free `surface_albedo` blended below ~268 K with the snow albedo of the
  host star (Shields et al. 2013: 0.65 for the Sun, 0.40 for an M3.5 dwarf), using the Spiegel et al.
  (2008, ApJ 681, 1609) tanh[(T - 268 K)/5 K] ice fraction; planets without water have no ice. The
  fits are cloud-free: every surface albedo gets CLOUD_ALBEDO = 0.025, calibrated so that Earth's
  global mean is 288-290 K (Kopparapu et al. 2013 raise their surface albedo to 0.32 for the same
  reason).
- Land and ocean: rotating planets carry two tiles per latitude band, land and ocean, each with its
  own temperature, coupled by an exchange nu (T_other - T) / f_self, nu = 3 W m^-2 K^-1 (the form of
  North & Coakley 1979, J. Atmos. Sci. 36, 1189, with the exchange calibrated on Earth, below). Ocean
  fraction per band: Earth's real belts (Sellers 1965) where `earth_geography` is set, otherwise
  uniform and equal to `ocean_fraction` (our prescription for planets whose geography is unknown).
  Heat capacities per m^2 (Williams & Kasting 1997, Icarus 129, 254): land C_l = 5.25e6 J m^-2 K^-1;
  ocean 40 C_l (a ~50 m mixed layer), falling to 9.2 C_l where it is frozen (sea ice); plus the
  atmosphere c_p p / g on both. Tidally locked planets (no seasons) keep one tile per cell with the
  area-weighted capacity.
- Heat transport D [W m^-2 K^-1]: rotating planets follow Williams & Kasting (1997, after Stone 1972),
  D = D_E (p/p_E)(c_p/c_p,E)(m_E/m)^2 (Omega_E/Omega)^2, capped at 3 D_E for slow rotators (the eddy
  scaling breaks down once the deformation radius exceeds the planet); D_E = 0.55 W m^-2 K^-1 calibrated on
  Earth's zonal climate (tests/world/test_climate.py). Tidally locked planets are in the weak-
  temperature-gradient regime: day-night transport scales with the column heat capacity over the
  gravity-wave crossing time (Koll & Abbot 2016, ApJ 825, 99): D = D_L (c_p p / g)/(c_p p / g)_E
  x (R_d / sqrt(c_p)) / (R_d / sqrt(c_p))_E x (R_E / R), D_L = 12 W m^-2 K^-1 calibrated so that a
  1-bar Earth-like ocean planet of an M3 dwarf (S = 0.92 S_E) has a ~45 K substellar-to-coldest
  contrast (1 bar of CO2: ~70 K; 10 bar: < 10 K), tens of K as in 3-D models of such planets (e.g.
  Yang et al. 2013, ApJL 771, L45), not a fit to them. Our former model (no column-mass scaling) gave
  91 K for 1 bar of CO2. Without substellar clouds the dayside of a planet near the inner edge is hot.
- Runaway greenhouse: mean instellation above the Kopparapu et al. (2014) runaway S_eff for the star's
  Teff (held at its 2600 K value for cooler stars) and the planet's mass (with an atmosphere above
  water's triple point). The surface temperature is then the grey radiative-equilibrium value
  T_s = T_e (1 + 3 tau / 4)^(1/4) of a column holding the atmosphere plus the evaporated ocean; the grey
  mass absorption coefficient is calibrated so that Venus (92 bar CO2, 0.723 AU) has its observed 737 K
  (Seiff et al. 1985). It is an estimate, not a radiative-convective steam calculation (Goldblatt et
  al. 2013 find ~1500 K+ for a full steam ocean).

Integration: implicit in the linearised emission, the diffusion and the land-ocean exchange (delta
form, so the steady state is exact whatever the step), explicit in the albedo; OLR and albedo come from
per-planet tables of the fits (1 K, and 2 K x 0.1 in mu). A pseudo-time spin-up with annual-mean
insolation from a warm 300 K start (so the warm branch is chosen where the ice-albedo feedback allows
two states; pseudo steps are kept short against the ice-albedo feedback, C/dt = 20 dOLR/dT, 4 dOLR/dT
for the few still drifting after 300 steps; each planet leaves the batch once its global budget closes
to 0.05 W m^-2) is followed by `n_orbits` seasonal orbits of 12 months x `steps_per_month` steps (one
orbit when the orbit is < 0.1 C/B, where the seasonal transient is negligible; more, up to 3 x
n_orbits, while the orbit-mean budget is off by > 0.5 W m^-2). After each orbit a Newton-like half step
on the orbit-mean heating moves the state towards its periodic orbit (the ocean's thermal time is
years). Heat capacities are those of the spin-up's annual-mean ice cover, held through the orbits, so
that the scheme conserves energy over a periodic orbit. The last orbit's monthly means are returned;
month 1 starts at the northern vernal equinox. Near an ice-albedo bifurcation a planet may still be
drifting; the result then is a transient. Runaway planets report OLR = absorbed flux (the hot state
radiates what it absorbs).

Vertical structure on sigma = p / p_surface (surface first): a pseudo-adiabat (moist where the planet
has water, dry otherwise; R and c_p of an N2/CO2 mixture) from the surface up to the skin temperature
T_skin = T_e 2^(-1/4), isothermal above. Humidity q = RH(sigma) q_sat(T, p) with the Manabe & Wetherald
(1967, J. Atmos. Sci. 24, 241) profile RH = 0.77 (sigma - 0.02) / 0.98, cold-trapped (q never increases
upward); q = 0 without water or below water's triple-point pressure.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from functools import lru_cache

import numpy as np

from astrobio.constants import (DAY, EPSILON_WATER, G_EARTH, L_VAP_WATER, MOLAR_MASS, P_CRIT_WATER,
                                P_EARTH, P_TRIPLE_WATER, R_GAS, R_VAPOUR, S_EARTH, SIGMA_SB, T_CRIT_WATER,
                                T_FREEZE, T_TRIPLE_WATER)
from astrobio.errors import InputValidationError
from astrobio.world import habitable, orbits, radiation, stars
from astrobio.world.stars import validated_array

# --- energy balance (sources in the module docstring) ---
OLR_A = 203.3  # W m^-2, North et al. 1981
OLR_B = 2.09  # W m^-2 K^-1, North et al. 1981
T_TANGENT = 4.0 / 3.0 * (T_FREEZE - OLR_A / OLR_B)  # K, where the linear fit meets grey emission tangentially
CO2_REF_BAR = 3.3e-4  # CO2 of North et al.'s 1970s satellite OLR (Mauna Loa ~330 ppm; WK97's reference too)
CO2_JOIN_BAR = 5.0e-3  # below: Myhre et al. (1998) 5.35 ln(C/C0); above: the Haqq-Misra et al. (2016) fit
CO2_THICK_BAR = 0.1  # from here on the fit's own column, without Earth's cloud/humidity offset
D_EARTH = 0.55  # W m^-2 K^-1, calibrated on Earth's zonal climate (module docstring)
D_MAX_FACTOR = 3.0
D_LOCKED = 12.0  # W m^-2 K^-1, calibrated day-night transport of a 1-bar Earth-like locked planet
NU_LAND_OCEAN = 3.0  # W m^-2 K^-1, land-ocean exchange (calibrated on Earth, module docstring)
SPINUP_FACTOR = 20.0  # pseudo-time C/dt in units of dOLR/dT during spin-up (module docstring)
SPINUP_FACTOR_LATE, SPINUP_LATE_STEPS = 4.0, 300  # longer pseudo steps for the few still drifting after 300
REFRESH_STEPS = 10  # spin-up steps between refreshes of the implicit operator (and convergence checks)
MIN_SPINUP_STEPS, SPINUP_TOL_WM2 = 60, 0.05  # a planet leaves the spin-up once its global imbalance is below
SHORT_ORBIT_FRACTION = 0.1  # orbits shorter than this fraction of C/B need a single seasonal orbit
B_REFERENCE = 2.0  # W m^-2 K^-1, order of dOLR/dT, only to compare orbit lengths with the thermal time
SEASONAL_TOL_WM2, MAX_ORBIT_FACTOR = 0.5, 3  # extra orbits (up to 3 x n_orbits) until the budget closes
SEASONAL_REFRESH_MONTHS = 3  # the seasonal implicit operator follows dOLR/dT every 3 months
OMEGA_EARTH = 2 * np.pi / (0.99727 * DAY)  # rad s^-1, sidereal day
T_ICE, DT_ICE = 268.0, 5.0  # K, Spiegel et al. 2008
C_LAND = 5.25e6  # J m^-2 K^-1, Williams & Kasting 1997
C_OCEAN = 40.0 * C_LAND  # Williams & Kasting 1997
C_SEA_ICE_MELTING, C_SEA_ICE_COLD, T_SEA_ICE_COLD = 9.2 * C_LAND, 2.0 * C_LAND, 263.0  # WK97: above/below 263 K
CLOUD_ALBEDO = 0.025  # added to every surface albedo under the cloud-free fits, calibrated on Earth (docstring)
TILE_FRACTION_MIN = 1e-3  # tiles smaller than this still exist numerically (their exchange is capped)
P_BROADENING_BAR = 0.2  # e-folding pressure of the greenhouse weight (our closure, see docstring)
CH4_REF_PPB, N2O_REF_PPB = 700.0, 270.0  # pre-industrial (Myhre et al. 1998)
CH4_MAX_PPB = 1.0e5  # Myhre's fit is for ppm levels; above 100 ppm (Archean-like) the forcing is held
# Specific heats at 300 K, J kg^-1 K^-1 (NIST-JANAF / Chase 1998): N2 and CO2.
CP_N2, CP_CO2 = 1040.0, 846.0
CO2_VMR_EARTH = 4.0e-4  # reference atmosphere of the transport scalings (NOAA 2015 global mean)
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
    earth_geography: np.ndarray | None = None  # bool; default False: uniform ocean_fraction in every band

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
            if f.name in ("tidally_locked", "earth_geography"):
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
        if res.earth_geography is None:
            res.earth_geography = np.zeros(n, dtype=bool)
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
    hz_limits_held: np.ndarray  # (P,) bool: Teff below 2600 K, Kopparapu limits held at their 2600 K values
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
def _ch4_forcing(p_bar, ch4_vmr):
    """Myhre et al. (1998) CH4 forcing [W m^-2] relative to 700 ppb of a 1-bar column (N2O overlap at 270 ppb)."""
    m = np.minimum(ch4_vmr * p_bar * 1e9, CH4_MAX_PPB)  # ppb of a 1-bar-equivalent column

    def overlap(mm, nn):
        return 0.47 * np.log(1 + 2.01e-5 * (mm * nn) ** 0.75 + 5.31e-15 * mm * (mm * nn) ** 1.52)

    return 0.036 * (np.sqrt(m) - np.sqrt(CH4_REF_PPB)) - (overlap(m, N2O_REF_PPB) - overlap(CH4_REF_PPB, N2O_REF_PPB))


def _earth_water_olr(t):
    """North et al. (1981) A + B (T - 273.15 K) and its slope; grey emission through the tangent below T_TANGENT.

    Below T_tan = (4/3)(273.15 K - A/B) = 234.5 K the line would imply a greenhouse that grows as the
    air dries (zero OLR at 176 K); there it continues as OLR(T_tan) (T/T_tan)^4, C1-continuous.
    """
    lin_tan = OLR_A + OLR_B * (T_TANGENT - T_FREEZE)
    cold = lin_tan * (t / T_TANGENT) ** 4
    warm = t < T_TANGENT
    return np.where(warm, cold, OLR_A + OLR_B * (t - T_FREEZE)), np.where(warm, 4 * cold / t, OLR_B)


@lru_cache(maxsize=1)
def _reference_olr_coefficients():
    """Fit coefficients at the join pCO2 and at the fit's lowest pCO2, shaped (1, 5, 1, 1)."""
    return tuple(radiation.olr_coefficients([p])[:, :, None, None] for p in (CO2_JOIN_BAR, 0.0))


def _olr(pl, t):
    """OLR [W m^-2] and dOLR/dT (floored at 0.1 to keep the implicit operator well conditioned).

    Wet planets up to 5000 ppm of CO2: Earth's water-vapour and cloud response (North et al. 1981) minus
    5.35 ln(pCO2 / 330 ppm) (Myhre et al. 1998). Above, the Haqq-Misra et al. (2016) fit, whose offset
    from Earth's line fades out (weight `earth_weight`) by 0.1 bar. Dry planets: sigma T^4 minus the
    fit's whole CO2 greenhouse. Module docstring for the reasons.
    """
    bare = SIGMA_SB * t**4
    join_coeffs, co2_free_coeffs = _reference_olr_coefficients()
    fit, _ = radiation.olr_and_slope(t, pl.olr_coeffs)
    thick, thick_slope = radiation.olr_and_slope(t, pl.olr_coeffs_thick)
    join, join_slope = radiation.olr_and_slope(t, join_coeffs)
    co2_free, _ = radiation.olr_and_slope(t, co2_free_coeffs)
    water, water_slope = _earth_water_olr(t)
    wet = np.maximum(thick + pl.earth_weight * (water - pl.co2_log_forcing - join), 0.05 * bare)
    dry = bare - np.maximum(co2_free - fit, 0.0)
    atm = pl.wet * wet + (1 - pl.wet) * dry - pl.ch4_forcing
    olr = (1 - pl.w_p) * bare + pl.w_p * atm
    slope = (1 - pl.w_p) * 4 * bare / t + pl.w_p * (
        pl.wet * (thick_slope + pl.earth_weight * (water_slope - join_slope)) + (1 - pl.wet) * 4 * bare / t)
    return olr, np.maximum(slope, 0.1)


def _ice_fraction(t, wet):
    """Spiegel et al. (2008) frozen fraction of a wet surface at temperature t."""
    return wet * 0.5 * (1.0 - np.tanh((t - T_ICE) / DT_ICE))


def _albedo(pl, t, mu):
    """Planetary albedo: Haqq-Misra et al. (2016) over the ice-blended surface, bare surface when thin."""
    ice = _ice_fraction(t, pl.wet)
    a_s = np.minimum(pl.warm_albedo * (1 - ice) + pl.ice_albedo * ice + CLOUD_ALBEDO, 1.0)
    toa = radiation.toa_albedo(t, mu, a_s, pl.albedo_cold, pl.albedo_warm)
    return (1 - pl.w_p) * a_s + pl.w_p * toa

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


def _apply_lon(t, coef):
    """L_lon T for t (..., nlat, nlon), periodic in longitude; coef (nlat,) from `_lon_coefficient`."""
    return coef[:, None] * (np.roll(t, 1, axis=-1) - 2 * t + np.roll(t, -1, axis=-1))



def _tile_inverse(diag, d, lo, up, exchange):
    """Inverse of the implicit operator of the two-tile zonal model, (P, 2 nlat, 2 nlat).

    diag, exchange: (P, nlat, 2) per tile (land, ocean); d: (P, 1, 1). Unknowns are ordered
    (lat, tile), i.e. a (P, nlat, 2) field reshaped to (P, 2 nlat). Each tile diffuses along latitude
    and exchanges heat with the other tile of its band. The systems are small (2 nlat <= 64) and reused
    for a month, so a batched dense inverse followed by matmuls beats a Python loop over latitudes.
    """
    p, n = diag.shape[0], lo.size
    dd = d[:, :, 0]  # (P, 1)
    m = np.zeros((p, n, 2, n, 2))
    j = np.arange(n)
    for c in (0, 1):
        m[:, j, c, j, c] = diag[:, :, c] + dd * (lo + up)[None, :] + exchange[:, :, c]
        m[:, j, c, j, 1 - c] = -exchange[:, :, c]
        m[:, j[1:], c, j[:-1], c] = -dd * lo[None, 1:]
        m[:, j[:-1], c, j[1:], c] = -dd * up[None, :-1]
    return np.linalg.inv(m.reshape(p, 2 * n, 2 * n))


# ---------------------------------------------------------------- energy-balance integration
@dataclass
class _Planets:
    """Per-planet EBM coefficients shaped (P, 1, 1), per band (P, lat, 1 or 2) or per fit term (P, K, 1, 1)."""

    s0: np.ndarray  # W m^-2 at the semimajor axis
    ecc: np.ndarray
    obliquity: np.ndarray
    period_s: np.ndarray
    c_land: np.ndarray  # J m^-2 K^-1 of a land tile (with the atmosphere above it)
    c_ocean: np.ndarray  # open-ocean tile
    c_atm: np.ndarray  # the atmospheric column c_p p / g
    c_mixed: np.ndarray  # area-weighted single tile (tidally locked planets)
    tile_weight: np.ndarray  # (P, lat, 2) land and ocean area fractions of each band
    exchange: np.ndarray  # (P, lat, 2) land-ocean exchange per unit area of each tile, W m^-2 K^-1
    diffusion: np.ndarray  # W m^-2 K^-1
    warm_albedo: np.ndarray
    ice_albedo: np.ndarray  # frozen-surface albedo for the host star
    wet: np.ndarray  # 1.0 where the planet has water
    w_p: np.ndarray  # weight of the atmosphere's fits against the bare surface
    ch4_forcing: np.ndarray  # W m^-2
    olr_coeffs: np.ndarray  # (P, 5, 1, 1) `radiation.olr_coefficients` at the planet's pCO2
    olr_coeffs_thick: np.ndarray  # the same at max(pCO2, CO2_JOIN_BAR)
    co2_log_forcing: np.ndarray  # 5.35 ln(min(pCO2, CO2_JOIN_BAR) / CO2_REF_BAR), W m^-2
    earth_weight: np.ndarray  # 1 up to CO2_JOIN_BAR, log-linearly to 0 at CO2_THICK_BAR
    albedo_cold: np.ndarray  # (P, K, 1, 1) `radiation.albedo_coefficients`
    albedo_warm: np.ndarray
    olr_table: np.ndarray | None = None  # (P, len(T_OLR_TABLE)) `_olr` tabulated in T (see `_tabulate`)
    olr_slope_table: np.ndarray | None = None
    albedo_table: np.ndarray | None = None  # (P, len(T_ALBEDO_TABLE) * len(MU_TABLE)) `_albedo` in (T, mu)

    def subset(self, mask):
        mask = np.asarray(mask)
        whole = mask.dtype == bool and mask.all() or mask.dtype != bool and np.array_equal(mask, np.arange(self.s0.shape[0]))
        if whole:  # nothing to copy (the tables are large)
            return self
        return _Planets(**{f.name: None if getattr(self, f.name) is None else getattr(self, f.name)[mask]
                           for f in fields(self)})


# The stepper reads OLR and albedo from per-planet tables (each planet's pCO2, star and albedos are
# fixed, so both are functions of T, and of T and mu): the 20-term fits cost ~20x a table lookup.
# Linear interpolation on 1 K (OLR), 2 K and 0.1 in mu (albedo); tests/world/test_climate.py bounds the error.
T_OLR_TABLE = np.arange(100.0, 451.0, 1.0)
T_ALBEDO_TABLE = np.arange(radiation.T_FIT_RANGE_K[0], radiation.T_FIT_RANGE_K[1] + 0.5, 2.0)
MU_TABLE = np.linspace(0.0, 1.0, 11)


def _tabulate(pl: _Planets) -> _Planets:
    """`pl` with its OLR and albedo tables filled in (computed once per distinct set of coefficients)."""
    n = pl.s0.shape[0]
    radiative = ("wet", "w_p", "ch4_forcing", "warm_albedo", "ice_albedo", "olr_coeffs", "olr_coeffs_thick",
                 "co2_log_forcing", "earth_weight", "albedo_cold", "albedo_warm")
    key = np.concatenate([getattr(pl, f).reshape(n, int(np.prod(getattr(pl, f).shape[1:]))) for f in radiative], axis=1)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True) if n else (None, np.arange(0), np.arange(0))
    distinct = pl.subset(first)
    olr, slope = _olr(distinct, T_OLR_TABLE[None, None, :])
    albedo = _albedo(distinct, T_ALBEDO_TABLE[None, :, None], MU_TABLE[None, None, :])
    inverse = inverse.ravel()
    olr, slope, albedo = olr[inverse], slope[inverse], np.broadcast_to(albedo, (first.size,) + albedo.shape[1:])[inverse]
    n_albedo = T_ALBEDO_TABLE.size * MU_TABLE.size
    return replace(pl, olr_table=olr.reshape(n, T_OLR_TABLE.size), olr_slope_table=slope.reshape(n, T_OLR_TABLE.size),
                   albedo_table=np.broadcast_to(albedo, (n,) + albedo.shape[1:]).reshape(n, n_albedo))


def _interp_index(x, nodes):
    """Cell index and weight of x (P, N) on equally spaced nodes, clamped to the table."""
    pos = np.clip((x - nodes[0]) / (nodes[1] - nodes[0]), 0.0, nodes.size - 1 - 1e-9)
    i = pos.astype(np.intp)
    return i, pos - i


def _olr_lookup(pl: _Planets, t):
    """`_olr` from the planet's table (continued as T^4 outside it)."""
    flat = t.reshape(t.shape[0], -1)
    i, w = _interp_index(flat, T_OLR_TABLE)
    i = i + _row_offsets(pl.olr_table)
    olr = (1 - w) * pl.olr_table.take(i) + w * pl.olr_table.take(i + 1)
    slope = (1 - w) * pl.olr_slope_table.take(i) + w * pl.olr_slope_table.take(i + 1)
    tc = np.clip(flat, T_OLR_TABLE[0], T_OLR_TABLE[-1])
    outside = flat != tc
    if outside.any():
        olr = np.where(outside, olr * (flat / tc) ** 4, olr)
        slope = np.where(outside, 4 * olr / flat, slope)
    return olr.reshape(t.shape), slope.reshape(t.shape)


def _row_offsets(table):
    """(P, 1) flat offsets of each planet's row of a (P, K) table, for `ndarray.take`."""
    return (np.arange(table.shape[0]) * table.shape[1])[:, None]


def _albedo_lookup(pl: _Planets, t, mu):
    """`_albedo` from the planet's (T, mu) table, bilinear."""
    shape = np.broadcast_shapes(t.shape, mu.shape)
    flat_t = np.broadcast_to(t, shape).reshape(shape[0], -1)
    flat_mu = np.broadcast_to(mu, shape).reshape(shape[0], -1)
    i, wi = _interp_index(flat_t, T_ALBEDO_TABLE)
    j, wj = _interp_index(flat_mu, MU_TABLE)
    tab, m = pl.albedo_table, MU_TABLE.size
    k = i * m + j + _row_offsets(tab)
    lo = (1 - wj) * tab.take(k) + wj * tab.take(k + 1)
    hi = (1 - wj) * tab.take(k + m) + wj * tab.take(k + m + 1)
    return ((1 - wi) * lo + wi * hi).reshape(shape)


def _mean_molecular_weight(co2_vmr):
    return co2_vmr * MOLAR_MASS["CO2"] + (1 - co2_vmr) * MOLAR_MASS["N2"]


def _diffusion(x: ClimateInputs) -> np.ndarray:
    """Meridional (rotating) or day-night (locked) transport coefficient [W m^-2 K^-1] (module docstring)."""
    p = x.surface_pressure_bar * 1e5
    cp, mmw = _specific_heat(x.co2_vmr), _mean_molecular_weight(x.co2_vmr)
    cp_e, mmw_e = _specific_heat(CO2_VMR_EARTH), _mean_molecular_weight(CO2_VMR_EARTH)
    omega = 2 * np.pi / (x.rotation_period_days * DAY)
    stone = D_EARTH * (p / P_EARTH) * (cp / cp_e) * (mmw_e / mmw) ** 2 * (OMEGA_EARTH / omega) ** 2
    rotating = np.minimum(stone, D_MAX_FACTOR * D_EARTH)
    column = (cp * p / x.gravity_ms2) / (cp_e * P_EARTH / G_EARTH)
    wave = (R_GAS / mmw / np.sqrt(cp)) / (R_GAS / mmw_e / np.sqrt(cp_e))
    radius = (x.gravity_ms2 / G_EARTH) ** (0.279 / _G_MASS_EXPONENT)  # R/R_E via the terran M-R relation
    return np.where(x.tidally_locked, D_LOCKED * column * wave / radius, rotating)


def _ocean_fraction_bands(x: ClimateInputs, grid: ClimateGrid) -> np.ndarray:
    """(P, lat) ocean fraction per band: Earth's belts where earth_geography, else uniform ocean_fraction."""
    earth = radiation.earth_ocean_fraction(np.rad2deg(grid.lat_edges_rad()))
    uniform = np.repeat(x.ocean_fraction[:, None], grid.nlat, axis=1)
    return np.where(x.earth_geography[:, None], earth[None, :], uniform)


def _planet_coefficients(x: ClimateInputs, grid: ClimateGrid) -> _Planets:
    col = lambda v: np.asarray(v, dtype=float)[:, None, None]  # noqa: E731
    fit = lambda v: np.asarray(v, dtype=float)[:, :, None, None]  # noqa: E731
    p = x.surface_pressure_bar
    pco2 = p * x.co2_vmr
    teff = np.clip(x.star_teff_k, *stars.TEFF_RANGE_K)
    wet = (x.ocean_fraction > 0).astype(float)
    c_atm = _specific_heat(x.co2_vmr) * p * 1e5 / x.gravity_ms2
    f_ocean = np.where(wet[:, None] > 0, _ocean_fraction_bands(x, grid), 0.0)  # dry planets are all land
    tile_weight = np.stack([1 - f_ocean, f_ocean], axis=-1)
    exchange = NU_LAND_OCEAN / np.maximum(tile_weight, TILE_FRACTION_MIN)
    cold, warm = radiation.albedo_coefficients(pco2, teff)
    pl = _Planets(
        s0=col(S_EARTH * x.luminosity_lsun / x.semimajor_axis_au**2), ecc=col(x.eccentricity),
        obliquity=col(np.where(x.tidally_locked, 0.0, x.obliquity_deg)), period_s=col(x.orbital_period_days * DAY),
        c_land=col(C_LAND + c_atm), c_ocean=col(C_OCEAN + c_atm), c_atm=col(c_atm),
        c_mixed=col(x.ocean_fraction * C_OCEAN + (1 - x.ocean_fraction) * C_LAND + c_atm),
        tile_weight=tile_weight, exchange=exchange, diffusion=col(_diffusion(x)),
        warm_albedo=col(x.surface_albedo), ice_albedo=col(radiation.frozen_surface_albedo(teff)), wet=col(wet),
        w_p=col(1.0 - np.exp(-p / P_BROADENING_BAR)), ch4_forcing=col(_ch4_forcing(p, x.ch4_vmr)),
        olr_coeffs=fit(radiation.olr_coefficients(pco2)),
        olr_coeffs_thick=fit(radiation.olr_coefficients(np.maximum(pco2, CO2_JOIN_BAR))),
        co2_log_forcing=col(5.35 * np.log(np.clip(pco2, 1e-12, CO2_JOIN_BAR) / CO2_REF_BAR)),
        earth_weight=col(np.clip(np.log(CO2_THICK_BAR / np.maximum(pco2, 1e-12)) / np.log(CO2_THICK_BAR / CO2_JOIN_BAR),
                                 0.0, 1.0)),
            albedo_cold=fit(cold), albedo_warm=fit(warm))
    return _tabulate(pl)


def _specific_heat(co2_vmr):
    """c_p [J kg^-1 K^-1] of an N2/CO2 mixture (mass-weighted)."""
    m_co2 = co2_vmr * MOLAR_MASS["CO2"]
    mass_frac = m_co2 / (m_co2 + (1 - co2_vmr) * MOLAR_MASS["N2"])
    return mass_frac * CP_CO2 + (1 - mass_frac) * CP_N2


class _EnergyBalance:
    """Time stepper for one group of planets: rotating (zonal bands, land and ocean tiles) or locked (lat x lon).

    Fields are (P, lat, ncol): ncol = 2 tiles (land, ocean) for rotating planets, nlon cells for locked
    ones. Methods take the planets' coefficients `pl` so that a subset (the planets still converging,
    or still needing seasonal orbits) can be stepped on its own.
    """

    def __init__(self, grid: ClimateGrid, locked: bool):
        self.grid, self.locked = grid, locked
        self.ncol = grid.nlon if locked else 2
        self.lat = np.deg2rad(grid.lat_deg)[None, :, None]  # (1, lat, 1)
        self.lo, self.up = _lat_operator(grid)
        self.lat_matrix = (np.diag(self.lo[1:], -1) + np.diag(self.up[:-1], 1) - np.diag(self.lo + self.up))[None]
        self.band = np.diff(np.sin(grid.lat_edges_rad())) / 2.0  # (lat,) area fraction per band
        if locked:
            self.lon_coef = _lon_coefficient(grid)  # (lat,)
            lon = np.deg2rad(grid.lon_deg)[None, None, :]
            self.locked_pattern = orbits.locked_insolation(1.0, self.lat, lon)  # (1, lat, lon) = cos zenith

    def orbit_insolation(self, pl: _Planets, n_steps: int):
        """Insolation and daytime-mean cos zenith, (n_steps, P, lat, 1 or nlon), at step mid-points from the equinox."""
        frac = (np.arange(n_steps) + 0.5) / n_steps
        m = orbits.equinox_mean_anomaly(pl.ecc)[None] + 2 * np.pi * frac[:, None, None, None]
        dist2, decl = orbits.orbital_state(m, pl.ecc[None], pl.obliquity[None])  # (n, P, 1, 1)
        s = pl.s0[None] * dist2
        if self.locked:
            mu = np.broadcast_to(self.locked_pattern[None], (n_steps, pl.s0.shape[0]) + self.locked_pattern.shape[1:])
            return s * mu, mu
        return orbits.daily_mean_insolation(s, self.lat[None], decl), orbits.daytime_mean_cos_zenith(self.lat[None], decl)

    def capacity(self, pl: _Planets, t):
        """Heat capacity [J m^-2 K^-1] of every tile; sea ice lowers the ocean tile's."""
        if self.locked:
            return np.broadcast_to(pl.c_mixed, t.shape)
        t_ocean = t[..., 1:]
        ice = _ice_fraction(t_ocean, pl.wet)
        cold = 0.5 * (1 - np.tanh((t_ocean - T_SEA_ICE_COLD) / DT_ICE))
        sea_ice = C_SEA_ICE_MELTING * (1 - cold) + C_SEA_ICE_COLD * cold + pl.c_atm
        return np.concatenate([np.broadcast_to(pl.c_land, t[..., :1].shape),
                               pl.c_ocean * (1 - ice) + sea_ice * ice], axis=-1)

    def fluxes(self, pl: _Planets, t, q, mu):
        """Absorbed stellar flux, OLR and dOLR/dT, (P, lat, ncol) W m^-2."""
        olr, slope = _olr_lookup(pl, t)
        return q * (1 - _albedo_lookup(pl, t, mu)), olr, slope

    def global_mean(self, pl: _Planets, field_):
        """(P,) area-weighted mean of a (P, lat, ncol) field."""
        if self.locked:
            return (field_ * self.band[:, None]).mean(axis=2).sum(axis=1)
        return (field_ * pl.tile_weight * self.band[:, None]).sum(axis=(1, 2))

    def operator(self, pl: _Planets, t, c_over_dt=None, spinup_factor: float = SPINUP_FACTOR):
        """Implicit operator for the next steps; c_over_dt None = spin-up pseudo time.

        Delta form: the operator only sets the path and the stability, never the fixed point, so it
        is refreshed every few steps. Rotating planets: a dense inverse of the two-tile latitude
        system. Locked planets: the factorisation (c - D L_lat) c^-1 (c - D L_lon) with the pointwise
        diagonal c, i.e. tridiagonal latitude lines and periodic longitude rows.
        """
        _, slope = _olr_lookup(pl, t)
        if c_over_dt is None:
            c_over_dt = spinup_factor * slope
        diag = c_over_dt + slope  # (P, lat, ncol)
        d = pl.diffusion
        if not self.locked:
            return (_tile_inverse(diag, d, self.lo, self.up, pl.exchange),)
        d_lat = np.swapaxes(diag, 1, 2)  # (P, lon, lat): lines along latitude
        lat_fac = _tridiag_factor(-d * self.lo, d_lat + d * (self.lo + self.up), -d * self.up)
        off = d * self.lon_coef[None, :, None]  # (P, lat, 1)
        return lat_fac, _cyclic_factor(diag + 2 * off, off), diag

    def tendency(self, pl: _Planets, t, q, mu):
        """Net heating [W m^-2] of every tile, the absorbed and emitted fluxes and dOLR/dT."""
        absorbed, olr, slope = self.fluxes(pl, t, q, mu)
        div = self.lat_matrix @ t  # L_lat T, (1, lat, lat) @ (P, lat, ncol)
        if self.locked:
            div = div + _apply_lon(t, self.lon_coef)
            return absorbed - olr + pl.diffusion * div, absorbed, olr, slope
        exchange = pl.exchange * (t[..., ::-1] - t)
        return absorbed - olr + pl.diffusion * div + exchange, absorbed, olr, slope

    def step(self, pl: _Planets, t, q, mu, op):
        """One delta-form implicit step with operator `op` from `operator`.

        Also returns the fluxes the step applied: the absorbed flux at the start (the albedo is explicit)
        and the emission linearised to the end of the step, OLR + dOLR/dT dT, so that their orbit sums
        close exactly in a periodic state.
        """
        resid, absorbed, olr, slope = self.tendency(pl, t, q, mu)
        dt = self.apply(op, resid)
        return np.maximum(t + dt, 10.0), absorbed, olr + slope * dt, resid

    def apply(self, op, resid):
        """Temperature increment of the implicit operator `op` for heating `resid` (P, lat, ncol)."""
        if not self.locked:
            return (op[0] @ resid.reshape(resid.shape[0], -1, 1)).reshape(resid.shape)
        lat_fac, lon_fac, diag = op
        x = np.swapaxes(_tridiag_solve(lat_fac, np.swapaxes(resid, 1, 2)), 1, 2) * diag
        return _cyclic_solve(lon_fac, x)

    def absorbed_at(self, pl: _Planets, t_surface, n_steps: int):
        """Orbit- and global-mean absorbed flux (P,) of planets held at uniform temperatures t_surface (P,)."""
        q_orbit, mu_orbit = self.orbit_insolation(pl, n_steps)
        t = np.broadcast_to(t_surface[:, None, None], (t_surface.shape[0], self.grid.nlat, self.ncol))
        return np.mean([self.global_mean(pl, q * (1 - _albedo_lookup(pl, t, mu))) for q, mu in zip(q_orbit, mu_orbit)],
                       axis=0)

    def spin_up(self, pl: _Planets, t, q_mean, mu_mean, max_steps: int):
        """Pseudo-time iteration to annual-mean balance; converged planets drop out of the batch.

        The budget checked every REFRESH_STEPS steps is that of the last step's start (no extra flux call).
        """
        active, sub, net = np.arange(t.shape[0]), pl, None
        for k in range(0, max_steps, REFRESH_STEPS):
            if k >= MIN_SPINUP_STEPS:
                keep = np.abs(net) >= SPINUP_TOL_WM2
                active, sub = active[keep], sub.subset(keep)
                if active.size == 0:
                    break
            ta, qa, ma = t[active], q_mean[active], mu_mean[active]
            op = self.operator(sub, ta, spinup_factor=SPINUP_FACTOR if k < SPINUP_LATE_STEPS else SPINUP_FACTOR_LATE)
            for _ in range(REFRESH_STEPS):
                ta, absorbed, olr, _ = self.step(sub, ta, qa, ma, op)
            net = self.global_mean(sub, absorbed - olr)
            t[active] = ta
        return t

    def run(self, pl: _Planets, max_spinup: int, n_orbits: int, steps_per_month: int, t_start: float):
        """Monthly-mean T (P, 12, lat, ncol), and global annual-mean absorbed and OLR fluxes (P,)."""
        g = self.grid
        n = pl.s0.shape[0]
        n_steps = g.n_months * steps_per_month
        q_orbit, mu_orbit = self.orbit_insolation(pl, n_steps)  # (n_steps, P, lat, 1 or nlon)
        q_mean = q_orbit.mean(axis=0)
        mu_mean = (q_orbit * mu_orbit).sum(axis=0) / np.maximum(q_orbit.sum(axis=0), 1e-9)  # insolation-weighted
        shape = (n, g.nlat, self.ncol)
        t = self.spin_up(pl, np.full(shape, t_start), q_mean, mu_mean, max_spinup)
        # Orbits much shorter than the thermal time C/B have a negligible seasonal transient: one orbit.
        short = (pl.period_s < SHORT_ORBIT_FRACTION * pl.c_ocean / B_REFERENCE)[:, 0, 0]
        min_orbits = np.where(short, 1, n_orbits)
        dt_step = pl.period_s / n_steps
        monthly = np.zeros((n, g.n_months) + shape[1:])
        absorbed_mean, olr_mean = np.zeros(n), np.zeros(n)
        active = np.arange(n)
        # Heat capacity from the annual-mean (spin-up) ice cover, held through the orbits: a capacity that
        # changed with the season would make sum(C dT) over a periodic orbit non-zero (a spurious source).
        capacity = self.capacity(pl, t)
        for orbit in range(MAX_ORBIT_FACTOR * n_orbits):
            sub, ta, dts = pl.subset(active), t[active], dt_step[active]
            c_over_dt = capacity[active] / dts
            month_sum = np.zeros((active.size,) + monthly.shape[1:])
            abs_field, olr_field, resid_sum = 0.0, 0.0, 0.0  # orbit means, (p, lat, ncol)
            for s in range(n_steps):
                q, mu = q_orbit[s][active], mu_orbit[s][active]
                if s % (SEASONAL_REFRESH_MONTHS * steps_per_month) == 0:  # dOLR/dT changes with the season
                    op = self.operator(sub, ta, c_over_dt)
                ta, absorbed, olr, resid = self.step(sub, ta, q, mu, op)
                month_sum[:, s // steps_per_month] += ta / steps_per_month
                abs_field, olr_field = abs_field + absorbed / n_steps, olr_field + olr / n_steps
                resid_sum = resid_sum + resid / n_steps
            abs_sum, olr_sum = self.global_mean(sub, abs_field), self.global_mean(sub, olr_field)
            # The ocean's thermal time is years: a Newton-like half step on the orbit-mean heating
            # moves the whole orbit towards its periodic state (the seasonal shape is kept).
            ta = np.maximum(ta + self.apply(self.operator(sub, ta, spinup_factor=1.0), resid_sum), 10.0)
            t[active], monthly[active], absorbed_mean[active], olr_mean[active] = ta, month_sum, abs_sum, olr_sum
            # Done once a planet has had its orbits and its orbit-mean budget closes (periodic state);
            # short orbits cannot relax further within a few orbits, so they stop after one.
            balanced = short[active] | (np.abs(abs_sum - olr_sum) < SEASONAL_TOL_WM2)
            done = (orbit + 1 >= min_orbits[active]) & balanced
            active = active[~done]
            if active.size == 0:
                break
        return monthly, absorbed_mean, olr_mean


def _surface_climate(x: ClimateInputs, grid: ClimateGrid, n_spinup, n_orbits, steps_per_month, t_start, boil,
                     hot, t_hot):
    """EBM for rotating (two-tile zonal) and tidally locked (2-D) planets.

    Returns T_s (P, 12, lat, lon) (the area-weighted band mean of the tiles for rotating planets), the
    global annual-mean absorbed and emitted fluxes (P,), and the area- and time-weighted fraction of the
    surface with liquid water (tiles between freezing and boiling) (P,).
    Planets flagged `hot` (runaway greenhouse) are not stepped: their surface is t_hot (P,) everywhere and only
    their absorbed flux at that state is computed (the EBM never balances them; stepping them cost ~1 s per
    call for a hot locked planet, whatever the batch size). Their OLR is the absorbed flux and liquid is 0.
    """
    pl = _planet_coefficients(x, grid)
    n = x.luminosity_lsun.shape[0]
    ts = np.zeros((n, grid.n_months, grid.nlat, grid.nlon))
    absorbed, olr, liquid = np.zeros(n), np.zeros(n), np.zeros(n)
    band = np.diff(np.sin(grid.lat_edges_rad())) / 2.0
    for locked in (False, True):
        ebm = _EnergyBalance(grid, locked)
        runaway = (x.tidally_locked == locked) & hot
        if runaway.any():
            ts[runaway] = t_hot[runaway, None, None, None]
            absorbed[runaway] = ebm.absorbed_at(pl.subset(runaway), t_hot[runaway], grid.n_months * steps_per_month)
            olr[runaway] = absorbed[runaway]
        mask = (x.tidally_locked == locked) & ~hot
        if not mask.any():
            continue
        sub = pl.subset(mask)
        t, absorbed[mask], olr[mask] = ebm.run(sub, n_spinup, n_orbits, steps_per_month, t_start)
        wet_cells = (t > T_FREEZE) & (t < boil[mask][:, None, None, None])
        if locked:
            ts[mask] = t
            liquid[mask] = (wet_cells * band[:, None]).mean(axis=(1, 3)).sum(axis=1)
        else:
            w = sub.tile_weight[:, None]  # (p, 1, lat, 2)
            ts[mask] = np.broadcast_to((t * w).sum(axis=-1)[..., None], (t.shape[0],) + ts.shape[1:])
            liquid[mask] = (wet_cells * w * band[:, None]).sum(axis=(2, 3)).mean(axis=1)
    return ts, absorbed, olr, liquid

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
    limit = habitable.seff_limits(np.clip(x.star_teff_k, *stars.TEFF_RANGE_K), x.planet_mass_earth)[
        "runaway_greenhouse"]
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
    A planet whose surface temperature is the same at every longitude (every rotating planet: zonal
    bands) has its columns computed once per band and copied along longitude, which gives the same
    values as computing every cell (each column depends only on its own T_s and the planet's T_s range).
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
    zonal = np.all(ts == ts[..., :1], axis=(1, 2, 3))
    for group, ncol in ((np.flatnonzero(zonal), 1), (np.flatnonzero(~zonal), grid.nlon)):
        step = chunk * (grid.nlon // ncol)  # the same intermediate size per batch
        for lo in range(0, group.size, step):
            idx = group[lo:lo + step]
            shape = (idx.size, grid.n_months, grid.nlat, ncol)
            flat = ts[idx, ..., :ncol].reshape(idx.size, -1)  # (p, N)
            t = _column_temperature(flat, ps[idx, None], t_skin[idx], r_dry[idx], cp[idx], wet[idx], grid.sigma)
            q = _humidity(t, ps[idx, None], grid.sigma, has_water[idx])
            t_air[idx] = t.reshape(shape + (grid.nlev,))  # copied along longitude when ncol is 1
            q_out[idx] = q.reshape(shape + (grid.nlev,))
            vmr = (q / EPSILON_WATER) / (1 - q + q / EPSILON_WATER)
            col = ((vmr * dsig).sum(axis=-1) / dsig.sum()).reshape(shape)
            col = np.broadcast_to(col, (idx.size,) + ts.shape[1:])  # (p, 12, lat, lon), summed as before
            col_vmr[idx] = (col * w_area).sum(axis=(2, 3)).mean(axis=1)
    return t_air, q_out, col_vmr


def run_climate(inputs: ClimateInputs, grid: ClimateGrid = GRIDS["demo"], n_spinup: int = 2000, n_orbits: int = 4,
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
    ps = x.surface_pressure_bar * 1e5
    boil = np.nan_to_num(boiling_point_k(ps), nan=0.0)
    runaway, t_hot = _runaway(x)
    # The hot state re-establishes balance (Goldblatt et al. 2013): OLR = absorbed there.
    ts, absorbed, olr, liquid = _surface_climate(x, grid, n_spinup, n_orbits, steps_per_month, t_start, boil,
                                                 runaway, t_hot)

    w_area = grid.cell_area_weights()  # (lat, lon)
    t_mean = (ts * w_area).sum(axis=(2, 3)).mean(axis=1)
    liquid_frac = np.where(runaway | (ps < P_TRIPLE_WATER), 0.0, liquid)

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
        column_h2o_vmr=col_vmr, hz_limits_held=habitable.limits_held(np.clip(x.star_teff_k, *stars.TEFF_RANGE_K)),
        grid=grid)

