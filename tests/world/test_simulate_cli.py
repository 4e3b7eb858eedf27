import numpy as np
import pytest
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.data import RealDataStorage
from astrobio.world import cli as world_cli


def test_interrupted_simulation_resumes_to_exactly_n_runs(tmp_path, monkeypatch):
    store = tmp_path / "store"
    calls = {"n": 0}
    real_write = RealDataStorage.write_runs

    def failing_write(self, runs, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # die in the middle of the second shard
            raise KeyboardInterrupt("killed")
        return real_write(self, runs, *a, **k)

    monkeypatch.setattr(RealDataStorage, "write_runs", failing_write)
    with pytest.raises(KeyboardInterrupt):
        world_cli.simulate_to_store(store, 20, seed=1, resolution="demo", workers=1, source="synthetic",
                                    chunk=8, progress=False)
    assert len(RealDataStorage(store).list_stored_runs(include_quarantined=True)) == 8
    monkeypatch.setattr(RealDataStorage, "write_runs", real_write)
    summary = world_cli.simulate_to_store(store, 20, seed=1, resolution="demo", workers=1, source="synthetic",
                                          chunk=8, progress=False)
    ids = [r["run_id"] for r in RealDataStorage(store).list_stored_runs(include_quarantined=True)]
    assert len(ids) == len(set(ids)) == 20
    assert summary["already_stored"] == 8 and summary["simulated_now"] == 12


def test_cli_same_seed_identical_store(tmp_path):
    runner = CliRunner()
    for name in ("a", "b"):
        res = runner.invoke(app, ["simulate", "--n", "6", "--out", str(tmp_path / name), "--seed", "4",
                                  "--workers", "2"])
        assert res.exit_code == 0, res.output
    a, b = RealDataStorage(tmp_path / "a"), RealDataStorage(tmp_path / "b")
    ids = sorted(r["run_id"] for r in a.list_stored_runs(include_quarantined=True))
    assert ids == sorted(r["run_id"] for r in b.list_stored_runs(include_quarantined=True))
    for rid in ids:
        x, y = a.load_run(rid), b.load_run(rid)
        np.testing.assert_array_equal(x.datacube_true, y.datacube_true)
        assert x.text == y.text and x.labels == y.labels
