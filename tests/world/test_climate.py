import numpy as np
import pytest

from astrobio.constants import P_CRIT_WATER, P_TRIPLE_WATER, T_CRIT_WATER, T_TRIPLE_WATER
from astrobio.errors import InputValidationError
from astrobio.world import climate

EARTH = dict(luminosity_lsun=1.0, semimajor_axis_au=1.0, eccentricity=0.0167, obliquity_deg=23.44,
             tidally_locked=False, rotation_period_days=0.9973, surface_pressure_bar=1.013, co2_vmr=4.0e-4,
             ch4_vmr=1.8e-6, gravity_ms2=9.81, surface_albedo=0.3, ocean_fraction=0.7)
PLANETS = {  # NASA fact-sheet orbits and atmospheres
    "earth": EARTH,
    "mars": dict(EARTH, semimajor_axis_au=1.5237, eccentricity=0.0934, obliquity_deg=25.19,
                 rotation_period_days=1.026, surface_pressure_bar=0.006, co2_vmr=0.95, ch4_vmr=0.0,
                 gravity_ms2=3.71, surface_albedo=0.25, ocean_fraction=0.0),
    "venus": dict(EARTH, semimajor_axis_au=0.7233, eccentricity=0.0068, obliquity_deg=2.64,
                  rotation_period_days=243.0, surface_pressure_bar=92.0, co2_vmr=0.965, ch4_vmr=0.0,
                  gravity_ms2=8.87, ocean_fraction=0.0),
    # Earth-like planet in the habitable zone of an M3 dwarf (L = 0.0155 L_sun), synchronously rotating.
    "locked": dict(EARTH, luminosity_lsun=0.0155, semimajor_axis_au=0.13, eccentricity=0.0, obliquity_deg=0.0,
                   tidally_locked=True, rotation_period_days=17.0),
    **{f"co2_{k}": dict(EARTH, co2_vmr=v) for k, v in enumerate([1e-4, 4e-4, 1.6e-3, 6.4e-3])},
}
NAMES = list(PLANETS)


def _inputs(planets):
    return climate.ClimateInputs(**{k: np.array([p[k] for p in planets]) for k in EARTH})


@pytest.fixture(scope="module")
def demo():
    return climate.run_climate(_inputs([PLANETS[n] for n in NAMES]), climate.GRIDS["demo"])


def _i(name):
    return NAMES.index(name)


def test_earth_is_temperate_with_liquid_water(demo):
    i = _i("earth")
    assert 285.0 < demo.global_mean_surface_temperature_k[i] < 291.0  # observed 288 K
    assert demo.liquid_water_fraction[i] > 0.5 and not demo.runaway[i]
    # Polar caps: the coldest monthly cell is below freezing, the tropics are above.
    assert demo.surface_temperature[i].min() < 273.15 < demo.surface_temperature[i][:, 3:5].min()


def test_mars_is_frozen(demo):
    i = _i("mars")
    assert demo.global_mean_surface_temperature_k[i] < 240.0  # observed ~210 K
    assert demo.liquid_water_fraction[i] == 0.0 and not demo.runaway[i]
    assert np.all(demo.specific_humidity[i] == 0.0)  # no water


def test_venus_is_a_runaway_far_above_boiling(demo):
    i = _i("venus")
    assert demo.runaway[i]
    boiling = climate.boiling_point_k(92.0e5)
    assert demo.global_mean_surface_temperature_k[i] > boiling + 100.0
    assert demo.global_mean_surface_temperature_k[i] == pytest.approx(737.0, abs=1.0)  # calibration anchor
    assert demo.liquid_water_fraction[i] == 0.0


def test_more_co2_is_warmer(demo):
    t = [demo.global_mean_surface_temperature_k[_i(f"co2_{k}")] for k in range(4)]
    assert np.all(np.diff(t) > 0.2), t


def test_snowball_hysteresis():
    # Budyko-Sellers bistability: present Earth is warm from a warm start but stays a snowball once frozen.
    x = _inputs([EARTH])
    warm = climate.run_climate(x, initial_temperature_k=300.0).global_mean_surface_temperature_k[0]
    cold = climate.run_climate(x, initial_temperature_k=200.0).global_mean_surface_temperature_k[0]
    assert warm > 285.0 and cold < 230.0


def test_locked_planet_hot_substellar_point_cold_nightside(demo):
    ts = demo.surface_temperature[_i("locked")].mean(axis=0)  # (lat, lon)
    grid = demo.grid
    sub = ts[grid.nlat // 2, 0]  # next to lat 0, lon 0
    night = ts[grid.nlat // 2, grid.nlon // 2]  # antistellar
    assert sub > 300.0 and night < 250.0 and sub - night > 80.0
    assert np.allclose(ts[:, 1], ts[:, -1])  # symmetric about the substellar meridian


def test_energy_balance_and_bounds(demo):
    ok = ~demo.runaway
    np.testing.assert_allclose(demo.absorbed_flux_wm2[ok], demo.olr_wm2[ok], atol=1.0)
    assert np.all(demo.surface_temperature > 100) and np.all(demo.surface_temperature < 1000)
    assert np.all((demo.liquid_water_fraction >= 0) & (demo.liquid_water_fraction <= 1))
    assert np.all((demo.tropopause_sigma > 0) & (demo.tropopause_sigma <= 1))
    i = _i("earth")
    assert 0.1 < demo.tropopause_sigma[i] < 0.4  # Earth: ~100-250 hPa
    assert 1e-3 < demo.column_h2o_vmr[i] < 2e-2


def test_humidity_is_between_zero_and_saturation(demo):
    q = demo.specific_humidity.astype(float)
    p_s = np.array([PLANETS[n]["surface_pressure_bar"] for n in NAMES]) * 1e5
    p = p_s[:, None, None, None, None] * demo.grid.sigma
    q_sat = climate.saturation_specific_humidity(demo.air_temperature.astype(float), p)
    assert np.all(q >= 0.0)
    assert np.all(q <= q_sat * (1 + 1e-5))
    assert demo.specific_humidity[_i("earth"), ..., 0].mean() > 1e-3  # moist boundary layer


def test_temperature_falls_with_height_below_the_tropopause(demo):
    t = demo.air_temperature.astype(float)
    top = t.min(axis=-1, keepdims=True)  # the isothermal stratosphere (skin temperature)
    upper, lower = t[..., 1:], t[..., :-1]
    below_tropopause = upper > top + 1e-3
    assert np.all(upper[below_tropopause] < lower[below_tropopause])
    assert np.all(upper <= lower + 1e-3)  # never increases with height
    # The lowest level is the surface temperature, except over surfaces colder than the skin
    # temperature (polar night), where the column is an isothermal inversion.
    np.testing.assert_allclose(t[..., 0], np.maximum(demo.surface_temperature, top[..., 0]), rtol=1e-6)


def test_demo_shapes_and_datacube(demo):
    n = len(NAMES)
    assert demo.air_temperature.shape == (n, 12, 8, 16, 5)
    assert demo.specific_humidity.shape == (n, 12, 8, 16, 5)
    assert demo.surface_temperature.shape == (n, 12, 8, 16)
    cube = demo.datacube(0)
    assert cube.dtype == np.float32 and cube.shape == (2, 12, 8, 16, 5)
    np.testing.assert_array_equal(cube[1], demo.specific_humidity[0])


def test_seed_grid_shape():
    res = climate.run_climate(_inputs([EARTH]), climate.GRIDS["seed"])
    assert res.air_temperature.shape == (1, 12, 32, 64, 10)
    assert 285.0 < res.global_mean_surface_temperature_k[0] < 291.0


def test_grid_geometry():
    g = climate.GRIDS["seed"]
    w = g.cell_area_weights()
    assert w.shape == (32, 64) and w.sum() == pytest.approx(1.0, abs=1e-12)
    assert g.sigma[0] == 1.0 and np.all(np.diff(g.sigma) < 0)
    np.testing.assert_allclose(g.lat_deg, -g.lat_deg[::-1])


def test_saturation_and_boiling():
    e = climate.saturation_vapour_pressure(T_TRIPLE_WATER)
    assert e == pytest.approx(P_TRIPLE_WATER, rel=1e-12)
    assert climate.saturation_vapour_pressure(288.0) == pytest.approx(1705.0, rel=0.01)  # WMO tables
    q = climate.saturation_specific_humidity(T_TRIPLE_WATER, 1.0e5)
    assert q == pytest.approx(0.622 * e / (1.0e5 - 0.378 * e), rel=1e-12)
    assert climate.saturation_specific_humidity(400.0, 1000.0) == pytest.approx(1.0)  # pure vapour
    assert climate.boiling_point_k(101325.0) == pytest.approx(373.15, abs=0.1)
    assert climate.boiling_point_k(P_CRIT_WATER) == T_CRIT_WATER
    assert np.isnan(climate.boiling_point_k(500.0))
    assert climate.boiling_point_k(2.0e5) == pytest.approx(393.4, abs=0.5)  # steam tables: 120.2 C


@pytest.mark.parametrize("field, value", [
    ("surface_pressure_bar", np.nan), ("co2_vmr", -1e-4), ("gravity_ms2", 0.0), ("eccentricity", 0.99),
])
def test_bad_inputs_raise(field, value):
    with pytest.raises(InputValidationError) as err:
        climate.run_climate(_inputs([dict(EARTH, **{field: value})]))
    assert err.value.field == field


def test_derived_inputs():
    x = _inputs([EARTH, PLANETS["locked"]]).validated()
    assert x.orbital_period_days[0] == pytest.approx(365.25, abs=3.0)  # Kepler with the mean-dwarf mass
    assert x.orbital_period_days[1] == 17.0  # synchronous rotation
    assert x.planet_mass_earth[0] == pytest.approx(1.0, abs=0.01)  # from g via R = M^0.279
    assert 5600.0 < x.star_teff_k[0] < 5900.0 and 3200.0 < x.star_teff_k[1] < 3600.0


def test_empty_batch():
    res = climate.run_climate(climate.ClimateInputs(**{k: np.array([]) for k in EARTH}))
    assert res.air_temperature.shape == (0, 12, 8, 16, 5) and res.runaway.shape == (0,)


def test_shape_mismatch_raises():
    x = _inputs([EARTH, EARTH])
    x.ocean_fraction = np.array([0.7])
    with pytest.raises(InputValidationError) as err:
        climate.run_climate(x)
    assert err.value.field == "ocean_fraction"
