"""A tiny simulated store shared by the end-to-end training tests (simulated once per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # trainer_toys, ddp_worker

N_RUNS, SEED = 12, 10  # demo grid; this seed's systems split 8 train / 4 val (split by system hash)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    from astrobio.simulation import simulate_to_store

    store = tmp_path_factory.mktemp("train-store") / "store"
    simulate_to_store(store, N_RUNS, seed=SEED, resolution="demo", workers=1, source="synthetic", progress=False)
    return store
