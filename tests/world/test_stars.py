import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.world import stars


def test_table_node_is_reproduced_exactly():
    ms = stars.main_sequence_from_teff(np.array([5770.0, 3870.0]))  # G2V and M0V rows
    np.testing.assert_allclose(ms["radius_rsun"], [1.01, 0.559], rtol=1e-12)
    np.testing.assert_allclose(ms["mass_msun"], [1.02, 0.55], rtol=1e-12)
    np.testing.assert_allclose(ms["luminosity_lsun"], [10**0.01, 10**-1.20], rtol=1e-12)


def test_mass_and_luminosity_relations_invert_the_teff_relation():
    teff = np.array([2700.0, 3300.0, 4500.0, 5772.0, 7000.0])
    ms = stars.main_sequence_from_teff(teff)
    np.testing.assert_allclose(stars.main_sequence_from_mass(ms["mass_msun"])["teff_k"], teff, atol=1e-6)
    np.testing.assert_allclose(stars.main_sequence_from_luminosity(ms["luminosity_lsun"])["teff_k"], teff, atol=1e-6)
    assert np.all(np.diff(ms["luminosity_lsun"]) > 0) and np.all(np.diff(ms["radius_rsun"]) > 0)


def test_stefan_boltzmann_luminosity():
    assert stars.luminosity_from_radius_teff(1.0, 5772.0) == pytest.approx(1.0, abs=1e-12)
    assert stars.luminosity_from_radius_teff(2.0, 2 * 5772.0) == pytest.approx(64.0, rel=1e-12)


def test_apparent_j_magnitude_against_photometry():
    # Sun at 10 pc: M_J = 3.67 (Willmer 2018, ApJS 236, 47); Proxima Cen: J = 5.357 (2MASS), d = 1.301 pc.
    assert stars.apparent_j_magnitude(5772.0, 1.0, 10.0) == pytest.approx(3.67, abs=0.1)
    assert stars.apparent_j_magnitude(3042.0, 0.00155, 1.301) == pytest.approx(5.357, abs=0.25)
    # Inverse-square law: 10x farther is exactly 5 mag fainter.
    j = stars.apparent_j_magnitude(np.array([4000.0, 4000.0]), np.array([0.1, 0.1]), np.array([5.0, 50.0]))
    assert j[1] - j[0] == pytest.approx(5.0, abs=1e-12)


@pytest.mark.parametrize("call, field", [
    (lambda: stars.main_sequence_from_teff(np.nan), "teff_k"),
    (lambda: stars.main_sequence_from_teff([5000.0, 9000.0]), "teff_k"),
    (lambda: stars.main_sequence_from_mass(-1.0), "mass_msun"),
    (lambda: stars.apparent_j_magnitude(5000.0, 1.0, -3.0), "distance_pc"),
    (lambda: stars.luminosity_from_radius_teff(0.0, 5000.0), "radius_rsun"),
])
def test_bad_inputs_name_the_field(call, field):
    with pytest.raises(InputValidationError) as err:
        call()
    assert err.value.field == field


def test_cool_hosts_down_to_2300k():
    # TRAPPIST-1-like hosts are accepted; below M8V (2500 K) the mean-dwarf relations hold the M8V row.
    ms = stars.main_sequence_from_teff(np.array([2300.0, 2500.0, 2566.0]))
    assert ms["luminosity_lsun"][0] == ms["luminosity_lsun"][1] == pytest.approx(10**-3.36)
    assert 10**-3.36 < ms["luminosity_lsun"][2] < 10**-3.21
    with pytest.raises(InputValidationError):
        stars.main_sequence_from_teff(2299.0)
