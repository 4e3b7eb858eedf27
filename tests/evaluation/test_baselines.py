import numpy as np
import pytest

from astrobio import metrics as M
from astrobio.evaluation import baselines as B
from astrobio.evaluation.features import SPECTRUM_BINS, RunTable, bin_spectrum
from astrobio.world.types import OBSERVED_NUMERIC_FIELDS


def _table(rows: list[dict], y) -> RunTable:
    n = len(rows)
    obs = np.full((n, len(OBSERVED_NUMERIC_FIELDS)), np.nan)
    for i, r in enumerate(rows):
        for k, v in r.items():
            obs[i, OBSERVED_NUMERIC_FIELDS.index(k)] = v
    return RunTable(run_ids=[f"r{i}" for i in range(n)], y=np.asarray(y), regression=np.zeros((n, 7)),
                    observed=obs, spectrum_bins=np.full((n, SPECTRUM_BINS), np.nan), reading=np.full((n, 11), np.nan),
                    has_spectrum=np.zeros(n, bool),
                    texts=["quiet star"] * n, truth=np.zeros((n, 16)), n_transits=np.zeros(n, int),
                    modality_present=np.ones((n, 4), bool))


SUN = {"star_teff_k": 5772.0, "star_luminosity_lsun": 1.0}
EARTH = {**SUN, "semimajor_axis_au": 1.0, "planet_radius_earth": 1.0, "planet_mass_earth": 1.0,
         "instellation_searth": 1.0, "equilibrium_temperature_k": 255.0}
VENUS = {**SUN, "semimajor_axis_au": 0.723, "planet_radius_earth": 0.95, "planet_mass_earth": 0.815,
         "instellation_searth": 1.91, "equilibrium_temperature_k": 299.0}
MARS = {**SUN, "semimajor_axis_au": 1.524, "planet_radius_earth": 0.532, "planet_mass_earth": 0.107,
        "instellation_searth": 0.43, "equilibrium_temperature_k": 210.0}
BIG = {**EARTH, "planet_radius_earth": 1.7, "planet_mass_earth": 5.0}


def test_rules_on_solar_system_planets():
    t = _table([EARTH, VENUS, MARS, BIG], [2, 0, 0, 0])
    assert B.conservative_hz(t).tolist() == [True, False, True, True]  # Mars sits inside 1.68 AU
    assert B.optimistic_hz(t).tolist() == [True, False, True, True]  # Venus (0.723 AU) is inside recent Venus (0.75 AU)
    assert B.bioverse_eec(t).tolist() == [True, False, False, False]  # Mars too small, BIG too large
    assert B.esi_rule(t).tolist()[0] and not B.esi_rule(t).tolist()[2]


def test_rule_probabilities_are_smoothed_training_frequencies():
    train = _table([EARTH, EARTH, VENUS], [2, 1, 0])
    p = B.RuleBaseline("eec", B.bioverse_eec).fit(train).predict_proba(_table([EARTH, VENUS], [0, 0]))
    np.testing.assert_allclose(p[0], [1 / 5, 2 / 5, 2 / 5])  # (0+1, 1+1, 1+1) / 5
    np.testing.assert_allclose(p[1], [2 / 4, 1 / 4, 1 / 4])


def test_bin_spectrum_snr_of_a_feature():
    wl = np.geomspace(0.6, 12, 1000)
    depth = np.full(1000, 100.0)
    depth[(wl > 4.2) & (wl < 4.4)] += 50.0
    spec = np.stack([wl, depth, np.full(1000, 10.0)], 1)
    bins = bin_spectrum(spec)
    assert bins.argmax() == np.digitize(4.3, np.geomspace(0.6, 12, SPECTRUM_BINS + 1)) - 1
    assert bins.max() > 10 and np.isnan(bin_spectrum(None)).all()


def test_subset_takes_the_same_rows_of_every_column():
    t = _table([{"star_teff_k": float(i)} for i in range(5)], [0, 1, 2, 0, 1])
    s = t.subset(np.array([3, 1]))
    assert s.run_ids == ["r3", "r1"] and s.y.tolist() == [0, 1] and s.texts == ["quiet star"] * 2
    assert s.column("star_teff_k").tolist() == [3.0, 1.0] and s.modality_present.shape == (2, 4)


def test_observer_ceiling_curve_on_a_learnable_table():
    rng = np.random.default_rng(0)
    teff = rng.uniform(3000, 6000, 400)
    y = np.digitize(teff, [4000, 5000])  # the class is a step function of one observed value
    train, test = _table([{"star_teff_k": v} for v in teff[:300]], y[:300]), _table(
        [{"star_teff_k": v} for v in teff[300:]], y[300:])
    full = M.classification_metrics(test.y, B.LightGBMBaseline(0).fit(train).predict_proba(test))
    c = B.observer_ceiling(train, test, full, seed=0)
    assert [p["n_train"] for p in c["curve"]] == [75, 150, 300]
    assert c["plateau"]["macro_f1"] == max(p["macro_f1"] for p in c["curve"]) >= 0.9
    assert c["flattened"] is (c["last_doubling_macro_f1_gain"] < 0.02)


def test_lightgbm_fits_soft_targets_as_weighted_copies_and_refuses_bad_ones():
    from astrobio.errors import InputValidationError

    rng = np.random.default_rng(0)
    s = rng.uniform(0.2, 3.0, 120)
    train = _table([{**EARTH, "instellation_searth": v} for v in s], np.digitize(s, [0.8, 1.6]))
    one_hot = np.eye(3)[train.y]
    hard = B.LightGBMBaseline(seed=0).fit(train).predict_proba(train)
    same = B.LightGBMBaseline(seed=0).fit(train, soft_targets=one_hot).predict_proba(train)
    assert np.allclose(hard, same)  # one-hot targets: one copy per run with weight 1, the labels' own fit
    assert (hard.argmax(1) == train.y).mean() > 0.9
    flat = B.LightGBMBaseline(seed=0).fit(train, soft_targets=np.full((120, 3), 1 / 3)).predict_proba(train)
    # targets that say nothing: nothing but the bagging's noise is learned, where the labels give certainty
    assert flat.max() < 0.4 < 0.9 < np.median(hard.max(1))
    with pytest.raises(InputValidationError, match="soft_targets"):
        B.LightGBMBaseline(seed=0).fit(train, soft_targets=one_hot[:-1])
