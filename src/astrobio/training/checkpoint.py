"""Training checkpoints: atomic writes, full state for exact resume, data fingerprints.

A checkpoint is one `torch.save` dict:
  model, optimizer, scheduler, scaler (or None)  state dicts
  rng           python / numpy / torch CPU / CUDA generator states
  data_position epoch, batch index within the epoch (micro-batches consumed by this rank), sampler seed
  step          optimizer steps done
  trainer       early-stopping state (best val macro-F1, evaluations without improvement)
  config        plain dict: {"train": TrainConfig.to_dict(), "system": SystemConfig.to_dict()}
  data_fingerprint, version
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astrobio.errors import InputValidationError, StorageError


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """Write `obj` to `path` through a temp file in the same directory and `os.replace`.

    A crash or exception mid-write leaves any previous file at `path` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(text: str, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def capture_rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict on CPU. Our checkpoints hold numpy/python RNG states, hence weights_only=False:
    only load checkpoints you (or this package) wrote."""
    path = Path(path)
    if not path.is_file():
        raise InputValidationError("resume", str(path), "an existing checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated or foreign file
        raise StorageError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise StorageError(f"{path} is not an astrobio training checkpoint (no 'model' entry)")
    return ckpt


def resolve_resume(resume: str | Path | None, run_dir: str | Path) -> Path | None:
    """`None` → fresh start; 'auto' → RUN/checkpoints/last.pt if it exists (else fresh); else that path."""
    if resume is None or resume == "":
        return None
    if str(resume) == "auto":
        last = Path(run_dir) / "checkpoints" / "last.pt"
        return last if last.is_file() else None
    path = Path(resume)
    if not path.is_file():
        raise InputValidationError("resume", str(resume), "'auto' or an existing checkpoint file")
    return path


def data_fingerprint(data_dir: str | Path) -> str:
    """SHA-256 over the store's index (run ids, their content hashes and quarantine flags) and stats.json.

    Reads `index.sqlite` directly (every table, rows sorted) so it does not depend on the storage
    layer's Python API; any added, removed, re-written or re-quarantined run changes the fingerprint.
    """
    data_dir = Path(data_dir)
    index = data_dir / "index.sqlite"
    if not index.is_file():
        raise StorageError(f"no index.sqlite in {data_dir}: not an astrobio data store")
    h = hashlib.sha256()
    con = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for table in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
            h.update(f"{table}({','.join(cols)})".encode())
            rows = sorted(repr(r) for r in con.execute(f'SELECT * FROM "{table}"'))
            for row in rows:
                h.update(row.encode())
    finally:
        con.close()
    for name in ("stats.json", "tokenizer.json"):
        extra = data_dir / name
        if extra.is_file():
            h.update(name.encode())
            h.update(extra.read_bytes())
    return h.hexdigest()


def state_checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's tensors (names, dtypes, shapes, bytes): equal weights ⇔ equal checksum."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def describe(ckpt: dict[str, Any]) -> str:
    """One line about a checkpoint, for logs."""
    pos = ckpt.get("data_position", {})
    return json.dumps({"step": ckpt.get("step"), "epoch": pos.get("epoch"), "batch": pos.get("batch_index"),
                       "version": ckpt.get("version")})
