"""No leaks: every observed modality is a function of the observed values, the observed spectrum, the log's
facts and the seed — two truths that differ only in hidden properties give identical inputs."""

import re
from dataclasses import replace

import numpy as np
import pytest

from astrobio.world import atmosphere, simulate_runs, solar_system_planet, survey
from astrobio.world.features import spectrum_reading

GAS_WORDS = re.compile(r"co2|carbon dioxide|ch4|methane|h2o|water vapour|ozone|\bo3\b|oxygen|\bo2\b", re.I)


def _planet(**kw):
    """A temperate CO2/CH4 world around an M dwarf (TRAPPIST-1e-like orbit), synthetic so it gets noise."""
    earth = solar_system_planet("Earth")
    comp = atmosphere.normalise({"CO2": 1e-2, "CH4": 1e-3, "H2": 1e-5, "O2": 1e-9, "O3": 1e-12})
    base = replace(earth, name="Leak Test b", system="Leak Test", source="synthetic", star_teff_k=3300.0,
                   star_radius_rsun=0.3, star_mass_msun=0.3, star_luminosity_lsun=0.0095, star_activity=0.2,
                   distance_pc=12.0, star_jmag=8.5, semimajor_axis_au=0.12, rotation_period_days=15.0,
                   tidally_locked=True, obliquity_deg=0.0, surface_pressure_bar=1.0, composition=comp,
                   biosphere="methanogenic", cloud_top_pressure_bar=0.6)
    return replace(base, **kw)


def _assert_same_inputs(a, b):
    np.testing.assert_array_equal(spectrum_reading(a.extras), spectrum_reading(b.extras))  # NaN-aware
    np.testing.assert_array_equal(a.datacube_prior, b.datacube_prior)
    assert a.text == b.text
    np.testing.assert_array_equal(a.observed.numeric_vector(), b.observed.numeric_vector())  # NaN-aware
    assert (a.spectrum is None) == (b.spectrum is None)
    if a.spectrum is not None:
        np.testing.assert_array_equal(a.spectrum, b.spectrum)
    assert a.graph.num_nodes == b.graph.num_nodes
    np.testing.assert_array_equal(a.graph.x.numpy(), b.graph.x.numpy())
    np.testing.assert_array_equal(a.graph.edge_index.numpy(), b.graph.edge_index.numpy())


def test_atmosphere_retained_flipped_without_a_spectrum_gives_identical_inputs():
    kept = _planet(n_transits=0)
    eroded = replace(kept, atmosphere_retained=False)  # same pressure and composition: only the flag differs
    a, b = simulate_runs([kept, eroded], seed=4)
    assert a.labels["habitability_class"] != b.labels["habitability_class"]  # the truth differs...
    _assert_same_inputs(a, b)  # ...what the observer has does not


@pytest.mark.parametrize("hidden", [{"biosphere": "none"}, {"discovery_year": 2024, "catalog_missing": ()}])
def test_hidden_differences_with_the_same_spectrum_give_identical_inputs(hidden):
    # `biosphere` is the label's hidden cause: with the same gases (so the same climate and spectrum) the
    # observer cannot tell a living planet from a sterile one
    live = _planet(n_transits=10)
    other = replace(live, **hidden)
    a, b = simulate_runs([live, other], seed=4)
    assert a.spectrum is not None
    _assert_same_inputs(a, b)


def test_planets_without_a_spectrum_make_no_gas_claims():
    runs = simulate_runs(survey.sample_abiotic_population(40, seed=9), seed=9)
    without = [r for r in runs if r.spectrum is None]
    assert without
    for r in without:
        assert not GAS_WORDS.search(r.text), r.text
        assert r.extras["detection_sigma"] == {}
    for r in runs:  # every claim the log makes is one the retrieval made at >= 3 sigma
        for gas, sigma in r.extras["detection_sigma"].items():
            if sigma < 3.0:
                name = {"CO2": "carbon dioxide", "CH4": "methane", "H2O": "water vapour", "O3": "ozone",
                        "O2": "oxygen"}[gas]
                assert not re.search(rf"\b{gas}\b|{name}", r.text, re.I), (gas, sigma, r.text)
