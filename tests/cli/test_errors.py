"""One error handler for every command: a typed error is one line on stderr naming the field, exit code 2,
no traceback; `--debug` shows the traceback; typer is imported only by astrobio.cli."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import astrobio
from astrobio.cli import app
from astrobio.errors import StorageError

SRC = Path(astrobio.__file__).parent


def _bad_input_cases(tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, what the one line must start with) for every command; `tmp` is an empty directory."""
    missing = str(tmp / "missing")
    return [
        (["simulate", "--out", str(tmp / "s"), "--survey", "hubble"], "error: survey='hubble': expected"),
        (["simulate", "--out", str(tmp / "s"), "--scheduler", "/no/such.json"], "error: scheduler="),
        (["data", "quality", missing], f"error: no astrobio store at {missing}"),
        (["data", "repair", missing], f"error: no astrobio store at {missing}"),
        (["data", "inspect", missing], f"error: no astrobio store at {missing}"),
        (["data", "export", missing, "r", "--format", "csv", "--out", str(tmp / "x.csv")], "error: no astrobio"),
        (["data", "restore", missing, "r"], f"error: no astrobio store at {missing}"),
        (["train", missing, "--out", str(tmp / "run")], f"error: data='{missing}': expected a store directory"),
        (["train", str(tmp), "--out", str(tmp / "run"), "--optimizer", "sgd"], "error: optimizer='sgd': expected"),
        (["train", str(tmp), "--out", str(tmp / "run"), "--betas", "0.9,x"], "error: betas='0.9,x': expected"),
        (["train", str(tmp), "--out", str(tmp / "run"), "--loader-workers", "-1"], "error: loader_workers=-1"),
        (["evaluate", missing], f"error: no checkpoint in {missing}"),
        (["predict", missing, "--planet", "Earth"], f"error: no checkpoint in {missing}"),
        (["predict", missing], "error: planet=None: expected exactly one of --planet NAME or --catalog"),
        (["predict", missing, "--planet", "Earth", "--catalog"], "error: planet='Earth': expected exactly one"),
        (["report", missing], f"error: run='{missing}': expected a run evaluated"),
        (["serve", missing, "--port", "0"], f"error: run='{missing}'"),
        (["memory", "--preset", "huge", "--gpu-memory-gb", "1"], "error: preset='huge': expected one of"),
        (["demo", "--out", str(tmp / "d"), "--n", "0"], "error: n=0: expected"),
        (["demo", "--out", str(tmp / "d"), "--preset", "huge"], "error: preset='huge': expected one of"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_input_cases(Path("/x")))))
def test_every_command_bad_input_is_one_line_exit_2(case, tmp_path):
    args, start = _bad_input_cases(tmp_path)[case]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, (args, res.output, res.exception)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start), (args, res.stderr)
    assert "Traceback" not in res.output and res.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # refused before writing anything


def test_debug_reraises_the_typed_error(tmp_path):
    res = CliRunner().invoke(app, ["--debug", "data", "inspect", str(tmp_path / "missing")])
    assert isinstance(res.exception, StorageError) and res.exit_code == 1 and res.stderr == ""


def test_python_m_astrobio_cli_one_line_and_debug_traceback(tmp_path):
    """The module entry point torchrun uses; the real process: no traceback, unless --debug."""
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    cmd = [sys.executable, "-m", "astrobio.cli", "data", "inspect", str(tmp_path / "missing")]
    plain = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == 2 and plain.stderr.strip() == f"error: no astrobio store at {tmp_path / 'missing'} " \
                                                               "(missing index.sqlite); write runs there first"
    debug = subprocess.run(cmd[:3] + ["--debug"] + cmd[3:], capture_output=True, text=True, env=env, timeout=120)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "astrobio.errors.StorageError: no astrobio store" in debug.stderr


def test_usage_errors_keep_clicks_exit_code_2(tmp_path):
    for args in (["train", "--out", str(tmp_path / "r")],  # the STORE argument is missing
                 ["report", str(tmp_path), "--seed", "1"],  # report has no seed: it would change nothing
                 ["evaluate", str(tmp_path), "--seed", "1"],  # nor evaluate: the baselines use the run's seed
                 ["train", str(tmp_path), "--out", str(tmp_path / "r"), "--workers", "1"]):  # --loader-workers
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and "Traceback" not in res.output, (args, res.output)


def test_typer_is_imported_only_by_the_cli_package():
    importers = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "typer" or n.startswith("typer.") for n in names):
                importers.append(path.relative_to(SRC))
    assert importers and all(p.parts[0] == "cli" for p in importers), importers
    assert not any(p.name == "cli.py" for p in SRC.rglob("cli.py"))  # the old per-layer command modules
