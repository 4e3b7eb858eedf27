"""AdvancedDataQualityManager: each defect is quarantined with its reason, clean runs pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from astrobio.data.quality import (DEFAULT_THRESHOLDS, AdvancedDataQualityManager, robust_z,
                                   saturation_specific_humidity)
from astrobio.data.storage import RealDataStorage
from astrobio.errors import InputValidationError, QualityError


def test_saturation_matches_known_values():
    # e_s(T_triple) = 611.657 Pa exactly; at 1000 hPa q_s = 0.622 e / (p - 0.378 e)
    q = saturation_specific_humidity(np.array([273.16]), np.array([1e5]))
    assert q[0] == pytest.approx(0.622 * 611.657 / (1e5 - 0.378 * 611.657), rel=1e-12)
    # constant-L CC at 300 K: e_s ~ 3.6 kPa (tables: 3.54 kPa), q_s ~ 22.5 g/kg at 1000 hPa
    assert saturation_specific_humidity(np.array([300.0]), np.array([1e5]))[0] == pytest.approx(0.0225, rel=0.03)
    # more vapour pressure than total pressure: capped at 1
    assert saturation_specific_humidity(np.array([400.0]), np.array([1e3]))[0] == 1.0


def test_robust_z_exact():
    z = robust_z(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))  # median 3, MAD 1
    assert np.allclose(z, 0.6745 * np.array([-2.0, -1.0, 0.0, 1.0, 97.0]))
    assert np.allclose(robust_z(np.array([5.0, 5.0, 5.0, 9.0])), [0, 0, 0, 4.0 / 1.253314])  # MAD 0: mean AD
    assert np.allclose(robust_z(np.array([1.0, 2.0, 3.0]), min_scale=10.0), [-0.1, 0.0, 0.1])


@pytest.fixture
def defective_store(store_path, runs, make_run):
    nan_cube = make_run(4)
    nan_cube.datacube_prior[0, 3, 1, 2, 0] = np.nan
    neg_depth = make_run(5)
    neg_depth.spectrum[10, 1] = -8000.0  # the sign flipped: -533 sigma
    bad_graph = make_run(6)
    bad_graph.graph.edge_index = torch.tensor([[0, 1, 7], [1, 2, 0]], dtype=torch.int64)
    empty_text = make_run(7)
    empty_text.text = "   "
    duplicate = make_run(0)
    duplicate.run_id = "run-0008"
    wet = make_run(9)
    wet.datacube_true[1] *= 3.0  # 150 % relative humidity
    bad_label = make_run(10)
    bad_label.labels["habitability_class"] = 1
    bad_label.labels["liquid_water_fraction"] = 0.0
    store = RealDataStorage(store_path)
    store.write_runs(runs + [nan_cube, neg_depth, bad_graph, empty_text, duplicate, wet, bad_label])
    return store


def test_defects_are_quarantined_with_their_reason(defective_store):
    report = AdvancedDataQualityManager().assess_data_quality(defective_store)
    by_id = {r.run_id: r for r in report.runs}
    for clean in ("run-0000", "run-0001", "run-0002", "run-0003"):
        assert by_id[clean].passed and by_id[clean].reasons == [], by_id[clean]
    assert by_id["run-0004"].reasons == ["non_finite:datacube_prior"]
    assert by_id["run-0005"].reasons == ["spectrum_depth_negative:-8000 ppm at 2.927 um (sigma 15 ppm)"]
    assert by_id["run-0006"].reasons == ["graph_index_out_of_range:[0, 7] with 5 nodes"]
    assert by_id["run-0007"].reasons == ["text_empty"]
    assert by_id["run-0008"].reasons == ["duplicate_of:run-0000"]
    assert len(by_id["run-0009"].reasons) == 1
    assert by_id["run-0009"].reasons[0].startswith("humidity_supersaturated:datacube_true q/q_sat up to 1.")
    assert by_id["run-0010"].reasons == ["label_inconsistent:class 1 with liquid_water_fraction 0.0"]
    # the cold run is far from the others' mean temperature: a warning, not a quarantine
    assert by_id["run-0001"].warnings and by_id["run-0001"].warnings[0].startswith(
        "outlier:mean_air_temperature_true_k=")
    assert report.accuracy == pytest.approx(4 / 11)
    assert report.completeness["text"] == pytest.approx(10 / 11)
    assert report.completeness["spectrum"] == 1.0  # run-0002 has no transits: no spectrum expected
    assert report.presence["spectrum"] == pytest.approx(10 / 11)
    assert not report.passed
    assert sorted(report.quarantined) == [f"run-{i:04d}" for i in range(4, 11)]
    listed = [r["run_id"] for r in defective_store.list_stored_runs()]
    assert listed == ["run-0000", "run-0001", "run-0002", "run-0003"]
    q = {r["run_id"]: r["quarantine_reasons"] for r in defective_store.quarantined_runs()}
    assert q["run-0007"] == ["text_empty"]


def test_quarantine_is_restorable_and_reported(defective_store):
    manager = AdvancedDataQualityManager()
    report = manager.assess_data_quality(defective_store, quarantine=False)
    assert report.quarantined == [] and defective_store.quarantined_runs() == []
    manager.assess_data_quality(defective_store)
    defective_store.restore("run-0007")
    assert "run-0007" in [r["run_id"] for r in defective_store.list_stored_runs()]
    d = json.loads(report.to_json())
    assert d["n_runs"] == 11 and d["passed"] is False and d["thresholds"]["accuracy"] == 0.98
    text = report.render_text()
    assert "accuracy (runs passing)" in text and "text_empty" in text and "FAIL" in text
    assert report.render().row_count == 6 + 8  # 5 metric rows + hashes verified + 7 failing runs + 1 warned run


def test_clean_store_passes(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs([r for r in runs if r.labels["habitability_class"] == 2])
    report = AdvancedDataQualityManager().assess_data_quality(store_path)  # a path works too
    assert report.passed and report.accuracy == 1.0 and report.quarantined == []


def test_noisy_small_depths_and_empty_graphs_pass(store_path, make_run):
    import torch
    from torch_geometric.data import Data

    run = make_run(0)
    run.spectrum[:, 1] = 20.0 - 0.2 * np.arange(50)  # a 20 ppm planet measured down to -9.8 ppm (< 1 sigma)
    run.graph = Data(x=torch.zeros(0, 64), edge_index=torch.zeros(2, 0, dtype=torch.int64))  # no metabolism
    store = RealDataStorage(store_path)
    store.write_runs([run])
    report = AdvancedDataQualityManager().assess_data_quality(store)
    assert report.runs[0].reasons == [] and report.completeness["graph"] == 1.0 and report.presence["graph"] == 0.0


def test_thresholds(store_path, runs):
    m = AdvancedDataQualityManager({"temperature_max_k": 280.0})
    assert m.quality_thresholds["completeness"] == DEFAULT_THRESHOLDS["completeness"] == 0.95
    assert m.quality_thresholds["accuracy"] == 0.98
    store = RealDataStorage(store_path)
    store.write_runs(runs[:1])
    report = m.assess_data_quality(store)
    assert report.runs[0].reasons[0].startswith("temperature_range:datacube_true")
    with pytest.raises(InputValidationError, match="quality_thresholds"):
        AdvancedDataQualityManager({"accuracyy": 0.9})
    with pytest.raises(InputValidationError):
        AdvancedDataQualityManager({"completeness": 1.5})
    empty = RealDataStorage(store_path.parent / "empty")
    empty.write_meta({"note": "no runs"})
    with pytest.raises(QualityError, match="no runs"):
        m.assess_data_quality(empty)


def _tamper(path, run_id, fn):
    import h5py

    with h5py.File(path, "r+") as f:
        fn(f[f"runs/{run_id}"])


def test_content_hash_catches_what_every_other_check_passes(store_path, runs):
    store = RealDataStorage(store_path)
    store.write_runs(runs)
    store.close()
    shard = store_path / "shard-00000.h5"

    def constant_spectrum(g):
        g["spectrum"][:, 1] = 8000.0  # a plausible depth, flat: no physical check can object

    def relabel(g):
        labels = json.loads(g.attrs["labels"])
        labels["habitability_class"] = 1  # was 2 (inhabited); still consistent with liquid water 0.6
        g.attrs["labels"] = json.dumps(labels, sort_keys=True)

    def flip_one_value(g):
        g["datacube_true"][0, 0, 0, 0, 0] += 0.5  # half a kelvin in one cell

    def observed_digit(g):
        g.attrs["observed"] = g.attrs["observed"].replace('"planet_radius_earth": 1.08', '"planet_radius_earth": 1.09')

    for run_id, fn in (("run-0000", constant_spectrum), ("run-0003", relabel), ("run-0001", flip_one_value),
                       ("run-0002", observed_digit)):
        _tamper(shard, run_id, fn)
    unverified = AdvancedDataQualityManager().assess_data_quality(store, quarantine=False, verify_hashes=False)
    assert unverified.accuracy == 1.0 and unverified.hashes_verified == 0  # the checks alone miss all three
    report = AdvancedDataQualityManager().assess_data_quality(store)
    by_id = {r.run_id: r.reasons for r in report.runs}
    for run_id in ("run-0000", "run-0001", "run-0003"):
        assert len(by_id[run_id]) == 1 and by_id[run_id][0].startswith("content_hash_mismatch:recorded "), by_id
    assert by_id["run-0002"] == ["record_hash_mismatch:truth, observed, extras or annotation changed"]
    assert report.hashes_verified == 4 and sorted(report.quarantined) == [f"run-{i:04d}" for i in range(4)]


def _overwrite(path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def test_every_read_failure_is_quarantined_and_assessment_goes_on(store_path, runs):
    import h5py

    store = RealDataStorage(store_path)
    store.write_runs(runs)
    store.close()
    shard = store_path / "shard-00000.h5"
    raw = shard.read_bytes()
    with h5py.File(shard, "r") as f:  # where the compressed bytes of run-0001's true datacube live
        chunk = f["runs/run-0001/datacube_true"].id.get_chunk_info(0)
    _overwrite(shard, chunk.byte_offset + 16, b"\xff" * 64)  # inside the deflate stream: h5py raises on read
    labels = raw.index(b'"habitability_class": 2', raw.index(b"run-0003"))  # a labels JSON attr
    _overwrite(shard, labels, b'"habitability_class"\xff\xfe')  # invalid UTF-8 and JSON at once
    report = AdvancedDataQualityManager().assess_data_quality(store)  # must not raise
    reasons = {r.run_id: r.reasons for r in report.runs}
    failed = {k for k, v in reasons.items() if v}
    assert len(failed) == 2 and "run-0001" in failed  # one run per corruption, the others assessed as usual
    assert all(len(reasons[k]) == 1 and reasons[k][0].startswith("unreadable:") for k in failed)
    assert sorted(report.quarantined) == sorted(failed)
    for row in store.list_stored_runs():  # what still passes is exactly what was written
        a = store.load_arrays(row["run_id"])
        want = next(r for r in runs if r.run_id == row["run_id"])
        assert np.array_equal(a["datacube_true"], want.datacube_true) and a["labels"] == want.labels


def test_non_finite_physics_features_are_a_defect(store_path, make_run):
    run = make_run(0)
    run.physics_features[2] = np.inf
    store = RealDataStorage(store_path)
    store.write_runs([run])
    report = AdvancedDataQualityManager().assess_data_quality(store, quarantine=False)
    assert report.runs[0].reasons == ["non_finite:physics_features"]
