"""File-system plumbing shared by every writer in the package: atomic writes, canonical JSON, git revision,
the source digest.

An atomic write goes to a temp file in the target's own directory (so the rename never crosses a file
system), is flushed and fsynced, renamed over the target with `os.replace`, and then the directory is
fsynced so the rename itself survives a power loss. A reader therefore sees either the old file or the
complete new one, never a torn one; on any error the temp file is removed and the old file is untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np

from astrobio.errors import InputValidationError

_MODES = ("w", "wb")


def fsync_dir(directory: str | Path) -> None:
    """Flush a directory's entries (a rename or a new file) to disk; a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows, where a directory cannot be opened for fsync
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(path: Path) -> Path:
    # A dot-prefixed sibling, unique per process and call, so concurrent writers never share a temp file.
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path` for a library that writes by file name (h5py, netCDF); on a clean exit
    the file is fsynced and renamed onto `path`, and the directory fsynced. On an error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, encoding: str = "utf-8",
                 newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temp file beside `path` for writing (`mode` "w" text or "wb" binary); on a clean exit it is
    fsynced and atomically renamed onto `path`. The file gets the usual permissions (0o666 less the umask).
    `encoding` and `newline` are `open`'s, for text mode (`newline=""` for the csv module)."""
    if mode not in _MODES:
        raise InputValidationError("mode", mode, f"one of {_MODES}")
    text = {} if "b" in mode else {"encoding": encoding, "newline": newline}
    with atomic_path(path) as tmp:
        # os.open applies the umask, unlike tempfile.mkstemp's fixed 0o600; O_EXCL refuses a stale name.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temp directory beside `path` to fill; on a clean exit it is renamed onto `path` in one
    step, so a reader sees no directory or the complete one. An error inside removes only the temp directory.
    If `path` already exists (another process published it first), the rename fails with OSError, the temp
    directory is removed, and the published one is kept (callers then use it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        for child in tmp.rglob("*"):
            if child.is_file():
                _fsync_file(child)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # only this writer's own half-written directory
        raise
    fsync_dir(path.parent)


def json_default(obj: Any) -> Any:
    """JSON for the non-JSON values the package writes: numpy scalars/arrays, torch tensors, paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch.Tensor, without importing torch
        return obj.detach().cpu().tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def canonical_json(obj: Any) -> str:
    """The one canonical JSON text of `obj` (sorted keys, no whitespace), for hashing and comparison."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=json_default)


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    """Write `obj` as JSON (sorted keys, `indent`, final newline) atomically to `path`; returns `path`."""
    path = Path(path)
    text = json.dumps(obj, sort_keys=True, indent=indent, default=json_default) + "\n"
    with atomic_write(path, "w") as f:
        f.write(text)
    return path


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The full 40-hex HEAD commit of the git checkout this package's source is tracked in, else None.

    None (not a guess) when git is missing, the package is installed outside a checkout, or the
    enclosing repository does not track this file (an installed copy inside someone else's repository).
    """
    here = Path(__file__).resolve()
    try:
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", here.name], cwd=here.parent,
                                 capture_output=True, text=True, timeout=5, check=False)
        if tracked.returncode != 0:
            return None
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here.parent,
                             capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and len(rev) == 40 else None


def source_sha256(root: str | Path | None = None) -> str:
    """sha256 over the `.py` files under `root` (default: this package's directory), each as its path relative
    to `root` and its bytes, in sorted path order; `__pycache__` is skipped.

    Why beside `git_revision`: a commit names what was checked in, not what ran. Uncommitted edits, or a
    PYTHONPATH that puts another working tree's package first, run other code under the same HEAD; this digest
    is of the files actually imported, so two results with equal digests ran the same package source.
    """
    base = Path(__file__).resolve().parent if root is None else Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts):
        rel = path.relative_to(base).as_posix().encode()
        data = path.read_bytes()
        h.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big") + data)  # lengths: no ambiguity
    return h.hexdigest()


__all__ = ["atomic_path", "atomic_write", "canonical_json", "fsync_dir", "git_revision", "json_default",
           "source_sha256", "write_json"]
