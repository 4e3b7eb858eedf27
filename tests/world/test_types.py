"""world/types.py: unique run ids and a validate_truth that checks every PlanetTruth field."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.world.catalog import catalog_planets, solar_system_planet
from astrobio.world.survey import sample_abiotic_population
from astrobio.world.types import (BIOSPHERES, GASES, PlanetTruth, legacy_run_id_for, name_hash, run_id_for,
                                  validate_truth)


@pytest.fixture
def earth() -> PlanetTruth:
    return solar_system_planet("Earth")


def _catalog(earth: PlanetTruth, name: str) -> PlanetTruth:
    return replace(earth, name=name, system=name[:-2], source="catalog")


def test_ids_exact_values(earth):
    assert run_id_for(earth) == "sol-earth"  # fixed names keep their readable id
    kepler = _catalog(earth, "Kepler-999 b")
    assert name_hash("Kepler-999 b") == "de746120"  # first 8 hex digits of sha256("Kepler-999 b")
    assert run_id_for(kepler) == "cat-kepler-999-b-de746120" and legacy_run_id_for(kepler) == "cat-kepler-999-b"
    assert run_id_for(replace(kepler, source="user")).startswith("usr-kepler-999-b-")
    assert run_id_for(_catalog(earth, "αβ b")) == f"cat-b-{name_hash('αβ b')}"


def test_distinct_names_get_distinct_ids(earth):
    pairs = [("Kepler-999 b", "Kepler 999 b"), ("α Cen b", "β Cen b"), ("GJ 1002 b", "GJ-1002-b"),
             ("TOI-700 d", "toi 700 d")]
    for a, b in pairs:
        ta, tb = _catalog(earth, a), _catalog(earth, b)
        assert legacy_run_id_for(ta) == legacy_run_id_for(tb)  # the old ids collided
        assert run_id_for(ta) != run_id_for(tb)


def test_synthetic_ids_carry_the_full_seed():
    # seed 10007 and seed 7 used to give the same names (seed % 10000), so one store dropped the other's runs
    a = {run_id_for(t) for t in sample_abiotic_population(20, seed=7)}
    b = {run_id_for(t) for t in sample_abiotic_population(20, seed=10007)}
    assert len(a) == len(b) == 20 and not a & b
    assert min(a).startswith("syn-asb-0007-") and min(b).startswith("syn-asb-10007-")


def test_catalog_ids_are_unique():
    truths, _ = catalog_planets()
    assert len({run_id_for(t) for t in truths}) == len(truths)


def test_valid_truths_pass(earth):
    for t in [earth, solar_system_planet("Venus"), *sample_abiotic_population(30, seed=3)]:
        validate_truth(t)


# (field, bad value, text the error must contain)
BAD_VALUES = [
    ("name", "", "non-empty string"), ("system", None, "non-empty string"), ("source", "martian", "one of"),
    ("star_teff_k", 100.0, "K"), ("star_teff_k", "5772", "a number"), ("star_radius_rsun", -1.0, "positive"),
    ("star_mass_msun", math.inf, "finite"), ("star_luminosity_lsun", 0.0, "positive"),
    ("star_age_gyr", math.nan, "finite"), ("star_age_gyr", math.inf, "finite"), ("star_activity", math.nan, "finite"),
    ("star_activity", 1.5, "[0.0, 1.0]"), ("distance_pc", "10", "a number"), ("star_jmag", 99.0, "mag"),
    ("planet_radius_earth", 0.0, "positive"), ("planet_mass_earth", None, "a number"),
    ("semimajor_axis_au", -0.1, "positive"), ("eccentricity", 0.99, "[0.0, 0.95]"),
    ("obliquity_deg", 200.0, "deg"), ("rotation_period_days", 0.0, "positive"), ("tidally_locked", 1, "a bool"),
    ("surface_pressure_bar", -1.0, "bar"), ("ocean_fraction", 1.2, "[0.0, 1.0]"),
    ("surface_albedo", math.nan, "finite"), ("cloud_top_pressure_bar", None, "a number"),
    ("biosphere", "unicorns", "one of"), ("atmosphere_retained", "yes", "a bool"), ("n_transits", -1, ">= 0"),
    ("n_transits", 2.5, "integer"), ("n_transits", True, "integer"), ("discovery_method", "", "non-empty"),
    ("discovery_year", "2024", "integer"), ("catalog_missing", ("warp_drive",), "field names"),
    ("composition", {"CO2": 1.0}, "exactly"), ("composition", None, "dict"),
]


@pytest.mark.parametrize("field,value,expected", BAD_VALUES)
def test_each_bad_field_is_named(earth, field, value, expected):
    with pytest.raises(InputValidationError) as info:
        validate_truth(replace(earth, **{field: value}))
    assert info.value.field == field and expected in str(info.value)


def test_every_field_is_checked(earth):
    # a test per field above, so no PlanetTruth field can be added without being validated
    checked = {f for f, _, _ in BAD_VALUES}
    assert checked == {f.name for f in fields(PlanetTruth)}


def test_composition_entries(earth):
    for gas, value, expected in [("O2", "0.2", "a number"), ("CO2", -1e-3, "[0, 1]"), ("CH4", math.nan, "[0, 1]")]:
        comp = dict(earth.composition, **{gas: value})
        with pytest.raises(InputValidationError, match=expected) as info:
            validate_truth(replace(earth, composition=comp))
        assert info.value.field == f"composition[{gas}]"
    too_much = {g: 0.3 for g in GASES}
    with pytest.raises(InputValidationError, match="summing"):
        validate_truth(replace(earth, composition=too_much))


def test_numpy_scalars_are_numbers(earth):
    validate_truth(replace(earth, star_teff_k=np.float32(5772.0), n_transits=np.int64(3),
                           tidally_locked=np.bool_(False)))
    assert "none" in BIOSPHERES
    with pytest.raises(InputValidationError, match="PlanetTruth"):
        validate_truth({"name": "Earth"})
