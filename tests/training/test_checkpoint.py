"""Checkpoint files: atomic writes, resume resolution, data fingerprints, weight checksums, refusal of pickled
code, crash leftovers (stale temp files, torn history line, corrupt last.pt)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from astrobio.data.storage import RealDataStorage
from astrobio.errors import InputValidationError, StorageError, UnsafeCheckpointError
from astrobio.training.checkpoint import (atomic_torch_save, capture_rng_state, data_fingerprint, load_checkpoint,
                                          load_resume, remove_stale_temp_files, resolve_resume, restore_rng_state,
                                          state_checksum, trim_history)
from tests.data.conftest import make_run


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


def test_data_fingerprint_is_the_stores(tmp_path):
    # what changes the fingerprint is tested with the storage (tests/data/test_storage.py)
    with RealDataStorage(tmp_path / "store") as store:
        store.write_runs([make_run(0)])
        assert data_fingerprint(tmp_path / "store") == store.fingerprint()
    with pytest.raises(StorageError, match="no astrobio data store"):
        data_fingerprint(tmp_path / "empty")


def test_state_checksum_and_rng_round_trip():
    a = {"w": torch.arange(4.0), "n": torch.tensor(3)}
    assert state_checksum(a) == state_checksum({k: v.clone() for k, v in a.items()})
    assert state_checksum(a) != state_checksum({"w": torch.arange(4.0) + 1e-7, "n": torch.tensor(3)})
    state = capture_rng_state()
    x = torch.rand(3)
    restore_rng_state(state)
    assert torch.equal(torch.rand(3), x)


# ---------------------------------------------------------------- checkpoints are data, not code

class _Payload:
    """Pickles as a call of `exec` that creates `marker`: what a crafted checkpoint would run on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _malicious_checkpoint(path, marker):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "step": 1, "config": {}, "payload": _Payload(marker)}, path)
    return path


def test_the_malicious_checkpoint_would_run_code_if_unpickled(tmp_path):
    """The control for the refusal tests below: the crafted file really executes code under a plain unpickle."""
    marker = tmp_path / "owned"
    path = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_checkpoint_that_needs_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "owned"
    path = _malicious_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(UnsafeCheckpointError, match="builtins.exec") as err:
        load_checkpoint(path)
    assert isinstance(err.value, StorageError) and "evil.pt" in str(err.value)
    assert not marker.exists()


def test_rng_state_is_plain_data_and_round_trips(tmp_path):
    random.seed(3)
    np.random.seed(4)
    np.random.standard_normal()  # a cached Gaussian is part of the legacy numpy state
    torch.manual_seed(5)
    torch.save({"rng": capture_rng_state()}, tmp_path / "rng.pt")
    expected = (random.random(), np.random.standard_normal(3).tolist(), torch.rand(2).tolist())
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.standard_normal(3).tolist(), torch.rand(2).tolist()) == expected


def _store_run_dir(tmp_path, evil: str):
    run = tmp_path / "run"
    _malicious_checkpoint(run / "checkpoints" / evil, tmp_path / "owned")
    (run / "run_info.json").write_text(json.dumps({"config": {"data": str(tmp_path / "store")}}))
    return run


@pytest.mark.parametrize("command", ["train", "evaluate", "predict"])
def test_cli_refuses_a_malicious_checkpoint(command, tiny_store, tmp_path):
    from typer.testing import CliRunner

    from astrobio.cli import app

    run = _store_run_dir(tmp_path, "last.pt" if command == "train" else "best.pt")
    args = {"train": ["train", str(tiny_store), "--out", str(tmp_path / "new"), "--preset", "tiny",
                      "--max-steps", "2", "--batch-size", "2", "--tracking", "none",
                      "--resume", str(run / "checkpoints" / "last.pt")],
            "evaluate": ["evaluate", str(run), "--no-baselines"],
            "predict": ["predict", str(run), "--planet", "Earth"]}[command]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output + repr(result.exception)
    assert result.output.startswith("error: refusing to load checkpoint") and "Traceback" not in result.output
    assert not (tmp_path / "owned").exists()


# ---------------------------------------------------------------- crash leftovers

def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temp_files_are_removed_and_a_live_writers_kept(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    names = {"stale": f".last.pt.{dead}.a1b2c3d4.tmp", "legacy": ".best.pt.k3j_x9zq.tmp",
             "live": f".last.pt.{live}.0f0f0f0f.tmp", "other": "notes.tmp", "ckpt": "last.pt"}
    for n in names.values():
        (tmp_path / n).write_bytes(b"half a checkpoint")
    removed = remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == sorted([names["stale"], names["legacy"]])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([names["live"], names["other"], names["ckpt"]])


def _toy_trainer(out, max_steps: int):
    from trainer_toys import ToyDataset, ToyModel, toy_loader, toy_loss

    from astrobio.training import TrainConfig, Trainer

    cfg = TrainConfig(lr=3e-2, warmup_steps=2, batch_size=8, log_every=1, eval_every=4, tracking="none",
                      deterministic=True, max_steps=max_steps, lr_decay_steps=12)
    torch.manual_seed(0)
    return Trainer(ToyModel(), toy_loss, ToyDataset(48, seed=1), ToyDataset(16, seed=2), cfg, out,
                   make_loader=toy_loader, data_fingerprint="toy")


def _history(run):
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_next_run_removes_stale_temp_files_and_a_torn_history_line(tmp_path, caplog):
    _toy_trainer(tmp_path / "full", 12).fit()
    run = tmp_path / "cut"
    _toy_trainer(run, 8).fit()
    stale = run / "checkpoints" / f".last.pt.{_dead_pid()}.deadbeef.tmp"
    stale.write_bytes(b"\x80\x02torn")
    with open(run / "history.jsonl", "a") as f:
        f.write('{"step": 9, "kind": "train", "train/lo')  # killed mid-append
    with caplog.at_level("WARNING", logger="astrobio.training"):
        assert _toy_trainer(run, 12).fit(resume="auto")["steps"] == 12
    assert not stale.exists()
    assert "torn last line" in caplog.text and "interrupted save" in caplog.text
    losses = {r["step"]: r["train/loss"] for r in _history(run) if r["kind"] == "train"}
    full = {r["step"]: r["train/loss"] for r in _history(tmp_path / "full") if r["kind"] == "train"}
    assert losses == full  # the resumed run is still exact


def test_a_corrupt_history_line_before_the_end_is_a_clean_error(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(StorageError, match="line 2"):
        trim_history(path, 5)
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"ste')
    trim_history(path, 2)
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'


def test_a_corrupt_last_checkpoint_falls_back_to_best_or_fails_cleanly(tmp_path, caplog):
    run = tmp_path / "run"
    _toy_trainer(run, 8).fit()
    ckpts = run / "checkpoints"
    best_step = load_checkpoint(ckpts / "best.pt")["step"]
    data = (ckpts / "last.pt").read_bytes()
    (ckpts / "last.pt").write_bytes(data[: len(data) // 2])  # truncated, as by a full disk
    with caplog.at_level("WARNING", logger="astrobio.training"):
        path, ckpt = load_resume("auto", run)
    assert path == ckpts / "best.pt" and ckpt["step"] == best_step and "resuming from" in caplog.text
    assert _toy_trainer(run, 12).fit(resume="auto")["steps"] == 12  # and training goes on from there
    (ckpts / "last.pt").write_bytes(data[:100])
    with pytest.raises(StorageError, match="cannot read"):  # a file named explicitly is not replaced
        load_resume(str(ckpts / "last.pt"), run)
    (ckpts / "best.pt").unlink()
    with pytest.raises(StorageError, match="cannot read"):
        load_resume("auto", run)
    _malicious_checkpoint(ckpts / "last.pt", tmp_path / "owned")
    (ckpts / "best.pt").write_bytes(data)
    with pytest.raises(UnsafeCheckpointError):  # refused, never skipped over to best.pt
        load_resume("auto", run)
    assert not (tmp_path / "owned").exists()
