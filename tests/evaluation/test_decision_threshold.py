"""benchmarks/decision_threshold.py: the life class's scaled argmax, its validation fit, and the records it
writes from the members quality.py kept."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def threshold():
    spec = importlib.util.spec_from_file_location("decision_threshold", BENCHMARKS / "decision_threshold.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


Y = np.array([0, 1, 2, 2])


def test_scaling_the_life_column_moves_only_the_near_ties(threshold):
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.5, 0.4], [0.1, 0.5, 0.4], [0.2, 0.2, 0.6]])
    # λ = 1: predictions 0, 1, 1, 2 → F1 1, 2/3, 2/3
    assert threshold.scaled_macro_f1(Y, probs, 1.0) == pytest.approx(7 / 9)
    # λ = 1.5 turns both 0.4s into 0.6 > 0.5: predictions 0, 2, 2, 2 → F1 1, 0, 0.8
    assert threshold.scaled_macro_f1(Y, probs, 1.5) == pytest.approx(0.6)
    assert np.array_equal(probs[:, 2], [0.1, 0.4, 0.4, 0.6])  # the caller's probabilities are not scaled in place
    # every λ of the grid below 1.25 gives 7/9: the fit keeps argmax (λ = 1 exactly), not the grid's first λ
    assert threshold.fit_life_scale(probs, Y) == 1.0


def test_the_fit_takes_the_smallest_move_that_splits_the_ridge(threshold):
    probs = np.array([[0.6, 0.3, 0.1], [0.1, 0.5, 0.3], [0.1, 0.5, 0.45], [0.2, 0.2, 0.6]])
    # the inhabited 0.45 needs λ > 1.111, the habitable 0.3 flips above λ = 1.667; the grid steps 0.025 in ln λ
    assert threshold.fit_life_scale(probs, Y) == pytest.approx(math.exp(0.125))
    assert threshold.scaled_macro_f1(Y, probs, math.exp(0.125)) == 1.0


def test_records_from_kept_members_match_their_rows_and_bound_the_fit(threshold, eval_store, tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("quality_benchmark", BENCHMARKS / "quality.py")
    quality = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quality)
    store, work = tmp_path / "store", tmp_path / "work"
    shutil.copytree(eval_store, store)
    monkeypatch.setattr(sys, "argv", ["quality.py", "--store", str(store), "--seeds", "0", "--n-test", "8",
                                      "--work", str(work), "--out", str(tmp_path / "q.json"), "--methods", "lightgbm",
                                      "--max-val", "3", "--sizes", "16", "--members", "2", "--member", "0"])
    quality.main()
    (member,) = (work / "members").glob("*.npz")
    out = tmp_path / "threshold.json"
    monkeypatch.setattr(sys, "argv", ["decision_threshold.py", "--store", str(store), "--n-test", "8",
                                      "--out", str(out), str(member)])
    threshold.main()
    result = json.loads(out.read_text())
    (record,) = result["records"]
    with np.load(member) as saved:
        row, n_val = json.loads(str(saved["row"])), len(saved["y_val"])
    assert record["macro_f1_argmax"] == pytest.approx(row["macro_f1"], abs=1e-9)
    assert record["method"] == "lightgbm" and record["n_val"] == n_val
    # the hindsight maximum is over a grid that holds λ = 1 and the validation λ: it bounds both
    assert record["hindsight_macro_f1_max"] >= max(record["macro_f1_argmax"], record["macro_f1_lambda_val"])
    assert result["summary"][0]["macro_f1_argmax"]["values"] == [record["macro_f1_argmax"]]
    # a member scored on another test set (here: a row that disagrees) stops the diagnostic
    with np.load(member) as saved:
        kept = dict(saved)
    np.savez(member, **{**kept, "row": json.dumps({**row, "macro_f1": row["macro_f1"] + 0.1})})
    with pytest.raises(SystemExit, match="is not its row's"):
        threshold.main()
