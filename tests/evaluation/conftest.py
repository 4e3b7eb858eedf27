"""A small simulated store and a `tiny` model trained on it for a few steps (once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

N_RUNS, SEED = 48, 2


@pytest.fixture(scope="session")
def eval_store(tmp_path_factory) -> Path:
    from astrobio.simulation import simulate_to_store

    store = tmp_path_factory.mktemp("eval-store") / "store"
    simulate_to_store(store, N_RUNS, seed=SEED, resolution="demo", workers=1, source="synthetic", progress=False)
    return store


@pytest.fixture(scope="session")
def trained_run(eval_store, tmp_path_factory) -> Path:
    from astrobio.cli import app

    run = tmp_path_factory.mktemp("eval-run") / "run"
    args = ["train", str(eval_store), "--out", str(run), "--preset", "tiny", "--max-steps", "4",
            "--batch-size", "4", "--lr", "1e-3", "--warmup-steps", "1", "--eval-every", "2", "--log-every", "1",
            "--seed", "0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return run
