import numpy as np
import pytest

from astrobio.constants import S_EARTH
from astrobio.errors import InputValidationError
from astrobio.world import orbits


def test_kepler_third_law_both_ways():
    assert orbits.orbital_period_days(1.0, 1.0) == pytest.approx(365.256, abs=0.01)  # sidereal year
    a = np.array([0.01, 0.3, 5.2])
    m = np.array([0.1, 0.5, 1.0])
    np.testing.assert_allclose(orbits.semimajor_axis_au(orbits.orbital_period_days(a, m), m), a, rtol=1e-12)


def test_equilibrium_temperature():
    assert orbits.equilibrium_temperature_k(1.0) == pytest.approx(254.6, abs=0.1)
    assert orbits.equilibrium_temperature_k(16.0, 0.0) == pytest.approx(2 * orbits.equilibrium_temperature_k(1.0, 0.0))


def test_tidal_locking():
    t = orbits.despinning_timescale_gyr(np.array([1.0, 2.0]), 1.0, 1.0, 1.0)
    assert t[1] / t[0] == pytest.approx(64.0, rel=1e-12)  # a^6
    locked = orbits.tidal_locking(np.array([1.0, 0.1]), np.array([1.0, 0.3]), 1.0, 1.0, np.array([4.6, 4.6]))
    np.testing.assert_array_equal(locked, [False, True])  # Earth spins; an M-dwarf HZ planet is locked


def test_kepler_equation_solution():
    e = np.array([0.0, 0.1, 0.5, 0.9, 0.95])[:, None]
    m = np.linspace(0, 2 * np.pi, 50, endpoint=False)[None, :]
    E = orbits.solve_kepler(m, e)
    residual = np.angle(np.exp(1j * (E - e * np.sin(E) - m)))  # wrapped to (-pi, pi]
    np.testing.assert_allclose(residual, 0.0, atol=1e-12)


def _global_annual_mean(q, lat_edges):
    band = np.diff(np.sin(np.deg2rad(lat_edges))) / 2
    return (q.mean(axis=(1, 3)) * band).sum(axis=1)


def test_annual_global_mean_is_s_over_4_with_eccentricity_factor():
    edges = np.linspace(-90, 90, 181)
    lat = 0.5 * (edges[1:] + edges[:-1])
    ecc = np.array([0.0, 0.0167, 0.3])
    q = orbits.insolation(np.ones(3), np.ones(3), ecc, np.array([23.44, 23.44, 60.0]), np.zeros(3, bool), lat, [0.0])
    assert q.shape == (3, 12, 180, 1)
    np.testing.assert_allclose(_global_annual_mean(q, edges), S_EARTH / 4 / np.sqrt(1 - ecc**2), rtol=2e-4)


def test_equinox_equator_and_polar_night():
    # Circular orbit, no obliquity: the equator gets S/pi every day, the poles nothing.
    q = orbits.insolation(1.0, 1.0, 0.0, 0.0, False, [0.0], [0.0])
    np.testing.assert_allclose(q[0, :, 0, 0], S_EARTH / np.pi, rtol=1e-12)
    # Obliquity 23.44: months 6-11 follow the autumnal equinox, so the north pole is dark in months 7-10.
    q = orbits.insolation(1.0, 1.0, 0.0, 23.44, False, [89.0, -89.0], [0.0])
    assert np.all(q[0, 7:11, 0, 0] == 0.0) and np.all(q[0, 7:11, 1, 0] > 300)


def test_locked_planet_has_fixed_substellar_point():
    lon = np.arange(0, 360, 45.0)
    q = orbits.insolation(1.0, 1.0, 0.0, 30.0, True, [0.0], lon)
    np.testing.assert_allclose(q[0, :, 0, 0], S_EARTH, rtol=1e-12)
    np.testing.assert_allclose(q[0, :, 0, 1], S_EARTH * np.cos(np.pi / 4), rtol=1e-12)
    assert np.all(q[0, :, 0, 2:7] <= 1e-9)  # 90..270 degrees: nightside


@pytest.mark.parametrize("kwargs, field", [
    ({"ecc": 1.2}, "ecc"), ({"a_au": -1.0}, "a_au"), ({"luminosity_lsun": np.nan}, "luminosity_lsun"),
])
def test_insolation_validation(kwargs, field):
    args = dict(luminosity_lsun=1.0, a_au=1.0, ecc=0.0, obliquity_deg=0.0, tidally_locked=False,
                lat_deg=[0.0], lon_deg=[0.0])
    args.update(kwargs)
    with pytest.raises(InputValidationError) as err:
        orbits.insolation(**args)
    assert err.value.field == field


def test_daytime_mean_cos_zenith():
    # Equinox at the equator: mu = cos(h) averaged over -pi/2..pi/2 = 2/pi; polar night 0; polar day at
    # the pole: sin(declination); and Q = S mu h0 / pi everywhere.
    lat = np.deg2rad(np.array([0.0, 80.0, 90.0, -80.0]))
    decl = np.deg2rad(np.array([0.0, 23.44, 23.44, 23.44]))
    mu = orbits.daytime_mean_cos_zenith(lat, decl)
    assert mu[0] == pytest.approx(2 / np.pi, rel=1e-12)
    assert mu[2] == pytest.approx(np.sin(decl[2]), rel=1e-9) and mu[3] == 0.0
    h0 = np.arccos(np.clip(-np.tan(lat[1]) * np.tan(decl[1]), -1, 1))
    q = orbits.daily_mean_insolation(1000.0, lat[1], decl[1])
    assert q == pytest.approx(1000.0 * mu[1] * h0 / np.pi, rel=1e-12)
