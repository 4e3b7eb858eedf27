"""`astrobio simulate --out STORE` on its one-worker path (a dask worker thread in this process)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.data import RealDataStorage
from astrobio.simulation import simulate_to_store


def _ids(store) -> list[str]:
    return [r["run_id"] for r in RealDataStorage(store).list_stored_runs(include_quarantined=True)]


def test_same_seed_gives_an_identical_store(tmp_path):
    runner = CliRunner()
    for name in ("a", "b"):
        res = runner.invoke(app, ["simulate", "--n", "6", "--out", str(tmp_path / name), "--seed", "4",
                                  "--sim-workers", "1"])
        assert res.exit_code == 0, res.output
    a, b = RealDataStorage(tmp_path / "a"), RealDataStorage(tmp_path / "b")
    ids = sorted(_ids(tmp_path / "a"))
    assert len(ids) == 6 and ids == sorted(_ids(tmp_path / "b"))
    for rid in ids:
        x, y = a.load_run(rid), b.load_run(rid)
        np.testing.assert_array_equal(x.datacube_true, y.datacube_true)
        assert x.text == y.text and x.labels == y.labels
        assert a.index_row(rid)["content_hash"] == b.index_row(rid)["content_hash"]


def test_workers_is_not_a_simulate_option(tmp_path):
    """One name per meaning: --sim-workers (processes) here, --loader-workers (DataLoader) in train."""
    res = CliRunner().invoke(app, ["simulate", "--n", "2", "--out", str(tmp_path / "s"), "--workers", "1"])
    assert res.exit_code == 2 and "No such option: --workers" in res.output
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args, field", [
    (["--scheduler", "/no/such/scheduler.json"], "scheduler='/no/such/scheduler.json'"),
    (["--survey", "hubble"], "survey='hubble'"),
])
def test_cli_bad_input_is_one_line_exit_2_naming_the_field(tmp_path, args, field):
    res = CliRunner().invoke(app, ["simulate", "--n", "2", "--out", str(tmp_path / "s"), *args])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}: expected"), res.stderr
    assert "Traceback" not in res.output
    assert not (tmp_path / "s").exists()  # refused before the store was touched


def test_store_of_another_resolution_is_refused_before_simulating(tmp_path):
    store = tmp_path / "s"
    simulate_to_store(store, 2, seed=0, resolution="demo", workers=1, progress=False)
    res = CliRunner().invoke(app, ["simulate", "--n", "3", "--out", str(store), "--resolution", "seed"])
    assert res.exit_code == 2 and res.stderr.startswith("error: resolution='seed': expected 'demo'"), res.stderr
    assert len(_ids(store)) == 2
