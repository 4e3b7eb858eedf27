"""A served table of a few catalog planets, predicted by the tiny trained run of tests/evaluation (once per session)."""

from __future__ import annotations

import pytest

from tests.evaluation.conftest import eval_store, trained_run  # noqa: F401  (the same tiny trained run)

# Kepler-442 b for the browser test, π Mensae c for a non-ASCII name, a few temperate M-dwarf planets,
# and planets the simulator skips (a giant host, a circumbinary planet) for /api/skipped.
SERVED = ("Kepler-442 b", "π Mensae c", "Proxima Centauri b", "LHS 1140 b", "TRAPPIST-1 e", "Kepler-186 f")
SKIPPED = ("11 Com b", "Kepler-16 (AB) b")


@pytest.fixture(scope="session")
def serve_table(trained_run):  # noqa: F811
    from astrobio.serve.table import catalog_table

    return catalog_table(trained_run, names=SERVED + SKIPPED)


@pytest.fixture(scope="session")
def predictor(trained_run):  # noqa: F811
    from astrobio.serve.app import Predictor

    return Predictor(trained_run)


@pytest.fixture(scope="session")
def client(serve_table, predictor):
    from fastapi.testclient import TestClient

    from astrobio.serve.app import create_app

    with TestClient(create_app(serve_table, predictor)) as c:
        yield c
