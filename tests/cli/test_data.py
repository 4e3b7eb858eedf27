"""`astrobio data ...` commands through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from astrobio.cli import app
from astrobio.data.storage import RealDataStorage


@pytest.fixture
def store(store_path, runs):
    bad = runs[3]
    bad.text = ""
    s = RealDataStorage(store_path)
    s.write_runs(runs)
    return s


def test_quality_json_quarantines_and_restore(store):
    runner = CliRunner()
    res = runner.invoke(app, ["data", "quality", str(store.path), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["quarantined"] == ["run-0003"] and report["accuracy"] == 0.75
    assert [r["run_id"] for r in store.quarantined_runs()] == ["run-0003"]
    res = runner.invoke(app, ["data", "quality", str(store.path), "--no-quarantine", "--strict"])
    assert res.exit_code == 1 and "accuracy (runs passing)" in res.output
    res = runner.invoke(app, ["data", "restore", str(store.path), "run-0003"])
    assert res.exit_code == 0 and "was quarantined for ['text_empty']" in res.output
    assert store.quarantined_runs() == []


def test_inspect(store):
    runner = CliRunner()
    res = runner.invoke(app, ["data", "inspect", str(store.path), "--json"])
    summary = json.loads(res.output)
    assert summary["runs"] == 4 and summary["class_counts"] == {"0": 1, "1": 0, "2": 3}
    assert summary["modalities_present"]["spectrum"] == 3 and summary["grid_shape"] == [2, 12, 4, 8, 3]
    res = runner.invoke(app, ["data", "inspect", str(store.path), "run-0001", "--json"])
    one = json.loads(res.output)
    assert one["units"]["datacube_true:air_temperature"] == "K" and one["shapes"]["spectrum"] == [50, 3]
    assert one["provenance"]["source"] == "simulator"
    res = runner.invoke(app, ["data", "inspect", str(store.path), "run-0001"])
    assert res.exit_code == 0 and "standard_names" in res.output


def test_export_sources_and_errors(store, tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.nc"
    res = runner.invoke(app, ["data", "export", str(store.path), "run-0000", "--format", "netcdf", "--out", str(out)])
    assert res.exit_code == 0 and out.exists()
    res = runner.invoke(app, ["data", "export", str(store.path), "run-0002", "--format", "csv",
                              "--out", str(tmp_path / "s.csv")])
    assert res.exit_code == 2 and "no spectrum" in res.output
    res = runner.invoke(app, ["data", "sources", "--json"])
    assert [s["name"] for s in json.loads(res.output)][-1] == "nasa_exoplanet_archive"
    res = runner.invoke(app, ["data", "inspect", str(tmp_path / "nowhere")])
    assert res.exit_code == 2 and "no astrobio store" in res.output
    res = runner.invoke(app, ["data", "restore", str(store.path), "run-9999"])
    assert res.exit_code == 2 and "not in the store" in res.output


def test_corrupt_index_is_one_line_naming_repair(store):
    store.close()
    index = store.path / "index.sqlite"
    index.write_bytes(b"\x00" * 100 + index.read_bytes()[100:])  # header destroyed
    runner = CliRunner()
    for args in (["inspect", str(store.path)], ["quality", str(store.path)], ["restore", str(store.path), "x"]):
        res = runner.invoke(app, ["data", *args])
        lines = res.output.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1, res.output
        assert lines[0].startswith("error: the index") and "astrobio data repair" in lines[0]
        assert res.exception is None or isinstance(res.exception, SystemExit)


def test_repair_dry_run_then_repair(store):
    store.close()
    (store.path / "index.sqlite").unlink()
    runner = CliRunner()
    res = runner.invoke(app, ["data", "repair", str(store.path), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would rebuild the index (missing) from the shards: 4 runs" in res.output
    assert res.output.strip().endswith("would restore 4 runs: 0 indexed before, 4 after (dry run: nothing changed)")
    assert not (store.path / "index.sqlite").exists()
    res = runner.invoke(app, ["data", "repair", str(store.path)])
    assert res.exit_code == 0 and "restored 4 runs: 0 indexed before, 4 after" in res.output
    assert len(RealDataStorage(store.path)) == 4
    res = runner.invoke(app, ["data", "repair", str(store.path), "--json"])
    assert json.loads(res.output)["restored"] == [] and res.exit_code == 0
    res = runner.invoke(app, ["data", "quality", str(store.path), "--no-verify-hashes", "--json"])
    assert json.loads(res.output)["hashes_verified"] == 0 and json.loads(res.output)["storage_problems"] == []
