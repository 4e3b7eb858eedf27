"""The served table's cache: built once, reused while run and catalog are unchanged; `astrobio serve` errors."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.serve.conftest import SERVED, SKIPPED


def test_second_start_loads_the_cache_without_predicting(serve_table, trained_run, monkeypatch):
    from astrobio.serve import table as T

    def no_build(*a, **k):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(T, "build_table", no_build)
    again = T.catalog_table(trained_run, names=SERVED + SKIPPED)
    assert again.planets == serve_table.planets and again.skipped == serve_table.skipped
    assert (again.maps == serve_table.maps).all()
    assert again.store_path is not None and again.store_path.parent.parent.name == T.CACHE_DIR


def test_cache_key_follows_run_catalog_seed_and_selection(trained_run, tmp_path):
    from astrobio.serve.table import cache_key, shipped_catalog_path

    run = tmp_path / "run"
    shutil.copytree(trained_run / "checkpoints", run / "checkpoints")
    catalog = shipped_catalog_path()
    base = cache_key(run, catalog, 0, 5)
    assert cache_key(run, catalog, 0, 5) == base  # deterministic
    assert cache_key(run, catalog, 1, 5) != base
    assert cache_key(run, catalog, 0, 20) != base
    assert cache_key(run, catalog, 0, 5, ("Kepler-442 b",)) != base
    (run / "metrics.json").write_text(json.dumps({"model": {"temperature": 1.7}}))  # a fitted temperature
    with_temperature = cache_key(run, catalog, 0, 5)
    assert with_temperature != base
    with open(run / "checkpoints" / "best.pt", "ab") as fh:  # new weights
        fh.write(b"\0")
    assert cache_key(run, catalog, 0, 5) != with_temperature
    other = tmp_path / "catalog.csv"
    other.write_bytes(catalog.read_bytes() + b"\n")
    assert cache_key(run, other, 0, 5) != cache_key(run, catalog, 0, 5)


def test_unknown_names_and_missing_run_are_typed_errors(trained_run, tmp_path):
    from astrobio.errors import InputValidationError, StorageError
    from astrobio.serve.table import catalog_table

    with pytest.raises(InputValidationError, match="names"):
        catalog_table(trained_run, names=("Kepler-442 b", "Planet Nine"))
    with pytest.raises(InputValidationError, match="run"):
        catalog_table(tmp_path / "missing")
    (tmp_path / "untrained").mkdir()
    with pytest.raises(StorageError, match="no checkpoint"):
        catalog_table(tmp_path / "untrained")


def test_a_planet_the_simulator_refuses_costs_only_its_own_row(monkeypatch):
    """One refusal inside a chunk: the chunk is bisected until the refused planet stands alone; each planet
    is simulated once in the calls that succeed, and only the refused one gets its reason."""
    from types import SimpleNamespace

    from astrobio.errors import InputValidationError
    from astrobio.evaluation import predict as P
    from astrobio.serve import table as T

    calls = []

    def fake_simulate(truths, **kw):
        calls.append([t.name for t in truths])
        if any(t.name == "boom" for t in truths):
            raise InputValidationError("temperature_k", 5529.4, "a finite value [0.0, 5000.0] K")
        return [f"run of {t.name}" for t in truths]

    def fake_predict_runs(loaded, runs, **kw):
        return [{"name": r[len("run of "):]} for r in runs]

    monkeypatch.setattr(P, "simulate_runs", fake_simulate)
    monkeypatch.setattr(P, "predict_runs", fake_predict_runs)
    part = [SimpleNamespace(name=n) for n in ("a", "boom", "c")]
    rows, runs, failures = T._predict_part(None, part, 0, 5, 1.0, "demo")
    assert [r["name"] for r in rows] == ["a", "c"] and runs == ["run of a", "run of c"]
    assert failures == [("boom", "simulation failed: InputValidationError: invalid temperature_k=5529.4: "
                                 "expected a finite value [0.0, 5000.0] K")]
    assert calls == [["a", "boom", "c"], ["a"], ["boom", "c"], ["boom"], ["c"]]
