"""The served catalog: predictions and observer-side details of every modelled planet, cached beside the run.

Building the table simulates each planet's inputs and runs the model once (minutes for the whole catalog
on two cores); the result is cached under `RUN/serve-cache/<key>/`, where the key is a fingerprint of the
run's checkpoints and temperature, the catalog file, the seed, the MC-dropout passes and the package source.
The next start with the same key loads the cache in about a second; any change builds a new cache beside
the old one (nothing is deleted). Planets are looked up by name in memory only: no request value ever
becomes a path.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

import astrobio
from astrobio.data import RealDataStorage
from astrobio.errors import InputValidationError, StorageError
from astrobio.io import atomic_directory, atomic_write
from astrobio.world import catalog

CACHE_DIR = "serve-cache"
TABLE_FILE, MAPS_FILE, STORE_DIR = "table.json", "surface_temperature.npy", "store"
CATALOG_MC_SAMPLES = 5  # MC-dropout passes per catalog planet (as `astrobio demo`); single predictions use 20
CHUNK = 256  # planets simulated and predicted together
# Parts of the package whose code decides the served numbers: a change there invalidates the cache.
_CODE_PACKAGES = ("world", "data", "models", "evaluation")
# Habitable-zone edges used for the HZ position: Kopparapu et al. (2014) conservative limits.
HZ_INNER, HZ_OUTER = "runaway_greenhouse", "maximum_greenhouse"


def shipped_catalog_path() -> Path:
    return Path(str(resources.files("astrobio.resources") / "catalog" / "exoplanets_oec.csv"))


def _sha256_file(path: Path, h=None):
    h = h or hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h


def code_fingerprint() -> str:
    root = Path(astrobio.__file__).parent
    h = hashlib.sha256(astrobio.__version__.encode())
    for pkg in _CODE_PACKAGES:
        for p in sorted((root / pkg).rglob("*.py")):
            h.update(str(p.relative_to(root)).encode())
            _sha256_file(p, h)
    return h.hexdigest()


def run_fingerprint(run_dir: Path) -> str:
    """Every checkpoint the run holds (best.pt is preferred when loading) and its fitted temperature."""
    ckpts = sorted((run_dir / "checkpoints").glob("*.pt"))
    if not ckpts:
        raise StorageError(f"no checkpoint in {run_dir / 'checkpoints'}: train first (astrobio train ... --out {run_dir})")
    h = hashlib.sha256()
    for p in ckpts + [run_dir / "metrics.json"]:
        if p.is_file():
            h.update(p.name.encode())
            _sha256_file(p, h)
    return h.hexdigest()


def cache_key(run_dir: Path, catalog_path: Path, seed: int, mc_samples: int, names: tuple[str, ...] = ()) -> str:
    h = hashlib.sha256()
    for part in (run_fingerprint(run_dir), _sha256_file(catalog_path).hexdigest(), code_fingerprint(),
                 str(seed), str(mc_samples), "\n".join(names)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


@dataclass
class CatalogTable:
    """Served planets in catalog order; `maps[i]` is planet i's prior monthly surface temperature (12, lat, lon)."""

    planets: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    maps: np.ndarray
    lat: list[float]
    lon: list[float]
    meta: dict[str, Any]
    store_path: Path | None = None
    _by_name: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self._by_name = {p["name"]: i for i, p in enumerate(self.planets)}
        for i, p in enumerate(self.planets):
            self._by_name.setdefault(p["name"].casefold(), i)

    def index_of(self, name: str) -> int | None:
        """Exact name, else case-insensitive; None when not served."""
        i = self._by_name.get(name)
        return i if i is not None else self._by_name.get(name.casefold())


# ---------------------------------------------------------------- building
def _surface_maps(run) -> np.ndarray:
    """Prior (observer-side) monthly surface temperature: datacube variable 0, sigma level 0 = surface."""
    return run.datacube_prior[0, :, :, :, 0].astype(np.float32)


def _hz(extras: dict, a_au: float) -> dict[str, Any]:
    limits = extras.get("observed_hz_au") or {}
    inner, outer = limits.get(HZ_INNER), limits.get(HZ_OUTER)
    if not (inner and outer and np.isfinite(a_au)):
        return {"limits_au": limits, "position": None, "in_hz": None}
    # 0 at the runaway-greenhouse (inner) edge, 1 at the maximum-greenhouse (outer) edge.
    position = (a_au - inner) / (outer - inner)
    return {"limits_au": limits, "position": float(position), "in_hz": bool(0.0 <= position <= 1.0)}


def _finite_or_none(v):
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def planet_record(row: dict, run) -> dict[str, Any]:
    """One served planet: the prediction row of `predict_truths` plus the observer-side details of its run."""
    maps = _surface_maps(run)
    observed = {k: _finite_or_none(v) for k, v in run.observed.to_dict().items()}
    rec = {k: _finite_or_none(v) for k, v in row.items()}
    rec.update({
        "run_id": run.run_id,
        "planet_mass_earth": observed["planet_mass_earth"],
        "period_days": observed["period_days"],
        "distance_pc": observed["distance_pc"],
        "equilibrium_temperature_k": observed["equilibrium_temperature_k"],
        "discovery_method": observed["discovery_method"],
        "hz": _hz(run.extras, float(run.observed.semimajor_axis_au)),
        "observed": observed,
        "prior_climate": {
            "global_mean_surface_temperature_k": float(run.extras["prior_mean_surface_temperature_k"]),
            "min_surface_temperature_k": float(maps.min()),
            "max_surface_temperature_k": float(maps.max()),
            "liquid_water_fraction": float(run.extras["prior_liquid_water_fraction"]),
            "runaway_greenhouse": bool(run.extras["prior_runaway"]),
        },
        "observing_log": run.text,
        "spectrum": None if run.spectrum is None else np.asarray(run.spectrum, dtype=float).tolist(),
    })
    return rec


def _predict_part(loaded, part, seed: int, mc_samples: int, temperature: float, resolution: str):
    """(rows, runs, failures) for a chunk of truths, each planet simulated once: the runs the model reads
    are the runs the store keeps. A planet the simulator refuses is isolated by bisection
    (`simulate_isolating`: log2(chunk) extra calls, not one per planet) and gets its reason."""
    # start-up: a cached start serves lists without torch; prediction needs the model stack (seconds)
    from astrobio.evaluation import predict as P

    runs, failures = P.simulate_isolating(part, seed, resolution)
    rows = P.predict_runs(loaded, runs, mc_samples=mc_samples, temperature=temperature, seed=seed) if runs else []
    return rows, runs, failures


def build_table(run_dir: Path, truths, skipped, seed: int = 0, mc_samples: int = CATALOG_MC_SAMPLES,
                store_path: Path | None = None, progress: bool = False) -> CatalogTable:
    """Predict `truths` with the run's model and collect what the page shows; runs go to `store_path`."""
    from rich.progress import Progress

    # start-up: a cached start serves lists without torch; prediction needs the model stack (seconds)
    from astrobio.evaluation import predict as P
    from astrobio.evaluation.inference import load_trained

    loaded = load_trained(run_dir)
    temperature = P.temperature_of(run_dir)
    resolution = loaded.data_state["resolution"]  # the model's own: the stored runs are what it read
    store = RealDataStorage(store_path) if store_path else None
    planets, maps, skipped, grid = [], [], list(skipped), None
    with Progress(disable=not progress) as bar:
        task = bar.add_task("predict catalog for serving", total=len(truths))
        for start in range(0, len(truths), CHUNK):
            part = truths[start:start + CHUNK]
            rows, runs, failures = _predict_part(loaded, part, seed, mc_samples, temperature, resolution)
            skipped += failures
            if store is not None and runs:
                store.write_runs(runs, config={"purpose": "astrobio serve", "seed": seed})
            for row, run in zip(rows, runs):
                planets.append(planet_record(row, run))
                maps.append(_surface_maps(run))
                grid = run.coords
            bar.advance(task, len(part))
    if store is not None:
        store.close()
    grid = grid or {"lat_deg": np.zeros(0), "lon_deg": np.zeros(0)}
    meta = {"run": str(Path(run_dir).resolve()), "run_id": run_id_of(run_dir), "seed": seed,
            "mc_samples": mc_samples, "temperature": temperature, "resolution": resolution,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return CatalogTable(planets=planets, skipped=[{"name": n, "reason": r} for n, r in skipped],
                        maps=np.stack(maps) if maps else np.zeros((0, 12, 0, 0), np.float32),
                        lat=[float(x) for x in grid["lat_deg"]], lon=[float(x) for x in grid["lon_deg"]],
                        meta=meta, store_path=store_path)


def run_id_of(run_dir: Path) -> str:
    """The run's id: its directory name and the start of its checkpoints' fingerprint (name@hash)."""
    return f"{Path(run_dir).resolve().name}@{run_fingerprint(Path(run_dir))[:12]}"


# ---------------------------------------------------------------- cache
def _save(table: CatalogTable, directory: Path) -> None:
    with atomic_write(directory / MAPS_FILE, "wb") as fh:
        np.save(fh, table.maps)
    # The table file is written last: a cache directory without it is never used.
    with atomic_write(directory / TABLE_FILE) as fh:
        json.dump({"meta": table.meta, "lat": table.lat, "lon": table.lon, "planets": table.planets,
                   "skipped": table.skipped}, fh, allow_nan=False, separators=(",", ":"))


def load_cached(directory: Path) -> CatalogTable:
    d = json.loads((directory / TABLE_FILE).read_text(encoding="utf-8"))
    maps = np.load(directory / MAPS_FILE, allow_pickle=False)
    if len(maps) != len(d["planets"]):
        raise StorageError(f"serve cache {directory} is inconsistent ({len(maps)} maps, {len(d['planets'])} planets)")
    store = directory / STORE_DIR
    return CatalogTable(planets=d["planets"], skipped=d["skipped"], maps=maps, lat=d["lat"], lon=d["lon"],
                        meta=d["meta"], store_path=store if store.exists() else None)


def catalog_table(run_dir: str | os.PathLike, catalog_path: str | os.PathLike | None = None, seed: int = 0,
                  mc_samples: int = CATALOG_MC_SAMPLES, names: tuple[str, ...] = (),
                  progress: bool = False) -> CatalogTable:
    """The served table for `run_dir`: loaded from its cache, else built and cached.

    `names` restricts the table to those catalog planets (tests, quick looks); empty = every modelled one.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputValidationError("run", str(run_dir), "a trained run directory (astrobio train ... --out RUN)")
    catalog_path = Path(catalog_path) if catalog_path else shipped_catalog_path()
    key = cache_key(run_dir, catalog_path, seed, mc_samples, tuple(names))
    final = run_dir / CACHE_DIR / key
    if (final / TABLE_FILE).is_file():
        return load_cached(final)
    truths, skipped = catalog.catalog_planets(catalog_path)
    if names:
        wanted = set(names)
        missing = wanted - {t.name for t in truths} - {n for n, _ in skipped}
        if missing:
            raise InputValidationError("names", sorted(missing), "names of the catalog")
        truths = [t for t in truths if t.name in wanted]
        skipped = [s for s in skipped if s[0] in wanted]
    try:
        with atomic_directory(final) as tmp:  # another server that built the same key first keeps its cache
            table = build_table(run_dir, truths, skipped, seed=seed, mc_samples=mc_samples,
                                store_path=tmp / STORE_DIR, progress=progress)
            _save(table, tmp)
    except OSError:
        if not (final / TABLE_FILE).is_file():
            raise
    return load_cached(final)
