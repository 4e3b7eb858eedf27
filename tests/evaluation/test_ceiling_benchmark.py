"""benchmarks/ceiling.py: the posterior arithmetic on tiny inputs, the regenerated world against a simulated store,
and the rows it writes."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def ceiling():
    sys.path.insert(0, str(BENCHMARKS))  # ceiling.py imports quality.py beside it, as when run as a script
    try:
        spec = importlib.util.spec_from_file_location("ceiling_benchmark", BENCHMARKS / "ceiling.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_class_posterior_is_bayes_rule_over_each_planets_hypotheses(ceiling):
    # planet 0: H0 (class 1, prior 0.45) and two life draws (class 2, 0.275 each); planet 1: one hypothesis
    owner = np.array([0, 0, 0, 1])
    log_w = np.log([0.45, 0.275, 0.275, 1.0])
    klass = np.array([1, 2, 2, 0])
    loglik = np.array([0.0, np.log(2.0), 0.0, -50.0])  # draw 1 explains the spectrum twice as well as H0
    post = ceiling.class_posterior(owner, log_w, klass, loglik, 2)
    # p(2) = (0.55 + 0.275) / (0.45 + 0.55 + 0.275) = 0.825 / 1.275
    assert post[0] == pytest.approx([0.0, 0.45 / 1.275, 0.825 / 1.275])
    assert post[1] == pytest.approx([1.0, 0.0, 0.0])  # a single hypothesis is certain, however unlikely
    # a likelihood far below float range still normalises (each planet's scores are shifted by their peak)
    far = ceiling.class_posterior(owner, log_w, klass, loglik - 1e4, 2)
    assert far == pytest.approx(post)


def test_fewer_draws_keep_each_planets_prior_summing_to_one(ceiling):
    draw = np.array([-1, 0, 1, 2, 3, -1])
    log_w = np.log([0.45, 0.1375, 0.1375, 0.1375, 0.1375, 1.0])
    mask, lw = ceiling.subsample_weights(log_w, draw, 2, 4)
    assert mask.tolist() == [True, True, True, False, False, True]
    assert np.exp(lw).tolist() == pytest.approx([0.45, 0.275, 0.275, 1.0])


def test_gaussian_log_likelihood(ceiling):
    depth = np.array([[100.0, 200.0], [100.0, 210.0]])
    observed = np.array([[110.0, 200.0], [110.0, 200.0]])
    sigma = np.array([[10.0, 5.0], [10.0, 5.0]])
    assert ceiling.log_likelihoods(depth, observed, sigma).tolist() == pytest.approx([-0.5, -2.5])


@pytest.fixture(scope="module")
def ceiling_rows(ceiling, eval_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("ceiling") / "ceiling.json"
    argv = sys.argv
    sys.argv = ["ceiling.py", "--store", str(eval_store), "--n-test", "8", "--draws", "4", "--out", str(out)]
    try:
        ceiling.main()
    finally:
        sys.argv = argv
    return json.loads(out.read_text())


def test_the_regenerated_world_is_the_stored_one(ceiling_rows):
    checks = ceiling_rows["checks"]
    n = checks["runs"]
    assert n == ceiling_rows["test_runs"] >= 8
    assert checks["biospheres_reproduced"] == checks["classes_reproduced"] == n
    assert checks["largest_log10_gas_difference"] < 1e-9
    # the stored spectra scatter about the regenerated true planets' depths as the noise model says: chi-square
    # per bin has mean 1 and, over 1000 bins, a spread of ~0.045 per spectrum
    chi2 = checks["true_planet_chi2_per_bin"]
    assert 0.85 < chi2["p05"] <= chi2["median"] <= chi2["p95"] < 1.15


def test_rows_score_each_likelihood_at_each_draw_count(ceiling_rows):
    rows = ceiling_rows["rows"]
    names = ("bayes_knowing_the_planet", "bayes_knowing_the_planet_shape_only", "bayes_knowing_the_planet_no_spectrum")
    assert [(r["method"], r["draws"]) for r in rows] == [(m, k) for k in (1, 2, 4) for m in names]
    for r in rows:
        assert r["n"] == ceiling_rows["test_runs"] and 0.0 <= r["macro_f1"] <= 1.0 and r["log_loss"] >= 0.0
        assert r["life_log_loss"] >= 0.0 or np.isnan(r["life_log_loss"])
        assert set(r["strata"]) <= {"no spectrum", "1-5 transits", "6-20 transits", ">20 transits"}
    summary = {(g["method"], g["draws"]): g for g in ceiling_rows["summary"]}
    assert len(summary) == len(rows) and all(g["rows"] == 1 for g in summary.values())
    assert summary[(names[0], 4)]["life_log_loss"]["median"] == rows[6]["life_log_loss"]
    # without a spectrum the three likelihoods agree: the planets of that stratum score alike in every variant
    by = {r["method"]: r for r in rows if r["draws"] == 4}
    if "no spectrum" in by[names[0]]["strata"]:
        assert len({json.dumps(by[m]["strata"]["no spectrum"], sort_keys=True) for m in names}) == 1


def test_life_log_loss_renormalises_over_the_two_habitable_classes(ceiling):
    y = np.array([0, 1, 2])
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [0.5, 0.1, 0.4]])
    # planet 0 is not habitable and does not count; p(1 | habitable) = 0.75, p(2 | habitable) = 0.8
    assert ceiling.life_log_loss(y, probs) == pytest.approx(-(np.log(0.75) + np.log(0.8)) / 2)
    assert np.isnan(ceiling.life_log_loss(y[:1], probs[:1]))


def test_shape_likelihood_ignores_the_level_and_scale_of_the_depth(ceiling):
    rng = np.random.default_rng(0)
    shape = np.array([0.0, 1.0, 0.0, 3.0, 0.0, 2.0])
    sigma = np.full((1, 6), 0.5)
    observed = (100.0 + 4.0 * shape + rng.normal(0, 0.5, 6))[None]
    exact = ceiling.shape_log_likelihoods(shape[None], observed, sigma)
    # the same shape at another level and amplitude fits exactly as well
    assert ceiling.shape_log_likelihoods((7.0 + 0.1 * shape)[None], observed, sigma) == pytest.approx(exact)
    # an inverted shape is not fitted with a negative amplitude: it explains nothing, like a flat depth
    flat = ceiling.shape_log_likelihoods(np.full((1, 6), 5.0), observed, sigma)
    assert ceiling.shape_log_likelihoods(-shape[None], observed, sigma) == pytest.approx(flat)
    assert exact > flat
    # and with nothing fitted the profile is the weighted scatter about the mean
    d = observed - observed.mean()
    assert flat == pytest.approx(-0.5 * np.sum((d / sigma) ** 2))


def test_too_few_draws_is_refused(ceiling, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ceiling.py", "--store", str(tmp_path), "--draws", "2"])
    with pytest.raises(SystemExit, match="--draws: 2, expected 4 or more"):
        ceiling.main()


def test_models_kept_by_quality_are_scored_beside_the_ceiling(ceiling, eval_store, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("quality_benchmark", BENCHMARKS / "quality.py")
    quality = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality)
    store, work = tmp_path / "store", tmp_path / "work"
    shutil.copytree(eval_store, store)  # quality.py writes its data state beside the store
    monkeypatch.setattr(sys, "argv", ["quality.py", "--store", str(store), "--seeds", "0", "--n-test", "8",
                                      "--work", str(work), "--out", str(tmp_path / "q.json"), "--methods", "lightgbm",
                                      "--max-val", "3", "--sizes", "16", "--members", "2", "--member", "0"])
    quality.main()
    (member,) = (work / "members").glob("*.npz")
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # member_row reads quality.py's file names from decision_threshold
    out = tmp_path / "ceiling.json"
    monkeypatch.setattr(sys, "argv", ["ceiling.py", "--store", str(store), "--n-test", "8", "--draws", "4",
                                      "--out", str(out), str(member)])
    ceiling.main()
    row = json.loads(out.read_text())["rows"][-1]
    with np.load(member) as saved:
        kept = json.loads(str(saved["row"]))
    assert (row["method"], row["n_train"], row["seed"], row["member_file"]) == ("lightgbm", 16, 0, member.name)
    assert row["macro_f1"] == pytest.approx(kept["macro_f1"], abs=1e-9)
    assert row["log_loss"] == pytest.approx(kept["log_loss"], abs=1e-9)
    # a member from another test set is refused
    with np.load(member) as saved:
        other = dict(saved)
    np.savez(member, **{**other, "probs_test": other["probs_test"][:-1]})
    with pytest.raises(SystemExit, match="test probabilities, this test set has"):
        ceiling.main()


def test_teacher_posteriors_cover_the_pool_in_shards_and_know_habitability(ceiling, eval_store, tmp_path,
                                                                          monkeypatch):
    from astrobio.data import RealDataStorage

    outs = [tmp_path / f"teacher-{k}.npz" for k in (0, 1)]
    for k, out in enumerate(outs):
        monkeypatch.setattr(sys, "argv", ["ceiling.py", "--store", str(eval_store), "--n-test", "8", "--draws", "4",
                                          "--teacher-out", str(out), "--shard", f"{k}/2", "--chunk", "5"])
        ceiling.main()
    ids, probs = [], []
    for out in outs:
        with np.load(out) as z:
            ids += z["run_ids"].tolist()
            probs.append(z["probs"])
    probs = np.concatenate(probs)
    storage = RealDataStorage(eval_store)
    everything = set(storage.index_columns(("run_id",))["run_id"])
    assert len(ids) == len(set(ids)) and set(ids) < everything  # disjoint shards, the test runs left out
    assert probs.shape == (len(ids), 3) and np.allclose(probs.sum(1), 1.0) and (probs >= 0).all()
    # the observer told the planet knows its habitability; only the life question is uncertain
    y = np.array([storage.load_run(r).labels["habitability_class"] for r in ids])
    assert np.array_equal(probs[:, 0] > 0.5, y == 0)
