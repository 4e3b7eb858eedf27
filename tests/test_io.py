"""astrobio.io: atomic writes leave the old file or the whole new one; canonical JSON; one git revision."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest

from astrobio.errors import InputValidationError
from astrobio.io import (atomic_directory, atomic_path, atomic_write, canonical_json, git_revision, source_sha256,
                         write_json)


def _siblings(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_atomic_write_text_and_binary(tmp_path):
    with atomic_write(tmp_path / "a.txt") as f:
        f.write("héllo\n")
    with atomic_write(tmp_path / "b.bin", "wb") as f:
        f.write(b"\x00\x01")
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _siblings(tmp_path) == ["a.txt", "b.bin"]  # no temp file left behind


def test_atomic_write_error_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "keep.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="mid-write"):
        with atomic_write(target) as f:
            f.write("new, half written")
            raise RuntimeError("mid-write")
    assert target.read_text() == "old"
    assert _siblings(tmp_path) == ["keep.json"]


def test_atomic_write_makes_parents_and_uses_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "x" / "y" / "z.txt") as f:
            f.write("1")
    finally:
        os.umask(old)
    # 0o666 less the umask, like a plain open(); tempfile.mkstemp would have left 0o600.
    assert stat.S_IMODE((tmp_path / "x" / "y" / "z.txt").stat().st_mode) == 0o644


def test_atomic_write_rejects_append_and_read_modes(tmp_path):
    for mode in ("a", "r", "w+"):
        with pytest.raises(InputValidationError, match="mode"):
            with atomic_write(tmp_path / "f", mode):
                pass
    assert not (tmp_path / "f").exists()


def test_atomic_path_for_libraries_that_write_by_name(tmp_path):
    target = tmp_path / "shard.h5"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".shard.h5.")
        tmp.write_bytes(b"data")
        assert not target.exists()  # invisible until the rename
    assert target.read_bytes() == b"data"
    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"torn")
            raise KeyError("boom")
    assert target.read_bytes() == b"data"
    assert _siblings(tmp_path) == ["shard.h5"]


def test_canonical_json_exact_text():
    obj = {"b": np.float32(0.5), "a": [np.int64(1), 2], "p": Path("/x/y"), "arr": np.arange(3)}
    assert canonical_json(obj) == '{"a":[1,2],"arr":[0,1,2],"b":0.5,"p":"/x/y"}'
    assert canonical_json({"y": 1, "x": 2}) == canonical_json({"x": 2, "y": 1})
    with pytest.raises(TypeError, match="object"):
        canonical_json({"bad": object()})


def test_write_json_round_trip_sorted_with_newline(tmp_path):
    path = write_json(tmp_path / "s.json", {"z": 1, "a": {"d": np.float64(2.5), "c": None}})
    text = path.read_text()
    assert text == '{\n  "a": {\n    "c": null,\n    "d": 2.5\n  },\n  "z": 1\n}\n'
    assert json.loads(text) == {"a": {"c": None, "d": 2.5}, "z": 1}
    write_json(path, [1], indent=None)
    assert path.read_text() == "[1]\n"


def test_git_revision_is_full_sha_of_a_real_commit_or_none():
    rev = git_revision()
    if rev is None:  # installed outside a checkout: nothing to check but the type
        return
    assert len(rev) == 40 and all(c in "0123456789abcdef" for c in rev)
    pkg = Path(__import__("astrobio").__file__).parent
    assert subprocess.run(["git", "cat-file", "-e", f"{rev}^{{commit}}"], cwd=pkg,
                          capture_output=True).returncode == 0


def test_source_sha256_is_of_the_py_files_and_sees_every_edit(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.py").write_bytes(b"x = 1\n")
    (tmp_path / "sub" / "a.py").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not source")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "c.py").write_text("skipped")
    h = hashlib.sha256()  # sorted relative paths: b.py before sub/a.py; each as (length, path, length, bytes)
    for rel, data in ((b"b.py", b"x = 1\n"), (b"sub/a.py", b"")):
        h.update(len(rel).to_bytes(8, "big") + rel + len(data).to_bytes(8, "big") + data)
    digest = source_sha256(tmp_path)
    assert digest == h.hexdigest()
    (tmp_path / "notes.txt").write_text("edited")
    assert source_sha256(tmp_path) == digest  # only .py files count
    (tmp_path / "b.py").write_bytes(b"x = 2\n")
    assert source_sha256(tmp_path) != digest  # an uncommitted edit changes it
    (tmp_path / "b.py").write_bytes(b"x = 1\n")
    (tmp_path / "sub" / "a.py").rename(tmp_path / "a.py")
    assert source_sha256(tmp_path) != digest  # so does a move
    assert len(source_sha256()) == 64  # the installed package


def test_atomic_write_newline_is_opens(tmp_path):
    with atomic_write(tmp_path / "t.csv", newline="") as f:  # the csv module writes its own \r\n
        f.write("a,b\r\n1,2\r\n")
    assert (tmp_path / "t.csv").read_bytes() == b"a,b\r\n1,2\r\n"


# ---------------------------------------------------------------- every writer of the package uses astrobio.io

SRC = Path(__import__("astrobio").__file__).parent
# Writes that are not "make this file appear whole", each with its reason.
ALLOWED = {
    ("training/trainer.py", "open(mode='a')"): "history.jsonl is append-only; a torn last line is dropped on resume",
    ("data/repair.py", "os.replace"): "moves an existing file into quarantine/ (a rename, then fsync_dir)",
}
_TEMPFILE_WRITERS = {"mkstemp", "mkdtemp", "NamedTemporaryFile"}


def _mode(call: ast.Call) -> str:
    arg = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
    return arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "r"


def _writes(tree: ast.AST) -> set[str]:
    """The raw file-system writes in a module: open() for writing, os.fdopen, tempfile files, os.replace/rename,
    Path.write_text/write_bytes."""
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id == "open" and set(_mode(node)) & set("wax+"):
            found.add(f"open(mode={_mode(node)!r})")
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
            name = f"{f.value.id}.{f.attr}"
            if name in ("os.fdopen", "os.replace", "os.rename", "shutil.move") or \
                    (f.value.id == "tempfile" and f.attr in _TEMPFILE_WRITERS):
                found.add(name)
        if isinstance(f, ast.Attribute) and f.attr in ("write_text", "write_bytes"):
            found.add(f".{f.attr}")
    return found


def _package_writes() -> set[tuple[str, str]]:
    out = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel != "io.py":
            out |= {(rel, w) for w in _writes(ast.parse(path.read_text(encoding="utf-8")))}
    return out


def test_every_writer_goes_through_astrobio_io():
    assert _package_writes() - set(ALLOWED) == set()


def test_atomic_directory_publishes_complete_or_nothing(tmp_path):
    final = tmp_path / "cache" / "key"
    with pytest.raises(RuntimeError):
        with atomic_directory(final) as tmp:
            (tmp / "a.json").write_text("{}")
            raise RuntimeError("build failed")
    assert not final.exists() and list((tmp_path / "cache").iterdir()) == []  # the half-built temp is gone
    with atomic_directory(final) as tmp:
        (tmp / "a.json").write_text('{"x": 1}')
    assert (final / "a.json").read_text() == '{"x": 1}'
    with pytest.raises(OSError):  # published first by another writer: theirs is kept, ours removed
        with atomic_directory(final) as tmp:
            (tmp / "b.json").write_text("{}")
    assert sorted(p.name for p in final.iterdir()) == ["a.json"]
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["key"]
