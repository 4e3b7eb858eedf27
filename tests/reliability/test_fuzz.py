"""Hypothesis fuzzing of the entry points where outside values come in: `simulate_run`, `habitable_zone`,
`earth_similarity_index`, the storage API and the catalog CSV reader. Every input either gives a typed
error (an `AstrobioError`) or a value inside its physical bounds; never another exception, never a silent
wrong value. Examples are few and the grid is the demo one, so the suite stays fast; tried/typed-error
counts are printed (`pytest -s`) for docs/reliability.md.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import Counter
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrobio.errors import AstrobioError
from astrobio.world.catalog import REQUIRED_COLUMNS, catalog_planets, solar_system_planet
from astrobio.world.habitable import earth_similarity_index, habitable_zone
from astrobio.world.types import PlanetTruth

COUNTS: Counter = Counter()
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# Anything a user, a CSV or a JSON body could hand over in place of a number.
ANY_VALUE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**6, 10**6), st.booleans(), st.none(),
    st.text(max_size=8), st.sampled_from(["5772", "1e3", "nan", "-inf", "", " "]),
    st.lists(st.floats(allow_nan=True), max_size=3))


def _tally(name: str, fn) -> object | None:
    """Call fn(); count it; a typed error is the allowed failure (returns None), anything else propagates."""
    COUNTS[f"{name}:tried"] += 1
    try:
        return fn()
    except AstrobioError:
        COUNTS[f"{name}:typed_error"] += 1
        return None


def _or_plausible(lo: float, hi: float):
    """ANY_VALUE, or a float in the physical range, so accepted inputs are fuzzed too."""
    return st.one_of(ANY_VALUE, st.floats(lo, hi), st.floats(lo, hi))


@FAST
@given(teff=_or_plausible(2000.0, 8000.0), lum=_or_plausible(1e-4, 10.0), mass=_or_plausible(0.01, 20.0))
def test_habitable_zone(teff, lum, mass):
    hz = _tally("habitable_zone", lambda: habitable_zone(teff, lum, mass))
    if hz is not None:
        for limit in hz.values():
            assert np.all(np.isfinite(limit)) and np.all(limit > 0)


@FAST
@given(r=_or_plausible(0.1, 3.0), rho=_or_plausible(0.1, 3.0), v=_or_plausible(0.1, 3.0), t=_or_plausible(50, 800))
def test_earth_similarity_index(r, rho, v, t):
    esi = _tally("earth_similarity_index", lambda: earth_similarity_index(r, rho, v, t))
    if esi is not None:
        assert np.all(np.isfinite(esi)) and np.all((esi >= 0) & (esi <= 1))


TRUTH_FIELDS = [f.name for f in fields(PlanetTruth)]


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(field=st.sampled_from(TRUTH_FIELDS), value=ANY_VALUE, seed=st.integers(0, 2**31))
def test_simulate_run(field, value, seed):
    from astrobio.world.simulate import simulate_run

    truth = replace(solar_system_planet("Mars"), **{field: value})
    run = _tally("simulate_run", lambda: simulate_run(truth, seed=seed, resolution="demo"))
    if run is not None:  # an accepted value: the run must be physical
        assert run.labels["habitability_class"] in (0, 1, 2)
        assert 0.0 <= run.labels["liquid_water_fraction"] <= 1.0
        assert np.isfinite(run.datacube_true).all() and np.isfinite(run.datacube_prior).all()
        assert run.spectrum is None or np.isfinite(run.spectrum).all()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(run_id=st.one_of(st.text(max_size=12), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:+\-]{0,10}", fullmatch=True)),
       probe=st.text(max_size=12))
def test_storage_api(tmp_path_factory, run_id, probe):
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from conftest import make_run

    from astrobio.data.storage import RealDataStorage

    store = RealDataStorage(tmp_path_factory.mktemp("fuzz") / "store")
    run = make_run(1)
    run.run_id = run_id
    written = _tally("storage_write", lambda: store.write_runs([run]))
    if written is not None:  # an accepted id round-trips exactly
        a = store.load_arrays(run_id)
        assert np.array_equal(a["datacube_true"], run.datacube_true) and a["labels"] == run.labels
    if probe != run_id:
        assert _tally("storage_read", lambda: store.load_arrays(probe)) is None  # unknown id: StorageError
    store.close()


CELL = st.one_of(st.sampled_from(["", "nan", "inf", "-1", "0", "1e309", "abc", "5772", "0.9", "1", "0.003",
                                  "2019", "Transit", "x\x00y"]), st.text(max_size=6),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr))


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(rows=st.lists(st.fixed_dictionaries({c: CELL for c in REQUIRED_COLUMNS}), min_size=1, max_size=4),
       garbage=st.binary(max_size=40))
def test_catalog_csv_reader(tmp_path_factory, rows, garbage):
    path = tmp_path_factory.mktemp("csv") / "planets.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(REQUIRED_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    result = _tally("catalog_csv", lambda: catalog_planets(path))
    assert result is not None  # a bad row is skipped with its reason; it never aborts the file
    truths, skipped = result
    assert len(truths) + len(skipped) == len(rows) and all(reason for _, reason in skipped)
    for t in truths:
        assert math.isfinite(t.star_teff_k) and t.planet_radius_earth > 0 and t.semimajor_axis_au > 0
    path.write_bytes(garbage)  # not a catalog at all: one typed error for the file
    _tally("catalog_file", lambda: catalog_planets(path))


def test_zz_report_counts():
    """Prints what the fuzzers tried (runs last in this module)."""
    print("fuzz counts:", dict(sorted(COUNTS.items())))
