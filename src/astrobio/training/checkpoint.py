"""Training checkpoints: atomic writes, full state for exact resume, data fingerprints, crash leftovers.

A checkpoint is one `torch.save` dict of data only (tensors, dicts, lists, numbers, strings), so it loads
with `torch.load(..., weights_only=True)`; a file that needs anything more (pickled code) is refused:
  model, optimizer, scheduler, scaler (or None)  state dicts
  rng           python / numpy states as plain ints and lists, torch CPU / CUDA generator states as tensors
  data_position epoch, batch index within the epoch (micro-batches consumed by this rank), sampler seed
  step          optimizer steps done
  trainer       early-stopping state (best val macro-F1, evaluations without improvement)
  config        plain dict: {"train": TrainConfig.to_dict(), "system": SystemConfig.to_dict()}
  data_state    the normalisation statistics and tokenizer the model was trained with (`PlanetRunDataset.data_state`)
  data_fingerprint, version
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from astrobio.data.storage import RealDataStorage
from astrobio.errors import InputValidationError, StorageError, UnsafeCheckpointError
from astrobio.io import atomic_write

log = logging.getLogger("astrobio.training")

# `.<name>.<pid>.<random>.tmp`, the temp files of `astrobio.io.atomic_write`; the pid says whether the
# writer is still alive. Files of the older form `.<name>.pt.<random>.tmp` have no live writer to protect.
_TEMP_RE = re.compile(r"^\.(?P<name>.+?)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")
_LEGACY_CKPT_TEMP_RE = re.compile(r"^\..+\.pt\.[A-Za-z0-9_]{8}\.tmp$")


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """Write `obj` to `path` through a temp file in the same directory, fsync and `os.replace`.

    A crash or exception mid-write leaves any previous file at `path` untouched.
    """
    with atomic_write(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def atomic_write_text(text: str, path: str | Path) -> Path:
    with atomic_write(path) as f:
        f.write(text)
    return Path(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_temp_files(directory: str | Path) -> list[Path]:
    """Delete the temp files our atomic writers left in `directory` when their process died (kill -9
    mid-save); a live writer's file is kept. Returns what was removed (logged as a warning)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for p in sorted(directory.iterdir()):
        m = _TEMP_RE.match(p.name)
        stale = (m is not None and not _alive(int(m.group("pid")))) or (m is None and _LEGACY_CKPT_TEMP_RE.match(p.name))
        if stale and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    if removed:
        log.warning("removed %d temp file(s) left by an interrupted save in %s: %s", len(removed), directory,
                    [p.name for p in removed])
    return removed


def trim_history(path: str | Path, step: int) -> None:
    """Keep the rows of `history.jsonl` up to `step` (an interrupted run may have logged beyond the resume
    point). A torn last line (a kill mid-append) is dropped with a warning; an unreadable earlier line
    is corruption, not a crash leftover, and a clean error."""
    path = Path(path)
    if not path.exists():
        return
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    rows = []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
            row_step = int(row["step"])
        except (ValueError, TypeError, KeyError) as exc:
            if i == len(lines) - 1:
                log.warning("%s: dropped a torn last line (%s): %.80r", path, exc, line)
                continue
            raise StorageError(f"{path} line {i + 1} is not a history row ({exc}); remove or fix that line") from None
        if row_step <= step:
            rows.append(line)
    atomic_write_text("".join(r + "\n" for r in rows), path)


def capture_rng_state() -> dict[str, Any]:
    """Every generator's state as plain data (ints, lists, tensors): loadable with weights_only=True."""
    version, mt, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {"python": {"version": version, "state": list(mt), "gauss_next": gauss},
             "numpy": {"bit_generator": np_state["bit_generator"],
                       "key": [int(k) for k in np_state["state"]["key"]], "pos": int(np_state["state"]["pos"]),
                       "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    np.random.set_state({"bit_generator": npy["bit_generator"],
                         "state": {"key": np.asarray(npy["key"], dtype=np.uint32), "pos": npy["pos"]},
                         "has_gauss": npy["has_gauss"], "gauss": npy["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint dict on CPU with `weights_only=True`: tensors, dicts, lists, numbers and strings
    only. A file whose pickle names any other global (code that would run on load) is refused with
    `UnsafeCheckpointError` before anything in it runs; a truncated or foreign file is a `StorageError`."""
    path = Path(path)
    if not path.is_file():
        raise InputValidationError("resume", str(path), "an existing checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_globals(path)
        if unsafe:
            raise UnsafeCheckpointError(
                f"refusing to load checkpoint {path}: it needs {unsafe} to unpickle, which could run foreign "
                "code; astrobio checkpoints hold only tensors, dicts, numbers and strings (checkpoints written "
                "before this check stored numpy RNG states: retrain, or load them yourself only if you trust "
                "them)") from None
        raise StorageError(f"cannot read checkpoint {path}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # truncated or foreign file
        raise StorageError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise StorageError(f"{path} is not an astrobio training checkpoint (no 'model' entry)")
    return ckpt


def _unsafe_globals(path: Path) -> list[str]:
    """The globals outside torch's weights-only allowlist that the pickle in `path` names (nothing is run)."""
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # not even a readable pickle: the caller reports it as unreadable
        return []


def load_resume(resume: str | Path | None, run_dir: str | Path) -> tuple[Path | None, dict[str, Any] | None]:
    """(path, checkpoint) to resume from, or (None, None) for a fresh start (see `resolve_resume`).

    With 'auto', an unreadable `last.pt` (truncated, flipped bytes) falls back to `best.pt` with a
    warning, else it is a clean error. A file that needs foreign code is refused, never skipped over,
    and a checkpoint named explicitly is loaded as named.
    """
    path = resolve_resume(resume, run_dir)
    if path is None:
        return None, None
    try:
        return path, load_checkpoint(path)
    except UnsafeCheckpointError:
        raise
    except StorageError as exc:
        best = path.parent / "best.pt"
        if str(resume) != "auto" or not best.is_file():
            raise
        ckpt = load_checkpoint(best)
        log.warning("%s; resuming from %s (step %s) instead", exc, best, ckpt.get("step"))
        return best, ckpt


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
    """The store's `RealDataStorage.fingerprint()` (index rows and derived files); StorageError when `data_dir`
    holds no store."""
    if not RealDataStorage.exists(data_dir):
        raise StorageError(f"no astrobio data store at {data_dir}")
    with RealDataStorage(data_dir) as store:
        return store.fingerprint()


def state_checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 of a state dict's tensors (names, dtypes, shapes, bytes): equal weights ⇔ equal checksum."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def dataset_state(dataset: Any) -> dict[str, Any] | None:
    """What a dataset needs to serve new data exactly as in training (its `data_state()`: statistics,
    tokenizer), or None for datasets without one (the trainer is generic)."""
    state = getattr(dataset, "data_state", None)
    return state() if callable(state) else None


def describe(ckpt: dict[str, Any]) -> str:
    """One line about a checkpoint, for logs."""
    pos = ckpt.get("data_position", {})
    return json.dumps({"step": ckpt.get("step"), "epoch": pos.get("epoch"), "batch": pos.get("batch_index"),
                       "version": ckpt.get("version")})
