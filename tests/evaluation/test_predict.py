"""Prediction in memory with the checkpoint's own data state; `predict --catalog FILE` on a user CSV."""

import csv
import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.data import PlanetRunDataset, RealDataStorage
from astrobio.data.dataset import STATS_FILE
from astrobio.evaluation import predict as P
from astrobio.evaluation.evaluate import evaluate_run
from astrobio.evaluation.inference import load_trained, predict_dataset
from astrobio.world import catalog

from .conftest import N_RUNS, SEED


@pytest.fixture()
def own_copy(trained_run, eval_store, tmp_path):
    """A copy of the trained run and of its store, free to be changed by one test."""
    run, store = tmp_path / "run", tmp_path / "store"
    shutil.copytree(trained_run, run)
    shutil.copytree(eval_store, store)
    return run, store


def _json(d) -> str:
    return json.dumps(d, sort_keys=True, default=float)  # NaN (an empty reliability bin) compares equal as text


def _logits_by_run(loaded, split="test"):
    ds = loaded.dataset(split)
    res = predict_dataset(loaded.model, ds)
    return {rid: res["logits"][i] for i, rid in enumerate(ds.run_ids)}


def test_evaluate_and_predict_ignore_a_changed_store(own_copy):
    from astrobio.simulation import simulate_to_store

    run, store = own_copy
    loaded = load_trained(run, data=store)
    saved = loaded.data_state["stats"]
    assert json.loads((store / STATS_FILE).read_text())["datacube"] == saved["datacube"]  # trained on these
    truths = [P.truth_for("Earth"), P.truth_for("LHS 1140 b")]
    rows = _json(P.predict_truths(loaded, truths, mc_samples=0))
    metrics = _json(evaluate_run(run, data=store, with_baselines=False)["model"])
    test_logits = _logits_by_run(loaded)

    # the train split changes after training: two train runs quarantined, stats.json recomputed
    st = RealDataStorage(store)
    for rid in PlanetRunDataset(store, "train", seed=loaded.seed).run_ids[:2]:
        st.quarantine(rid, ["test: flagged after training"])
    st.close()
    PlanetRunDataset(store, "train", seed=loaded.seed)
    assert json.loads((store / STATS_FILE).read_text())["datacube"] != saved["datacube"]
    assert _json(evaluate_run(run, data=store, with_baselines=False)["model"]) == metrics

    # runs are added to the store: the old test runs and the planets are predicted exactly as before
    simulate_to_store(store, N_RUNS + 12, seed=SEED, resolution="demo", workers=1, progress=False)
    assert len(RealDataStorage(store)) == N_RUNS + 12
    loaded = load_trained(run, data=store)
    assert _json(P.predict_truths(loaded, truths, mc_samples=0)) == rows
    now = _logits_by_run(loaded)
    for rid, logits in test_logits.items():
        np.testing.assert_array_equal(now[rid], logits)


def test_an_unreadable_best_checkpoint_falls_back_to_last(own_copy, caplog):
    run, _ = own_copy
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:1000])
    with caplog.at_level("WARNING", logger="astrobio.evaluation"):
        loaded = load_trained(run)
    assert "last.pt instead" in caplog.text and loaded.data_state["resolution"] == "demo"


def _write_catalog(path, rows, columns=None):
    columns = columns or list(rows[0])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def _shipped(name):
    return dict(next(r for r in catalog.catalog_rows() if r["name"] == name))


def test_predict_a_user_catalog_skipping_bad_rows_with_reasons(trained_run, tmp_path):
    good = _shipped("LHS 1140 b")
    twin = {**good, "name": "LHS-1140 b"}  # slugs alike, a distinct planet: its own run and prediction
    bad_number = {**_shipped("TRAPPIST-1 e"), "name": "Broken e", "star_teff_k": "warm"}
    giant = _shipped("51 Peg b")
    path = _write_catalog(tmp_path / "mine.csv", [good, bad_number, twin, giant])
    out = tmp_path / "pred.csv"
    res = CliRunner().invoke(app, ["predict", str(trained_run), "--catalog", str(path), "--out", str(out)])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "2 catalog planets predicted" in res.output and "2 skipped" in res.output
    assert "skipped Broken e: invalid star_teff_k='warm'" in res.output
    assert "skipped 51 Peg b: invalid planet_radius_earth" in res.output
    with open(out, newline="") as fh:
        got = list(csv.DictReader(fh))
    assert [r["name"] for r in got] == ["LHS 1140 b", "LHS-1140 b"]
    for r in got:
        assert abs(sum(float(r[k]) for k in ("p_not_habitable", "p_habitable", "p_inhabited")) - 1) < 1e-5


def test_a_user_catalog_without_a_required_column_is_a_clear_error(trained_run, tmp_path):
    columns = [c for c in catalog.REQUIRED_COLUMNS if c != "semimajor_axis_au"]
    path = _write_catalog(tmp_path / "mine.csv", [_shipped("LHS 1140 b")], columns)
    res = CliRunner().invoke(app, ["predict", str(trained_run), "--catalog", str(path)])
    assert res.exit_code == 2 and "semimajor_axis_au" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["predict", str(trained_run), "--catalog", str(tmp_path / "none.csv")])
    assert res.exit_code == 2 and "none.csv" in res.output
    res = CliRunner().invoke(app, ["predict", str(trained_run), str(path)])  # a FILE without --catalog
    assert res.exit_code == 2


def test_mc_dropout_spread_depends_on_seed_only_and_leaves_the_rng_alone(trained_run):
    import torch

    loaded = load_trained(trained_run)
    truths = [P.truth_for("Kepler-442 b")]
    tiny = P.predict_truths(loaded, truths, seed=3)[0]
    assert tiny["p_habitable_std"] == 0.0  # the tiny preset has no active dropout: the passes are not run
    for m in loaded.model.modules():  # as a preset with dropout would have
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.3
    a = P.predict_truths(loaded, truths, seed=3)[0]
    torch.rand(7)  # whatever ran in between does not change the answer
    b = P.predict_truths(loaded, truths, seed=3)[0]
    c = P.predict_truths(loaded, truths, seed=4)[0]
    assert a == b and a["p_habitable_std"] > 0 and c["p_habitable_std"] != a["p_habitable_std"]
    assert a["p_habitable"] == tiny["p_habitable"]  # the deterministic pass is not affected by dropout
    state = torch.get_rng_state()
    P.predict_truths(loaded, truths, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # predicting leaves the caller's RNG where it was


def test_mc_dropout_in_the_heads_samples_the_heads_on_one_trunk_pass(trained_run):
    import torch

    from astrobio.evaluation import inference

    loaded = load_trained(trained_run)
    model = loaded.model
    model.classifier[3].p = 0.3  # the presets' dropout: in the heads only
    assert inference._dropout_only_in_heads(model)
    ds = loaded.dataset("train")
    items = [ds[i] for i in range(4)]
    collate = ds.collate_fn()
    torch.manual_seed(5)
    with torch.no_grad():  # as predict_dataset runs it
        std = inference._mc_std(model, items, collate, "cpu", (), 8)
    with torch.no_grad():  # by hand: the eval-mode fused vector, then 8 sampled passes of the classifier
        fused = model(collate(items), with_language_loss=False)["fused"]
        torch.manual_seed(5)
        model.classifier.train()
        probs = torch.softmax(model.classifier(fused.repeat(8, 1)), -1).reshape(8, 4, -1)
        model.eval()
    np.testing.assert_allclose(std, probs.std(0).numpy(), rtol=1e-5, atol=1e-7)
    assert std.shape == (4, 3) and (std > 0).all()
    model.fusion.blocks[0].mlp.drop.p = 0.3  # dropout in the trunk: every pass runs the whole model
    assert not inference._dropout_only_in_heads(model)
    with torch.no_grad():
        assert inference._mc_std(model, items, collate, "cpu", (), 4).shape == (4, 3)
