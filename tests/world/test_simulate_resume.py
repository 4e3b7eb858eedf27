"""An interrupted simulation resumes to exactly N runs (the engine `astrobio simulate` runs)."""

import pytest

from astrobio.data import RealDataStorage
from astrobio.simulation import simulate_to_store


def _ids(store) -> list[str]:
    return [r["run_id"] for r in RealDataStorage(store).list_stored_runs(include_quarantined=True)]


def test_interrupted_simulation_resumes_to_exactly_n_runs(tmp_path, monkeypatch):
    store = tmp_path / "store"
    calls = {"n": 0}
    real_record = RealDataStorage.record_shard

    def interrupted_record(self, written):
        calls["n"] += 1
        if calls["n"] == 2:  # the client dies while recording the second chunk
            raise KeyboardInterrupt("killed")
        return real_record(self, written)

    monkeypatch.setattr(RealDataStorage, "record_shard", interrupted_record)
    with pytest.raises(KeyboardInterrupt):
        simulate_to_store(store, 20, seed=1, resolution="demo", workers=1, source="synthetic", chunk=8,
                          progress=False)
    assert len(_ids(store)) == 8  # one whole chunk: no partial record of the second
    monkeypatch.setattr(RealDataStorage, "record_shard", real_record)
    summary = simulate_to_store(store, 20, seed=1, resolution="demo", workers=1, source="synthetic", chunk=8,
                                progress=False)
    ids = _ids(store)
    assert len(ids) == len(set(ids)) == 20
    assert summary["already_stored"] == 8 and summary["simulated_now"] == 12 and summary["failed"] == []
    again = simulate_to_store(store, 20, seed=1, resolution="demo", workers=1, source="synthetic", progress=False)
    assert again["simulated_now"] == 0 and again["already_stored"] == 20 and len(_ids(store)) == 20
