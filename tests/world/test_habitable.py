import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.world import habitable


def test_solar_limits_match_kopparapu_2014():
    hz = habitable.habitable_zone(5780.0, 1.0)
    assert hz["runaway_greenhouse"] == pytest.approx(0.95, abs=0.01)
    assert hz["maximum_greenhouse"] == pytest.approx(1.68, abs=0.01)
    assert hz["recent_venus"] == pytest.approx(1.0 / np.sqrt(1.776), rel=1e-12)
    assert hz["moist_greenhouse"] == pytest.approx(1.0 / np.sqrt(1.0140), rel=1e-12)


def test_limits_are_ordered_and_scale_with_sqrt_luminosity():
    teff = np.linspace(2600.0, 7200.0, 24)
    hz = habitable.habitable_zone(teff, 1.0)
    keys = habitable.HZ_KEYS
    for inner, outer in zip(keys[:-1], keys[1:]):
        assert np.all(hz[inner] < hz[outer]), (inner, outer)
    hz4 = habitable.habitable_zone(teff, 4.0)
    np.testing.assert_allclose(hz4["early_mars"], 2 * hz["early_mars"], rtol=1e-12)


def test_runaway_limit_interpolates_in_log_mass_and_clamps():
    s = habitable.seff_limits(5780.0, np.array([0.01, 0.1, np.sqrt(0.1), 1.0, 5.0, 50.0]))["runaway_greenhouse"]
    np.testing.assert_allclose(s[[0, 1, 3, 4, 5]], [0.99, 0.99, 1.107, 1.188, 1.188], rtol=1e-12)
    assert s[2] == pytest.approx((0.99 + 1.107) / 2, rel=1e-12)  # halfway in log mass


def test_earth_similarity_index():
    assert habitable.earth_similarity_index(1.0, 1.0, 1.0, 288.0) == 1.0
    assert habitable.earth_similarity_index(0.532, 0.713, 0.450, 227.0) == pytest.approx(0.697, abs=0.01)
    esi = habitable.earth_similarity_index(np.ones(3), np.ones(3), np.ones(3), np.array([288.0, 250.0, 400.0]))
    assert esi[0] == 1.0 and np.all((esi[1:] > 0) & (esi[1:] < 1))


@pytest.mark.parametrize("teff", [2200.0, 7300.0, np.nan])  # 2300-2600 K is modelled since issue 8
def test_teff_outside_validity_raises(teff):
    with pytest.raises(InputValidationError) as err:
        habitable.habitable_zone(teff, 1.0)
    assert err.value.field == "teff_k"


def test_bad_esi_input_raises():
    with pytest.raises(InputValidationError) as err:
        habitable.earth_similarity_index(1.0, -1.0, 1.0, 288.0)
    assert err.value.field == "density_earth"


def test_limits_below_2600k_are_held_and_flagged():
    # Kopparapu et al. (2014) fit 2600-7200 K; cooler hosts down to 2300 K get the 2600 K values, flagged.
    lim = habitable.seff_limits(np.array([2300.0, 2566.0, 2600.0]))
    for key in habitable.HZ_KEYS:
        np.testing.assert_allclose(lim[key], lim[key][2], rtol=1e-12)
    assert habitable.limits_held([2300.0, 2599.0, 2600.0, 5780.0]).tolist() == [True, True, False, False]
    assert lim["maximum_greenhouse"][2] == pytest.approx(0.356 + 6.171e-5 * -3180 + 1.698e-9 * 3180**2
                                                         + 3.198e-12 * 3180**3 - 5.575e-16 * 3180**4, rel=1e-12)
