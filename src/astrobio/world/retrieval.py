"""The observer's fast atmospheric retrieval of a noisy transmission spectrum.

The observer fits the world's own band model (`spectrum.transmission_depth_ppm`) to the spectrum it
has, the way published exoplanet retrievals fit theirs: maximum a posteriori by bounded
Levenberg-Marquardt, a Laplace (Gauss-Newton) covariance from the Jacobian at the optimum, and
each gas's detection significance from nested model comparison (Benneke & Seager 2013, ApJ 778,
153): the gas is removed, the rest refitted, and the Bayes factor of the two fits' Laplace
evidences is turned into sigma with their calibration (`bayes_factor_sigma`). This is the measure
the detectability literature reports (e.g. Lin et al. 2021; Krissansen-Totton et al. 2018).

Parameters (`PARAMETER_NAMES`): log10 VMRs of CO2, CH4, H2O, O3 and O2; log10 pressure of the
opaque level (the cloud top, or the surface when no deck lies above it: a grey deck and a surface
at the same pressure give the same spectrum, spectrum.py), the radius at that level, and the
isothermal limb temperature. N2 is the balance gas; CO and H2 stay at the observer's prior traces
and N2O at zero (their bands are weak against CO2/CH4/H2O). Where the fitted gases sum above 1 they
are rescaled to sum to 1 with no N2, so every parameter vector is an atmosphere.

Priors are weak Gaussians inside hard bounds (`RetrievalConfig`): each gas 3 dex wide around the
observer's prior atmosphere, the opaque level around 1 bar, the radius around the observed one,
the temperature around the observer's guess. A gas detected below `detection_threshold_sigma`
gets an upper limit instead of a two-sided interval (`_upper_limits`). Inputs are only what an
observer has: the spectrum with its sigma and the observed planet and star parameters; the result
is a deterministic function of them.

Speed: the data are averaged over groups of `bin_factor` adjacent bins (exact for the data; the
model is evaluated on the matching coarser grid with `oversample` sub-samples per coarse bin, a
band-model approximation of the fine-grid average), and every model evaluation of a step (the
point and its finite-difference Jacobian, for all nested fits at once) is one batched call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from astrobio.constants import M_EARTH, R_EARTH, R_SUN
from astrobio.errors import InputValidationError, check_finite_range
from astrobio.world import planets
from astrobio.world.atmosphere import PRIOR_TRACES, normalise, prior_composition
from astrobio.world.spectrum import SpectrumConfig, depth_ppm_unchecked, wavelength_grid
from astrobio.world.types import GASES

RETRIEVED_GASES = ("CO2", "CH4", "H2O", "O3", "O2")
PARAMETER_NAMES = tuple(f"log10_{g.lower()}" for g in RETRIEVED_GASES) + (
    "log10_cloud_top_pressure_bar", "reference_radius_earth", "temperature_k")
_N_GAS = len(RETRIEVED_GASES)
_K = len(PARAMETER_NAMES)
_I_CLOUD, _I_RADIUS, _I_TEMP = _N_GAS, _N_GAS + 1, _N_GAS + 2
_GAS_COLUMNS = [GASES.index(g) for g in RETRIEVED_GASES]
_EYE = np.eye(_K)
_EYE.flags.writeable = False  # shared by every fit
# Gases the observer does not fit: held at the prior's traces (N2O has no prior trace: 0).
_FIXED_TRACES = {g: PRIOR_TRACES.get(g, 0.0) for g in GASES if g not in RETRIEVED_GASES and g != "N2"}
_FIXED_VMR = np.array([_FIXED_TRACES.get(g, 0.0) for g in GASES])  # [G]: the fixed traces, 0 elsewhere
_ABSENT_LOG10 = -30.0  # a removed gas in the nested fits: no absorption at any column


@dataclass(frozen=True)
class RetrievalConfig:
    """Bounds, weak priors and solver settings. Internal parameters: log10 VMRs, log10 P_c/bar,
    R_c / R_observed and ln(T / T_guess)."""

    gas_bounds_log10: tuple[float, float] = (-12.0, 0.0)
    # Prior means in GAS order (RETRIEVED_GASES), log10 VMR: CO2 and CH4 at the observer's prior
    # atmosphere (atmosphere.PRIOR_TRACES: Earth's 400 ppm, 1.8 ppm), H2O at 1e-3 (the order of
    # Earth's column mean), O3 and O2 at 1e-9: no biosphere assumed, and abiotic O2 stays below
    # ~1e-8 on a wet world (atmosphere.py). One sd for all: 3 dex, a weak prior.
    gas_prior_mean_log10: tuple[float, ...] = (round(math.log10(PRIOR_TRACES["CO2"]), 3),
                                               round(math.log10(PRIOR_TRACES["CH4"]), 3), -3.0, -9.0, -9.0)
    gas_prior_sd_dex: float = 3.0
    cloud_bounds_log10_bar: tuple[float, float] = (-5.0, 2.0)
    cloud_prior_log10_bar: tuple[float, float] = (0.0, 1.5)
    radius_bounds_ratio: tuple[float, float] = (0.7, 1.3)  # R_c / observed radius
    radius_prior_sd_ratio: float = 0.1
    # ln(T / T_guess): the limb of a thick greenhouse atmosphere can be far warmer than T_eq (the
    # world's limb temperature, its climate's upper-level mean, spans ~0.65-2.6 T_eq), a thin one
    # near the skin temperature 2^-1/4 T_eq; a weak prior over 0.5-3 T_eq.
    temperature_bounds_ln: tuple[float, float] = (-0.7, 1.1)
    temperature_prior_sd_ln: float = 0.4
    bin_factor: int = 4  # adjacent data bins averaged together (the largest divisor of n_bins <= this)
    oversample: int = 2  # model sub-samples per averaged bin
    start_iterations: int = 4  # steps taken from every start before the best is refined alone
    max_iterations: int = 40
    nested_iterations: int = 12
    tolerance_chi2: float = 1e-2  # stop when an accepted step lowers the objective by less
    limit_steps: int = 1  # Gauss-Newton steps of the other parameters along an undetected gas's grid
    refit_min_delta_chi2: float = 4.0  # nested fits are refitted only where removing the gas costs this much
    constrained_shrink: float = 0.5  # constrained: posterior sd <= this x prior sd
    detection_threshold_sigma: float = 3.0  # a gas the observer adopts must be detected at least this well

    def __post_init__(self) -> None:
        for name in ("gas_bounds_log10", "cloud_bounds_log10_bar", "radius_bounds_ratio", "temperature_bounds_ln"):
            lo, hi = getattr(self, name)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InputValidationError(name, (lo, hi), "finite (low, high) with low < high")
        if len(self.gas_prior_mean_log10) != _N_GAS or not all(
                self.gas_bounds_log10[0] <= m <= self.gas_bounds_log10[1] for m in self.gas_prior_mean_log10):
            raise InputValidationError("gas_prior_mean_log10", self.gas_prior_mean_log10,
                                       f"{_N_GAS} values inside gas_bounds_log10, in the order {RETRIEVED_GASES}")
        check_finite_range("gas_prior_sd_dex", self.gas_prior_sd_dex, 1e-3, 100.0, "dex")
        mean, sd = self.cloud_prior_log10_bar
        if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
            raise InputValidationError("cloud_prior_log10_bar", (mean, sd), "finite (mean, sd) with sd > 0")
        check_finite_range("radius_prior_sd_ratio", self.radius_prior_sd_ratio, 1e-6, 10.0)
        check_finite_range("temperature_prior_sd_ln", self.temperature_prior_sd_ln, 1e-6, 10.0)
        for name in ("bin_factor", "oversample", "start_iterations", "max_iterations", "nested_iterations",
                     "limit_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputValidationError(name, value, "an int >= 1")
        check_finite_range("tolerance_chi2", self.tolerance_chi2, 1e-12, 1e3)
        check_finite_range("refit_min_delta_chi2", self.refit_min_delta_chi2, 0.0, 1e6)
        check_finite_range("constrained_shrink", self.constrained_shrink, 1e-6, 1.0)
        check_finite_range("detection_threshold_sigma", self.detection_threshold_sigma, 0.0, 100.0)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lo = np.array([self.gas_bounds_log10[0]] * _N_GAS + [self.cloud_bounds_log10_bar[0],
                      self.radius_bounds_ratio[0], self.temperature_bounds_ln[0]])
        hi = np.array([self.gas_bounds_log10[1]] * _N_GAS + [self.cloud_bounds_log10_bar[1],
                      self.radius_bounds_ratio[1], self.temperature_bounds_ln[1]])
        return lo, hi

    def prior(self) -> tuple[np.ndarray, np.ndarray]:
        mean = np.array(list(self.gas_prior_mean_log10) + [self.cloud_prior_log10_bar[0], 1.0, 0.0])
        sd = np.array([self.gas_prior_sd_dex] * _N_GAS + [self.cloud_prior_log10_bar[1],
                      self.radius_prior_sd_ratio, self.temperature_prior_sd_ln])
        return mean, sd


@dataclass(frozen=True)
class RetrievalResult:
    """Retrieved parameters (`PARAMETER_NAMES`) with 1-sigma, 68 % and 95 % intervals (Laplace,
    clipped to the bounds; for a gas detected below `detection_threshold_sigma`, upper limits: the
    interval runs from the lower bound to the limit), whether the spectrum constrains each, and each
    gas's detection significance in sigma (keys `RETRIEVED_GASES`)."""

    estimate: dict[str, float]
    sigma: dict[str, float]
    interval_68: dict[str, tuple[float, float]]
    interval_95: dict[str, tuple[float, float]]
    constrained: dict[str, bool]
    detection_sigma: dict[str, float]
    chi2: float  # data chi^2 at the optimum
    n_data: int  # averaged bins fitted
    converged: bool
    names: tuple[str, ...] = field(default=PARAMETER_NAMES)

    def vmr(self, gas: str) -> float:
        """Retrieved volume mixing ratio of `gas`."""
        if gas not in RETRIEVED_GASES:
            raise InputValidationError("gas", gas, f"one of {RETRIEVED_GASES}")
        return 10.0 ** self.estimate[f"log10_{gas.lower()}"]

    def detected(self, gas: str, threshold: float = 5.0) -> bool:
        if gas not in RETRIEVED_GASES:
            raise InputValidationError("gas", gas, f"one of {RETRIEVED_GASES}")
        return self.detection_sigma[gas] >= threshold


@dataclass(frozen=True)
class _Problem:
    """One spectrum's fitting problem on the averaged grid."""

    depth: np.ndarray  # [N] ppm
    sigma: np.ndarray  # [N] ppm
    radius_earth: float
    mass_earth: float
    star_radius_rsun: float
    temperature_k: float
    model_config: SpectrumConfig
    lo: np.ndarray
    hi: np.ndarray
    prior_mean: np.ndarray
    prior_sd: np.ndarray

    def model(self, u: np.ndarray) -> np.ndarray:
        """Depths [B, N] for internal parameter vectors u [B, K]."""
        vmr = np.repeat(_FIXED_VMR[None], u.shape[0], axis=0)
        vmr[:, _GAS_COLUMNS] = 10.0 ** u[:, :_N_GAS]
        total = vmr.sum(axis=1)
        vmr /= np.maximum(total, 1.0)[:, None]  # gases above 1 in sum: rescaled, no N2
        vmr[:, GASES.index("N2")] = np.maximum(0.0, 1.0 - vmr.sum(axis=1))
        # Every row is an atmosphere inside the bounds by construction: the band model's input checks
        # (transmission_depth_ppm) are skipped. Same units and operations as that entry point.
        b = u.shape[0]
        p0 = 10.0 ** u[:, _I_CLOUD] * 1e5
        return depth_ppm_unchecked(
            vmr, self.radius_earth * u[:, _I_RADIUS] * R_EARTH, np.full(b, self.mass_earth * M_EARTH),
            np.full(b, self.star_radius_rsun * R_SUN), self.temperature_k * np.exp(u[:, _I_TEMP]), p0, p0,
            self.model_config)


def _divisor_at_most(n: int, k: int) -> int:
    return max(d for d in range(1, min(n, k) + 1) if n % d == 0)


def _prepare(spectrum, spectrum_config: SpectrumConfig, config: RetrievalConfig, radius_earth: float,
             mass_earth: float, star_radius_rsun: float, temperature_k: float) -> _Problem:
    spec = np.asarray(spectrum, dtype=np.float64)
    n = spectrum_config.n_bins
    if spec.shape != (n, 3):
        raise InputValidationError("spectrum", spec.shape, f"an array [{n}, 3] = (wavelength um, depth ppm, sigma ppm)")
    if not np.all(np.isfinite(spec)) or np.any(spec[:, 2] <= 0):
        raise InputValidationError("spectrum", "array", "finite values with sigma > 0")
    centres, _ = wavelength_grid(spectrum_config)
    if not np.allclose(spec[:, 0], centres, rtol=1e-4):
        raise InputValidationError("spectrum", "wavelengths", "the bin centres of spectrum_config's grid")
    factor = _divisor_at_most(n, config.bin_factor)
    depth = spec[:, 1].reshape(-1, factor).mean(axis=1)  # the model below averages the same way
    sigma = np.sqrt((spec[:, 2] ** 2).reshape(-1, factor).sum(axis=1)) / factor
    model_config = SpectrumConfig(wl_min_um=spectrum_config.wl_min_um, wl_max_um=spectrum_config.wl_max_um,
                                  n_bins=n // factor, spacing=spectrum_config.spacing, oversample=config.oversample)
    lo, hi = config.bounds()
    mean, sd = config.prior()
    return _Problem(depth, sigma, radius_earth, mass_earth, star_radius_rsun, temperature_k, model_config,
                    lo, hi, mean, sd)


# Finite-difference steps per internal parameter (dex, dex, ratio, ln): small against every
# posterior width and large against the band model's interpolation grain.
_FD_STEP = np.array([1e-2] * _N_GAS + [1e-2, 1e-4, 1e-3])


def _objective(p: _Problem, u: np.ndarray, m: np.ndarray, prior_on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(data chi^2 [B], data chi^2 + prior penalty [B])."""
    chi2 = (((p.depth - m) / p.sigma) ** 2).sum(axis=1)
    penalty = ((((u - p.prior_mean) / p.prior_sd) ** 2) * prior_on).sum(axis=1)
    return chi2, chi2 + penalty


def _jacobian(p: _Problem, u: np.ndarray, m: np.ndarray, free: np.ndarray) -> np.ndarray:
    """d model / du [B, N, K] by forward differences, one batched model call (fixed columns 0)."""
    b = u.shape[0]
    step = np.where(u + _FD_STEP > p.hi, -_FD_STEP, _FD_STEP)  # stay inside the bounds
    pert = np.repeat(u[:, None, :], _K, axis=1) + _EYE[None] * step[:, None, :]  # [B, K, K]
    rows = np.flatnonzero(free.ravel())
    jac = np.zeros((b * _K, m.shape[1]))
    if rows.size:
        mp = p.model(pert.reshape(b * _K, _K)[rows])
        jac[rows] = (mp - np.repeat(m, _K, axis=0)[rows]) / step.ravel()[rows, None]
    return jac.reshape(b, _K, -1).transpose(0, 2, 1)


def _fit(p: _Problem, u0: np.ndarray, free: np.ndarray, max_iter: int, tol: float):
    """Bounded Levenberg-Marquardt on B problems at once (each with its own free parameters).

    Returns (u [B, K], model [B, N], data chi^2 [B], J [B, N, K] at u, converged [B])."""
    u = np.clip(u0.astype(np.float64), p.lo, p.hi)
    prior_on = free.astype(np.float64)  # a removed (fixed) gas has no prior term
    m = p.model(u)
    chi2, phi = _objective(p, u, m, prior_on)
    jac = _jacobian(p, u, m, free)
    lam = np.full(u.shape[0], 1e-2)
    active = np.ones(u.shape[0], dtype=bool)
    w = 1.0 / p.sigma
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        jw = jac[idx] * w[None, :, None]  # [b, N, K] Jacobian of the model residual
        r = (p.depth - m[idx]) * w
        prec = prior_on[idx] / p.prior_sd**2
        a = jw.transpose(0, 2, 1) @ jw + prec[:, :, None] * _EYE  # Gauss-Newton Hessian / 2
        g = (jw.transpose(0, 2, 1) @ r[:, :, None])[:, :, 0] - prec * (u[idx] - p.prior_mean)
        diag = np.einsum("bkk->bk", a)
        damped = a + (lam[idx, None] * np.maximum(diag, 1e-12))[:, :, None] * _EYE
        fixed = ~free[idx]
        damped[fixed] = 0.0  # fixed parameters: identity rows, zero step
        damped[:, np.arange(_K), np.arange(_K)] += fixed
        g[fixed] = 0.0
        step = np.linalg.solve(damped, g[:, :, None])[:, :, 0]
        trial = np.clip(u[idx] + step, p.lo, p.hi)
        trial[fixed] = u[idx][fixed]
        mt = p.model(trial)
        chi2_t, phi_t = _objective(p, trial, mt, prior_on[idx])
        better = phi_t < phi[idx]
        acc = idx[better]
        gain = phi[acc] - phi_t[better]
        u[acc], m[acc], chi2[acc], phi[acc] = trial[better], mt[better], chi2_t[better], phi_t[better]
        if acc.size:
            jac[acc] = _jacobian(p, u[acc], m[acc], free[acc])
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-7)
        rej = idx[~better]
        lam[rej] *= 5.0
        active[acc[gain < tol]] = False
        active[rej[lam[rej] > 1e6]] = False  # no descent left at this point
    return u, m, chi2, jac, ~active


def _laplace(p: _Problem, jac: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, float]:
    """Posterior sd over the free parameters (0 elsewhere) and ln sqrt(det Sigma_post / det
    Sigma_prior) from the Gauss-Newton Hessian at the optimum (the Laplace evidence's Occam term).
    Bounds are ignored here: at a bound the Laplace width is only a scale."""
    jw = jac[:, free] * (1.0 / p.sigma)[:, None]
    a = jw.T @ jw + np.diag(1.0 / p.prior_sd[free] ** 2)
    sd = np.zeros(_K)
    sd[free] = np.sqrt(np.diag(np.linalg.inv(a)))
    _, logdet = np.linalg.slogdet(a * p.prior_sd[free][:, None] * p.prior_sd[free][None, :])
    return sd, -0.5 * logdet


def bayes_factor_sigma(ln_b: np.ndarray) -> np.ndarray:
    """Detection significance in sigma from ln(Bayes factor), the calibration Benneke & Seager
    2013 (ApJ 778, 153, Table 2) adopt from Sellke, Bayarri & Berger 2001: B = -1 / (e p ln p),
    sigma = the two-sided normal quantile of p. ln B <= 0 (or B below the bound at p = 1/e) gives 0;
    ln B = 0.9, 2.5, 5.0, 11 give 2.1, 2.7, 3.6, 5.0 sigma (the table)."""
    from scipy.special import lambertw, ndtri

    ln_b = np.asarray(ln_b, dtype=np.float64)
    out = np.zeros_like(ln_b)
    ok = ln_b > 0.0  # B = 1 is p = 1/e, the least evidence the calibration expresses
    big = ok & (ln_b > 600.0)  # exp(-ln B) underflows: p ln p = -1/(e B) gives ln p ~ -ln B
    small = ok & ~big
    x = -np.exp(-1.0 - ln_b[small])
    ln_p = np.real(lambertw(x, -1))  # p ln p = x, p < 1/e
    out[small] = -ndtri(0.5 * np.exp(ln_p))
    out[big] = np.sqrt(2.0 * ln_b[big])  # the normal tail's leading term
    return out


def _starts(p: _Problem) -> np.ndarray:
    """Starting points [S, K]: trace, percent-level and prior-centre gases; opaque level 1 bar."""
    base = np.array([p.prior_mean[:_N_GAS].tolist() + [0.0, 1.0, 0.0]])
    out = np.repeat(base, 3, axis=0)
    out[1, :_N_GAS] = -9.0
    out[2, :_N_GAS] = -2.5
    return out


def retrieve(spectrum, *, planet_radius_earth: float, planet_mass_earth: float, star_radius_rsun: float,
             temperature_guess_k: float, spectrum_config: SpectrumConfig | None = None,
             config: RetrievalConfig | None = None) -> RetrievalResult:
    """Retrieve the atmosphere from an observed spectrum [W, 3] = (wavelength um, depth ppm, sigma ppm).

    Planet and star values are the observer's (a NaN mass is replaced by the mass-radius relation).
    Deterministic: the same inputs give the same result.
    """
    spectrum_config = spectrum_config or SpectrumConfig()
    config = config or RetrievalConfig()
    radius = check_finite_range("planet_radius_earth", planet_radius_earth, 0.05, 30.0, "R_earth")
    star = check_finite_range("star_radius_rsun", star_radius_rsun, 0.05, 100.0, "R_sun")
    mass = float(planet_mass_earth)
    if math.isnan(mass):
        mass = float(planets.mass_from_radius(radius))
    mass = check_finite_range("planet_mass_earth", mass, 1e-3, 3000.0, "M_earth")
    temp = check_finite_range("temperature_guess_k", temperature_guess_k, 20.0, 5000.0, "K")
    p = _prepare(spectrum, spectrum_config, config, radius, mass, star, temp)

    # A few steps from every start, then only the most probable one is refined.
    starts = _starts(p)
    u, _, chi2, _, _ = _fit(p, starts, np.ones_like(starts, dtype=bool), config.start_iterations,
                            config.tolerance_chi2)
    phi = chi2 + (((u - p.prior_mean) / p.prior_sd) ** 2).sum(axis=1)
    lead = u[np.argmin(phi)][None]
    u, _, chi2, jac, conv = _fit(p, lead, np.ones_like(lead, dtype=bool), config.max_iterations, config.tolerance_chi2)
    u_best, chi2_best = u[0], float(chi2[0])
    phi_best = chi2_best + float((((u_best - p.prior_mean) / p.prior_sd) ** 2).sum())
    sd, occam = _laplace(p, jac[0], np.ones(_K, dtype=bool))

    # Nested fits: each gas removed in turn, the rest refitted from the optimum; the Laplace
    # evidences give the Bayes factor of each gas (Benneke & Seager 2013). Refitting only lowers
    # the nested chi^2, so a gas whose plain removal costs less than `refit_min_delta_chi2` is
    # scored without the refit (ln B <= 2 then: at most ~2.5 sigma either way).
    nested = np.repeat(u_best[None], _N_GAS, axis=0)
    nested[np.arange(_N_GAS), np.arange(_N_GAS)] = _ABSENT_LOG10
    nested_free = ~np.eye(_N_GAS, _K, dtype=bool)
    chi2_n = (((p.depth - p.model(nested)) / p.sigma) ** 2).sum(axis=1)
    jac_n = np.repeat(jac[0][None], _N_GAS, axis=0)
    refit = np.flatnonzero(chi2_n - chi2_best >= config.refit_min_delta_chi2)
    if refit.size:
        p_nested = replace(p, lo=np.where(np.arange(_K) < _N_GAS, _ABSENT_LOG10, p.lo))  # removed gas may sit there
        nested[refit], _, chi2_n[refit], jac_n[refit], _ = _fit(
            p_nested, nested[refit], nested_free[refit], config.nested_iterations, config.tolerance_chi2)
    phi_n = chi2_n + ((((nested - p.prior_mean) / p.prior_sd) ** 2) * nested_free).sum(axis=1)
    occam_n = np.array([_laplace(p, jac_n[i], nested_free[i])[1] for i in range(_N_GAS)])
    detection = bayes_factor_sigma(-0.5 * (phi_best - phi_n) + occam - occam_n)
    weak = np.flatnonzero(detection < config.detection_threshold_sigma)
    limits = _upper_limits(p, u_best, jac[0], weak, config.limit_steps)
    return _result(p, config, u_best, sd, detection, limits, chi2_best, bool(conv[0]))


# Grid for the upper limits of undetected gases: the curve is sampled every dex and interpolated
# (log posterior, linear) every 0.02 dex; chi^2 is smooth in log VMR on that scale.
_LIMIT_GRID_STEP_DEX = 1.0
_LIMIT_FINE_STEP_DEX = 0.02


def _upper_limits(p: _Problem, u: np.ndarray, jac: np.ndarray, gases: np.ndarray,
                  steps: int) -> dict[int, tuple[float, float]]:
    """68 % and 95 % upper limits (log10 VMR) of each gas in `gases` from its profile posterior:
    on a grid of the gas's abundance the other parameters take `steps` Gauss-Newton steps from the
    optimum (chord method: the optimum's Jacobian, one batched model call per step), so a gas whose
    excess can be absorbed by the temperature, radius or cloud deck (e.g. CO2 raising the mean
    molecular weight) is not excluded as it would be with the rest held fixed. An undetected gas
    has a one-sided posterior that the Laplace width misdescribes."""
    if gases.size == 0:
        return {}
    lo, hi = p.lo[0], p.hi[0]
    grid = np.linspace(lo, hi, int(round((hi - lo) / _LIMIT_GRID_STEP_DEX)) + 1)
    which = np.repeat(gases, grid.size)
    rows = np.repeat(u[None], which.size, axis=0)
    rows[np.arange(which.size), which] = np.tile(grid, gases.size)
    w = 1.0 / p.sigma
    jw = jac * w[:, None]  # [N, K]
    prec = 1.0 / p.prior_sd**2

    def penalty(r: np.ndarray, m: np.ndarray) -> np.ndarray:  # chi^2 + prior of every parameter
        return (((p.depth - m) * w) ** 2).sum(axis=1) + (((r - p.prior_mean) / p.prior_sd) ** 2).sum(axis=1)

    m = p.model(rows)
    best = penalty(rows, m)
    for _ in range(steps):
        resid = (p.depth - m) * w  # [R, N]
        step = np.zeros_like(rows)
        for k in gases:  # the others' normal equations, without the gas on the grid
            sel = which == k
            o = np.arange(_K) != k
            a = jw[:, o].T @ jw[:, o] + np.diag(prec[o])
            g = resid[sel] @ jw[:, o] - (rows[sel][:, o] - p.prior_mean[o]) * prec[o]
            step[np.ix_(sel, o)] = np.linalg.solve(a, g.T).T
        rows = np.clip(rows + step, p.lo, p.hi)
        m = p.model(rows)
        best = np.minimum(best, penalty(rows, m))  # the lowest real point found: an upper bound on the profile
    best = best.reshape(gases.size, grid.size)
    fine = np.arange(lo, hi + 1e-9, _LIMIT_FINE_STEP_DEX)
    out = {}
    for j, k in enumerate(gases):
        log_post = -0.5 * np.interp(fine, grid, best[j] - best[j].min())
        cdf = np.cumsum(np.exp(log_post - log_post.max()))
        cdf /= cdf[-1]
        out[int(k)] = (float(np.interp(0.68, cdf, fine)), float(np.interp(0.95, cdf, fine)))
    return out


def _result(p: _Problem, config: RetrievalConfig, u: np.ndarray, sd: np.ndarray, detection: np.ndarray,
            limits: dict[int, tuple[float, float]], chi2: float, converged: bool) -> RetrievalResult:
    """Internal parameters -> reported units (radius in R_earth, temperature in K; delta method).
    Gases in `limits` (undetected) get one-sided intervals from the lower bound to their limits."""
    scale = np.ones(_K)
    scale[_I_RADIUS] = p.radius_earth
    estimate = u * scale
    sigma = sd * scale
    lo, hi = p.lo * scale, p.hi * scale
    temp = p.temperature_k * math.exp(u[_I_TEMP])
    estimate[_I_TEMP] = temp
    sigma[_I_TEMP] = temp * sd[_I_TEMP]
    lo[_I_TEMP], hi[_I_TEMP] = p.temperature_k * math.exp(p.lo[_I_TEMP]), p.temperature_k * math.exp(p.hi[_I_TEMP])

    def interval(z: float, which: int) -> dict[str, tuple[float, float]]:
        # An upper limit is no tighter than the Laplace width, which carries the correlations
        # the profile's few chord steps may miss (e.g. CO2 against the temperature).
        return {n: (float(lo[k]), max(limits[k][which], float(min(hi[k], estimate[k] + z * sigma[k]))))
                if k in limits else
                (float(max(lo[k], estimate[k] - z * sigma[k])), float(min(hi[k], estimate[k] + z * sigma[k])))
                for k, n in enumerate(PARAMETER_NAMES)}

    shrunk = sd <= config.constrained_shrink * p.prior_sd
    gas_ok = detection >= config.detection_threshold_sigma
    constrained = {n: bool(shrunk[k] and (k >= _N_GAS or gas_ok[k])) for k, n in enumerate(PARAMETER_NAMES)}
    return RetrievalResult(
        estimate={n: float(estimate[k]) for k, n in enumerate(PARAMETER_NAMES)},
        sigma={n: float(sigma[k]) for k, n in enumerate(PARAMETER_NAMES)},
        interval_68=interval(1.0, 0), interval_95=interval(1.959964, 1),
        constrained=constrained,
        detection_sigma={g: float(detection[k]) for k, g in enumerate(RETRIEVED_GASES)},
        chi2=chi2, n_data=int(p.depth.size), converged=converged)


def observer_composition(result: RetrievalResult | None, prior: Mapping[str, float] | None = None) -> dict[str, float]:
    """The observer's atmosphere: each retrieved gas where the spectrum constrains it
    (`result.constrained`), the prior's value elsewhere; N2 the balance (normalised over GASES).

    `prior` defaults to `atmosphere.prior_composition()`; pass the climate's H2O in it to use that
    where the spectrum leaves H2O open. `result` None (no spectrum) gives the prior.
    """
    comp = normalise(prior_composition() if prior is None else prior)
    if result is None:
        return comp
    for gas in RETRIEVED_GASES:
        if result.constrained[f"log10_{gas.lower()}"]:
            comp[gas] = result.vmr(gas)
    trace = sum(v for g, v in comp.items() if g != "N2")
    if trace > 1.0:  # retrieved gases that crowd out N2: rescaled to sum to 1
        comp = {g: (v / trace if g != "N2" else 0.0) for g, v in comp.items()}
    return normalise({g: v for g, v in comp.items() if g != "N2"})
