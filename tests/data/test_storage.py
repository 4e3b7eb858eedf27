"""RealDataStorage: exact round trip, idempotence, crash safety, quarantine, errors."""

from __future__ import annotations

import math
import os
import pickle

import h5py
import numpy as np
import pytest
import torch

from astrobio.data.annotation import ComprehensiveDataAnnotationSystem
from astrobio.data.repair import repair_store, scan_store
from astrobio.data.storage import READ_METADATA_CACHE_BYTES, RealDataStorage, content_hash, row_from_group, run_arrays, stored_content_hash
from astrobio.errors import AnnotationError, InputValidationError, StorageError


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_exact_round_trip(store_path, runs):
    store = RealDataStorage(store_path)
    assert store.write_runs(runs) == [r.run_id for r in runs]
    assert sorted(p.name for p in store_path.iterdir() if p.suffix == ".h5") == ["shard-00000.h5"]
    fresh = RealDataStorage(store_path)  # a new handle reads what the first one wrote
    for run in runs:
        back = fresh.load_run(run.run_id)
        for key in ("datacube_prior", "datacube_true"):
            got, want = getattr(back, key), getattr(run, key)
            assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
        if run.spectrum is None:
            assert back.spectrum is None
        else:
            assert back.spectrum.tobytes() == run.spectrum.tobytes()
        assert torch.equal(back.graph.x, run.graph.x) and torch.equal(back.graph.edge_index, run.graph.edge_index)
        assert back.graph.edge_index.dtype == torch.int64 and back.graph.num_nodes == 5
        assert back.text == run.text and back.labels == run.labels
        assert back.truth == run.truth
        assert back.physics_features.dtype == np.float64
        assert back.physics_features.tobytes() == run.physics_features.tobytes()
        assert all(_same_float(getattr(back.observed, k), getattr(run.observed, k))
                   for k in ("star_age_gyr", "planet_mass_earth", "star_teff_k"))
        assert back.observed.name == run.observed.name and back.observed.n_transits == run.observed.n_transits
        for k, v in run.coords.items():
            assert back.coords[k].dtype == v.dtype and np.array_equal(back.coords[k], v)
        assert back.extras == {"runaway": False, "esi": 0.91, "hz_au": [0.4, 0.9]}
        assert (back.resolution, back.seed, back.system) == (run.resolution, run.seed, run.system)


def test_shards_opened_for_reading_cap_their_metadata_cache(store_path, runs):
    # HDF5's default lets each open shard's metadata cache grow to 32 MiB; a store keeps every shard open
    RealDataStorage(store_path).write_runs(runs)
    with h5py.File(store_path / "shard-00000.h5", "r") as plain:
        assert plain.id.get_mdc_config().max_size == 32 * 2**20  # what the cap replaces
    store = RealDataStorage(store_path)
    store.load_arrays(runs[0].run_id)
    (f,) = store._files.values()
    assert f.id.get_mdc_config().max_size == READ_METADATA_CACHE_BYTES == 2**20
    assert f.id.get_mdc_size()[2] <= READ_METADATA_CACHE_BYTES


def test_index_rows_meta_and_fast_path(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs)
    rows = store.list_stored_runs()
    assert [r["run_id"] for r in rows] == ["run-0000", "run-0001", "run-0002", "run-0003"]
    r2 = rows[2]
    assert (r2["has_spectrum"], r2["has_graph"], r2["has_text"], r2["has_datacube"]) == (False, True, True, True)
    assert rows[1]["habitability_class"] == 0 and rows[0]["habitability_class"] == 2
    assert rows[0]["source"] == "simulator" and rows[0]["shard"] == "shard-00000.h5"
    assert len(rows[0]["content_hash"]) == 64 and rows[0]["quarantined"] is False
    assert len(store) == 4 and store.has_run("run-0001") and not store.has_run("nope")
    meta = store.read_meta()
    assert meta["schema_version"] == 1 and meta["resolution"] == "demo"
    assert meta["grid"]["shape"] == [2, 12, 4, 8, 3] and meta["grid"]["sigma"] == pytest.approx([1.0, 0.6, 0.3])
    store.write_meta({"tokenizer": "tokenizer.json"})
    assert store.read_meta()["tokenizer"] == "tokenizer.json"
    fast = store.load_arrays("run-0002")
    assert fast["spectrum"] is None and fast["graph_x"].shape == (5, 64) and fast["graph_edge_index"].dtype == np.int64
    assert fast["text"] == runs[2].text and fast["labels"] == runs[2].labels
    assert math.isnan(fast["observed"]["star_age_gyr"]) and fast["observed"]["star_teff_k"] == 4810.0
    ann = store.load_annotation("run-0000")
    assert ann["provenance"]["source"] == "simulator" and "spectroscopy" in ann["domain_tags"]


def test_hdf5_attrs_carry_units_and_cf_names(store_path, runs):
    import h5py

    RealDataStorage(store_path).write_runs(runs[:1])
    with h5py.File(store_path / "shard-00000.h5", "r") as f:
        g = f["runs/run-0000"]
        assert list(g["datacube_prior"].attrs["standard_names"]) == ["air_temperature", "specific_humidity"]
        assert list(g["datacube_prior"].attrs["units"]) == ["K", "kg kg-1"]
        assert g["datacube_prior"].compression == "gzip" and g["datacube_prior"].chunks == (1, 12, 4, 8, 3)
        assert g["coords/lat_deg"].attrs["units"] == "degrees_north"
        assert g["coords/sigma"].attrs["standard_name"] == "atmosphere_sigma_coordinate"
        assert list(g["spectrum"].attrs["units"]) == ["um", "ppm", "ppm"]
        assert g.attrs["source"] == "simulator" and len(g.attrs["config_hash"]) == 64


def test_rewrite_is_idempotent(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs[:2])
    result = store.write_runs(runs)  # two old, two new
    assert list(result) == ["run-0002", "run-0003"] and result.skipped == ["run-0000", "run-0001"]
    again = store.write_runs(runs + [runs[0]])
    assert list(again) == [] and len(again.skipped) == 5
    assert len(store.list_stored_runs()) == 4
    assert sorted(p.name for p in store_path.glob("shard-*.h5")) == ["shard-00000.h5", "shard-00001.h5"]


def _store_state(path):
    return sorted(p.name for p in path.iterdir()), RealDataStorage(path).list_stored_runs()


def test_invalid_third_annotation_leaves_store_unchanged(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs[:1])
    before = _store_state(store_path)
    annot = ComprehensiveDataAnnotationSystem()
    anns = {r.run_id: annot.annotate(r) for r in runs}
    anns["run-0002"]["arrays"]["datacube_prior"]["variables"][0]["units"] = "m"  # temperature in metres
    with pytest.raises(AnnotationError, match="inconsistent with standard_name 'air_temperature'"):
        store.write_runs(runs, annotations=anns)
    assert _store_state(store_path) == before
    assert not any(".tmp-" in p.name for p in store_path.iterdir())
    del anns["run-0002"]
    with pytest.raises(AnnotationError, match="annotation missing"):
        store.write_runs(runs, annotations=anns)
    assert _store_state(store_path) == before


def test_failed_replace_leaves_no_partial_record(store_path, runs, monkeypatch):
    store = RealDataStorage(store_path)
    store.write_runs(runs[:1])
    before = _store_state(store_path)

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        store.write_runs(runs[1:])
    monkeypatch.undo()
    assert _store_state(store_path) == before
    assert store.write_runs(runs[1:]) == ["run-0001", "run-0002", "run-0003"]  # the store still works


def _files(path):
    return sorted(p.name for p in path.iterdir() if not p.name.startswith("index"))


def test_opening_never_removes_files_and_quality_reports_them(store_path, runs):
    RealDataStorage(store_path).write_runs(runs[:1])
    # no writer holds the store's lock, so a temp shard is a crashed writer's leftover
    (store_path / ".shard-00001.h5.tmp-4242").write_bytes(b"half a shard")
    (store_path / "shard-00002.h5").write_bytes(b"replaced but never indexed")
    before = _files(store_path)
    store = RealDataStorage(store_path)
    assert store.load_run("run-0000").text == runs[0].text and len(store) == 1
    assert _files(store_path) == before == [".shard-00001.h5.tmp-4242", ".write.lock", "shard-00000.h5",
                                            "shard-00002.h5"]
    scan = scan_store(store)
    assert scan.stale_temps == [".shard-00001.h5.tmp-4242"] and scan.orphan_shards == ["shard-00002.h5"]
    assert list(scan.unreadable) == ["shard-00002.h5"] and not scan.clean


def test_index_row_is_rebuilt_exactly_from_the_shard(store_path, runs):
    import h5py

    store = RealDataStorage(store_path)
    store.write_runs(runs)
    with h5py.File(store_path / "shard-00000.h5", "r") as f:
        for run in runs:
            g = f[f"runs/{run.run_id}"]
            assert row_from_group(g, "shard-00000.h5") == dict(store._row(run.run_id))  # the raw index row
            assert stored_content_hash(g) == g.attrs["content_hash"] == store.index_row(run.run_id)["content_hash"]


def test_pending_reads_both_id_forms(store_path, runs):
    from dataclasses import replace

    from astrobio.world.types import legacy_run_id_for, run_id_for

    store = RealDataStorage(store_path)
    old = runs[0]
    old.truth = replace(old.truth, name="Kepler-999 b", source="catalog")
    old.run_id = legacy_run_id_for(old.truth)  # as written before ids carried the name hash
    store.write_runs([old])
    same = old.truth
    other = replace(old.truth, name="Kepler 999 b")  # the same legacy slug, a different planet
    new = replace(old.truth, name="Kepler-1000 b")
    assert run_id_for(same) != old.run_id == legacy_run_id_for(other)
    assert store.pending([same, other, new]) == [other, new]


def test_quarantine_and_restore(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs)
    store.quarantine("run-0001", ["nan in datacube_prior"])
    store.quarantine("run-0001", ["nan in datacube_prior", "empty text"])
    assert [r["run_id"] for r in store.list_stored_runs()] == ["run-0000", "run-0002", "run-0003"]
    q = store.quarantined_runs()
    assert [r["run_id"] for r in q] == ["run-0001"] and q[0]["quarantine_reasons"] == ["nan in datacube_prior",
                                                                                        "empty text"]
    assert len(store.list_stored_runs(include_quarantined=True)) == 4 and store.has_run("run-0001")
    store.restore("run-0001")
    assert len(store.list_stored_runs()) == 4 and store.quarantined_runs() == []
    with pytest.raises(InputValidationError):
        store.quarantine("run-0001", [])


def test_listing_forms_agree(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs)
    store.quarantine("run-0002", ["empty text"])
    rows = store.list_stored_runs(include_quarantined=True)
    assert rows == [store.index_row(r["run_id"]) for r in rows]  # the fast listing = the per-row lookup
    assert rows[2]["quarantined"] is True and rows[2]["quarantine_reasons"] == ["empty text"]
    assert rows[0]["has_datacube"] is True and rows[0]["quarantine_reasons"] == []
    cols = store.index_columns(("run_id", "habitability_class"))
    assert cols["run_id"] == ["run-0000", "run-0001", "run-0003"]
    assert cols["habitability_class"] == [r["habitability_class"] for r in rows if not r["quarantined"]]
    with pytest.raises(InputValidationError, match="columns"):
        store.index_columns(("run_id; DROP TABLE runs",))


def test_errors_are_clear(store_path, runs, make_run):
    store = RealDataStorage(store_path)
    with pytest.raises(StorageError, match="no astrobio store"):
        store.list_stored_runs()
    assert store.existing_run_ids() == set() and len(store) == 0
    store.write_runs(runs[:1])
    with pytest.raises(StorageError, match="'run-9999' is not in the store"):
        store.load_run("run-9999")
    with pytest.raises(StorageError):
        store.restore("run-9999")
    bad = make_run(7)
    bad.run_id = "a/b"
    with pytest.raises(InputValidationError, match="run_id"):
        store.write_runs([bad])
    with pytest.raises(InputValidationError, match="PlanetRun"):
        store.write_runs([{"run_id": "x"}])
    other = make_run(8)
    other.resolution = "seed"
    with pytest.raises(InputValidationError, match="resolution"):
        store.write_runs([other])
    assert len(store) == 1


def test_pickled_handle_reopens(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs[:2])
    store.load_arrays("run-0000")  # opens a shard and the index
    clone = pickle.loads(pickle.dumps(store))
    assert clone._files == {} and clone._conn is None
    assert np.array_equal(clone.load_arrays("run-0001")["datacube_true"], runs[1].datacube_true)
    store._pid = -1  # as seen from a forked worker: handles are dropped and reopened
    assert store.load_arrays("run-0000")["text"] == runs[0].text and store._pid == os.getpid()


def test_empty_graph_and_missing_spectrum_round_trip(store_path, make_run):
    from torch_geometric.data import Data

    run = make_run(5, spectrum=False)
    run.graph = Data(x=torch.zeros(0, 64), edge_index=torch.zeros(2, 0, dtype=torch.int64))  # nothing feasible
    store = RealDataStorage(store_path)
    store.write_runs([run])
    row = store.index_row("run-0005")
    assert (row["has_graph"], row["has_spectrum"]) == (False, False)
    back = store.load_run("run-0005")
    assert back.spectrum is None and back.graph.num_nodes == 0
    assert back.graph.x.shape == (0, 64) and back.graph.edge_index.shape == (2, 0)
    assert back.modality_present() == run.modality_present()


def _write_then_die(path, runs, after_replace):
    """Child process: write runs and get SIGKILLed at the replace step (before or after it)."""
    import signal

    real_replace = os.replace

    def dying_replace(src, dst):
        if after_replace:
            real_replace(src, dst)
        os.kill(os.getpid(), signal.SIGKILL)

    os.replace = dying_replace
    RealDataStorage(path).write_runs(runs)


@pytest.mark.parametrize("after_replace", [False, True])
def test_killed_writer_leaves_no_partial_record(store_path, runs, after_replace):
    import multiprocessing as mp

    RealDataStorage(store_path).write_runs(runs[:1])
    child = mp.get_context("fork").Process(target=_write_then_die, args=(store_path, runs[1:], after_replace))
    child.start()
    child.join(60)
    assert child.exitcode == -9
    leftover = sorted(p.name for p in store_path.iterdir() if "shard" in p.name)
    store = RealDataStorage(store_path)  # opening removes nothing
    assert sorted(p.name for p in store_path.iterdir() if "shard" in p.name) == leftover
    assert [r["run_id"] for r in store.list_stored_runs()] == ["run-0000"]
    scan = scan_store(store)
    if after_replace:  # the shard is complete but its rows were never committed: repair indexes it
        assert leftover == ["shard-00000.h5", "shard-00001.h5"] and sorted(scan.unindexed) == [
            "run-0001", "run-0002", "run-0003"]
        assert repair_store(store).restored == ["run-0001", "run-0002", "run-0003"]
        assert store.write_runs(runs[1:]) == [] and len(store) == 4
    else:  # a dead writer's temp file: reported, and repair moves it aside
        assert leftover[1] == "shard-00000.h5" and scan.stale_temps == [leftover[0]]
        assert leftover[0].startswith(f".shard-00001.h5.{child.pid}.")
        assert repair_store(store).actions == [f"move {leftover[0]} (stale temp file of a dead writer) to quarantine/"]
        assert store.write_runs(runs[1:]) == ["run-0001", "run-0002", "run-0003"]
    assert scan_store(store).clean


def test_physics_features_are_in_the_content_hash_and_older_runs_keep_theirs(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs[:2])
    recorded = {r["run_id"]: r["content_hash"] for r in store.list_stored_runs()}
    store.close()
    with h5py.File(store_path / "shard-00000.h5", "r+") as f:
        g = f["runs/run-0000"]
        assert stored_content_hash(g) == recorded["run-0000"]
        g["physics_features"][1] += 1e-9  # one digit of the HZ position
        assert stored_content_hash(g) != recorded["run-0000"]
        # a run written before features were stored: hashed without them, as it was when written
        old = f["runs/run-0001"]
        del old["physics_features"]
        arrays = {k: v for k, v in run_arrays(runs[1]).items() if k != "physics_features"}
        assert stored_content_hash(old) == content_hash(arrays, runs[1].text, runs[1].labels)
    assert RealDataStorage(store_path).has_physics_features("run-0000")
    assert not RealDataStorage(store_path).has_physics_features("run-0001")


def test_a_run_without_four_physics_features_is_refused(store_path, runs):
    runs[0].physics_features = np.zeros(3)
    with pytest.raises(InputValidationError, match="physics_features"):
        RealDataStorage(store_path).write_runs(runs[:1])


def test_fingerprint_tracks_runs_quarantine_and_derived_files(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs[:2])
    base = store.fingerprint()
    assert len(base) == 64 and RealDataStorage(store_path).fingerprint() == base
    store.quarantine("run-0001", ["test"])
    quarantined = store.fingerprint()
    store.restore("run-0001")
    assert store.fingerprint() == base  # the same rows again
    (store_path / "stats.json").write_text('{"mean": 1}')
    with_stats = store.fingerprint()
    store.write_runs(runs[2:3])
    added = store.fingerprint()
    assert len({base, quarantined, with_stats, added}) == 4


def test_exists_says_whether_a_directory_holds_a_store(store_path, runs):
    assert not RealDataStorage.exists(store_path) and not RealDataStorage.exists(store_path / "missing")
    RealDataStorage(store_path).write_runs(runs[:1])
    assert RealDataStorage.exists(store_path)
    (store_path / "index.sqlite").unlink()  # shards with a lost index are still a store (to repair)
    assert RealDataStorage.exists(store_path)
