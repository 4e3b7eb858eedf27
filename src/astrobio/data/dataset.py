"""`PlanetRunDataset` (store or in-memory runs → item dicts), `collate_multimodal_batch` (items →
`MultiModalBatch`), train-split normalisation statistics and `make_dataloader`.

Splits are by planetary system: a hash of (seed, system name) picks train/val/test, so planets of one
star never straddle two splits (no leakage through the shared star). Normalisation statistics and the
tokenizer come from the train split only and live beside the data (`stats.json`, `tokenizer.json`,
atomic writes); val/test read them. stats.json records a fingerprint of the train runs and split
settings and is recomputed when they change (another split seed, runs added or quarantined). A trained
model keeps its own copy: `data_state()` (statistics, tokenizer, grid) goes into every checkpoint, and
`like=` / `from_runs(runs, like=...)` serve data with exactly that state, whatever stats.json says now.

Every array served is checked (finite, shaped as the grid, graph edges inside the graph), and a bad
one is a `CorruptRunError` naming the run and the field: a NaN is never fed to a model silently.

Normalisation:
- datacube: per variable (air temperature, specific humidity) mean/std over the prior and true cubes
  of the train runs, *linear* for both. Humidity is skewed, but a linear map keeps the contract's
  `raw = x * std + mean` exact, which the physics loss needs for q >= 0 and q <= q_sat(T, p); and the
  humidity of these runs follows from T by Clausius-Clapeyron, so the temperature channel carries
  what a log scale would add.
- observed numbers: mean/std over present values, of log10 for the scale-like fields (LOG10_NUMERIC_FIELDS).
- regression targets: mean/std per key (the gases are already log10 mixing ratios).
A channel with zero spread (or never present) gets std 1, so standardised values stay finite.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from astrobio.data import annotation
from astrobio.data.batch import GRAPH_NODE_FEATURES, MODALITIES, MultiModalBatch, missing_graph
from astrobio.data.storage import STATS_FILE, RealDataStorage, older_format_message, run_arrays
from astrobio.data.tokenizer import BOS_ID, PAD_ID, TOKENIZER_FILE, ensure_tokenizer, tokenizer_from_json, truncate_ids
from astrobio.errors import CorruptRunError, InputValidationError, StorageError
from astrobio.io import write_json
from astrobio.world.atmosphere import PRIOR_SURFACE_PRESSURE_BAR
from astrobio.world.features import instellation_wm2, spectrum_reading
from astrobio.world.labels import privileged_targets
from astrobio.world.types import (CLASS_NAMES, OBSERVED_NUMERIC_FIELDS, PHYSICS_FEATURES, PRIVILEGED_KEYS,
                                  REGRESSION_KEYS, SPECTRUM_READING_FIELDS, PlanetRun)

SPLITS = ("train", "val", "test")
STATS_VERSION = 2  # 2 adds the privileged targets' moments; a version-1 file (a checkpoint's) still loads
DATA_STATE_VERSION = 1  # layout of `PlanetRunDataset.data_state()` (saved in checkpoints)
DATACUBE_VARIABLES = tuple(v["name"] for v in annotation.DATACUBE_VARIABLES)  # storage order
SPECTRUM_BINS = 1000  # SpectrumConfig.n_bins default: the width of an all-missing spectrum batch
# Observed fields spanning orders of magnitude: standardised in log10 so one hot Jupiter host or
# a 1000-day period does not squash every other planet into a sliver around the mean.
LOG10_NUMERIC_FIELDS = frozenset({
    "star_radius_rsun", "star_mass_msun", "star_luminosity_lsun", "distance_pc", "planet_radius_earth",
    "planet_mass_earth", "semimajor_axis_au", "period_days", "instellation_searth",
})


# ----------------------------------------------------------------------------------------------
# splits


def split_of(system: str, seed: int = 0, fractions: Sequence[float] = (0.8, 0.1, 0.1)) -> str:
    """The split of a planetary system: a SHA-256 of (seed, system) mapped to [0, 1) and cut by fractions."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{system}".encode()).digest()[:8], "big") / 2.0**64
    edges = np.cumsum(fractions)
    return SPLITS[min(int(np.searchsorted(edges, u, side="right")), len(SPLITS) - 1)]


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3 or any(not (0.0 <= f <= 1.0) for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise InputValidationError("split_fractions", tuple(fractions), "three fractions in [0, 1] summing to 1")
    return tuple(float(f) for f in fractions)


# ----------------------------------------------------------------------------------------------
# normalisation statistics


@dataclass
class NormStats:
    """Train-split statistics; every model input and target is standardised with them."""

    fingerprint: str  # hash of the train run ids and split settings the stats were computed on
    n_train_runs: int
    datacube_mean: np.ndarray  # (2,) per variable over prior and true cubes; raw = x * std + mean
    datacube_std: np.ndarray  # (2,)
    numerical_mean: np.ndarray  # (F,) over present values, log10 for LOG10_NUMERIC_FIELDS
    numerical_std: np.ndarray  # (F,)
    regression_mean: np.ndarray  # (7,) REGRESSION_KEYS
    regression_std: np.ndarray  # (7,)
    privileged_mean: np.ndarray | None = None  # (4,) PRIVILEGED_KEYS; None in version-1 statistics
    privileged_std: np.ndarray | None = None  # (4,)

    def to_json(self) -> dict[str, Any]:
        return {
            # statistics adopted from a version-1 checkpoint stay version 1, so they load again
            "version": STATS_VERSION if self.privileged_mean is not None else 1,
            "fingerprint": self.fingerprint, "n_train_runs": self.n_train_runs,
            "datacube": {"variables": list(DATACUBE_VARIABLES), "mean": self.datacube_mean.tolist(),
                         "std": self.datacube_std.tolist()},
            "numerical": {"fields": list(OBSERVED_NUMERIC_FIELDS),
                          "log10": [f in LOG10_NUMERIC_FIELDS for f in OBSERVED_NUMERIC_FIELDS],
                          "mean": self.numerical_mean.tolist(), "std": self.numerical_std.tolist()},
            "regression": {"keys": list(REGRESSION_KEYS), "mean": self.regression_mean.tolist(),
                           "std": self.regression_std.tolist()},
            **({"privileged": {"keys": list(PRIVILEGED_KEYS), "mean": self.privileged_mean.tolist(),
                               "std": self.privileged_std.tolist()}} if self.privileged_mean is not None else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "NormStats":
        priv = d.get("privileged")
        if d.get("version") not in (1, STATS_VERSION) or d["numerical"]["fields"] != list(OBSERVED_NUMERIC_FIELDS) \
                or d["regression"]["keys"] != list(REGRESSION_KEYS) \
                or (d["version"] == STATS_VERSION and (priv is None or priv["keys"] != list(PRIVILEGED_KEYS))):
            raise StorageError(f"{STATS_FILE} has another layout (version {d.get('version')}); delete it to recompute")
        f32 = partial(np.asarray, dtype=np.float64)
        return cls(d["fingerprint"], int(d["n_train_runs"]), f32(d["datacube"]["mean"]), f32(d["datacube"]["std"]),
                   f32(d["numerical"]["mean"]), f32(d["numerical"]["std"]),
                   f32(d["regression"]["mean"]), f32(d["regression"]["std"]),
                   *((f32(priv["mean"]), f32(priv["std"])) if priv is not None else ()))


class _Moments:
    """Streaming per-channel mean/variance (Chan et al. 1979 pairwise merge), float64."""

    def __init__(self, n_channels: int):
        self.n = np.zeros(n_channels)
        self.mean = np.zeros(n_channels)
        self.m2 = np.zeros(n_channels)

    def add(self, x: np.ndarray, axis_channels: int = 0) -> None:
        """Add samples; x has channels on `axis_channels`, NaNs are skipped."""
        x = np.moveaxis(np.asarray(x, dtype=np.float64), axis_channels, 0).reshape(len(self.n), -1)
        n_b = np.isfinite(x).sum(axis=1).astype(np.float64)
        ok = n_b > 0
        if not ok.any():
            return
        mean_b = np.where(ok, np.nansum(x, axis=1) / np.maximum(n_b, 1), 0.0)
        m2_b = np.nansum((x - mean_b[:, None]) ** 2, axis=1)
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = np.where(ok, self.mean + delta * n_b / np.maximum(n, 1), self.mean)
        self.m2 = np.where(ok, self.m2 + m2_b + delta**2 * self.n * n_b / np.maximum(n, 1), self.m2)
        self.n = n

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std); a channel never seen gets (0, 1) and a constant one std 1, so x - mean stays finite."""
        std = np.sqrt(self.m2 / np.maximum(self.n, 1))
        std = np.where(std > 1e-12 * (1.0 + np.abs(self.mean)), std, 1.0)
        return np.where(self.n > 0, self.mean, 0.0), std


def numeric_features(observed: dict[str, Any]) -> np.ndarray:
    """OBSERVED_NUMERIC_FIELDS as float64 (F,), log10 where LOG10_NUMERIC_FIELDS, NaN where unknown."""
    x = np.array([_as_float(observed.get(k)) for k in OBSERVED_NUMERIC_FIELDS], dtype=np.float64)
    for i, k in enumerate(OBSERVED_NUMERIC_FIELDS):
        if k in LOG10_NUMERIC_FIELDS:
            x[i] = math.log10(x[i]) if x[i] > 0 else math.nan
    return x


def checked_numeric_features(observed: dict[str, Any], run_id: str) -> np.ndarray:
    """`numeric_features`, refusing what cannot be an observation: ±inf, or a scale-like field <= 0
    (NaN stays: it means unknown)."""
    raw = np.array([_as_float(observed.get(k)) for k in OBSERVED_NUMERIC_FIELDS], dtype=np.float64)
    for k, v in zip(OBSERVED_NUMERIC_FIELDS, raw):
        if np.isinf(v) or (k in LOG10_NUMERIC_FIELDS and v <= 0):
            raise CorruptRunError(run_id, f"observed.{k}", f"is {v} (expected a finite value"
                                  f"{' > 0' if k in LOG10_NUMERIC_FIELDS else ''} or unknown)")
    return numeric_features(observed)


def check_run_arrays(a: dict[str, Any], grid_shape: Sequence[int] | None = None) -> None:
    """Refuse a run (a `load_arrays` dict) whose arrays a model must not see: non-finite datacubes,
    spectra or graph features, a cube off the store's grid, graph edges pointing outside the graph."""
    run_id = a["run_id"]
    for key in ("datacube_prior", "datacube_true"):
        cube = a.get(key)
        if cube is None:
            continue
        if grid_shape is not None and tuple(np.shape(cube)) != tuple(grid_shape):
            raise CorruptRunError(run_id, key, f"has shape {np.shape(cube)}, expected the grid {tuple(grid_shape)}")
        _check_finite(run_id, key, cube)
    spec = a.get("spectrum")
    if spec is not None:
        if np.ndim(spec) != 2 or np.shape(spec)[1] != 3:
            raise CorruptRunError(run_id, "spectrum", f"has shape {np.shape(spec)}, expected [n_bins, 3]")
        _check_finite(run_id, "spectrum", spec)
    x, ei = a.get("graph_x"), a.get("graph_edge_index")
    if x is not None and len(x):
        x, ei = np.asarray(x), np.asarray(ei)
        if x.ndim != 2 or ei.ndim != 2 or ei.shape[0] != 2:
            raise CorruptRunError(run_id, "graph", f"has x {x.shape} and edge_index {ei.shape}, "
                                  "expected [N, F] and [2, E]")
        _check_finite(run_id, "graph_x", x)
        if ei.size and (ei.min() < 0 or ei.max() >= len(x)):
            raise CorruptRunError(run_id, "graph_edge_index", f"has node ids in [{ei.min()}, {ei.max()}], "
                                  f"expected [0, {len(x) - 1}]")


def stored_physics_features(a: dict[str, Any], store: Path | None = None) -> np.ndarray:
    """The physics features stored with a run (a `load_arrays` dict), float64 (4,). They are computed once at
    simulation time; a run without them comes from an older store, which is refused (never recomputed here)."""
    phys = a.get("physics_features")
    if phys is None:
        raise StorageError(older_format_message(store, a["run_id"]))
    phys = np.asarray(phys, dtype=np.float64)
    if phys.shape != (len(PHYSICS_FEATURES),):
        raise CorruptRunError(a["run_id"], "physics_features", f"has shape {phys.shape}, expected "
                              f"({len(PHYSICS_FEATURES)},) {PHYSICS_FEATURES}")
    _check_finite(a["run_id"], "physics_features", phys)
    return phys


def _checked_reading(a: dict[str, Any], run_id: str) -> torch.Tensor | None:
    """The run's spectrum reading as float32 [R]; None without a spectrum or without a retrieval of it (a run not
    simulated by the world, e.g. a test's), which collate marks unknown."""
    if a.get("spectrum") is None or a.get("spectrum_reading") is None:
        return None
    reading = np.asarray(a["spectrum_reading"], np.float64)
    if reading.shape != (len(SPECTRUM_READING_FIELDS),):
        raise CorruptRunError(run_id, "spectrum_reading", f"has shape {reading.shape}, expected "
                              f"({len(SPECTRUM_READING_FIELDS)},)")
    if np.isnan(reading).all():
        return None
    _check_finite(run_id, "spectrum_reading", reading)
    return torch.from_numpy(reading.astype(np.float32))


def _check_finite(run_id: str, field: str, x: np.ndarray) -> None:
    bad = ~np.isfinite(np.asarray(x))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise CorruptRunError(run_id, field, f"has {int(bad.sum())} non-finite value(s) (first at index {first})")


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def regression_vector(labels: dict[str, Any], run_id: str) -> np.ndarray:
    """REGRESSION_KEYS as float64 (7,); a missing or non-finite target is a store defect."""
    y = np.array([_as_float(labels.get(k)) for k in REGRESSION_KEYS], dtype=np.float64)
    if not np.isfinite(y).all():
        bad = [k for k, v in zip(REGRESSION_KEYS, y) if not np.isfinite(v)]
        raise CorruptRunError(run_id, f"labels {bad}", "are non-finite or missing")
    return y


def privileged_vector(a: dict[str, Any]) -> np.ndarray:
    """PRIVILEGED_KEYS of a run (a `load_arrays` dict) as float64 (4,); a non-finite value is a store defect."""
    y = np.asarray(a["privileged"], dtype=np.float64)
    if y.shape != (len(PRIVILEGED_KEYS),) or not np.isfinite(y).all():
        raise CorruptRunError(a["run_id"], "truth (privileged targets)", f"gives {y.tolist()}, expected "
                              f"{len(PRIVILEGED_KEYS)} finite values {PRIVILEGED_KEYS}")
    return y


def class_label(labels: dict[str, Any], run_id: str) -> int:
    """The habitability class, an index into CLASS_NAMES; anything else is a store defect."""
    c = labels.get("habitability_class")
    ok = not isinstance(c, bool) and isinstance(c, (int, float, np.number)) and float(c).is_integer()
    if not (ok and 0 <= c < len(CLASS_NAMES)):
        raise CorruptRunError(run_id, "labels.habitability_class", f"is {c!r}, expected an integer in "
                              f"[0, {len(CLASS_NAMES) - 1}] ({', '.join(CLASS_NAMES)})")
    return int(c)


def compute_norm_stats(train_arrays: Iterable[dict[str, Any]], fingerprint: str) -> NormStats:
    """Statistics over train runs (`load_arrays` dicts): datacube (prior and true) per variable,
    observed numbers over present values, regression and privileged targets."""
    cube, num, reg = _Moments(2), _Moments(len(OBSERVED_NUMERIC_FIELDS)), _Moments(len(REGRESSION_KEYS))
    priv = _Moments(len(PRIVILEGED_KEYS))
    n = 0
    for a in train_arrays:
        check_run_arrays(a)  # a NaN would be skipped by the moments, an inf would poison them
        for key in ("datacube_prior", "datacube_true"):
            if a.get(key) is not None:
                cube.add(a[key], axis_channels=0)  # (2, 12, lat, lon, lev)
        num.add(checked_numeric_features(a["observed"], a["run_id"])[:, None])
        reg.add(regression_vector(a["labels"], a["run_id"])[:, None])
        priv.add(privileged_vector(a)[:, None])
        n += 1
    if n == 0:
        raise StorageError("the train split is empty: normalisation statistics need at least one train run")
    (cm, cs), (nm, ns), (rm, rs), (pm, ps) = cube.result(), num.result(), reg.result(), priv.result()
    return NormStats(fingerprint, n, cm, cs, nm, ns, rm, rs, pm, ps)


# ----------------------------------------------------------------------------------------------
# dataset


class PlanetRunDataset(torch.utils.data.Dataset):
    """Map-style dataset over one split of a `RealDataStorage` directory, or over runs in memory
    (`from_runs`).

    Each worker process opens the store itself on first access (h5py handles never cross a fork or a
    pickle). Items are dicts of tensors; a missing modality is None (collate fills it).

    like: another dataset or a checkpoint's `data_state`: normalise and tokenise with that state
    (the one a model was trained with) instead of the store's current train-split statistics.
    """

    def __init__(self, path: str | os.PathLike, split: str = "train", *, max_text_tokens: int = 128,
                 include_quarantined: bool = False, seed: int = 0,
                 split_fractions: Sequence[float] = (0.8, 0.1, 0.1), cache_mb: float = 512.0,
                 like: "PlanetRunDataset | dict[str, Any] | None" = None):
        if split not in SPLITS:
            raise InputValidationError("split", split, f"one of {SPLITS}")
        if max_text_tokens < 2:
            raise InputValidationError("max_text_tokens", max_text_tokens, ">= 2")
        if not cache_mb >= 0:
            raise InputValidationError("cache_mb", cache_mb, ">= 0 (0 disables the item cache)")
        self._init_common(Path(path), split, max_text_tokens, cache_mb)
        self.seed, self.include_quarantined = int(seed), include_quarantined
        self.split_fractions = _check_fractions(split_fractions)
        store = self._storage()
        by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
        self.systems: dict[str, str] = {}  # run_id -> system, every split
        for row in store.list_stored_runs(include_quarantined=include_quarantined):
            by_split[split_of(row["system"], self.seed, self.split_fractions)].append(row["run_id"])
            self.systems[row["run_id"]] = row["system"]
        self.run_ids = sorted(by_split[split])
        self._require_current_format(store, by_split)
        meta = store.read_meta()
        if like is None:
            self.stats, self._tokenizer = self._train_artifacts(sorted(by_split["train"]))
            self.grid, self.resolution = meta["grid"], meta.get("resolution", "demo")
        else:
            self._adopt(_data_state_of(like))
            if list(meta["grid"]["shape"]) != list(self.grid["shape"]):
                raise InputValidationError("datacube grid", tuple(meta["grid"]["shape"]),
                                           f"{tuple(self.grid['shape'])} like the data the model was trained on")
        self._finish_init()
        self._close_store()  # the parent must not hold an open HDF5 handle when workers fork

    @classmethod
    def from_runs(cls, runs: Iterable[Any], like: "PlanetRunDataset | dict[str, Any]") -> "PlanetRunDataset":
        """A dataset over `PlanetRun`s held in memory (no store is written or read), in the given order,
        normalised and tokenised exactly like `like`: a training dataset, or a checkpoint's `data_state`."""
        self = cls.__new__(cls)
        state = _data_state_of(like)
        self._init_common(None, "runs", int(state["max_text_tokens"]), 0.0)  # items live in memory already
        self.seed, self.include_quarantined = int(state["split"]["seed"]), False
        self.split_fractions = tuple(state["split"]["fractions"])
        self._adopt(state)
        self._finish_init()
        self._memory = {}
        self.systems = {}
        for run in runs:
            if not isinstance(run, PlanetRun):
                raise InputValidationError("runs", type(run).__name__, "PlanetRun records")
            if run.run_id in self._memory:
                raise InputValidationError("run_id", run.run_id, "unique run ids (two runs would share a prediction)")
            if run.resolution != self.resolution:
                raise InputValidationError(f"{run.run_id}.resolution", run.resolution,
                                           f"{self.resolution!r} like the data the model was trained on")
            self._memory[run.run_id] = _arrays_of(run)
            self.systems[run.run_id] = run.system
        self.run_ids = list(self._memory)
        return self

    def data_state(self) -> dict[str, Any]:
        """Everything needed to serve new runs exactly as this dataset does, as plain data (a checkpoint
        entry): normalisation statistics, tokenizer JSON, text length, grid, resolution, split settings."""
        return {"version": DATA_STATE_VERSION, "stats": self.stats.to_json(), "tokenizer": self._tokenizer.to_str(),
                "max_text_tokens": self.max_text_tokens, "grid": self.grid, "resolution": self.resolution,
                "split": {"seed": self.seed, "fractions": list(self.split_fractions)}}

    def __len__(self) -> int:
        return len(self.run_ids)

    def __getitem__(self, index: int) -> dict[str, Any]:
        run_id = self.run_ids[index]
        hit = self._cache.get(run_id)
        if hit is not None:
            self._cache.move_to_end(run_id)
            return dict(hit[0])  # a fresh dict: a caller editing its item cannot corrupt the cache
        item = self._load_item(run_id)
        self._remember(run_id, item)
        return dict(item)

    def _load_item(self, run_id: str) -> dict[str, Any]:
        a = self._memory[run_id] if self._memory is not None else self._storage().load_arrays(run_id)
        check_run_arrays(a, self.grid_shape)
        st = self.stats
        obs = a["observed"]

        num = (checked_numeric_features(obs, run_id) - st.numerical_mean) / st.numerical_std  # (F,), NaN = missing
        reg = (regression_vector(a["labels"], run_id) - st.regression_mean) / st.regression_std  # (7,)
        phys = stored_physics_features(a, self.path)
        text = a.get("text") or ""
        item = {
            "run_id": run_id,
            "datacube": self._normalise_cube(a.get("datacube_prior")),
            "datacube_target": self._normalise_cube(a.get("datacube_true")),
            "graph": self._graph(a),
            "spectrum": None if a.get("spectrum") is None else torch.from_numpy(np.asarray(a["spectrum"], np.float32)),
            "input_ids": (torch.tensor(truncate_ids(self._tokenizer.encode(text).ids, self.max_text_tokens))
                          if text.strip() else None),
            "numerical_data": torch.from_numpy(num.astype(np.float32)),
            "physics_features": torch.from_numpy(phys.astype(np.float32)),
            "spectrum_reading": _checked_reading(a, run_id),
            "instellation_wm2": instellation_wm2(phys),
            "surface_pressure_bar": self.prior_surface_pressure_bar,
            "label": class_label(a["labels"], run_id),
            "regression_targets": torch.from_numpy(reg.astype(np.float32)),
            # hidden truth as a training target only (no input above reads it); None with version-1 statistics
            "privileged_targets": None if st.privileged_mean is None else torch.from_numpy(
                ((privileged_vector(a) - st.privileged_mean) / st.privileged_std).astype(np.float32)),  # (4,)
        }
        item.update(self._shared)
        return item

    def collate_fn(self):
        """The collate function for this dataset's DataLoader (picklable for spawn workers)."""
        return partial(collate_multimodal_batch, max_text_tokens=self.max_text_tokens)

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _require_current_format(store: RealDataStorage, by_split: dict[str, list[str]]) -> None:
        """Refuse a store written before runs carried their physics features, at once rather than at the
        first item: one run is enough to tell (a store is written by one astrobio version)."""
        first = next((ids[0] for ids in by_split.values() if ids), None)
        if first is not None and not store.has_physics_features(first):
            raise StorageError(older_format_message(store.path, first))

    def _init_common(self, path: Path | None, split: str, max_text_tokens: int, cache_mb: float) -> None:
        self.path = path  # the store (None for in-memory runs); its train split defines stats.json
        self.split, self.max_text_tokens = split, int(max_text_tokens)
        self._store = None  # RealDataStorage, opened lazily per process (it reopens its files after a fork)
        self._memory: dict[str, dict[str, Any]] | None = None  # run_id -> arrays, for `from_runs`
        # Per-process LRU cache of finished items: HDF5 reads dominate the per-item time, and training
        # revisits the same runs every epoch (persistent workers keep their caches across epochs).
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: OrderedDict[str, tuple[dict[str, Any], int]] = OrderedDict()
        self._cached_bytes = 0
        self.prior_surface_pressure_bar = float(PRIOR_SURFACE_PRESSURE_BAR)  # the prior climate run's p_s

    def _adopt(self, state: dict[str, Any]) -> None:
        """Serve with a saved data state: its statistics, tokenizer, text length, grid and resolution."""
        self.stats = NormStats.from_json(state["stats"])
        self._tokenizer = tokenizer_from_json(state["tokenizer"], "the checkpoint's tokenizer")
        self.max_text_tokens = int(state["max_text_tokens"])
        self.grid, self.resolution = state["grid"], state["resolution"]

    def _finish_init(self) -> None:
        self.grid_shape = tuple(self.grid["shape"])  # (2, 12, lat, lon, lev)
        self._shared = self._shared_tensors(self.grid)

    def _remember(self, run_id: str, item: dict[str, Any]) -> None:
        size = sum(v.nbytes for v in item.values() if isinstance(v, torch.Tensor))
        if item["graph"] is not None:
            size += item["graph"].x.nbytes + item["graph"].edge_index.nbytes
        if size > self.cache_bytes:
            return
        self._cache[run_id] = (item, size)
        self._cached_bytes += size
        while self._cached_bytes > self.cache_bytes:
            self._cached_bytes -= self._cache.popitem(last=False)[1][1]

    def _storage(self):
        if self._store is None:
            self._store = RealDataStorage(self.path)
        return self._store

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
        self._store = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_store=None, _cache=OrderedDict(), _cached_bytes=0)  # spawn workers open and fill their own
        return state

    def _fingerprint(self, train_ids: Sequence[str]) -> str:
        h = hashlib.sha256(json.dumps([self.seed, self.split_fractions, list(train_ids)]).encode())
        return h.hexdigest()

    def _train_artifacts(self, train_ids: Sequence[str]):
        """(NormStats, tokenizer) of the train split: read from beside the data, or computed in one pass
        over the train runs and saved there. Stats made for other train runs are recomputed."""
        path = self.path / STATS_FILE
        fingerprint = self._fingerprint(train_ids)
        stats = NormStats.from_json(json.loads(path.read_text())) if path.is_file() else None
        if stats is not None and (stats.fingerprint != fingerprint or stats.privileged_mean is None):
            stats = None  # made for other train runs, or by a version without the privileged targets
        texts: list[str] = []
        if stats is None:
            def arrays():
                for r in train_ids:
                    a = self._storage().load_arrays(r)
                    texts.append(a["text"])
                    yield a

            stats = compute_norm_stats(arrays(), fingerprint)
            write_json(path, stats.to_json(), indent=1)
        elif not (self.path / TOKENIZER_FILE).is_file():
            texts = [self._storage().load_arrays(r)["text"] for r in train_ids]
        return stats, ensure_tokenizer(self.path, texts)

    def _shared_tensors(self, grid: dict[str, Any]) -> dict[str, Any]:
        """Per-dataset constants every item carries (collate takes them from the first item)."""
        st = self.stats
        f32 = partial(torch.tensor, dtype=torch.float32)
        return {
            "datacube_stats": {"mean": f32(st.datacube_mean), "std": f32(st.datacube_std)},
            "regression_stats": {"mean": f32(st.regression_mean), "std": f32(st.regression_std)},
            "sigma_levels": f32(grid["sigma"]),
            "lat_deg": f32(grid["lat_deg"]),
        }

    def _normalise_cube(self, cube: np.ndarray | None) -> torch.Tensor | None:
        """raw → (raw - mean) / std per variable; `check_run_arrays` has checked the raw cube is finite."""
        if cube is None:
            return None
        st = self.stats
        shape = (-1,) + (1,) * (cube.ndim - 1)
        x = (np.asarray(cube, np.float32) - st.datacube_mean.astype(np.float32).reshape(shape)) \
            / st.datacube_std.astype(np.float32).reshape(shape)  # (2, 12, lat, lon, lev)
        return torch.from_numpy(x)

    @staticmethod
    def _graph(a: dict[str, Any]):
        from torch_geometric.data import Data

        x = a.get("graph_x")
        if x is None or len(x) == 0:
            return None
        return Data(x=torch.as_tensor(np.asarray(x, np.float32)),
                    edge_index=torch.as_tensor(np.asarray(a["graph_edge_index"], np.int64)))


def _data_state_of(like: Any) -> dict[str, Any]:
    """A data state from `like=`: a dataset's `data_state()`, or a saved one (checked)."""
    if isinstance(like, PlanetRunDataset):
        return like.data_state()
    if not isinstance(like, dict):
        raise InputValidationError("like", type(like).__name__, "a PlanetRunDataset or a checkpoint's data_state")
    if like.get("version") != DATA_STATE_VERSION:
        raise StorageError(f"data state version {like.get('version')!r}, expected {DATA_STATE_VERSION}: "
                           "the checkpoint was written by another astrobio version")
    missing = [k for k in ("stats", "tokenizer", "max_text_tokens", "grid", "resolution", "split") if k not in like]
    if missing:
        raise StorageError(f"data state lacks {missing}")
    return like


def _arrays_of(run: Any) -> dict[str, Any]:
    """A `PlanetRun` as the dict `RealDataStorage.load_arrays` returns for it once stored (same dtypes)."""
    arrays = run_arrays(run)
    return {"run_id": run.run_id, "system": run.system, "resolution": run.resolution, "seed": int(run.seed),
            "datacube_prior": arrays["datacube_prior"], "datacube_true": arrays["datacube_true"],
            "spectrum": arrays["spectrum"], "graph_x": arrays["graph/x"], "graph_edge_index": arrays["graph/edge_index"],
            "physics_features": arrays["physics_features"], "spectrum_reading": spectrum_reading(run.extras),
            "coords": dict(run.coords), "text": run.text, "labels": dict(run.labels),
            "observed": run.observed.to_dict(), "privileged": privileged_targets(run.truth.to_dict())}


# ----------------------------------------------------------------------------------------------
# collate


def _stack_or_fill(values: list[torch.Tensor | None], field: str, fill_shape: tuple[int, ...] | None = None):
    """Stack per-item tensors; a None becomes zeros shaped like the present ones (or `fill_shape`)."""
    ref = next((v for v in values if v is not None), None)
    if ref is None:
        if fill_shape is None:
            raise InputValidationError(field, "all None", "at least one item in the batch with this field")
        ref = torch.zeros(fill_shape, dtype=torch.float32)
    return torch.stack([torch.as_tensor(v) if v is not None else torch.zeros_like(ref) for v in values])


def _pad_text(ids: list[torch.Tensor | None], max_text_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) (B, T), T = longest row capped at max_text_tokens; missing = `<bos>`."""
    rows = [truncate_ids(r.tolist(), max_text_tokens) if r is not None and len(r) > 0 else [BOS_ID] for r in ids]
    t = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), t), PAD_ID, dtype=torch.int64)
    attention = torch.zeros((len(rows), t), dtype=torch.int64)
    for i, r in enumerate(rows):
        input_ids[i, : len(r)] = torch.tensor(r, dtype=torch.int64)
        attention[i, : len(r)] = 1
    return input_ids, attention


def collate_multimodal_batch(items: Sequence[dict[str, Any]], max_text_tokens: int = 128) -> MultiModalBatch:
    """Items of `PlanetRunDataset` → one `MultiModalBatch`; missing modalities as documented in batch.py."""
    from torch_geometric.data import Batch

    if len(items) == 0:
        raise InputValidationError("items", "[]", "at least one item to collate")
    if max_text_tokens < 2:
        raise InputValidationError("max_text_tokens", max_text_tokens, ">= 2")
    graphs = [it.get("graph") for it in items]
    present = torch.tensor([[it.get("datacube") is not None,
                             g is not None and int(g.num_nodes) > 0,
                             it.get("spectrum") is not None,
                             it.get("input_ids") is not None and len(it["input_ids"]) > 0]
                            for it, g in zip(items, graphs)], dtype=torch.bool)  # (B, 4)
    ref_graph = next((g for g in graphs if g is not None and int(g.num_nodes) > 0), None)
    n_feat = int(ref_graph.x.shape[-1]) if ref_graph is not None else GRAPH_NODE_FEATURES
    graph = Batch.from_data_list([g if ok else missing_graph(n_feat)
                                  for g, ok in zip(graphs, present[:, MODALITIES.index("graph")].tolist())])

    numerical = torch.stack([torch.as_tensor(it["numerical_data"], dtype=torch.float32) for it in items])  # (B, F)
    numerical_mask = torch.isfinite(numerical)
    input_ids, attention_mask = _pad_text([it.get("input_ids") for it in items], max_text_tokens)
    readings = [it.get("spectrum_reading") if it.get("spectrum") is not None else None for it in items]
    first = items[0]
    return MultiModalBatch(
        run_ids=[str(it["run_id"]) for it in items],
        datacube=_stack_or_fill([it.get("datacube") for it in items], "datacube"),
        datacube_target=_stack_or_fill([it.get("datacube_target") for it in items], "datacube_target"),
        datacube_stats={k: torch.as_tensor(v, dtype=torch.float32) for k, v in first["datacube_stats"].items()},
        sigma_levels=torch.as_tensor(first["sigma_levels"], dtype=torch.float32),
        lat_deg=torch.as_tensor(first["lat_deg"], dtype=torch.float32),
        graph=graph,
        spectrum=_stack_or_fill([it.get("spectrum") for it in items], "spectrum", (SPECTRUM_BINS, 3)),
        input_ids=input_ids,
        attention_mask=attention_mask,
        numerical_data=torch.where(numerical_mask, numerical, torch.zeros_like(numerical)),
        numerical_mask=numerical_mask,
        physics_features=torch.stack([torch.as_tensor(it["physics_features"], dtype=torch.float32) for it in items]),
        spectrum_reading=_stack_or_fill(readings, "spectrum_reading", (len(SPECTRUM_READING_FIELDS),)),
        spectrum_reading_mask=torch.tensor([[r is not None] * len(SPECTRUM_READING_FIELDS) for r in readings],
                                           dtype=torch.bool).reshape(len(items), len(SPECTRUM_READING_FIELDS)),
        instellation_wm2=torch.tensor([float(it["instellation_wm2"]) for it in items], dtype=torch.float32),
        surface_pressure_bar=torch.tensor([float(it["surface_pressure_bar"]) for it in items], dtype=torch.float32),
        labels=torch.tensor([int(it["label"]) for it in items], dtype=torch.int64),
        regression_targets=torch.stack([torch.as_tensor(it["regression_targets"], dtype=torch.float32)
                                        for it in items]),
        regression_stats={k: torch.as_tensor(v, dtype=torch.float32) for k, v in first["regression_stats"].items()},
        modality_mask=present,
        privileged_targets=(torch.stack([torch.as_tensor(it["privileged_targets"], dtype=torch.float32)
                                         for it in items])
                            if all(it.get("privileged_targets") is not None for it in items) else None),
    )


# ----------------------------------------------------------------------------------------------
# loader


def _seed_worker(worker_id: int) -> None:
    """Seed numpy and Python `random` in each worker from torch's per-worker seed (reproducible)."""
    import random

    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def make_dataloader(dataset: PlanetRunDataset, batch_size: int, shuffle: bool = False, num_workers: int = 0,
                    seed: int = 0, sampler=None, pin_memory: bool = False, drop_last: bool = False,
                    multiprocessing_context: str | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader yielding `MultiModalBatch`; the order depends only on `seed` (not on num_workers)."""
    if batch_size < 1:
        raise InputValidationError("batch_size", batch_size, ">= 1")
    if num_workers < 0:
        raise InputValidationError("num_workers", num_workers, ">= 0")
    generator = torch.Generator().manual_seed(int(seed))
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else False, sampler=sampler,
        num_workers=num_workers, collate_fn=dataset.collate_fn(), pin_memory=pin_memory, drop_last=drop_last,
        generator=generator, worker_init_fn=_seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        multiprocessing_context=multiprocessing_context if num_workers > 0 else None,
    )
