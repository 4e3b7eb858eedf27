"""Corruption of a store: every index fault of issue 9 loses no run and `repair` restores every readable one;
random byte flips in shards are caught and quarantined, never served as a wrong value.

`ASTROBIO_RELIABILITY_TRIALS` × 6 byte-flip trials (12 by default), seeded by `ASTROBIO_RELIABILITY_SEED`.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from astrobio.data.quality import AdvancedDataQualityManager
from astrobio.data.repair import QUARANTINE_DIR, repair_store, scan_store
from astrobio.data.storage import RealDataStorage
from astrobio.errors import StorageError
from tests.reliability.conftest import SEED, TRIALS

sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
from conftest import make_run  # noqa: E402  (the data layer's hand-made runs)

N_FIRST, N_SECOND = 4, 4


def _digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.glob("shard-*.h5"))}


def _arrays_equal(a: dict, run) -> bool:
    return (np.array_equal(a["datacube_prior"], run.datacube_prior) and np.array_equal(a["datacube_true"],
                                                                                        run.datacube_true)
            and a["text"] == run.text and a["labels"] == run.labels
            and (a["spectrum"] is None) == (run.spectrum is None)
            and (run.spectrum is None or np.array_equal(a["spectrum"], run.spectrum))
            and np.array_equal(a["graph_x"], run.graph.x.numpy()))


@pytest.fixture
def two_shard_store(tmp_path):
    """8 runs in two shards, with a copy of the index as it was after the first shard (an 'older backup')."""
    runs = [make_run(i, habitable=i % 3 != 1, spectrum=i % 4 != 2) for i in range(N_FIRST + N_SECOND)]
    path = tmp_path / "store"
    store = RealDataStorage(path)
    store.write_runs(runs[:N_FIRST])
    store.close()
    shutil.copy(path / "index.sqlite", tmp_path / "index.backup")
    store.write_runs(runs[N_FIRST:])
    store.close()
    return path, runs, tmp_path / "index.backup"


def _empty(p, backup):
    (p / "index.sqlite").write_bytes(b"")


def _deleted(p, backup):
    (p / "index.sqlite").unlink()


def _truncated(p, backup):
    data = (p / "index.sqlite").read_bytes()
    (p / "index.sqlite").write_bytes(data[:len(data) // 2])


def _corrupted(p, backup):
    data = bytearray((p / "index.sqlite").read_bytes())
    rng = np.random.default_rng(SEED)
    for i in rng.choice(len(data), size=64, replace=False):
        data[i] ^= 0xFF
    data[:16] = b"not a sqlite db!"  # the header too, so the damage is certain to be seen
    (p / "index.sqlite").write_bytes(bytes(data))


def _stale(p, backup):
    shutil.copy(backup, p / "index.sqlite")


SCENARIOS = {"empty": _empty, "deleted": _deleted, "truncated": _truncated, "corrupted": _corrupted,
             "stale": _stale}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_index_fault_loses_nothing_and_repair_restores_every_run(two_shard_store, scenario):
    path, runs, backup = two_shard_store
    shards = _digest(path)
    SCENARIOS[scenario](path, backup)
    store = RealDataStorage(path)  # opening, reading, and a write attempt never remove or change a shard
    if scenario == "stale":
        assert len(store) == N_FIRST  # the older index lists only the first shard's runs...
        assert scan_store(store).problems() == [f"unindexed: {N_SECOND} runs in shard-00001.h5 are not in the index"]
        report = AdvancedDataQualityManager().assess_data_quality(store)
        assert not report.passed and report.storage_problems  # ...and quality says so
    else:
        with pytest.raises(StorageError, match="astrobio data repair"):
            store.list_stored_runs()
        with pytest.raises(StorageError, match="astrobio data repair"):
            store.write_runs([make_run(20)])
    store.close()
    assert _digest(path) == shards
    repaired = repair_store(path)
    assert len(repaired.restored) == (N_SECOND if scenario == "stale" else N_FIRST + N_SECOND)
    store = RealDataStorage(path)
    assert [r["run_id"] for r in store.list_stored_runs()] == [r.run_id for r in runs]
    assert all(_arrays_equal(store.load_arrays(r.run_id), r) for r in runs)
    assert store.read_meta()["grid"]["shape"] == [2, 12, 4, 8, 3] and scan_store(store).clean
    assert AdvancedDataQualityManager().assess_data_quality(store).quarantined == []
    assert _digest(path) == shards  # repair indexed the shards; it did not rewrite them
    if scenario in ("truncated", "corrupted"):  # the broken index is kept, aside
        assert any(p.name.endswith("index.sqlite") for p in (path / QUARANTINE_DIR).iterdir())


def test_missing_and_unreadable_shards_are_quarantined(two_shard_store):
    path, runs, _ = two_shard_store
    (path / "shard-00000.h5").write_bytes(b"\x89HDF garbage")  # unreadable
    report = AdvancedDataQualityManager().assess_data_quality(path)  # does not raise
    assert sorted(report.quarantined) == [r.run_id for r in runs[:N_FIRST]]
    assert all(q.reasons[0].startswith("unreadable:") for q in report.runs if q.run_id in report.quarantined)
    plan = repair_store(path, dry_run=True)
    assert "move shard-00000.h5 (unreadable) to quarantine/" in plan.actions and (path / "shard-00000.h5").exists()
    repair_store(path)
    assert [p.name.split("-", 1)[1] for p in (path / QUARANTINE_DIR).iterdir()] == ["shard-00000.h5"]
    store = RealDataStorage(path)
    assert [r["run_id"] for r in store.list_stored_runs()] == [r.run_id for r in runs[N_FIRST:]]
    assert all(q["quarantine_reasons"][-1].startswith("missing:") for q in store.quarantined_runs())


def test_random_byte_flips_are_caught_never_served(two_shard_store):
    """Flip bytes at random offsets of a shard: `data quality` never raises, and every run it lets through
    is exactly what was written. Counts go to docs/reliability.md."""
    path, runs, _ = two_shard_store
    pristine = path.parent / "pristine"
    shutil.copytree(path, pristine)
    by_id = {r.run_id: r for r in runs}
    rng = np.random.default_rng(SEED)
    counts = {"trials": 0, "runs_quarantined": 0, "runs_passed_intact": 0}
    for _ in range(6 * TRIALS):
        shutil.rmtree(path)
        shutil.copytree(pristine, path)
        shard = path / "shard-00000.h5"
        data = bytearray(shard.read_bytes())
        for i in rng.choice(len(data), size=int(rng.integers(1, 9)), replace=False):
            data[i] ^= int(rng.integers(1, 256))
        shard.write_bytes(bytes(data))
        report = AdvancedDataQualityManager().assess_data_quality(path)
        store = RealDataStorage(path)
        for row in store.list_stored_runs():  # not quarantined: must be bit-identical to what was written
            assert _arrays_equal(store.load_arrays(row["run_id"]), by_id[row["run_id"]]), row["run_id"]
            counts["runs_passed_intact"] += row["shard"] == "shard-00000.h5"
        counts["runs_quarantined"] += len(report.quarantined)
        counts["trials"] += 1
        store.close()
        repair_store(path, dry_run=True)  # the scan of a damaged shard never raises either
    print(f"byte flips: {counts}")
    assert counts["trials"] == 6 * TRIALS
