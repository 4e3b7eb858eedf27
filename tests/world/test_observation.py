"""The observation process: catalog-like errors within physical ranges, missing values, and the observer's
reading of a spectrum."""

import math

import numpy as np
import pytest

from astrobio.world import observation, survey
from astrobio.world.types import OBSERVED_NUMERIC_FIELDS

POSITIVE = ("star_teff_k", "star_radius_rsun", "star_mass_msun", "star_luminosity_lsun", "distance_pc",
            "planet_radius_earth", "planet_mass_earth", "semimajor_axis_au", "period_days", "instellation_searth",
            "equilibrium_temperature_k")


def test_observation_noise_and_missing_values():
    truths = survey.sample_abiotic_population(200, seed=1)
    obs = [observation.observe(t, np.random.default_rng(i)) for i, t in enumerate(truths)]
    dteff = np.array([o.star_teff_k - t.star_teff_k for o, t in zip(obs, truths)])
    assert 60 < dteff.std() < 140  # +-100 K catalog-like error
    assert np.isnan([o.planet_mass_earth for o in obs]).mean() > 0.2  # masses often missing
    assert np.isnan([o.star_age_gyr for o in obs]).mean() > 0.5


def test_50000_observations_stay_in_their_physical_ranges():
    # Issue 12 item 4: an observed stellar age was once drawn below zero (once per ~5,000-16,000 planets).
    truths = survey.sample_abiotic_population(5000, seed=11)
    rows, ages, eccs = [], [], []
    for i, t in enumerate(truths):
        rng = np.random.default_rng([11, i])
        for _ in range(10):  # 10 observations of each truth: 50,000 in all
            o = observation.observe(t, rng)
            rows.append(o.numeric_vector())
            ages.append(o.star_age_gyr)
            eccs.append(o.eccentricity)
    x = np.array(rows, dtype=np.float64)
    assert len(x) == 50_000
    for name in POSITIVE:
        col = x[:, OBSERVED_NUMERIC_FIELDS.index(name)]
        col = col[~np.isnan(col)]
        assert np.isfinite(col).all() and (col > 0).all(), name
    ages, eccs = np.array(ages), np.array(eccs)
    ages, eccs = ages[~np.isnan(ages)], eccs[~np.isnan(eccs)]
    assert len(ages) > 10_000 and (ages > 0).all() and (ages <= observation.UNIVERSE_AGE_GYR).all()
    assert (eccs >= 0).all() and (eccs < 1).all()
    # truncated, not clipped: no spike of exactly circular orbits from negative draws
    assert (eccs == 0.0).mean() < 0.01


@pytest.mark.parametrize("mean,sigma,lo,hi", [(0.01, 0.03, 0.0, 1.0), (0.5, 0.3, 0.0, 13.787), (5.0, 1.0, 0.0, math.inf)])
def test_truncated_normal_matches_the_truncated_distribution(mean, sigma, lo, hi):
    from scipy import stats

    rng = np.random.default_rng(0)
    draws = np.array([observation.truncated_normal(rng, mean, sigma, lo, hi) for _ in range(20_000)])
    assert (draws >= lo).all() and (draws <= hi).all()
    ref = stats.truncnorm((lo - mean) / sigma, (hi - mean) / sigma, loc=mean, scale=sigma)
    assert abs(draws.mean() - ref.mean()) < 4 * ref.std() / math.sqrt(len(draws))  # 4-sigma of the mean
    assert stats.kstest(draws, ref.cdf).pvalue > 1e-3
