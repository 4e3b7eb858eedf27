"""evaluate → predict → report on a tiny trained run (the real commands, small sizes)."""

import json

import numpy as np
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.evaluation import predict as P
from astrobio.evaluation.evaluate import evaluate_run
from astrobio.evaluation.inference import load_trained
from astrobio.evaluation.report import write_report


def test_evaluate_runs_model_ablations_and_every_baseline(trained_run):
    m = evaluate_run(trained_run)
    assert set(m["baselines"]) == {"kopparapu_hz_conservative", "kopparapu_hz_optimistic", "esi_threshold_0.8",
                                   "bioverse_exo_earth_candidate", "lightgbm_tabular_spectrum_text",
                                   "lightgbm_tabular_spectrum_text_reading", "oracle_true_parameters"}
    assert set(m["ablations"]) == {f"without_{x}" for x in ("datacube", "graph", "spectrum", "text")}
    for block in [m["model"]["calibrated"], *m["baselines"].values(), *m["ablations"].values()]:
        assert 0.0 <= block["accuracy"] <= 1.0 and 0.0 <= block["ece"] <= 1.0
    assert m["model"]["temperature"] > 0
    decision = m["model"]["macro_f1_decision"]
    assert len(decision["weights"]) == 3 and decision["weights"][0] == 1.0 and 0 <= decision["macro_f1"] <= 1
    curve = m["ceiling_estimate"]["curve"]
    assert [p["n_train"] for p in curve] == sorted(p["n_train"] for p in curve)
    assert curve[-1]["macro_f1"] == m["baselines"]["lightgbm_tabular_spectrum_text"]["macro_f1"]
    assert set(m["hela_retrieval"]) <= {"log10_co2", "log10_ch4", "log10_o2", "log10_h2o"}
    assert json.loads((trained_run / "metrics.json").read_text())["split"] == "test"


def test_predict_earth_and_a_catalog_planet(trained_run):
    loaded = load_trained(trained_run)
    rows = P.predict_truths(loaded, [P.truth_for("Earth"), P.truth_for("LHS 1140 b")], mc_samples=3)
    assert [r["name"] for r in rows] == ["Earth", "LHS 1140 b"]
    for r in rows:
        probs = [r["p_not_habitable"], r["p_habitable"], r["p_inhabited"]]
        assert abs(sum(probs) - 1) < 1e-5 and all(0 <= p <= 1 for p in probs)
        w = [r[f"w_{m}"] for m in P.MODALITIES]
        assert abs(sum(w) - 1) < 1e-4
    assert rows[0]["has_spectrum"] and not rows[1]["has_spectrum"]


def test_predict_refuses_unknown_and_unmodellable_planets(trained_run):
    import pytest

    from astrobio.errors import InputValidationError

    with pytest.raises(InputValidationError, match="planet"):
        P.truth_for("Vulcan b")
    with pytest.raises(InputValidationError, match="planet_radius_earth"):
        P.truth_for("51 Peg b")  # a hot Jupiter: no surface to model


def test_cli_report_writes_self_contained_html(trained_run, eval_store):
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(trained_run), "--planet", "Mars"])
    assert res.exit_code == 0, res.output
    assert "Mars" in res.output and "modality weights" in res.output
    if not (trained_run / "metrics.json").exists():
        evaluate_run(trained_run)
    path = write_report(trained_run, eval_store)
    page = path.read_text()
    assert page.count("<img src=\"data:image/png;base64,") >= 4
    assert "http" not in page.replace("https://", "").split("<style>")[0]  # no external resources
    assert np.isfinite(json.loads((trained_run / "metrics.json").read_text())["model"]["temperature"])
