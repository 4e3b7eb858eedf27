"""PlanetRunDataset on a small hand-made store: splits, statistics, items, workers, loader."""

import dataclasses
import hashlib
import json
import math

import h5py
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from astrobio.constants import S_EARTH
from astrobio.data.batch import MODALITIES, MultiModalBatch
from astrobio.data.dataset import (LOG10_NUMERIC_FIELDS, STATS_FILE, NormStats, PlanetRunDataset,
                                   collate_multimodal_batch, make_dataloader, split_of)
from astrobio.data.storage import RealDataStorage
from astrobio.data.tokenizer import TOKENIZER_FILE, load_tokenizer, train_tokenizer
from astrobio.errors import CorruptRunError, InputValidationError, StorageError
from astrobio.world.atmosphere import PRIOR_SURFACE_PRESSURE_BAR
from astrobio.world import simulate_runs, survey
from astrobio.world.features import physics_features, spectrum_reading
from astrobio.world.types import (LABEL_KEYS, OBSERVED_NUMERIC_FIELDS, PRIVILEGED_KEYS, REGRESSION_KEYS,
                                  PlanetObserved, PlanetRun, PlanetTruth)

LAT, LON, LEV = 2, 3, 2
N_SYSTEMS = 14


def _run(i: int, system: str) -> PlanetRun:
    """A tiny but complete run; values vary with i so statistics depend on which runs are in a split."""
    rng = np.random.default_rng(i)
    teff, lum, a = 3000.0 + 200.0 * i, 0.01 + 0.06 * i, 0.05 + 0.05 * i
    truth = PlanetTruth(
        name=f"{system} {'bcd'[i % 3]}", system=system, source="synthetic", star_teff_k=teff,
        star_radius_rsun=0.3 + 0.04 * i, star_mass_msun=0.3 + 0.04 * i, star_luminosity_lsun=lum,
        star_age_gyr=4.0, star_activity=0.2, distance_pc=10.0 + i, star_jmag=8.0, planet_radius_earth=1.0 + 0.1 * i,
        planet_mass_earth=1.0 + 0.3 * i, semimajor_axis_au=a, eccentricity=0.01, obliquity_deg=0.0,
        rotation_period_days=10.0, tidally_locked=True, surface_pressure_bar=1.0 + 0.5 * i,
        composition={"N2": 0.78, "O2": 0.0, "CO2": 4e-4, "CH4": 1e-6, "H2O": 1e-3, "O3": 0.0, "N2O": 0.0,
                     "CO": 0.0, "H2": 0.0},
        ocean_fraction=0.7, surface_albedo=0.3, cloud_top_pressure_bar=0.1, biosphere="none",
        atmosphere_retained=True, n_transits=i % 4)
    s = lum / a**2
    observed = PlanetObserved(
        name=truth.name, system=system, star_teff_k=teff, star_radius_rsun=truth.star_radius_rsun,
        star_mass_msun=truth.star_mass_msun, star_luminosity_lsun=lum,
        star_age_gyr=math.nan if i % 2 else 4.0, distance_pc=truth.distance_pc, star_jmag=8.0,
        planet_radius_earth=truth.planet_radius_earth, planet_mass_earth=math.nan if i % 3 == 0 else 1.0 + 0.3 * i,
        semimajor_axis_au=a, period_days=5.0 + i, eccentricity=0.01, instellation_searth=s,
        equilibrium_temperature_k=255.0 * s**0.25, n_transits=i % 4)
    cube_t = 200.0 + 5.0 * i + rng.normal(0, 3, (12, LAT, LON, LEV))
    cube_q = 1e-3 * (1 + i) * rng.uniform(0.5, 1.0, (12, LAT, LON, LEV))
    prior = np.stack([cube_t, cube_q]).astype(np.float32)
    true = np.stack([cube_t + 10.0, cube_q * 2]).astype(np.float32)
    wl = np.linspace(0.6, 12.0, 1000)
    spectrum = np.stack([wl, 5000.0 + 10 * i + 20 * np.sin(wl), np.full(1000, 30.0)], axis=1).astype(np.float32)
    graph = Data(x=torch.from_numpy(rng.normal(size=(3 + i % 3, 64)).astype(np.float32)),
                 edge_index=torch.tensor([[0, 1, 2], [1, 2, 0]]))
    text = f"{truth.name} orbits a {teff:.0f} K star; {i % 4} transits observed. Flares: {'yes' if i % 2 else 'no'}."
    labels = {k: float(v) for k, v in zip(LABEL_KEYS, [i % 3, 250.0 + 3 * i, 0.1 * (i % 10), 1.0 + 0.5 * i,
                                                       -3.4 + 0.01 * i, -6.0, -12.0 + 0.1 * i, -3.0 - 0.2 * i])}
    return PlanetRun(
        run_id=f"syn-{i:03d}", system=system, truth=truth, observed=observed, datacube_prior=prior,
        datacube_true=true, spectrum=None if i % 4 == 3 else spectrum, graph=None if i % 5 == 4 else graph,
        text="" if i % 7 == 6 else text, labels=labels,
        coords={"lat_deg": np.array([-45.0, 45.0], np.float32), "lon_deg": np.array([0.0, 120.0, 240.0], np.float32),
                "sigma": np.array([1.0, 0.5], np.float32), "month": np.arange(1, 13, dtype=np.float32)},
        physics_features=physics_features(observed, PRIOR_SURFACE_PRESSURE_BAR), resolution="demo", seed=0)


def _systems():
    """10 train, 2 val and 2 test systems (seed 0), interleaved so every split gets several runs."""
    cands = [f"Star-{k:02d}" for k in range(100)]
    pick = {s: [c for c in cands if split_of(c) == s][:n] for s, n in (("train", 10), ("val", 2), ("test", 2))}
    return [pick["val"][0], pick["test"][0]] + pick["train"][:5] + [pick["val"][1], pick["test"][1]] \
        + pick["train"][5:]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store")
    runs = [_run(i, _systems()[i % N_SYSTEMS]) for i in range(24)]  # 10 systems with 2 planets
    st = RealDataStorage(path)
    st.write_runs(runs)
    st.quarantine("syn-005", ["test: flagged"])
    st.close()
    return path


@pytest.fixture(scope="module")
def train(store):
    return PlanetRunDataset(store, "train")


def test_split_of_is_a_sha256_cut():
    u = int.from_bytes(hashlib.sha256(b"0:Star-03").digest()[:8], "big") / 2**64
    expected = "train" if u < 0.8 else ("val" if u < 0.9 else "test")
    assert split_of("Star-03", 0) == expected
    assert split_of("Star-03", 0, (0.0, 0.0, 1.0)) == "test" and split_of("Star-03", 0, (1.0, 0.0, 0.0)) == "train"
    # every split is reachable and the seed reshuffles systems
    names = [f"S{k}" for k in range(400)]
    counts = {s: sum(split_of(n) == s for n in names) for s in ("train", "val", "test")}
    assert 280 < counts["train"] < 360 and counts["val"] > 20 and counts["test"] > 20
    assert [split_of(n, 0) for n in names] != [split_of(n, 1) for n in names]


def test_splits_partition_runs_with_no_system_in_two_splits(store, train):
    sets = {s: PlanetRunDataset(store, s) for s in ("train", "val", "test")}
    assert all(len(d) > 0 for d in sets.values()), {s: len(d) for s, d in sets.items()}
    ids = {s: set(d.run_ids) for s, d in sets.items()}
    assert sum(map(len, ids.values())) == 23 and set.union(*ids.values()) == {f"syn-{i:03d}" for i in range(24)} - {
        "syn-005"}
    systems = {s: {d.systems[r] for r in d.run_ids} for s, d in sets.items()}
    assert not (systems["train"] & systems["val"]) and not (systems["train"] & systems["test"])
    assert not (systems["val"] & systems["test"])
    for d in sets.values():
        assert d.run_ids == sorted(d.run_ids)
    assert PlanetRunDataset(store, "train").run_ids == train.run_ids  # deterministic


def test_quarantined_runs_excluded_unless_asked(store, train):
    everything = [r for s in ("train", "val", "test")
                  for r in PlanetRunDataset(store, s, include_quarantined=True).run_ids]
    assert "syn-005" in everything
    assert all("syn-005" not in PlanetRunDataset(store, s).run_ids for s in ("train", "val", "test"))


def _hand_stats(store, run_ids):
    st = RealDataStorage(store)
    arrs = [st.load_arrays(r) for r in run_ids]
    st.close()
    cubes = np.concatenate([np.stack([a["datacube_prior"], a["datacube_true"]]) for a in arrs]).astype(np.float64)
    cube_mean = cubes.transpose(1, 0, 2, 3, 4, 5).reshape(2, -1).mean(1)
    cube_std = cubes.transpose(1, 0, 2, 3, 4, 5).reshape(2, -1).std(1)
    num = np.array([[a["observed"][k] for k in OBSERVED_NUMERIC_FIELDS] for a in arrs], dtype=np.float64)
    for j, k in enumerate(OBSERVED_NUMERIC_FIELDS):
        if k in LOG10_NUMERIC_FIELDS:
            num[:, j] = np.log10(num[:, j])
    reg = np.array([[a["labels"][k] for k in REGRESSION_KEYS] for a in arrs])
    return cube_mean, cube_std, np.nanmean(num, 0), np.nanstd(num, 0), reg.mean(0), reg.std(0)


def test_stats_computed_on_train_only_and_reused_by_val(store, train):
    cm, cs, nm, ns, rm, rs = _hand_stats(store, train.run_ids)
    st = train.stats
    assert st.n_train_runs == len(train)
    np.testing.assert_allclose(st.datacube_mean, cm, rtol=1e-9)
    np.testing.assert_allclose(st.datacube_std, cs, rtol=1e-6)
    np.testing.assert_allclose(st.numerical_mean, nm, rtol=1e-9)
    np.testing.assert_allclose(st.numerical_std[ns > 0], ns[ns > 0], rtol=1e-6)
    # constant across train (eccentricity, star_jmag): std 1 so standardised values are 0, not inf
    assert np.all(st.numerical_std[ns == 0] == 1.0)
    np.testing.assert_allclose(st.regression_mean, rm, rtol=1e-9)
    np.testing.assert_allclose(st.regression_std[rs > 0], rs[rs > 0], rtol=1e-6)
    assert st.regression_std[REGRESSION_KEYS.index("log10_ch4")] == 1.0  # constant in the hand store
    # all runs give different numbers: the val/test runs did not enter
    all_ids = train.run_ids + PlanetRunDataset(store, "val").run_ids + PlanetRunDataset(store, "test").run_ids
    assert not np.allclose(_hand_stats(store, all_ids)[0], cm)

    saved = json.loads((store / STATS_FILE).read_text())
    before = (store / STATS_FILE).stat().st_mtime_ns
    val = PlanetRunDataset(store, "val")
    assert (store / STATS_FILE).stat().st_mtime_ns == before  # read, not recomputed
    np.testing.assert_array_equal(val.stats.datacube_mean, np.asarray(saved["datacube"]["mean"]))
    np.testing.assert_array_equal(val.stats.regression_std, train.stats.regression_std)
    b = next(iter(make_dataloader(val, batch_size=2)))
    assert torch.equal(b.datacube_stats["mean"], torch.tensor(cm, dtype=torch.float32))
    assert torch.equal(b.regression_stats["std"], torch.tensor(train.stats.regression_std, dtype=torch.float32))


def test_stats_recomputed_for_another_split_seed(store, train, tmp_path):
    other = PlanetRunDataset(store, "train", seed=7)
    assert other.stats.fingerprint != train.stats.fingerprint
    np.testing.assert_allclose(other.stats.datacube_mean, _hand_stats(store, other.run_ids)[0], rtol=1e-9)
    PlanetRunDataset(store, "train")  # restore seed-0 stats for the other tests
    assert json.loads((store / STATS_FILE).read_text())["fingerprint"] == train.stats.fingerprint


def _privileged(i: int) -> list[float]:
    """PRIVILEGED_KEYS of `_run(i)` by hand: cloud top 0.1 bar, radius 1 + 0.1 i, mass 1 + 0.3 i, albedo 0.3."""
    return [-1.0, math.log10(1.0 + 0.1 * i), math.log10(1.0 + 0.3 * i), 0.3]


def test_privileged_targets_are_the_train_standardised_hidden_truth(train):
    hand = np.array([_privileged(int(r[4:])) for r in train.run_ids])
    st = train.stats
    np.testing.assert_allclose(st.privileged_mean, hand.mean(0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(st.privileged_std[1:3], hand.std(0)[1:3], rtol=1e-6)
    assert st.privileged_std[0] == st.privileged_std[3] == 1.0  # constant in the hand store
    item = train[0]
    expected = (np.array(_privileged(int(train.run_ids[0][4:]))) - st.privileged_mean) / st.privileged_std
    np.testing.assert_allclose(item["privileged_targets"].numpy(), expected, rtol=1e-6, atol=1e-6)
    batch = next(iter(make_dataloader(train, batch_size=3)))
    assert batch.privileged_targets.shape == (3, len(PRIVILEGED_KEYS))


def test_hidden_truth_changes_the_privileged_targets_and_no_input(train):
    run = _run(31, "Far-Away")
    hidden = dataclasses.replace(run, run_id="syn-131", truth=dataclasses.replace(
        run.truth, cloud_top_pressure_bar=0.01, surface_albedo=0.2, planet_mass_earth=7.0))
    a, b = PlanetRunDataset.from_runs([run, hidden], like=train)
    pa, pb = a.pop("privileged_targets"), b.pop("privileged_targets")
    a.pop("run_id"), b.pop("run_id")
    _same_items(a, b)  # every input (and every label: the truth the labels came from is the run's) is the same
    st = train.stats
    moved = (np.array([-2.0, 0.0, math.log10(7.0), 0.2]) - np.array([-1.0, 0.0, math.log10(1.0 + 0.3 * 31), 0.3])) \
        / st.privileged_std
    np.testing.assert_allclose((pb - pa).numpy(), moved * [1, 0, 1, 1], rtol=1e-5, atol=1e-6)


def test_version_1_statistics_still_serve_and_a_store_recomputes_them(store, train):
    old = train.stats.to_json()
    old.pop("privileged")
    old["version"] = 1
    loaded = NormStats.from_json(old)
    assert loaded.privileged_mean is None and loaded.to_json() == old
    with pytest.raises(StorageError, match="another layout"):
        NormStats.from_json({**old, "version": 2})  # version 2 without its privileged moments
    mem = PlanetRunDataset.from_runs([_run(40, "Far-Away")], like={**train.data_state(), "stats": old})
    assert mem[0]["privileged_targets"] is None  # a checkpoint of an older version predicts as before
    assert collate_multimodal_batch([mem[0]]).privileged_targets is None
    (store / STATS_FILE).write_text(json.dumps(old))
    again = PlanetRunDataset(store, "train")
    assert json.loads((store / STATS_FILE).read_text())["version"] == 2
    np.testing.assert_array_equal(again.stats.privileged_mean, train.stats.privileged_mean)


def test_tokenizer_trained_on_train_texts_only(store, train):
    st = RealDataStorage(store)
    texts = [st.load_arrays(r)["text"] for r in train.run_ids]
    st.close()
    assert (store / TOKENIZER_FILE).is_file()
    assert load_tokenizer(store).to_str() == train_tokenizer(texts).to_str()


def test_item_values_round_trip_to_the_store(store, train):
    i = next(k for k, r in enumerate(train.run_ids) if r not in ("syn-000",))
    item = train[i]
    st = RealDataStorage(store)
    a = st.load_arrays(item["run_id"])
    st.close()
    mean, std = train.stats.datacube_mean, train.stats.datacube_std
    raw = item["datacube"].numpy() * std[:, None, None, None, None] + mean[:, None, None, None, None]
    np.testing.assert_allclose(raw, a["datacube_prior"], rtol=1e-5)
    assert item["datacube"].dtype == torch.float32 and item["datacube"].shape == (2, 12, LAT, LON, LEV)
    if a["spectrum"] is not None:
        assert torch.equal(item["spectrum"], torch.from_numpy(a["spectrum"]))
    assert load_tokenizer(store).decode(item["input_ids"].tolist(), skip_special_tokens=True) == a["text"]
    obs = a["observed"]
    num = item["numerical_data"].numpy()
    for j, k in enumerate(OBSERVED_NUMERIC_FIELDS):
        v = math.log10(obs[k]) if k in LOG10_NUMERIC_FIELDS else obs[k]
        if math.isnan(v):
            assert math.isnan(num[j])
        else:
            assert num[j] == pytest.approx((v - train.stats.numerical_mean[j]) / train.stats.numerical_std[j],
                                           rel=1e-5, abs=1e-6)
    y = np.array([a["labels"][k] for k in REGRESSION_KEYS])
    np.testing.assert_allclose(item["regression_targets"].numpy(),
                               (y - train.stats.regression_mean) / train.stats.regression_std, rtol=1e-5, atol=1e-6)
    assert item["label"] == int(a["labels"]["habitability_class"])
    s = obs["instellation_searth"]
    assert item["instellation_wm2"] == pytest.approx(s * S_EARTH)
    phys = item["physics_features"].numpy()
    assert phys[0] == pytest.approx(math.log10(s), rel=1e-6)
    assert phys[2] == pytest.approx(obs["equilibrium_temperature_k"] / 300.0, rel=1e-6)
    assert phys[3] == 0.0 and item["surface_pressure_bar"] == 1.0  # 1 bar prior
    assert -1.0 <= phys[1] <= 2.0


def test_batches_from_the_store_are_finite_with_index_masks(store, train):
    rows = {r["run_id"]: r for r in RealDataStorage(store).list_stored_runs()}
    seen = 0
    for b in make_dataloader(train, batch_size=5, shuffle=True, seed=3):
        assert isinstance(b, MultiModalBatch)
        expected = [[rows[r][f"has_{m}"] for m in MODALITIES] for r in b.run_ids]
        assert b.modality_mask.tolist() == expected
        for name in ("datacube", "datacube_target", "spectrum", "numerical_data", "physics_features",
                     "regression_targets", "graph"):
            t = getattr(b, name).x if name == "graph" else getattr(b, name)
            assert torch.isfinite(t).all(), name
        assert b.graph.num_graphs == len(b) and b.input_ids.shape[1] <= 128
        seen += len(b)
    assert seen == len(train)


def _assert_batches_equal(a: MultiModalBatch, b: MultiModalBatch):
    assert a.run_ids == b.run_ids
    for name in ("datacube", "datacube_target", "sigma_levels", "lat_deg", "spectrum", "input_ids",
                 "attention_mask", "numerical_data", "numerical_mask", "physics_features", "instellation_wm2",
                 "surface_pressure_bar", "labels", "regression_targets", "modality_mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    for d in ("datacube_stats", "regression_stats"):
        for k in getattr(a, d):
            assert torch.equal(getattr(a, d)[k], getattr(b, d)[k]), (d, k)
    for k in ("x", "edge_index", "batch", "ptr"):
        assert torch.equal(getattr(a.graph, k), getattr(b.graph, k)), k


def test_two_workers_yield_the_same_batches_as_zero(train):
    serial = list(make_dataloader(train, batch_size=4, shuffle=True, seed=11, num_workers=0))
    parallel = list(make_dataloader(train, batch_size=4, shuffle=True, seed=11, num_workers=2))
    assert len(serial) == len(parallel) == math.ceil(len(train) / 4)
    for a, b in zip(serial, parallel):
        _assert_batches_equal(a, b)
    other_seed = [r for b in make_dataloader(train, batch_size=4, shuffle=True, seed=12) for r in b.run_ids]
    assert other_seed != [r for b in serial for r in b.run_ids] and sorted(other_seed) == train.run_ids


def test_spawn_workers_open_their_own_store(train):
    _ = train[0]  # the parent has an open store handle now; spawn must not try to pickle it
    serial = list(make_dataloader(train, batch_size=8, seed=1))
    spawned = list(make_dataloader(train, batch_size=8, seed=1, num_workers=1, multiprocessing_context="spawn"))
    for a, b in zip(serial, spawned, strict=True):
        _assert_batches_equal(a, b)


def test_bad_arguments(store, train, tmp_path):
    with pytest.raises(InputValidationError, match="split"):
        PlanetRunDataset(store, "holdout")
    with pytest.raises(InputValidationError, match="split_fractions"):
        PlanetRunDataset(store, "train", split_fractions=(0.5, 0.2, 0.2))
    with pytest.raises(InputValidationError, match="max_text_tokens"):
        PlanetRunDataset(store, "train", max_text_tokens=1)
    with pytest.raises(StorageError, match="no astrobio store"):
        PlanetRunDataset(tmp_path / "empty", "train")
    with pytest.raises(InputValidationError, match="batch_size"):
        make_dataloader(train, batch_size=0)
    with pytest.raises(StorageError, match="train split is empty"):
        PlanetRunDataset(store, "test", split_fractions=(0.0, 0.0, 1.0), seed=99)


def _same_items(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k, v in a.items():
        w = b[k]
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, w) or (v.isnan().any() and torch.equal(v.nan_to_num(7.0), w.nan_to_num(7.0))), k
        elif isinstance(v, Data):
            assert torch.equal(v.x, w.x) and torch.equal(v.edge_index, w.edge_index), k
        elif isinstance(v, dict):
            assert all(torch.equal(v[j], w[j]) for j in v), k
        else:
            assert v == w, k


def test_from_runs_serves_in_memory_exactly_what_a_store_would(store, train, tmp_path):
    runs = [_run(31, "Far-Away"), _run(30, "Far-Away"), _run(32, "Far-Away")]
    mem = PlanetRunDataset.from_runs(runs, like=train)
    assert mem.run_ids == ["syn-031", "syn-030", "syn-032"]  # the given order
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere
    other = RealDataStorage(tmp_path / "new")
    other.write_runs(runs)
    other.close()
    stored = PlanetRunDataset(tmp_path / "new", split_of("Far-Away"), like=train)
    assert not (tmp_path / "new" / STATS_FILE).exists()  # nothing computed on the new runs
    for rid in mem.run_ids:
        _same_items(mem[mem.run_ids.index(rid)], stored[stored.run_ids.index(rid)])
    np.testing.assert_array_equal(mem.stats.datacube_mean, train.stats.datacube_mean)
    raw = mem[0]["datacube"].numpy() * train.stats.datacube_std[:, None, None, None, None] \
        + train.stats.datacube_mean[:, None, None, None, None]
    np.testing.assert_allclose(raw, runs[0].datacube_prior, rtol=1e-5)
    batch = next(iter(make_dataloader(mem, batch_size=3)))
    assert batch.run_ids == mem.run_ids


def test_data_state_is_plain_data_and_round_trips_through_a_checkpoint(train, tmp_path):
    state = train.data_state()
    torch.save({"data_state": state}, tmp_path / "c.pt")
    loaded = torch.load(tmp_path / "c.pt", weights_only=True)["data_state"]  # no pickled objects in it
    assert loaded == state
    runs = [_run(40, "Far-Away")]
    _same_items(PlanetRunDataset.from_runs(runs, like=loaded)[0], PlanetRunDataset.from_runs(runs, like=train)[0])
    assert PlanetRunDataset.from_runs(runs, like=loaded).data_state() == state


def test_like_keeps_the_training_state_when_the_store_changes(tmp_path):
    path = tmp_path / "s"
    st = RealDataStorage(path)
    st.write_runs([_run(i, _systems()[i % N_SYSTEMS]) for i in range(24)])
    before = PlanetRunDataset(path, "train")
    state = before.data_state()
    val_items = [PlanetRunDataset(path, "val", like=state)[i] for i in range(2)]
    st.write_runs([_run(i, f"Late-{i}") for i in range(50, 58)])  # new runs: the train split changes
    st.quarantine(before.run_ids[0], ["test: flagged after training"])
    st.close()
    (path / TOKENIZER_FILE).unlink()  # even a retrained tokenizer must not matter
    now = PlanetRunDataset(path, "train")
    assert now.stats.fingerprint != before.stats.fingerprint  # stats.json was recomputed
    assert not np.array_equal(now.stats.datacube_mean, before.stats.datacube_mean)
    val = PlanetRunDataset(path, "val", like=state)
    np.testing.assert_array_equal(val.stats.datacube_mean, before.stats.datacube_mean)
    for i in range(2):
        j = val.run_ids.index(val_items[i]["run_id"])
        _same_items(val[j], val_items[i])


def test_from_runs_refuses_bad_input(train):
    with pytest.raises(InputValidationError, match="unique run ids"):
        PlanetRunDataset.from_runs([_run(30, "A"), _run(30, "A")], like=train)
    with pytest.raises(InputValidationError, match="PlanetRun"):
        PlanetRunDataset.from_runs([{"run_id": "x"}], like=train)
    with pytest.raises(InputValidationError, match="like"):
        PlanetRunDataset.from_runs([_run(30, "A")], like="stats.json")
    with pytest.raises(StorageError, match="version"):
        PlanetRunDataset.from_runs([_run(30, "A")], like={**train.data_state(), "version": 99})
    off_grid = _run(30, "A")
    off_grid.datacube_prior = off_grid.datacube_prior[:, :, :1]
    with pytest.raises(CorruptRunError, match="datacube_prior.*grid"):
        PlanetRunDataset.from_runs([off_grid], like=train)[0]


def _corrupt(what: str) -> PlanetRun:
    run = _run(33, "Broken")
    if what == "graph_x":
        run.graph.x[1, 5] = float("nan")
    elif what == "graph_edge_index":
        run.graph.edge_index[0, 0] = 99
    elif what == "datacube_true":
        run.datacube_true[0, 3, 0, 0, 0] = np.inf
    elif what == "spectrum":
        run.spectrum[10, 1] = np.nan
    elif what == "observed.planet_radius_earth":
        run.observed.planet_radius_earth = -1.0
    elif what == "observed.star_age_gyr":
        run.observed.star_age_gyr = np.inf
    elif what == "labels.habitability_class":
        run.labels["habitability_class"] = 7
    elif what == "labels":
        run.labels["log10_co2"] = np.nan
    elif what == "physics_features":
        run.physics_features[1] = np.nan
    return run


@pytest.mark.parametrize("field", ["graph_x", "graph_edge_index", "datacube_true", "spectrum",
                                   "observed.planet_radius_earth", "observed.star_age_gyr",
                                   "labels.habitability_class", "labels", "physics_features"])
def test_every_served_array_is_checked_and_names_run_and_field(train, field):
    ds = PlanetRunDataset.from_runs([_run(34, "Fine"), _corrupt(field)], like=train)
    ds[0]  # the good run is served
    with pytest.raises(CorruptRunError, match=f"syn-033.*{field}") as err:
        ds[1]
    assert err.value.run_id == "syn-033" and err.value.field.startswith(field)


def test_nan_graph_features_in_a_store_stop_the_dataset_and_the_statistics(tmp_path):
    good = [_run(i, _systems()[i % N_SYSTEMS]) for i in range(24)]
    in_val = _corrupt("graph_x")
    in_val.system = _systems()[0]  # a val system (split by system hash)
    path = tmp_path / "val-broken"
    st = RealDataStorage(path)  # the store keeps NaN as is: the quality manager and the dataset must find it
    st.write_runs(good + [in_val])
    st.close()
    ds = PlanetRunDataset(path, "val")
    with pytest.raises(CorruptRunError, match="syn-033.*graph_x"):
        ds[ds.run_ids.index("syn-033")]
    assert split_of("Broken") == "train"
    path = tmp_path / "train-broken"
    st = RealDataStorage(path)
    st.write_runs(good + [_corrupt("graph_x")])
    with pytest.raises(CorruptRunError, match="syn-033.*graph_x"):  # never averaged into the statistics
        PlanetRunDataset(path, "train")
    st.quarantine("syn-033", ["test: NaN graph features"])
    st.close()
    assert len(PlanetRunDataset(path, "train")) == len(PlanetRunDataset(tmp_path / "val-broken", "train"))


def test_a_store_without_stored_physics_features_is_refused_naming_simulate(tmp_path):
    path = tmp_path / "older"
    st = RealDataStorage(path)
    st.write_runs([_run(i, _systems()[i % N_SYSTEMS]) for i in range(24)])
    st.close()
    for shard in path.glob("shard-*.h5"):  # what a store written before the features were stored holds
        with h5py.File(shard, "r+") as f:
            for g in f["runs"].values():
                del g["physics_features"]
    for split in ("train", "test"):
        with pytest.raises(StorageError, match="no stored physics features.*astrobio simulate"):
            PlanetRunDataset(path, split)
    with pytest.raises(StorageError, match="astrobio simulate"):
        RealDataStorage(path).load_run("syn-000")


def test_the_item_serves_the_stored_features_not_a_recomputation(tmp_path):
    run = _run(0, _systems()[2])
    run.physics_features = np.array([0.25, 0.5, 0.75, 0.0])  # not what the observed values give
    path = tmp_path / "stored"
    with RealDataStorage(path) as st:
        st.write_runs([run])
    item = PlanetRunDataset(path, "train")[0]
    assert item["physics_features"].tolist() == [0.25, 0.5, 0.75, 0.0]
    assert item["instellation_wm2"] == pytest.approx(10**0.25 * S_EARTH, rel=1e-12)


def test_item_cache_is_bounded_and_returns_equal_items(store):
    cached = PlanetRunDataset(store, "train")
    uncached = PlanetRunDataset(store, "train", cache_mb=0)
    first = cached[2]
    first["label"] = -1  # editing a returned item must not reach the cache
    again = cached[2]
    fresh = uncached[2]
    assert again["label"] == fresh["label"] != -1
    for k in ("datacube", "datacube_target", "numerical_data", "input_ids", "regression_targets"):
        assert torch.equal(again[k], fresh[k]) or (again[k] is None and fresh[k] is None), k
    assert len(uncached._cache) == 0 and len(cached._cache) == 1
    item_bytes = cached._cached_bytes
    small = PlanetRunDataset(store, "train", cache_mb=2.5 * item_bytes / 2**20)
    for i in range(len(small)):
        small[i]
    n = len(small._cache)
    assert 2 <= n < len(small) and small._cached_bytes <= small.cache_bytes
    assert list(small._cache) == small.run_ids[-n:]  # least recently used evicted first
    sizes = [size for _, size in small._cache.values()]
    assert sum(sizes) == small._cached_bytes
    with pytest.raises(InputValidationError, match="cache_mb"):
        PlanetRunDataset(store, "train", cache_mb=-1)


def test_the_spectrum_reading_reaches_the_batch_from_a_store_and_from_memory(tmp_path):
    runs = simulate_runs(survey.sample_abiotic_population(12, seed=2), seed=2)
    with RealDataStorage(tmp_path / "s") as st:
        st.write_runs(runs)
    stored = PlanetRunDataset(tmp_path / "s", "train", split_fractions=(1.0, 0.0, 0.0))
    mem = PlanetRunDataset.from_runs(runs, like=stored)
    for ds in (stored, mem):
        batch = collate_multimodal_batch([ds[i] for i in range(len(ds))])
        by_id = {r.run_id: r for r in runs}
        for i, rid in enumerate(batch.run_ids):
            r = by_id[rid]
            assert bool(batch.spectrum_reading_mask[i].all()) == (r.spectrum is not None)
            expected = np.nan_to_num(spectrum_reading(r.extras)).astype(np.float32)
            np.testing.assert_array_equal(batch.spectrum_reading[i].numpy(), expected)
