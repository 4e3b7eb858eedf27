from dataclasses import replace

import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.world import atmosphere, simulate_run, simulate_runs, solar_system_planet, survey
from astrobio.world.simulate import sample_population
from astrobio.world.types import LABEL_KEYS


@pytest.fixture(scope="module")
def solar_runs():
    return {n: simulate_run(solar_system_planet(n), seed=0) for n in ("Earth", "Mars", "Venus")}


def test_earth_mars_venus_labels(solar_runs):
    earth, mars, venus = solar_runs["Earth"], solar_runs["Mars"], solar_runs["Venus"]
    assert 285.0 <= earth.labels["mean_surface_temperature_k"] <= 291.0  # 288 +- 3 K
    assert earth.labels["habitability_class"] == 2  # habitable with an oxygenic biosphere
    assert mars.labels["habitability_class"] == 0 and mars.labels["liquid_water_fraction"] == 0.0
    assert mars.labels["mean_surface_temperature_k"] < 240.0
    assert venus.labels["habitability_class"] == 0 and venus.extras["runaway"]
    assert venus.labels["mean_surface_temperature_k"] > 373.0


def test_run_contract_shapes(solar_runs):
    run = solar_runs["Earth"]
    assert run.datacube_prior.shape == (2, 12, 8, 16, 5) and run.datacube_prior.dtype == np.float32
    assert run.datacube_true.shape == run.datacube_prior.shape
    assert run.spectrum.shape == (1000, 3) and np.all(np.diff(run.spectrum[:, 0]) > 0)
    assert run.graph.x.shape[1] == 64 and run.graph.edge_index.shape[0] == 2
    assert run.text.strip() and tuple(run.labels) == LABEL_KEYS
    assert run.system == "Solar System" and run.run_id == "sol-earth"
    assert all(run.modality_present().values())


def test_truth_observation_split():
    # A CO2-rich planet beyond Earth's orbit: warm in truth, but without a spectrum the observer's prior
    # atmosphere (1 bar N2, 400 ppm CO2) freezes it, so the input cube is colder than the target cube.
    # (n_transits=0 since the observer now retrieves the atmosphere where a spectrum exists.)
    earth = solar_system_planet("Earth")
    comp = dict(earth.composition, CO2=0.05, N2=0.73)
    outer = replace(earth, name="Outer Earth", semimajor_axis_au=1.1, surface_pressure_bar=2.0,
                    composition=atmosphere.normalise(comp), source="synthetic", system="Test", n_transits=0)
    run = simulate_run(outer, seed=0)
    assert run.datacube_prior[0].mean() < run.datacube_true[0].mean() - 20
    assert run.labels["habitability_class"] == 2
    # observation = truth + catalog-like noise (synthetic planets)
    assert run.observed.star_teff_k != outer.star_teff_k


def test_oxygenic_biosphere_shows_in_atmosphere_and_spectrum():
    earth = solar_system_planet("Earth")
    comp = dict(earth.composition, O2=1e-9, O3=1e-12)
    dead = replace(earth, biosphere="none", composition=atmosphere.normalise(comp), name="Dead Earth")
    live, abiotic = simulate_runs([earth, dead], seed=0)
    assert live.labels["log10_o2"] > -1 and abiotic.labels["log10_o2"] < -8

    def band(run, lo, hi):
        wl, depth = run.spectrum[:, 0], run.spectrum[:, 1]
        m = (wl > lo) & (wl < hi)
        return depth[m].mean()

    # O3 9.6 um band deeper with life, judged against the sigma of the band mean
    diff = band(live, 9.3, 9.9) - band(abiotic, 9.3, 9.9)
    assert diff > 0


def test_same_seed_same_run():
    t = survey.sample_abiotic_population(3, seed=5)
    a, b = simulate_runs(t, seed=5), simulate_runs(t, seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.datacube_prior, y.datacube_prior)
        np.testing.assert_array_equal(x.datacube_true, y.datacube_true)
        assert x.text == y.text and x.labels == y.labels
        if x.spectrum is not None:
            np.testing.assert_array_equal(x.spectrum, y.spectrum)


@pytest.mark.parametrize("field,value", [("planet_radius_earth", -1.0), ("star_teff_k", 9000.0),
                                         ("semimajor_axis_au", float("nan"))])
def test_bad_input_names_field_and_value(field, value):
    bad = replace(solar_system_planet("Earth"), **{field: value})
    with pytest.raises(InputValidationError) as err:
        simulate_run(bad)
    assert field in str(err.value) and str(value) in str(err.value)


def test_bad_resolution_is_a_typed_error():
    with pytest.raises(InputValidationError, match="resolution"):
        simulate_run(solar_system_planet("Earth"), resolution="high")


def test_default_population_class_balance():
    truths = sample_population(240, seed=0)
    runs = simulate_runs(truths, seed=0)
    classes = np.bincount([r.labels["habitability_class"] for r in runs], minlength=3) / len(runs)
    assert (classes >= 0.15).all(), classes


def test_water_vapour_joins_any_composition_that_sums_to_one():
    # The climate's column H2O is added to the true composition: N2 makes room where it can, else every
    # dry gas is diluted in proportion (a pure CO2 atmosphere used to crash here, issue 8).
    from astrobio.world.simulate import with_water_vapour

    earth = atmosphere.normalise({"CO2": 4e-4, "O2": 0.21})
    wet = with_water_vapour(earth, 0.01)
    assert wet["H2O"] == 0.01 and wet["CO2"] == 4e-4 and abs(wet["N2"] - (1 - 0.21 - 4e-4 - 0.01)) < 1e-12
    pure_co2 = with_water_vapour(atmosphere.normalise({"CO2": 1.0}), 0.2)
    assert pure_co2["CO2"] == pytest.approx(0.8) and pure_co2["H2O"] == 0.2 and pure_co2["N2"] == 0.0
    assert sum(pure_co2.values()) == pytest.approx(1.0, abs=1e-12)


def test_the_observer_runs_the_climate_under_the_retrieved_atmosphere():
    # A CO2/CH4 world around a bright M dwarf with 50 transits: the retrieval finds both gases, so the
    # datacube input is computed under more greenhouse gas than the prior and is warmer than the same planet's
    # input without a spectrum (how much warmer depends on the retrieved values' noise, so only the sign).
    earth = solar_system_planet("Earth")
    comp = atmosphere.normalise({"CO2": 1e-2, "CH4": 1e-3, "H2": 1e-5, "O2": 1e-9, "O3": 1e-12})
    world = replace(earth, name="Retrieved b", system="Retrieved", source="synthetic", star_teff_k=3300.0,
                    star_radius_rsun=0.3, star_mass_msun=0.3, star_luminosity_lsun=0.0095, star_activity=0.2,
                    distance_pc=12.0, star_jmag=7.5, semimajor_axis_au=0.12, rotation_period_days=15.0,
                    tidally_locked=True, obliquity_deg=0.0, surface_pressure_bar=1.0, composition=comp,
                    biosphere="methanogenic", cloud_top_pressure_bar=0.6, n_transits=50)
    seen, unseen = simulate_runs([world, replace(world, n_transits=0)], seed=1)
    prior = atmosphere.prior_composition()
    assert seen.extras["detection_sigma"]["CO2"] >= 3.0
    assert seen.extras["observer_composition"]["CO2"] > 3 * prior["CO2"]
    assert unseen.extras["observer_composition"] == prior
    t_seen, t_unseen = (float(c[0].mean()) for c in (seen.datacube_prior, unseen.datacube_prior))
    assert t_seen > t_unseen + 3.0
