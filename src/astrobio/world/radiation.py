"""Top-of-atmosphere radiation for the energy-balance climate: published fits and star-dependent ice.

- Outgoing longwave radiation OLR(T_s, pCO2) and planetary (TOA) albedo A(T_s, pCO2, mu, a_s, Teff):
  the polynomial fits of Haqq-Misra et al. (2016, ApJ 827, 120, appendix) to the 1-D radiative-convective
  model of Kopparapu et al. (2013, 2014): 1 bar N2 plus pCO2, a water-saturated troposphere, no clouds.
  log10(OLR / mW m^-2) is a quartic in (log10 T, log10 pCO2); the albedo a cubic in (mu = cos zenith,
  surface albedo a_s, log10 T, log10 pCO2), fitted separately below and above 250 K and for F, G, K and M
  host stars (Teff 7200, 5800, 4600, 3400 K), so the clear atmosphere scatters less around red stars.
  Coefficients: resources/reference/hm16_radiation_fits.csv (its header names the transcription; the
  OLR fit agrees digit for digit with VPLanet-POISE's fdOLRhm16). The fits hold for 150-350 K and
  1e-5-10 bar of CO2 (Haqq-Misra et al. 2016); outside we hold the inputs at the nearest bound (OLR
  continued as T^4 from the bound). Between the four stars the coefficients, hence the albedo, are
  interpolated linearly in Teff; cooler than 3400 K or hotter than 7200 K they are held. The two
  temperature branches are blended linearly over 245-255 K (the fits differ by ~0.01 at 250 K).
- Frozen-surface albedo by host star: the broadband albedo of snow under the spectra of the four stars
  of Shields et al. (2013, Astrobiology 13, 715): 0.40 for AD Leo (M3.5V) up to 0.67 for an F2V star
  (resources/reference/ice_albedo_shields2013.csv, which also lists their bare and 50% blue ice; snow
  keeps Earth's snowball branch, the 50% mixture does not), because ice and snow absorb
  in the near-infrared where M dwarfs emit most (Joshi & Haberle 2012, Astrobiology 12, 3; von Paris
  et al. 2013, A&A 549, A94 show the same). Interpolated linearly in Teff, held outside 3410-6810 K.
- Earth's ocean fraction per 10-degree belt (Sellers 1965; resources/reference/earth_ocean_fraction_sellers1965.csv).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from importlib import resources

import numpy as np

T_FIT_RANGE_K = (150.0, 350.0)  # Haqq-Misra et al. 2016
PCO2_FIT_RANGE_BAR = (1.0e-5, 10.0)  # Haqq-Misra et al. 2016
ALBEDO_BRANCH_K, ALBEDO_BLEND_K = 250.0, 5.0
# Monomials mu^i a_s^j log10(T)^k of the albedo fits after log10 pCO2 is folded in (total degree <= 3).
ALBEDO_MONOMIALS = tuple((i, j, k) for i in range(4) for j in range(4) for k in range(4) if i + j + k <= 3)


def _reference_rows(name: str) -> list[dict]:
    path = resources.files("astrobio.resources") / "reference" / name
    with path.open() as fh:
        return list(csv.DictReader(line for line in fh if not line.startswith("#")))


@lru_cache(maxsize=1)
def _fits():
    """{'olr': (5, 5) array c[k_logT, k_logp]; 'albedo_cold'/'albedo_warm': {teff: (4,4,4,4) array}}."""
    olr = np.zeros((5, 5))
    albedo: dict[str, dict[float, np.ndarray]] = {"albedo_cold": {}, "albedo_warm": {}}
    for row in _reference_rows("hm16_radiation_fits.csv"):
        e = tuple(int(row[k]) for k in ("e_mu", "e_as", "e_logT", "e_logp"))
        c = float(row["coefficient"])
        if row["quantity"] == "olr":
            olr[e[2], e[3]] += c
        else:
            table = albedo[row["quantity"]].setdefault(float(row["teff_k"]), np.zeros((4, 4, 4, 4)))
            table[e] += c
    return {"olr": olr, **albedo}


def _log_pco2(pco2_bar):
    return np.log10(np.clip(np.asarray(pco2_bar, dtype=float), *PCO2_FIT_RANGE_BAR))


def olr_coefficients(pco2_bar) -> np.ndarray:
    """(P, 5) coefficients of log10(OLR / mW m^-2) as a quartic in log10 T for each planet's pCO2."""
    lp = _log_pco2(np.atleast_1d(pco2_bar))
    return np.polynomial.polynomial.polyval(lp, _fits()["olr"].T).T  # (P, 5), lowest power first


def olr_and_slope(t, coeffs):
    """OLR [W m^-2] and dOLR/dT of the fit; coeffs (P, 5, 1, 1) from `olr_coefficients`, t (P, ...)."""
    tc = np.clip(t, *T_FIT_RANGE_K)
    lt = np.log10(tc)
    y = coeffs[:, 4] * lt + coeffs[:, 3]
    dy = 4 * coeffs[:, 4] * lt + 3 * coeffs[:, 3]
    for k in (2, 1, 0):
        y = y * lt + coeffs[:, k]
        if k > 0:
            dy = dy * lt + k * coeffs[:, k]
    ratio4 = (t / tc) ** 4
    olr = 10.0**y / 1000.0 * ratio4
    inside = (t >= T_FIT_RANGE_K[0]) & (t <= T_FIT_RANGE_K[1])
    slope = np.where(inside, olr * dy / t, 4.0 * olr / t)  # d(10^y)/dT = 10^y ln10 y'(lt) / (T ln10)
    return olr, slope


def albedo_coefficients(pco2_bar, teff_k) -> tuple[np.ndarray, np.ndarray]:
    """(P, len(ALBEDO_MONOMIALS)) coefficients of the cold and warm albedo fits for each planet."""
    lp = _log_pco2(np.atleast_1d(pco2_bar))
    teff = np.atleast_1d(np.asarray(teff_k, dtype=float))
    out = []
    for key in ("albedo_cold", "albedo_warm"):
        tables = _fits()[key]
        nodes = np.array(sorted(tables))
        stack = np.stack([tables[n] for n in nodes])  # (4 stars, mu, as, logT, logp)
        # Linear interpolation weights in Teff, held outside the four stars.
        w = np.stack([np.interp(teff, nodes, np.eye(nodes.size)[i]) for i in range(nodes.size)], axis=1)
        per_planet = np.einsum("ps,sijkl->pijkl", w, stack)
        folded = np.polynomial.polynomial.polyval(lp[:, None, None, None], np.moveaxis(per_planet, -1, 0), tensor=False)
        out.append(np.stack([folded[:, i, j, k] for i, j, k in ALBEDO_MONOMIALS], axis=1))
    return out[0], out[1]


def _poly3(coeffs, mu, a_s, lt):
    powers = [[np.ones_like(mu), mu, mu * mu, mu * mu * mu], [1.0, a_s, a_s * a_s, a_s * a_s * a_s],
              [1.0, lt, lt * lt, lt * lt * lt]]
    total = 0.0
    for m, (i, j, k) in enumerate(ALBEDO_MONOMIALS):
        total = total + coeffs[:, m] * powers[0][i] * powers[1][j] * powers[2][k]
    return total


def toa_albedo(t, mu, a_s, cold, warm):
    """Planetary albedo in [0, 1]; cold/warm (P, M, 1, 1) from `albedo_coefficients` (module docstring)."""
    tc = np.clip(t, *T_FIT_RANGE_K)
    lt = np.log10(tc)
    mu = np.clip(mu, 0.0, 1.0)
    w = np.clip((tc - ALBEDO_BRANCH_K + ALBEDO_BLEND_K) / (2 * ALBEDO_BLEND_K), 0.0, 1.0)
    albedo = (1 - w) * _poly3(cold, mu, a_s, lt) + w * _poly3(warm, mu, a_s, lt)
    return np.clip(albedo, 0.0, 1.0)


@lru_cache(maxsize=1)
def _ice_table():
    rows = _reference_rows("ice_albedo_shields2013.csv")
    return (np.array([float(r["teff_k"]) for r in rows]), np.array([float(r["albedo_snow"]) for r in rows]))


def frozen_surface_albedo(teff_k):
    """Broadband snow albedo for the host star (Shields et al. 2013; module docstring)."""
    nodes, values = _ice_table()
    return np.interp(np.asarray(teff_k, dtype=float), nodes, values)


@lru_cache(maxsize=1)
def _earth_ocean_table():
    rows = _reference_rows("earth_ocean_fraction_sellers1965.csv")
    return np.array([[float(r["lat_south_deg"]), float(r["lat_north_deg"]), float(r["ocean_fraction"])] for r in rows])


def earth_ocean_fraction(lat_edges_deg) -> np.ndarray:
    """Earth's ocean fraction of each band between consecutive `lat_edges_deg` (area-weighted Sellers belts)."""
    tab = _earth_ocean_table()
    edges = np.asarray(lat_edges_deg, dtype=float)
    out = np.empty(edges.size - 1)
    for b in range(edges.size - 1):
        lo, hi = edges[b], edges[b + 1]
        s_lo = np.sin(np.deg2rad(np.clip(tab[:, 0], lo, hi)))
        s_hi = np.sin(np.deg2rad(np.clip(tab[:, 1], lo, hi)))
        area = s_hi - s_lo  # overlap of each Sellers belt with the band, in sin(lat)
        out[b] = (area * tab[:, 2]).sum() / area.sum()
    return out
