"""Typed errors cross process boundaries intact (a worker's error is rebuilt in the parent)."""

import pickle

import pytest

from astrobio.errors import CorruptRunError, InputValidationError


@pytest.mark.parametrize("error, fields", [
    (InputValidationError("star_age_gyr", -0.3, "a finite value >= 0 Gyr"), ("field", "value", "expected")),
    (CorruptRunError("syn-s7-0001", "graph_x", "holds NaN"), ("run_id", "field", "problem")),
])
def test_typed_errors_round_trip_through_pickle(error, fields):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)
    assert all(getattr(back, f) == getattr(error, f) for f in fields)
