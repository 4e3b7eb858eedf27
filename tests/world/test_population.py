import math

import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.world import population
from astrobio.world.types import GASES


def test_abiotic_population_is_deterministic_and_m_dwarf_heavy():
    a = population.sample_abiotic_population(300, seed=3)
    b = population.sample_abiotic_population(300, seed=3)
    assert [t.to_dict() for t in a] == [t.to_dict() for t in b]
    assert len(a) == 300 and len({t.name for t in a}) == 300
    teff = np.array([t.star_teff_k for t in a])
    assert 0.45 < (teff < 3900).mean() < 0.7  # M-dwarf heavy (55% by design)
    s = np.array([t.instellation_searth for t in a])
    assert (s < 0.3).any() and (s > 1.5).any() and ((s > 0.5) & (s < 1.0)).any()  # outside, in, inside HZ
    for t in a:
        assert set(t.composition) == set(GASES)
        assert math.isclose(sum(t.composition.values()), 1.0, rel_tol=1e-9)
        assert t.biosphere == "none"


def test_observation_noise_and_missing_values():
    truths = population.sample_abiotic_population(200, seed=1)
    obs = [population.observe(t, np.random.default_rng(i)) for i, t in enumerate(truths)]
    dteff = np.array([o.star_teff_k - t.star_teff_k for o, t in zip(obs, truths)])
    assert 60 < dteff.std() < 140  # +-100 K catalog-like error
    assert np.isnan([o.planet_mass_earth for o in obs]).mean() > 0.2  # masses often missing
    assert np.isnan([o.star_age_gyr for o in obs]).mean() > 0.5


def test_solar_system_planets_and_unknown_name():
    earth = population.solar_system_planet("earth")
    assert earth.biosphere == "oxygenic" and abs(earth.composition["O2"] - 0.2095) < 1e-3
    assert population.solar_system_planet("Venus").surface_pressure_bar == 92.0
    with pytest.raises(InputValidationError, match="name"):
        population.solar_system_planet("Pluto")


def test_catalog_planets_skip_with_reasons_never_silently():
    rows = population.catalog_rows()
    truths, skipped = population.catalog_planets()
    assert len(truths) + len(skipped) == len(rows) == 5288
    assert len(truths) > 500
    reasons = " ".join(r for _, r in skipped)
    assert "star_name" in reasons and "star_teff_k" in reasons and "planet_radius_earth" in reasons
    by_name = {t.name: t for t in truths}
    # TRAPPIST-1 (2566 K in the catalog) is below the 2600 K validity of Kopparapu's fits: skipped, with reason
    assert "star_teff_k" in dict(skipped)["TRAPPIST-1 e"]
    lhs = by_name["LHS 1140 b"]
    assert 1.4 < lhs.planet_radius_earth < 2.0 and lhs.star_teff_k < 3500 and lhs.source == "catalog"

def test_catalog_row_errors_name_the_field():
    row = {"name": "X b", "system": "X", "star_name": "X", "star_teff_k": "9500", "planet_radius_rjup": "0.1",
           "period_days": "10"}
    with pytest.raises(InputValidationError, match="star_teff_k"):
        population.catalog_truth_from_row(row)
    row.update(star_teff_k="5000", planet_radius_rjup="1.0")
    with pytest.raises(InputValidationError, match="planet_radius_earth"):
        population.catalog_truth_from_row(row)
