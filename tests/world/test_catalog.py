"""Real planets: the shipped catalog reader and the Solar System anchors."""

import pytest

from astrobio.errors import InputValidationError
from astrobio.world import catalog, stars


def test_solar_system_planets_and_unknown_name():
    earth = catalog.solar_system_planet("earth")
    assert earth.biosphere == "oxygenic" and abs(earth.composition["O2"] - 0.2095) < 1e-3
    assert catalog.solar_system_planet("Venus").surface_pressure_bar == 92.0
    with pytest.raises(InputValidationError, match="name"):
        catalog.solar_system_planet("Pluto")


def test_catalog_planets_skip_with_reasons_never_silently():
    rows = catalog.catalog_rows()
    truths, skipped = catalog.catalog_planets()
    assert len(truths) + len(skipped) == len(rows) == 5288
    assert len(truths) > 500
    reasons = " ".join(r for _, r in skipped)
    assert "star_name" in reasons and "star_teff_k" in reasons and "planet_radius_earth" in reasons
    by_name = {t.name: t for t in truths}
    # TRAPPIST-1 (2566 K in the catalog) is modelled when the simulator's Teff range reaches it, else skipped
    # with the reason
    if stars.TEFF_RANGE_K[0] <= 2566.0:
        assert "TRAPPIST-1 e" in by_name
    else:
        assert "star_teff_k" in dict(skipped)["TRAPPIST-1 e"]
    lhs = by_name["LHS 1140 b"]
    assert 1.4 < lhs.planet_radius_earth < 2.0 and lhs.star_teff_k < 3500 and lhs.source == "catalog"

def test_catalog_row_errors_name_the_field():
    row = {"name": "X b", "system": "X", "star_name": "X", "star_teff_k": "9500", "planet_radius_rjup": "0.1",
           "period_days": "10"}
    with pytest.raises(InputValidationError, match="star_teff_k"):
        catalog.catalog_truth_from_row(row)
    row.update(star_teff_k="5000", planet_radius_rjup="1.0")
    with pytest.raises(InputValidationError, match="planet_radius_earth"):
        catalog.catalog_truth_from_row(row)
