"""Physics features and the spectrum reading: exact values on tiny inputs, and the vectors a simulated run carries."""

import math

import numpy as np
import pytest

from astrobio.constants import S_EARTH
from astrobio.errors import InputValidationError
from astrobio.world import simulate_run, simulate_runs, solar_system_planet, survey
from astrobio.world.atmosphere import PRIOR_SURFACE_PRESSURE_BAR
from astrobio.world.features import instellation_wm2, physics_features, spectrum_reading
from astrobio.world.retrieval import RETRIEVED_GASES
from astrobio.world.types import PHYSICS_FEATURES, READING_GASES, SPECTRUM_READING_FIELDS


def test_physics_features_exact_for_a_sun_earth_pair():
    obs = {"instellation_searth": 1.0, "star_teff_k": 5780.0, "planet_mass_earth": 1.0,
           "equilibrium_temperature_k": math.nan}
    feats = physics_features(obs, 1.0)
    assert feats.dtype == np.float64 and feats.shape == (len(PHYSICS_FEATURES),)
    assert instellation_wm2(feats) == S_EARTH
    # Kopparapu 2014 at T* = 0: S_maxGH = 0.356, S_runaway = 1.107 (SPEC.md table)
    assert feats[1] == pytest.approx((0.356 - 1.0) / (0.356 - 1.107), rel=1e-12)
    # T_eq from S for Bond albedo 0.3: (1361 * 0.7 / (4 sigma))^(1/4) = 254.6 K
    assert feats[2] * 300.0 == pytest.approx(254.58, abs=0.01)
    assert feats[0] == 0.0 and feats[3] == 0.0


def test_instellation_rebuilt_from_l_over_a2_and_hz_position_clipped():
    hot = physics_features({"instellation_searth": math.nan, "star_luminosity_lsun": 4.0, "semimajor_axis_au": 0.5,
                            "star_teff_k": 9000.0, "equilibrium_temperature_k": 500.0}, 10.0)
    assert hot.tolist() == pytest.approx([math.log10(16.0), 2.0, 500.0 / 300.0, 1.0], rel=1e-12)
    assert instellation_wm2(hot) == pytest.approx(16.0 * S_EARTH, rel=1e-14)


def test_unknown_instellation_is_a_typed_error_naming_the_planet():
    with pytest.raises(InputValidationError, match=r"x\.instellation_searth"):
        physics_features({"name": "x", "instellation_searth": math.nan}, 1.0)
    with pytest.raises(InputValidationError, match="prior_surface_pressure_bar"):
        physics_features({"name": "x", "instellation_searth": 1.0}, 0.0)


def test_a_simulated_run_carries_the_features_of_its_observed_values():
    run = simulate_run(solar_system_planet("Mars"), seed=0)
    assert run.physics_features.dtype == np.float64
    np.testing.assert_array_equal(run.physics_features, physics_features(run.observed, PRIOR_SURFACE_PRESSURE_BAR))


def test_spectrum_reading_exact_values_and_undefined_without_a_spectrum():
    extras = {"detection_sigma": {"CO2": 0.0, "CH4": 1.0, "H2O": 5.0, "O3": 0.0, "O2": 2.5},
              "observer_composition": {"CO2": 1e-2, "CH4": 1e-6, "H2O": 1e-3, "O3": 0.0, "O2": 0.21, "N2": 0.77},
              "clear_atmosphere_sigma": 10.0, "runaway": True, "esi": 0.9}  # true-planet extras are ignored
    r = spectrum_reading(extras)
    assert r.shape == (len(SPECTRUM_READING_FIELDS),)
    np.testing.assert_allclose(r[:5], np.arcsinh([0.0, 1.0, 5.0, 0.0, 2.5]), rtol=1e-12)
    log10 = np.array([-2.0, -6.0, -3.0, -12.0, math.log10(0.21)])  # O3 at the 1e-12 floor
    np.testing.assert_allclose(r[5:10], (log10 + 6.0) / 6.0, rtol=1e-12, atol=1e-15)
    assert r[10] == pytest.approx(math.asinh(10.0))
    assert np.isnan(spectrum_reading({"detection_sigma": {}, "observer_composition": {}})).all()


def test_reading_gases_are_the_retrieved_gases():
    assert READING_GASES == RETRIEVED_GASES


def test_a_simulated_run_carries_its_reading_only_with_a_spectrum():
    runs = simulate_runs(survey.sample_abiotic_population(30, seed=3), seed=3)
    with_spec = [r for r in runs if r.spectrum is not None]
    assert with_spec and len(with_spec) < len(runs)
    for r in runs:
        reading = spectrum_reading(r.extras)
        assert np.isfinite(reading).all() == (r.spectrum is not None)
        if r.spectrum is not None:
            assert (reading[:5] >= 0).all() and (-1 <= reading[5:10]).all() and (reading[5:10] <= 1).all()
