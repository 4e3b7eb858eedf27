"""Ground-truth labels from the true planet and its true climate (SPEC.md "Labels")."""

from __future__ import annotations

import math
from typing import Any, Mapping

from astrobio.constants import P_TRIPLE_WATER
from astrobio.world.types import LABEL_KEYS, PRIVILEGED_KEYS, PlanetTruth

LIQUID_WATER_MIN_FRACTION = 0.1  # habitable: liquid water on >= 10% of the surface (area- and time-weighted)
LOG10_FLOOR = -12.0  # log10 mixing ratios are floored here (below any spectroscopic relevance)
CLOUD_TOP_FLOOR_BAR = 1e-4  # 0.1 mbar: a deck this high already flattens every band the spectrum resolves


def is_habitable(liquid_water_fraction: float, runaway: bool, atmosphere_retained: bool,
                 surface_pressure_bar: float) -> bool:
    """Surface liquid water on enough of the surface, no runaway greenhouse, atmosphere retained."""
    return (liquid_water_fraction >= LIQUID_WATER_MIN_FRACTION and not runaway and atmosphere_retained
            and surface_pressure_bar * 1e5 > P_TRIPLE_WATER)


def habitability_class(habitable: bool, biosphere: str) -> int:
    """0 = not habitable, 1 = habitable without a detectable biosphere, 2 = inhabited."""
    if not habitable:
        return 0
    return 2 if biosphere != "none" else 1


def _log10(x: float) -> float:
    return max(math.log10(x), LOG10_FLOOR) if x > 0 else LOG10_FLOOR


def compute_labels(truth: PlanetTruth, climate, i: int) -> dict[str, float]:
    """Labels of planet `i` of a batched true-climate result (see `climate.ClimateResult`)."""
    lwf = float(climate.liquid_water_fraction[i])
    habitable = is_habitable(lwf, bool(climate.runaway[i]), truth.atmosphere_retained,
                             truth.surface_pressure_bar)
    comp = truth.composition
    labels = {
        "habitability_class": habitability_class(habitable, truth.biosphere),
        "mean_surface_temperature_k": float(climate.global_mean_surface_temperature_k[i]),
        "liquid_water_fraction": lwf,
        "surface_pressure_bar": float(truth.surface_pressure_bar),
        "log10_co2": _log10(comp.get("CO2", 0.0)),
        "log10_ch4": _log10(comp.get("CH4", 0.0)),
        "log10_o2": _log10(comp.get("O2", 0.0)),
        "log10_h2o": _log10(comp.get("H2O", 0.0)),
    }
    assert tuple(labels) == LABEL_KEYS
    return labels


def privileged_targets(truth: Mapping[str, Any]) -> list[float]:
    """`PRIVILEGED_KEYS` of a true planet (`PlanetTruth.to_dict()`, as stored): hidden values a model may learn to
    predict during training, never read as inputs. The cloud top is floored at `CLOUD_TOP_FLOOR_BAR`."""
    values = [math.log10(max(float(truth["cloud_top_pressure_bar"]), CLOUD_TOP_FLOOR_BAR)),
              math.log10(float(truth["planet_radius_earth"])), math.log10(float(truth["planet_mass_earth"])),
              float(truth["surface_albedo"])]
    assert len(values) == len(PRIVILEGED_KEYS)
    return values
