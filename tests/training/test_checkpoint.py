"""Checkpoint files: atomic writes, resume resolution, data fingerprints, weight checksums."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from astrobio.errors import InputValidationError, StorageError
from astrobio.training.checkpoint import (atomic_torch_save, capture_rng_state, data_fingerprint, load_checkpoint,
                                          resolve_resume, restore_rng_state, state_checksum)


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path):
    path = tmp_path / "checkpoints" / "last.pt"
    atomic_torch_save({"model": {"w": torch.ones(3)}, "step": 1}, path)
    with pytest.raises(Exception):
        atomic_torch_save({"model": {"w": torch.zeros(3)}, "step": 2, "bad": lambda: None}, path)  # unpicklable
    assert load_checkpoint(path)["step"] == 1
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp file left behind


def test_interrupted_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_torch_save({"model": {}, "step": 1}, path)

    def crash_mid_write(obj, f):  # writes half a file, then the process "dies"
        f.write(b"\x80\x02partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save({"model": {}, "step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1 and len(list(tmp_path.iterdir())) == 1


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(InputValidationError):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(StorageError):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(StorageError, match="no 'model' entry"):
        load_checkpoint(tmp_path / "other.pt")


def test_resolve_resume(tmp_path):
    assert resolve_resume(None, tmp_path) is None
    assert resolve_resume("auto", tmp_path) is None  # nothing to resume: fresh start
    last = tmp_path / "checkpoints" / "last.pt"
    atomic_torch_save({"model": {}}, last)
    assert resolve_resume("auto", tmp_path) == last
    assert resolve_resume(str(last), tmp_path / "elsewhere") == last
    with pytest.raises(InputValidationError):
        resolve_resume(str(tmp_path / "missing.pt"), tmp_path)


def _index(path, rows):
    con = sqlite3.connect(path / "index.sqlite")
    con.execute("CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, content_hash TEXT, quarantined INTEGER)")
    con.execute("DELETE FROM runs")
    con.executemany("INSERT INTO runs VALUES (?, ?, ?)", rows)
    con.commit()
    con.close()


def test_data_fingerprint_tracks_index_and_stats(tmp_path):
    rows = [("a", "h1", 0), ("b", "h2", 0)]
    _index(tmp_path, rows)
    base = data_fingerprint(tmp_path)
    assert len(base) == 64 and data_fingerprint(tmp_path) == base
    _index(tmp_path, rows[::-1])  # insertion order does not matter
    assert data_fingerprint(tmp_path) == base
    _index(tmp_path, [("a", "h1", 0), ("b", "h2-rewritten", 0)])
    changed_content = data_fingerprint(tmp_path)
    _index(tmp_path, [("a", "h1", 0), ("b", "h2", 1)])
    quarantined = data_fingerprint(tmp_path)
    _index(tmp_path, rows)
    (tmp_path / "stats.json").write_text('{"mean": 1}')
    with_stats = data_fingerprint(tmp_path)
    assert len({base, changed_content, quarantined, with_stats}) == 4
    with pytest.raises(StorageError):
        data_fingerprint(tmp_path / "empty")


def test_state_checksum_and_rng_round_trip():
    a = {"w": torch.arange(4.0), "n": torch.tensor(3)}
    assert state_checksum(a) == state_checksum({k: v.clone() for k, v in a.items()})
    assert state_checksum(a) != state_checksum({"w": torch.arange(4.0) + 1e-7, "n": torch.tensor(3)})
    state = capture_rng_state()
    x = torch.rand(3)
    restore_rng_state(state)
    assert torch.equal(torch.rand(3), x)
