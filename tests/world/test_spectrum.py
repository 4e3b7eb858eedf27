"""Transmission spectra: transit-radius physics, molecular features, noise and published anchors.

Tolerances are stated per test. "Feature amplitude" = noise-free depth at the band centre minus
the mean of two flanking continuum points (linear interpolation on the default grid).
"""

import numpy as np
import pytest
from scipy.special import exp1

from astrobio.constants import M_EARTH, R_EARTH, R_SUN
from astrobio.errors import InputValidationError
from astrobio.world.atmosphere import apply_biosphere, mean_molecular_weight, prior_composition
from astrobio.world.spectrum import (
    EULER_GAMMA,
    SpectrumConfig,
    _H_TABLE,
    _LN_TAU_TABLE,
    add_instrument_noise,
    depth_ppm_unchecked,
    effective_height_over_h,
    photon_noise_ppm,
    simulate_spectrum,
    spectrum_from_truth,
    transit_duration_h,
    transmission_depth_ppm,
    wavelength_grid,
)
from astrobio.world.types import PlanetTruth

CONFIG = SpectrumConfig()
WL, EDGES = wavelength_grid(CONFIG)
EARTH_SUN_PPM = (R_EARTH / R_SUN) ** 2 * 1e6  # 84.05 ppm
# TRAPPIST-1e-like (Agol et al. 2021): 0.92 R_earth, 0.69 M_earth, star 0.119 R_sun, J = 11.35.
T1E = dict(radius_earth=0.92, mass_earth=0.69, star_radius_rsun=0.119, temperature_k=250.0,
           surface_pressure_bar=1.0)
T1E_BASE_PPM = (0.92 * R_EARTH / (0.119 * R_SUN)) ** 2 * 1e6


def depth(composition, **kw) -> np.ndarray:
    return transmission_depth_ppm(composition=composition, **{**T1E, **kw})[0]


def amplitude(d, centre, lo, hi) -> float:
    at = lambda x: np.interp(x, WL, d)  # noqa: E731
    return float(at(centre) - 0.5 * (at(lo) + at(hi)))


def co2_amplitude(d) -> float:
    return amplitude(d, 4.3, 3.9, 4.9)


def test_grid_is_log_spaced_with_1000_bins_over_0p6_to_12_um():
    assert WL.shape == (1000,) and EDGES.shape == (1001,)
    assert EDGES[0] == pytest.approx(0.6) and EDGES[-1] == pytest.approx(12.0)
    ratio = EDGES[1:] / EDGES[:-1]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)  # constant R ~ 334
    assert 330 < 1 / np.log(ratio[0]) < 340
    lin, lin_edges = wavelength_grid(SpectrumConfig(n_bins=10, spacing="linear"))
    np.testing.assert_allclose(np.diff(lin_edges), 1.14, rtol=1e-12)
    np.testing.assert_allclose(lin, lin_edges[:-1] + 0.57, rtol=1e-12)


def test_effective_height_closed_forms():
    tau = np.array([1e-9, 1e-3, 0.5, 3.0, 1e3, 1e8])
    h = effective_height_over_h(tau)
    np.testing.assert_allclose(h, EULER_GAMMA + np.log(tau) + exp1(tau), rtol=2e-5, atol=1e-12)
    assert h[-1] == pytest.approx(EULER_GAMMA + np.log(1e8), rel=1e-12)  # Heng & Kitzmann limit
    assert h[0] == pytest.approx(1e-9, rel=1e-6)  # a thin atmosphere adds ~ tau H, never < 0
    # n^2 absorber alone has scale height H/2: h = (gamma + ln b + E1(b)) / 2 exactly.
    b = np.array([1e-3, 1.0, 50.0, 1e6])
    np.testing.assert_allclose(effective_height_over_h(np.zeros(4), b),
                               0.5 * (EULER_GAMMA + np.log(b) + exp1(b)), rtol=2e-3)


def test_height_table_lookup_equals_linear_interpolation_within_round_off():
    y = np.concatenate([np.linspace(-14.0, 4.0, 9001), [-14.0, 4.0, 3.9999999]])
    tau = np.exp(y)
    h = effective_height_over_h(tau)
    np.testing.assert_allclose(h, np.interp(np.log(tau), _LN_TAU_TABLE, _H_TABLE), rtol=0, atol=1e-11)
    assert np.isnan(effective_height_over_h(np.array([np.nan]))[0])


def test_unchecked_depths_are_the_checked_entry_point_bit_for_bit():
    # GASES order (N2, O2, CO2, CH4, H2O, O3, N2O, CO, H2): modern Earth, an Archean mix, a CO2-rich one.
    vmr = np.array([[0.0, 0.21, 4e-4, 1.8e-6, 1e-2, 1e-7, 3e-7, 1e-7, 5e-7],
                    [0.0, 0.0, 1e-2, 1e-3, 3e-4, 0.0, 0.0, 1e-6, 1e-6],
                    [0.0, 0.0, 0.95, 0.0, 1e-3, 0.0, 0.0, 0.0, 0.0]])
    vmr[:, 0] = 1.0 - vmr.sum(axis=1)
    radius, mass, star = np.array([0.9, 1.0, 1.6]), np.array([0.7, 1.0, 3.0]), np.array([0.12, 0.5, 1.0])
    temp, p0, pc = np.array([230.0, 288.0, 400.0]), np.array([1.0, 0.5, 10.0]), np.array([0.1, 0.5, 20.0])
    checked = transmission_depth_ppm(radius_earth=radius, mass_earth=mass, star_radius_rsun=star, temperature_k=temp,
                                     surface_pressure_bar=p0, composition=vmr, cloud_top_pressure_bar=pc)
    fast = depth_ppm_unchecked(vmr, radius * R_EARTH, mass * M_EARTH, star * R_SUN, temp, p0 * 1e5, pc * 1e5, CONFIG)
    np.testing.assert_array_equal(fast, checked)


def test_airless_planet_gives_the_flat_geometric_depth():
    d = transmission_depth_ppm(radius_earth=1.0, mass_earth=1.0, star_radius_rsun=1.0, temperature_k=288.0,
                               surface_pressure_bar=0.0, composition={"CO2": 0.5})
    np.testing.assert_allclose(d, EARTH_SUN_PPM, rtol=1e-12)
    assert EARTH_SUN_PPM == pytest.approx(84.05, abs=0.01)


def test_earth_around_the_sun_is_84_ppm_plus_a_few_ppm_of_atmosphere():
    earth = dict(prior_composition(), O2=0.21, H2O=3e-3)
    d = transmission_depth_ppm(radius_earth=1.0, mass_earth=1.0, star_radius_rsun=1.0, temperature_k=250.0,
                               surface_pressure_bar=1.0, composition=earth)[0]
    assert d.min() >= EARTH_SUN_PPM
    assert 0.5 < d.max() - EARTH_SUN_PPM < 5.0  # Kaltenegger & Traub 2009: features of ~1-2 ppm


def test_co2_feature_appears_with_co2_and_vanishes_without():
    with_co2 = co2_amplitude(depth({"CO2": 0.01}))
    without = co2_amplitude(depth({}))
    assert with_co2 > 60.0  # ~8 scale heights of 15.8 ppm each
    assert abs(without) < 0.5


def test_feature_amplitude_scales_with_scale_height():
    ref = co2_amplitude(depth({"CO2": 0.01}))
    hot = co2_amplitude(depth({"CO2": 0.01}, temperature_k=500.0))
    assert hot / ref == pytest.approx(2.0, rel=0.10)
    # Halve mu by swapping N2 for H2 (CO2 kept at 1 %): x_H2 = (mu / 2) / (M_N2 - M_H2).
    heavy_mu = mean_molecular_weight({"CO2": 0.01})
    x_h2 = 0.5 * heavy_mu / (28.014 - 2.016)
    assert mean_molecular_weight({"CO2": 0.01, "H2": x_h2}) == pytest.approx(heavy_mu / 2, rel=1e-12)
    light = co2_amplitude(depth({"CO2": 0.01, "H2": x_h2}))
    assert light / ref == pytest.approx(2.0, rel=0.10)


def test_cloud_deck_sets_a_floor_at_the_cloud_top_and_mutes_features():
    clear = depth({"CO2": 0.01})
    cloudy = depth({"CO2": 0.01}, cloud_top_pressure_bar=0.1)
    # R_cloud = R0 + H ln(P0 / P_c); H = 9.23 km for mu = 28.17 at 250 K and g = 7.99 m s^-2.
    h = 1.380649e-23 * 250.0 / (28.1699 * 1.66053906660e-27 * (6.67430e-11 * 0.69 * 3.986004e14 / 6.67430e-11
                                                                  / (0.92 * R_EARTH) ** 2))
    floor = ((0.92 * R_EARTH + h * np.log(10.0)) / (0.119 * R_SUN)) ** 2 * 1e6
    assert cloudy.min() == pytest.approx(floor, abs=0.5)
    assert clear.min() == pytest.approx(T1E_BASE_PPM, abs=0.5)
    assert co2_amplitude(cloudy) < co2_amplitude(clear) - 2.3 * 15.0  # ln(10) scale heights lost
    # A deck below the surface changes nothing.
    np.testing.assert_allclose(depth({"CO2": 0.01}, cloud_top_pressure_bar=2.0), clear, rtol=1e-12)


def _abiotic():
    return dict(prior_composition(), H2O=1e-3)


@pytest.mark.parametrize("seed", [0, 3])
def test_oxygenic_atmosphere_shows_o2_a_band_and_o3_that_abiotic_lacks(seed):
    oxygenic = apply_biosphere(_abiotic(), "oxygenic", np.random.default_rng(seed))
    d_bio, d_abio = transmission_depth_ppm(composition=[oxygenic, _abiotic()], **T1E)
    a_band = lambda d: amplitude(d, 0.762, 0.72, 0.80)  # noqa: E731
    o3 = lambda d: amplitude(d, 9.6, 8.9, 10.9)  # noqa: E731
    assert abs(a_band(d_abio)) < 1.0 and a_band(d_bio) > 2.0
    assert o3(d_bio) - o3(d_abio) > 20.0


def test_methanogenic_atmosphere_shows_ch4_at_3p3_um():
    methanogenic = apply_biosphere(_abiotic(), "methanogenic", np.random.default_rng(1))
    d_bio, d_abio = transmission_depth_ppm(composition=[methanogenic, _abiotic()], **T1E)
    ch4 = lambda d: amplitude(d, 3.31, 2.95, 3.85)  # noqa: E731
    assert ch4(d_bio) - ch4(d_abio) > 25.0


def test_o2_o2_cia_raises_1p06_um_only_with_o2():
    o2_rich = depth({"O2": 0.9}, surface_pressure_bar=5.0, cloud_top_pressure_bar=None)
    n2 = depth({}, surface_pressure_bar=5.0)
    cia = lambda d: amplitude(d, 1.064, 0.98, 1.15)  # noqa: E731
    assert cia(o2_rich) > 5.0 and abs(cia(n2)) < 0.5


def test_batched_depths_match_single_planets_and_stay_positive_finite():
    rng = np.random.default_rng(0)
    n = 40
    comps = [apply_biosphere(dict(prior_composition(), CO2=float(10 ** rng.uniform(-5, -0.5)),
                                  H2O=float(10 ** rng.uniform(-6, -1.5))),
                             ["none", "oxygenic", "methanogenic"][i % 3], rng) for i in range(n)]
    kw = dict(radius_earth=rng.uniform(0.5, 2.0, n), mass_earth=rng.uniform(0.1, 8.0, n),
              star_radius_rsun=rng.uniform(0.1, 1.5, n), temperature_k=rng.uniform(150.0, 700.0, n),
              surface_pressure_bar=10 ** rng.uniform(-3, 2, n),
              cloud_top_pressure_bar=10 ** rng.uniform(-3, 1, n))
    batch = transmission_depth_ppm(composition=comps, **kw)
    assert batch.shape == (n, 1000) and np.all(np.isfinite(batch))
    base = (kw["radius_earth"] * R_EARTH / (kw["star_radius_rsun"] * R_SUN)) ** 2 * 1e6
    assert np.all(batch >= base[:, None] * (1 - 1e-12))
    for i in (0, 17, 39):
        one = transmission_depth_ppm(composition=comps[i], **{k: v[i] for k, v in kw.items()})
        np.testing.assert_allclose(one[0], batch[i], rtol=1e-12)


def test_sigma_scales_as_inverse_sqrt_transits_and_saturates_at_the_floor():
    d = depth({"CO2": 0.01})
    no_floor = SpectrumConfig(noise_floor_ppm=0.0)
    _, s1 = add_instrument_noise(d, 11.35, 1, no_floor, None)
    _, s4 = add_instrument_noise(d, 11.35, 4, no_floor, None)
    np.testing.assert_allclose(s4 / s1, 0.5, rtol=1e-12)
    _, s_many = add_instrument_noise(d, 11.35, 100000, CONFIG, None)
    np.testing.assert_allclose(s_many, 15.0, rtol=0.02)  # photon part / sqrt(1e5) < 2.6 ppm
    _, s10 = add_instrument_noise(d, 11.35, 10, CONFIG, None)
    np.testing.assert_allclose(s10, np.sqrt(s1**2 / 10 + 15.0**2), rtol=1e-12)
    assert np.all(np.isfinite(s10)) and np.all(s10 > 0)


def test_photon_noise_scales_with_magnitude_and_bin_width():
    p = photon_noise_ppm([11.35, 16.35], CONFIG)
    np.testing.assert_allclose(p[1] / p[0], 10.0, rtol=1e-12)  # 5 mag = 100x fewer photons
    fine = photon_noise_ppm(11.35, SpectrumConfig(n_bins=2000))[0]
    fine_at = np.interp(WL, wavelength_grid(SpectrumConfig(n_bins=2000))[0], fine)
    np.testing.assert_allclose(fine_at / photon_noise_ppm(11.35, CONFIG)[0], np.sqrt(2.0), rtol=0.01)
    # Reference level (docstring): TRAPPIST-1, one transit, 1-4.5 um: 85-130 ppm per R = 100 bin,
    # 155-235 ppm per default R ~ 334 bin.
    native = photon_noise_ppm(11.35, CONFIG)[0]
    r100 = native * np.sqrt(100.0 / (WL / np.diff(EDGES)))
    band = (WL > 1.0) & (WL < 4.5)
    assert 85.0 < r100[band].min() and r100[band].max() < 130.0
    assert 155.0 < native[band].min() and native[band].max() < 235.0


def test_noise_draws_are_reproducible_and_unit_normal():
    d = depth({"CO2": 0.01})
    noisy, sigma = add_instrument_noise(d, 11.35, 3, CONFIG, np.random.default_rng(5))
    again, _ = add_instrument_noise(d, 11.35, 3, CONFIG, np.random.default_rng(5))
    np.testing.assert_array_equal(noisy, again)
    z = (noisy - d) / sigma
    assert abs(z.mean()) < 0.1 and z.std() == pytest.approx(1.0, abs=0.08)


def test_trappist1e_co2_is_detectable_in_10_prism_transits():
    """Krissansen-Totton et al. 2018: ~10 PRISM transits detect CO2 on a TRAPPIST-1e-like planet.

    Detection = the 4.3 um feature over the uncertainty of the band-mean depth (the ~31 bins
    across 4.1-4.5 um averaged; the floor is treated as independent per bin). A single R ~ 330 bin
    is not enough on its own, as for the real PRISM data.
    """
    d = depth({"CO2": 0.01})
    band = (WL > 4.1) & (WL < 4.5)
    amp = co2_amplitude(d)
    snr = {}
    for n in (1, 10):
        _, sigma = add_instrument_noise(d, 11.35, n, CONFIG, None)
        snr[n] = amp / (np.sqrt(np.sum(sigma[band] ** 2)) / band.sum())
        if n == 10:
            assert amp < 3 * sigma[band].mean()  # per-bin: not detected
    assert snr[10] > 5.0  # detected at 10 transits
    assert snr[1] < snr[10] / 2.5  # and it takes several transits


def test_trappist1e_biogenic_o2_is_extremely_hard():
    """Lustig-Yaeger et al. 2019: O2 at TRAPPIST-1e needs far more transits than JWST can give."""
    oxygenic = apply_biosphere(_abiotic(), "oxygenic", np.random.default_rng(0))
    d = transmission_depth_ppm(composition=oxygenic, **T1E)[0]
    amp = amplitude(d, 0.762, 0.72, 0.80)
    band = (WL > 0.755) & (WL < 0.77)
    _, sigma = add_instrument_noise(d, 11.35, 100, CONFIG, None)
    assert amp / (np.sqrt(np.sum(sigma[band] ** 2)) / band.sum()) < 3.0  # not even in 100 transits


def test_simulate_spectrum_output_contract():
    out = simulate_spectrum(composition={"CO2": 0.01}, star_jmag=11.35, cloud_top_pressure_bar=None,
                            n_transits=10, rng=np.random.default_rng(0), **T1E)
    assert out.dtype == np.float32 and out.shape == (1000, 3)
    np.testing.assert_allclose(out[:, 0], WL, rtol=1e-6)
    assert np.all(np.diff(out[:, 0]) > 0) and np.all(out[:, 2] > 0) and np.all(np.isfinite(out))
    assert simulate_spectrum(composition={}, star_jmag=11.35, cloud_top_pressure_bar=None, n_transits=0,
                             rng=None, **T1E) is None
    flat = simulate_spectrum(composition={}, star_jmag=11.35, cloud_top_pressure_bar=None, n_transits=2,
                             rng=None, **{**T1E, "surface_pressure_bar": 0.0})
    np.testing.assert_allclose(flat[:, 1], T1E_BASE_PPM, rtol=1e-6)


def test_spectrum_from_truth_uses_the_planet_and_its_transit_duration():
    truth = PlanetTruth(
        name="T1e-like", system="T1", source="synthetic", star_teff_k=2566.0, star_radius_rsun=0.119,
        star_mass_msun=0.0898, star_luminosity_lsun=5.5e-4, star_age_gyr=7.6, star_activity=0.5,
        distance_pc=12.4, star_jmag=11.35, planet_radius_earth=0.92, planet_mass_earth=0.69,
        semimajor_axis_au=0.02925, eccentricity=0.0, obliquity_deg=0.0, rotation_period_days=6.1,
        tidally_locked=True, surface_pressure_bar=1.0, composition={"CO2": 0.01}, ocean_fraction=0.5,
        surface_albedo=0.2, cloud_top_pressure_bar=0.3, biosphere="none", atmosphere_retained=True,
        n_transits=10)
    assert transit_duration_h(truth.period_days, 0.119, 0.02925) == pytest.approx(0.88, abs=0.02)
    assert transit_duration_h(365.25, 1.0, 1.0) == pytest.approx(12.98, abs=0.02)  # Earth
    out = spectrum_from_truth(truth, 250.0, 1e-4, CONFIG, None)
    ref = depth({"CO2": 0.01, "H2O": 1e-4}, cloud_top_pressure_bar=0.3)
    np.testing.assert_allclose(out[:, 1], ref, rtol=1e-6)
    truth.atmosphere_retained = False
    bare = spectrum_from_truth(truth, 250.0, 1e-4, CONFIG, None)
    np.testing.assert_allclose(bare[:, 1], T1E_BASE_PPM, rtol=1e-6)


@pytest.mark.parametrize("override, field", [
    ({"radius_earth": -1.0}, "radius_earth"),
    ({"mass_earth": float("nan")}, "mass_earth"),
    ({"temperature_k": 1e6}, "temperature_k"),
    ({"surface_pressure_bar": -0.1}, "surface_pressure_bar"),
    ({"cloud_top_pressure_bar": 0.0}, "cloud_top_pressure_bar"),
    ({"star_jmag": float("inf")}, "star_jmag"),
    ({"n_transits": -1}, "n_transits"),
    ({"n_transits": 2.5}, "n_transits"),
    ({"composition": {"Xe": 0.1}}, "composition"),
    ({"composition": {"CO2": -0.1}}, "composition[CO2]"),
    ({"radius_earth": 20.0, "star_radius_rsun": 0.1}, "radius_earth"),  # larger than its star
    ({"rng": "seed"}, "rng"),
])
def test_simulate_spectrum_rejects_bad_inputs_naming_the_field(override, field):
    args = dict(T1E, composition={"CO2": 0.01}, star_jmag=11.35, cloud_top_pressure_bar=None, n_transits=3,
                rng=np.random.default_rng(0))
    args.update(override)
    with pytest.raises(InputValidationError) as err:
        simulate_spectrum(**args)
    assert err.value.field == field


@pytest.mark.parametrize("kwargs, field", [
    ({"n_bins": 1}, "n_bins"), ({"wl_max_um": 0.5}, "wl_max_um"), ({"spacing": "cubic"}, "spacing"),
    ({"noise_floor_ppm": -1.0}, "noise_floor_ppm"), ({"oversample": 0}, "oversample"),
])
def test_config_validation(kwargs, field):
    with pytest.raises(InputValidationError) as err:
        SpectrumConfig(**kwargs)
    assert err.value.field == field


def test_add_instrument_noise_rejects_wrong_shapes_and_zero_transits():
    with pytest.raises(InputValidationError) as err:
        add_instrument_noise(np.ones(10), 11.35, 1, CONFIG, None)
    assert err.value.field == "depth_ppm"
    with pytest.raises(InputValidationError) as err:
        add_instrument_noise(np.ones(1000), 11.35, 0, CONFIG, None)
    assert err.value.field == "n_transits"
