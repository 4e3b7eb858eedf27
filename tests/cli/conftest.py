"""Fixtures shared with the layers' tests: the tiny simulated store (training) and hand-made runs (data)."""

from tests.data.conftest import runs, store_path  # noqa: F401
from tests.training.conftest import tiny_store  # noqa: F401
