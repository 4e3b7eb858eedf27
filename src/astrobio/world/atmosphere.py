"""Atmospheric composition: volume mixing ratios, the observer's prior, and biosphere gases.

A composition is a dict gas -> volume mixing ratio (VMR) over `GASES`; N2 is the
balance gas, so `normalise` sets N2 = 1 - sum(others). Missing gases are 0. Values are column-mean,
well-mixed VMRs: that is what the isothermal transit model in spectrum.py consumes.

A biosphere changes the atmosphere (SPEC.md "Metabolic network"):
- "oxygenic" (oxygenic photosynthesis): O2 drawn log-uniformly in [1e-3, 0.21], from Proterozoic
  levels (~0.5-10 % PAL; Lyons, Reinhard & Planavsky 2014, Nature 506, 307) to modern Earth; O3
  from the photochemical O2-O3 relation (`ozone_from_o2`); biogenic N2O 0.1-1 ppm around the
  pre-industrial 0.27 ppm (MacFarling Meure et al. 2006, GRL 33, L14810); CH4 1-10 ppm, the modest
  levels an oxic world sustains (pre-industrial 0.7 ppm; Proterozoic <~10 ppm, Olson et al. 2016,
  PNAS 113, 11447).
- "methanogenic" (H2 + CO2 -> CH4 on an anoxic world): CH4 drawn log-uniformly in [1e-4, 3.5e-3],
  the range of the Archean methanogen biosphere model of Kharecha, Kasting & Siefert 2005
  (Geobiology 3, 53); O2 is left at its (abiotic, anoxic) value.
- "none": the abiotic composition, unchanged (abiotic O2 is <~1e-8 on a wet world with a normal
  H budget, Segura et al. 2007 / Harman et al. 2015, unless the input says otherwise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from astrobio.constants import MOLAR_MASS
from astrobio.errors import InputValidationError

# Gases whose volume mixing ratios the true atmosphere carries (N2 is the balance gas). Part of the run
# contract: world/types.py re-exports it (PlanetTruth.composition has exactly these keys).
GASES = ("N2", "O2", "CO2", "CH4", "H2O", "O3", "N2O", "CO", "H2")

# Biospheres a true planet can host. "none" = sterile or no detectable metabolism (re-exported by types.py).
BIOSPHERES = ("none", "oxygenic", "methanogenic")

# Present atmospheric level of O2 (dry-air VMR; Tans & Keeling / NOAA, 20.95 %).
O2_PAL = 0.2095

# Earth's column-mean O3 VMR: 300 DU (2.687e20 molecules m^-2 per DU) over a 1 atm column of
# dry air (P/(mu m_u g) = 2.15e29 molecules m^-2) = 3.75e-7 (WMO ozone assessments: ~300 DU mean).
O3_COLUMN_MEAN_VMR_EARTH = 300 * 2.687e20 / 2.147e29

# O3 column relative to modern Earth vs O2 in PAL, from 1-D photochemical models (Kasting &
# Donahue 1980, JGR 85, 3255, Fig. 3; Segura et al. 2003, Astrobiology 3, 689, Fig. 2); values read
# from the published curves, accurate to ~30 %. O3 saturates near 1 PAL and falls slowly: at 1 %
# PAL the layer still holds about half the modern column.
_O3_TABLE_LOG10_PAL = np.array([-4.0, -3.0, -2.0, -1.0, 0.0])
_O3_TABLE_REL_COLUMN = np.array([0.03, 0.15, 0.47, 0.80, 1.0])
# Below 1e-4 PAL the column falls as a power law with the slope of the last tabulated decade.
_O3_LOW_O2_SLOPE = math.log10(0.15 / 0.03)

# Ranges drawn by `apply_biosphere` (sources in the module docstring), VMR.
OXYGENIC_O2_RANGE = (1e-3, 0.21)
OXYGENIC_N2O_RANGE = (1e-7, 1e-6)
OXYGENIC_CH4_RANGE = (1e-6, 1e-5)
METHANOGENIC_CH4_RANGE = (1e-4, 3.5e-3)

# The observer's prior (SPEC.md): 1 bar N2 with Earth's CO2 (400 ppm, NOAA global mean 2015), CH4
# (1.8 ppm, NOAA 2015), and trace CO (0.1 ppm) and H2 (0.53 ppm, Novelli et al. 1999, JGR 104,
# 30427). No O2/O3/N2O: the observer does not assume a biosphere. H2O comes from the climate run.
PRIOR_TRACES = {"CO2": 4.0e-4, "CH4": 1.8e-6, "CO": 1.0e-7, "H2": 5.3e-7}
PRIOR_SURFACE_PRESSURE_BAR = 1.0

# Sum of the non-N2 gases may exceed 1 by float round-off only.
_SUM_TOLERANCE = 1e-9


def normalise(composition: Mapping[str, float]) -> dict[str, float]:
    """Full composition over GASES with N2 = 1 - sum(other gases); validates every entry.

    Raises InputValidationError for an unknown gas, a negative/NaN/inf VMR, or non-N2 gases that
    sum above 1. A given N2 value is ignored (it is the balance gas).
    """
    if not isinstance(composition, Mapping):
        raise InputValidationError("composition", composition, f"a dict of VMRs over {GASES}")
    out = {g: 0.0 for g in GASES}
    for gas, value in composition.items():
        if gas not in out:
            raise InputValidationError("composition", gas, f"a gas in {GASES}")
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise InputValidationError(f"composition[{gas}]", value, "a number") from None
        if not math.isfinite(v) or v < 0.0 or v > 1.0:
            raise InputValidationError(f"composition[{gas}]", value, "a finite VMR in [0, 1]")
        out[gas] = v
    trace = sum(v for g, v in out.items() if g != "N2")
    if trace > 1.0 + _SUM_TOLERANCE:
        raise InputValidationError("composition", composition, "non-N2 VMRs summing to <= 1")
    out["N2"] = max(0.0, 1.0 - trace)
    return out


def composition_array(compositions: Mapping[str, float] | list[Mapping[str, float]]) -> np.ndarray:
    """Normalised VMRs as float64 [P, G] in GASES order (a single dict gives P = 1)."""
    if isinstance(compositions, Mapping):
        compositions = [compositions]
    rows = [normalise(c) for c in compositions]
    return np.array([[row[g] for g in GASES] for row in rows], dtype=np.float64)


_MOLAR_MASS_VECTOR = np.array([MOLAR_MASS[g] for g in GASES])  # [G] g/mol


def mean_molecular_weight(composition: Mapping[str, float] | np.ndarray) -> float | np.ndarray:
    """Mean molecular weight in g/mol: sum_i x_i M_i (IUPAC molar masses, constants.MOLAR_MASS).

    A dict gives a float; an array of VMRs [..., G] in GASES order gives an array [...].
    """
    if isinstance(composition, Mapping):
        comp = normalise(composition)
        return float(sum(comp[g] * MOLAR_MASS[g] for g in GASES))
    vmr = np.asarray(composition, dtype=np.float64)
    if vmr.shape[-1:] != (len(GASES),):
        raise InputValidationError("composition", vmr.shape, f"an array [..., {len(GASES)}] in GASES order")
    return vmr @ _MOLAR_MASS_VECTOR


def prior_composition() -> dict[str, float]:
    """The observer's assumed atmosphere: N2 with Earth-like CO2 and CH4 and trace CO, H2."""
    return normalise(PRIOR_TRACES)


def ozone_from_o2(o2_vmr: float | np.ndarray) -> float | np.ndarray:
    """Column-mean O3 VMR in photochemical steady state with `o2_vmr` (Earth-like UV and column).

    Log-log interpolation of the relative O3 column (Kasting & Donahue 1980; Segura et al. 2003)
    times Earth's column-mean VMR; flat above 1 PAL (saturation), power law below 1e-4 PAL, 0 at 0.
    """
    o2 = np.asarray(o2_vmr, dtype=np.float64)
    if not np.all(np.isfinite(o2)) or np.any(o2 < 0) or np.any(o2 > 1):
        raise InputValidationError("o2_vmr", o2_vmr, "finite VMRs in [0, 1]")
    with np.errstate(divide="ignore"):
        log_pal = np.log10(o2 / O2_PAL)
    rel = np.interp(log_pal, _O3_TABLE_LOG10_PAL, _O3_TABLE_REL_COLUMN)
    low = log_pal < _O3_TABLE_LOG10_PAL[0]
    rel = np.where(low, _O3_TABLE_REL_COLUMN[0] * 10.0 ** (_O3_LOW_O2_SLOPE * (log_pal - _O3_TABLE_LOG10_PAL[0])), rel)
    o3 = np.where(o2 > 0, rel * O3_COLUMN_MEAN_VMR_EARTH, 0.0)
    return float(o3) if o3.ndim == 0 else o3


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(10.0 ** rng.uniform(math.log10(lo), math.log10(hi)))


def apply_biosphere(composition: Mapping[str, float], biosphere: str,
                    rng: np.random.Generator) -> dict[str, float]:
    """New normalised composition with the gases `biosphere` produces (module docstring ranges).

    The input is not modified. Each call draws from `rng` only for biospheres that need it, so the
    same seed gives the same atmosphere.
    """
    if biosphere not in BIOSPHERES:
        raise InputValidationError("biosphere", biosphere, f"one of {BIOSPHERES}")
    if not isinstance(rng, np.random.Generator):
        raise InputValidationError("rng", rng, "a numpy.random.Generator")
    comp = normalise(composition)
    biogenic: dict[str, float] = {}
    if biosphere == "oxygenic":
        o2 = _log_uniform(rng, *OXYGENIC_O2_RANGE)
        biogenic = {"O2": o2, "O3": ozone_from_o2(o2),
                    "N2O": max(comp["N2O"], _log_uniform(rng, *OXYGENIC_N2O_RANGE)),
                    "CH4": max(comp["CH4"], _log_uniform(rng, *OXYGENIC_CH4_RANGE))}
    elif biosphere == "methanogenic":
        biogenic = {"CH4": max(comp["CH4"], _log_uniform(rng, *METHANOGENIC_CH4_RANGE))}
    # Biogenic gases displace N2 first; in an N2-poor atmosphere they dilute the other gases.
    others = {g: v for g, v in comp.items() if g != "N2" and g not in biogenic}
    room = 1.0 - sum(biogenic.values())
    scale = min(1.0, room / sum(others.values())) if sum(others.values()) > 0 else 1.0
    return normalise({**{g: v * scale for g, v in others.items()}, **biogenic})
