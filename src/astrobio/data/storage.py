"""RealDataStorage: planet runs in HDF5 shards with a SQLite index.

Layout of a store directory:
  shard-00000.h5, shard-00001.h5, ...   one shard per `write_runs` call, immutable once written
  index.sqlite                          table `runs` (one row per run) and table `meta` (key → JSON)

Each run is the HDF5 group `/runs/<run_id>` holding `datacube_prior`, `datacube_true` (float32
[2, 12, lat, lon, lev]), `spectrum` (float32 [n, 3], absent when the run has none), `graph/x`,
`graph/edge_index` (absent when the run has no graph), `physics_features` (float64 [4], world/features.py;
absent in stores written before they were stored: the dataset refuses those), `text` (utf-8),
`coords/{lat_deg, lon_deg, sigma, month}`, and JSON attrs `truth`, `observed`, `labels`, `extras`, `annotation`; units, CF names
and provenance from the annotation are also attrs on the datasets and the group.

Every group also carries its `content_hash` attr, so a shard alone holds complete runs with all their
metadata and the index can be rebuilt from the shards (`astrobio data repair`, data/repair.py).

Crash safety: a shard is written to a temp file, fsynced and `os.replace`d into place, and only then
are its index rows committed in one transaction, so a run is visible only once fully written. Nothing
is ever removed on open: temp files of dead writers and shards no index row points to (a crash between
replace and commit, a lost or restored index) are reported by `astrobio data quality` and put back or
set aside by `astrobio data repair`. A missing, empty or corrupt index beside shards is a StorageError
that names `astrobio data repair`; the index is integrity-checked (`PRAGMA quick_check`) when opened.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from astrobio.data.annotation import ComprehensiveDataAnnotationSystem
from astrobio.data.tokenizer import TOKENIZER_FILE
from astrobio.errors import AnnotationError, InputValidationError, StorageError
from astrobio.io import atomic_path, json_default
from astrobio.world.features import spectrum_reading
from astrobio.world.labels import privileged_targets
from astrobio.world.types import (MODALITIES, PHYSICS_FEATURES, PlanetObserved, PlanetRun, PlanetTruth,
                                  dataclass_from_dict, legacy_run_id_for, run_id_for)

SCHEMA_VERSION = 1
INDEX_NAME = "index.sqlite"
LOCK_NAME = ".write.lock"
STATS_FILE = "stats.json"  # train-split normalisation statistics, written beside the data by the dataset
# Files derived from the runs and kept beside them (dataset statistics, tokenizer): part of the fingerprint.
DERIVED_FILES = (STATS_FILE, TOKENIZER_FILE)
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.h5$")
# Temp files of a writer: `.shard-00001.h5.<pid>.<hex>.tmp` (astrobio.io.atomic_path), the older
# `.shard-00001.h5.tmp-<pid>`, and a repair's `.index.sqlite.<pid>.<hex>.tmp`. Group 1 or 2 is the pid.
TMP_RE = re.compile(r"^\.(?:shard-\d{5,}\.h5|index\.sqlite)\.(?:tmp-(\d+)|(\d+)\.[0-9a-f]+\.tmp)$")
_RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+\-]*$")

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    system TEXT NOT NULL,
    source TEXT NOT NULL,
    shard TEXT NOT NULL,
    group_path TEXT NOT NULL,
    habitability_class INTEGER,
    resolution TEXT NOT NULL,
    seed INTEGER NOT NULL,
    has_datacube INTEGER NOT NULL,
    has_graph INTEGER NOT NULL,
    has_spectrum INTEGER NOT NULL,
    has_text INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    quarantined INTEGER NOT NULL DEFAULT 0,
    quarantine_reasons TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS runs_system ON runs(system);
CREATE INDEX IF NOT EXISTS runs_hash ON runs(content_hash);
CREATE INDEX IF NOT EXISTS runs_quarantined ON runs(run_id) WHERE quarantined = 1;  -- partial: the few flagged runs
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_ROW_KEYS = ("run_id", "name", "system", "source", "shard", "group_path", "habitability_class", "resolution",
             "seed", "has_datacube", "has_graph", "has_spectrum", "has_text", "created_at", "content_hash",
             "quarantined", "quarantine_reasons")


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys; NaN kept as NaN, which json.loads reads back)."""
    return json.dumps(obj, default=json_default, sort_keys=True)


def content_hash(arrays: Mapping[str, np.ndarray | None], text: str, labels: Mapping[str, Any]) -> str:
    """sha256 of a run's content (arrays with dtype and shape, text, labels); equal for duplicate runs."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        arr = arrays[name]
        h.update(name.encode())
        if arr is None:
            h.update(b"<none>")
            continue
        arr = np.ascontiguousarray(arr)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.tobytes())
    h.update(text.encode("utf-8"))
    h.update(dumps(dict(labels)).encode())
    return h.hexdigest()


RECORD_ATTRS = ("truth", "observed", "extras", "annotation")  # JSON attrs of a run group outside content_hash


def record_hash(records: Mapping[str, str]) -> str:
    """sha256 of a run's JSON records (RECORD_ATTRS): the observed values the models read, the truth, the
    extras and the annotation, so a flipped digit in them is caught as `content_hash` catches one in arrays."""
    h = hashlib.sha256()
    for name in RECORD_ATTRS:
        h.update(name.encode())
        h.update(records[name].encode("utf-8"))
    return h.hexdigest()


def run_arrays(run: PlanetRun) -> dict[str, np.ndarray | None]:
    """The arrays of a run as stored (dtype fixed by the contract in docs/architecture.md)."""
    graph = run.graph
    return {
        "datacube_prior": np.asarray(run.datacube_prior, dtype=np.float32),
        "datacube_true": np.asarray(run.datacube_true, dtype=np.float32),
        "spectrum": None if run.spectrum is None else np.asarray(run.spectrum, dtype=np.float32),
        "graph/x": None if graph is None else _to_numpy(graph.x, np.float32),
        "graph/edge_index": None if graph is None else _to_numpy(graph.edge_index, np.int64),
        "physics_features": np.asarray(run.physics_features, dtype=np.float64),
    }


def hashed_arrays(a: Mapping[str, Any]) -> dict[str, np.ndarray | None]:
    """The arrays of a `load_arrays` dict that `content_hash` covers. `physics_features` only when stored:
    runs written before they were stored keep the hash they were written with."""
    out = {"datacube_prior": a["datacube_prior"], "datacube_true": a["datacube_true"], "spectrum": a["spectrum"],
           "graph/x": a["graph_x"], "graph/edge_index": a["graph_edge_index"]}
    if a.get("physics_features") is not None:
        out["physics_features"] = a["physics_features"]
    return out


def _to_numpy(t: Any, dtype) -> np.ndarray:
    arr = t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
    return arr.astype(dtype, copy=False)


def _check_run(run: PlanetRun, arrays: dict[str, np.ndarray | None]) -> None:
    """Shape contract of a run (values are the quality manager's job, so NaN is stored as is)."""
    if not isinstance(run.run_id, str) or not _RUN_ID_RE.match(run.run_id):
        raise InputValidationError("run_id", run.run_id, "a non-empty string of letters, digits and _.:+- "
                                   "(it names an HDF5 group)")
    cube, true = arrays["datacube_prior"], arrays["datacube_true"]
    if cube.ndim != 5 or cube.shape[1] != 12:
        raise InputValidationError(f"{run.run_id}.datacube_prior.shape", cube.shape, "[vars, 12, lat, lon, lev]")
    if true.shape != cube.shape:
        raise InputValidationError(f"{run.run_id}.datacube_true.shape", true.shape, f"{cube.shape} like the prior")
    spec = arrays["spectrum"]
    if spec is not None and (spec.ndim != 2 or spec.shape[1] != 3):
        raise InputValidationError(f"{run.run_id}.spectrum.shape", spec.shape, "[n_wavelengths, 3]")
    x, ei = arrays["graph/x"], arrays["graph/edge_index"]
    if x is not None and (x.ndim != 2 or ei.ndim != 2 or ei.shape[0] != 2):
        raise InputValidationError(f"{run.run_id}.graph", (x.shape, ei.shape), "x [N, F] and edge_index [2, E]")
    if not isinstance(run.text, str):
        raise InputValidationError(f"{run.run_id}.text", type(run.text).__name__, "a str")
    if arrays["physics_features"].shape != (len(PHYSICS_FEATURES),):
        raise InputValidationError(f"{run.run_id}.physics_features.shape", arrays["physics_features"].shape,
                                   f"({len(PHYSICS_FEATURES)},) in the order {PHYSICS_FEATURES}")


def _shard_names(directory: Path) -> list[str]:
    """Shard files in `directory`, sorted (none when it does not exist)."""
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if _SHARD_RE.match(p.name))


def row_from_group(g, shard: str) -> dict[str, Any]:
    """The index row of the run stored in HDF5 group `g` of `shard`: the one definition of a row, used
    when writing and when `repair` rebuilds the index from the shards alone."""
    truth, labels = json.loads(g.attrs["truth"]), json.loads(g.attrs["labels"])
    text = g["text"].asstr()[()]
    has_graph = "graph" in g and int(g["graph"].attrs["num_nodes"]) > 0
    return {
        "run_id": str(g.attrs["run_id"]), "name": truth["name"], "system": str(g.attrs["system"]),
        "source": str(g.attrs["source"]), "shard": shard, "group_path": g.name,
        "habitability_class": int(labels["habitability_class"]), "resolution": str(g.attrs["resolution"]),
        "seed": int(g.attrs["seed"]), "has_datacube": int("datacube_prior" in g), "has_graph": int(has_graph),
        "has_spectrum": int("spectrum" in g), "has_text": int(bool(text.strip())),
        "created_at": str(g.attrs["created_utc"]),
        # shards written before the attr existed: the hash of what is stored now (repair says so)
        "content_hash": str(g.attrs["content_hash"]) if "content_hash" in g.attrs else stored_content_hash(g),
        "quarantined": 0, "quarantine_reasons": "[]",
    }


def stored_content_hash(g) -> str:
    """`content_hash` recomputed from the arrays, text and labels stored in group `g`."""
    a = _group_arrays(g)
    return content_hash(hashed_arrays(a), a["text"], a["labels"])


def _read(g, name: str) -> np.ndarray:
    """Dataset `name` of group `g` as a numpy array, read through h5py's low-level API: one open and one read
    without the high-level object's bookkeeping (a demo run's ~10 datasets: 4.9 -> 3.8 ms; reading is most of an
    uncached training item's ~7 ms). Empty datasets go through the high-level path, which handles them."""
    import h5py

    d = h5py.h5d.open(g.id, name.encode())
    shape = d.shape
    if not all(shape):
        return g[name][()]
    out = np.empty(shape, dtype=d.dtype)
    d.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


# HDF5's metadata cache of a file grows adaptively up to 32 MiB (its default maximum) as runs are visited, and a
# store keeps its shards open: reading 8,000 runs of the 36,000-run store (151 shards) grew the process by 1,085 MB
# beyond any item cache (~136 KiB a run), so a 32,000-run training set would hold ~4 GB for nothing: runs are read once
# an epoch, a large cache buys little. Capped at 1 MiB per shard: 352 MB for the same 8,000 runs, at about the same
# read time (2.9-4.2 vs 3.6-3.8 ms a run, noisy shared machine).
READ_METADATA_CACHE_BYTES = 2**20


def _cap_metadata_cache(f) -> None:
    """Limit the HDF5 metadata cache of shard file `f` (opened for reading) to `READ_METADATA_CACHE_BYTES`."""
    config = f.id.get_mdc_config()
    config.set_initial_size = True
    config.initial_size = READ_METADATA_CACHE_BYTES // 2
    config.min_size = READ_METADATA_CACHE_BYTES // 4
    config.max_size = READ_METADATA_CACHE_BYTES
    f.id.set_mdc_config(config)


def _group_arrays(g) -> dict[str, Any]:
    """Arrays, text, labels and observed values stored in run group `g` (`load_arrays` without the ids)."""
    has_graph = "graph" in g
    return {
        "datacube_prior": _read(g, "datacube_prior"),
        "datacube_true": _read(g, "datacube_true"),
        "spectrum": _read(g, "spectrum") if "spectrum" in g else None,
        "graph_x": _read(g, "graph/x") if has_graph else None,
        "graph_edge_index": _read(g, "graph/edge_index") if has_graph else None,
        "physics_features": _read(g, "physics_features") if "physics_features" in g else None,
        "coords": {k: _read(g, f"coords/{k}") for k in g["coords"]},
        "text": g["text"].asstr()[()],
        "labels": json.loads(g.attrs["labels"]),
        "observed": json.loads(g.attrs["observed"]),
        # only the observer's reading of the spectrum leaves the extras (which also hold true-planet values)
        "spectrum_reading": spectrum_reading(json.loads(g.attrs["extras"])),
        # hidden values of the true planet, for training targets only (`PRIVILEGED_KEYS`); no input is built from them
        "privileged": privileged_targets(json.loads(g.attrs["truth"])),
    }


def _guard_index(method):
    """Turn an SQLite failure inside a store method into one StorageError that says what to do."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise self._index_error(exc) from None

    return wrapper


@dataclass(frozen=True)
class WrittenShard:
    """A shard `write_shard` put in place but the index does not list yet; `record_shard` lists it."""

    shard: str
    rows: tuple[dict[str, Any], ...]
    resolution: str
    grid: dict[str, Any]  # as the store's `grid` meta key


class WriteResult(list):
    """The run_ids `write_runs` wrote (a list); `.skipped` holds those already stored (not rewritten)."""

    def __init__(self, written: Iterable[str], skipped: Iterable[str]):
        super().__init__(written)
        self.skipped = list(skipped)


class RealDataStorage:
    """Planet runs in HDF5 shards + SQLite index at `path` (created by the first `write_runs`).

    Safe to share with DataLoader workers: HDF5 files and the SQLite connection are opened lazily and
    re-opened in each process (the owning pid is recorded), and they are dropped when pickled.
    """

    def __init__(self, path: str | os.PathLike, compression: str = "gzip"):
        if compression not in ("gzip", "lzf"):
            raise InputValidationError("compression", compression, "'gzip' or 'lzf'")
        self.path = Path(path)
        self.compression = compression
        self._annotator = ComprehensiveDataAnnotationSystem()
        self._pid = os.getpid()
        self._files: dict[str, Any] = {}  # shard name → open h5py.File (read-only)
        self._where: dict[str, tuple[str, str]] = {}  # run_id → (shard, group path); never changes once written
        self._conn: sqlite3.Connection | None = None

    # ---------------------------------------------------------------- plumbing
    @staticmethod
    def exists(path: str | os.PathLike) -> bool:
        """Whether `path` holds a store: an index, or shards whose index is lost (opening it then says to run
        `astrobio data repair`). The one place outside this class that needs the store's file names."""
        path = Path(path)
        return (path / INDEX_NAME).is_file() or bool(_shard_names(path))

    @property
    def index_path(self) -> Path:
        return self.path / INDEX_NAME

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_files={}, _conn=None, _where={})
        return state

    def _own_process(self) -> None:
        # Handles inherited through fork are not safe to use: drop them and reopen in this process.
        if os.getpid() != self._pid:
            self._files, self._conn, self._where, self._pid = {}, None, {}, os.getpid()

    def _index_error(self, exc: sqlite3.DatabaseError) -> StorageError:
        if isinstance(exc, (sqlite3.OperationalError, sqlite3.IntegrityError)):  # locked, read-only, I/O
            return StorageError(f"the index {self.index_path} cannot be used: {exc}")
        return StorageError(f"the index {self.index_path} is corrupt ({exc}); run `astrobio data repair "
                            f"{self.path}` to rebuild it from the shards (nothing is lost)")

    def _check_index_file(self, create: bool) -> None:
        """Refuse an index that is missing or empty while shards exist: it would hide their runs."""
        size = self.index_path.stat().st_size if self.index_path.exists() else None
        if size:
            return
        shards = _shard_names(self.path)
        if shards:
            state = "missing" if size is None else "empty (0 bytes)"
            raise StorageError(f"the index {self.index_path} is {state} but {len(shards)} shard files hold runs; "
                               f"run `astrobio data repair {self.path}` to rebuild it from them")
        if size is None and not create:
            raise StorageError(f"no astrobio store at {self.path} (missing {INDEX_NAME}); write runs there first")
        self.path.mkdir(parents=True, exist_ok=True)

    def _db(self, create: bool = False) -> sqlite3.Connection:
        self._own_process()
        if self._conn is None:
            self._check_index_file(create)
            conn = sqlite3.connect(self.index_path, timeout=60)
            try:
                conn.row_factory = sqlite3.Row
                conn.execute("PRAGMA journal_mode=WAL")
                check = conn.execute("PRAGMA quick_check").fetchone()[0]
                if check != "ok":
                    raise sqlite3.DatabaseError(check)
                conn.executescript(_SCHEMA_SQL)
                with conn:
                    conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                                 (dumps(SCHEMA_VERSION),))
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise self._index_error(exc) from None
            self._conn = conn
        return self._conn

    def _shard(self, shard: str):
        import h5py

        self._own_process()
        f = self._files.get(shard)
        if f is None:
            p = self.path / shard
            if not p.exists():
                raise StorageError(f"shard {p} listed in the index is missing: the store is corrupt")
            f = self._files[shard] = h5py.File(p, "r")
            _cap_metadata_cache(f)
        return f

    def close(self) -> None:
        """Close open shard files and the index connection (they reopen on the next access)."""
        if os.getpid() == self._pid:
            for f in self._files.values():
                f.close()
            if self._conn is not None:
                self._conn.close()
        self._files, self._conn, self._where = {}, None, {}

    def __enter__(self) -> RealDataStorage:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _write_lock(self, blocking: bool = True) -> Iterator[bool]:
        """Exclusive inter-process lock for writers and cleanup; yields False if not blocking and busy."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    # ---------------------------------------------------------------- writing
    @_guard_index
    def write_runs(self, runs: Iterable[PlanetRun], *, annotations: Mapping[str, dict] | None = None,
                   config: dict[str, Any] | None = None) -> WriteResult:
        """Write new runs as one shard; return the written run_ids (`.skipped`: already stored ones).

        annotations: run_id → annotation dict; when None each run is annotated here (`config` is the
        generating configuration whose hash goes into the provenance). Every annotation is validated;
        one missing or inconsistent annotation refuses the whole call and leaves the store unchanged.
        """
        import h5py

        runs = list(runs)
        with self._write_lock():
            conn = self._db(create=True)
            stored = self.existing_run_ids()
            todo: list[tuple[PlanetRun, dict]] = []
            skipped: list[str] = []
            for run in runs:
                if not isinstance(run, PlanetRun):
                    raise InputValidationError("runs", type(run).__name__, "PlanetRun records")
                arrays = run_arrays(run)
                _check_run(run, arrays)
                if run.run_id in stored:
                    skipped.append(run.run_id)
                    continue
                stored.add(run.run_id)
                todo.append((run, arrays))
            if not todo:
                return WriteResult([], skipped)
            meta_updates = self._grid_meta(todo)
            shard = self._next_shard()
            final = self.path / shard
            rows = []
            with atomic_path(final) as tmp:  # temp, fsync, rename, directory fsync; temp removed on error
                with h5py.File(tmp, "w") as f:
                    f.attrs["schema_version"] = SCHEMA_VERSION
                    for run, arrays in todo:
                        ann = self._annotation_for(run, annotations, config)
                        rows.append(self._write_group(f, run, arrays, ann, shard))
            try:
                with conn:  # one transaction: all rows of the shard or none
                    insert_rows(conn, rows)
                    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                     [(k, dumps(v)) for k, v in meta_updates.items()])
            except BaseException:
                final.unlink(missing_ok=True)  # this call's own shard, never indexed: it holds no one's data yet
                raise
        return WriteResult([r["run_id"] for r in rows], skipped)

    def _annotation_for(self, run: PlanetRun, annotations: Mapping[str, dict] | None,
                        config: dict[str, Any] | None) -> dict:
        if annotations is None:
            ann = self._annotator.annotate(run, config=config)
        elif run.run_id not in annotations:
            raise AnnotationError(f"run {run.run_id!r}: annotation missing; refusing to store it")
        else:
            ann = annotations[run.run_id]
        self._annotator.validate(ann, run)
        return ann

    # ---------------------------------------------------------------- two-step writing (parallel writers)
    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the store's write lock for a parallel simulation: inside, this object `reserve_shards` and
        `record_shard`s (the index's only writer) while worker processes `write_shard`. StorageError when
        another writer holds the lock; `write_runs` on the same store would wait for the block to end."""
        with self._write_lock(blocking=False) as locked:
            if not locked:
                raise StorageError(f"another process is writing to the store at {self.path}; wait for it to end")
            self._db(create=True)
            self._writing = True
            try:
                yield
            finally:
                self._writing = False

    def _require_writing(self, what: str) -> None:
        if not getattr(self, "_writing", False):
            raise StorageError(f"{what} outside `with storage.writing():` (the write lock is not held)")

    def reserve_shards(self, count: int) -> list[str]:
        """`count` new shard names after every shard file present (indexed or not), inside `writing()`."""
        self._require_writing("reserve_shards")
        first = int(self._next_shard()[len("shard-"):-len(".h5")])
        return [f"shard-{first + i:05d}.h5" for i in range(count)]

    def write_shard(self, shard: str, runs: Iterable[PlanetRun], *, config: dict[str, Any] | None = None
                    ) -> WrittenShard:
        """Write runs (annotated, validated) as the reserved shard file, atomically; the index is not touched,
        so any process sharing the file system may call this while one `writing()` process records."""
        import h5py

        runs = list(runs)
        if not _SHARD_RE.match(shard):
            raise InputValidationError("shard", shard, "a name from reserve_shards, like 'shard-00012.h5'")
        if not runs or not all(isinstance(r, PlanetRun) for r in runs):
            raise InputValidationError("runs", [type(r).__name__ for r in runs], "one or more PlanetRun records")
        todo = [(run, run_arrays(run)) for run in runs]
        for run, arrays in todo:
            _check_run(run, arrays)
        first, first_arrays = todo[0]
        grid = {"shape": list(first_arrays["datacube_prior"].shape),
                **{k: np.asarray(first.coords[k]).tolist() for k in ("month", "lat_deg", "lon_deg", "sigma")}}
        for run, arrays in todo:
            if run.resolution != first.resolution or list(arrays["datacube_prior"].shape) != grid["shape"]:
                raise InputValidationError(f"{run.run_id}.resolution", (run.resolution, arrays["datacube_prior"].shape),
                                           f"{first.resolution!r}, {tuple(grid['shape'])} like the shard's first run")
        rows = []
        with atomic_path(self.path / shard) as tmp:  # a retried task rewrites the same, still unlisted, file
            with h5py.File(tmp, "w") as f:
                f.attrs["schema_version"] = SCHEMA_VERSION
                for run, arrays in todo:
                    rows.append(self._write_group(f, run, arrays, self._annotation_for(run, None, config), shard))
        return WrittenShard(shard, tuple(rows), first.resolution, grid)

    @_guard_index
    def record_shard(self, written: WrittenShard) -> WriteResult:
        """List a written shard's runs in the index in one transaction, inside `writing()`. Runs already
        listed are skipped, never duplicated; the store's resolution and grid must match."""
        self._require_writing("record_shard")
        if not (self.path / written.shard).exists():
            raise StorageError(f"shard {self.path / written.shard} to record is missing")
        conn = self._db()
        meta = self.read_meta()
        resolution, grid = meta.get("resolution", written.resolution), meta.get("grid", written.grid)
        if written.resolution != resolution or written.grid["shape"] != grid["shape"]:
            raise InputValidationError(f"{written.shard}.resolution",
                                       (written.resolution, tuple(written.grid["shape"])),
                                       f"{resolution!r}, {tuple(grid['shape'])} like the rest of the store")
        ids = [r["run_id"] for r in written.rows]
        listed = {r[0] for r in conn.execute(f"SELECT run_id FROM runs WHERE run_id IN ({', '.join('?' * len(ids))})",
                                             ids)}
        rows = [r for r in written.rows if r["run_id"] not in listed]
        with conn:  # one transaction: every new row of the shard or none
            insert_rows(conn, rows)
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                             [("resolution", dumps(resolution)), ("grid", dumps(grid))])
        return WriteResult([r["run_id"] for r in rows], sorted(listed))

    def _grid_meta(self, todo: list[tuple[PlanetRun, dict]]) -> dict[str, Any]:
        """Check every run shares the store's resolution and grid; return meta keys to set."""
        meta = self.read_meta()
        first = todo[0][0]
        grid = meta.get("grid") or {
            "shape": list(todo[0][1]["datacube_prior"].shape),
            **{k: np.asarray(first.coords[k]).tolist() for k in ("month", "lat_deg", "lon_deg", "sigma")},
        }
        resolution = meta.get("resolution", first.resolution)
        for run, arrays in todo:
            if run.resolution != resolution:
                raise InputValidationError(f"{run.run_id}.resolution", run.resolution,
                                           f"{resolution!r} like the rest of the store")
            if list(arrays["datacube_prior"].shape) != grid["shape"]:
                raise InputValidationError(f"{run.run_id}.datacube_prior.shape", arrays["datacube_prior"].shape,
                                           f"{tuple(grid['shape'])} like the rest of the store")
        return {"resolution": resolution, "grid": grid}

    def _next_shard(self) -> str:
        numbers = [int(_SHARD_RE.match(name).group(1)) for name in _shard_names(self.path)]
        return f"shard-{max(numbers, default=-1) + 1:05d}.h5"

    def _dataset(self, group, name: str, data: np.ndarray, attrs: Mapping[str, Any], chunks=True):
        if data.size == 0:  # HDF5 cannot chunk an empty extent
            ds = group.create_dataset(name, data=data)
        else:
            opts = {"compression": "gzip", "compression_opts": 4} if self.compression == "gzip" else \
                {"compression": "lzf"}
            ds = group.create_dataset(name, data=data, chunks=chunks, shuffle=True, **opts)
        for k, v in attrs.items():
            if v is not None:
                ds.attrs[k] = v
        return ds

    def _write_group(self, f, run: PlanetRun, arrays: dict[str, np.ndarray | None], ann: dict,
                     shard: str) -> dict[str, Any]:
        import h5py

        gpath = f"/runs/{run.run_id}"
        g = f.create_group(gpath)
        prov = ann["provenance"]
        records = {"truth": dumps(run.truth.to_dict()), "observed": dumps(run.observed.to_dict()),
                   "extras": dumps(run.extras), "annotation": dumps(ann)}
        g.attrs.update({
            "run_id": run.run_id, "system": run.system, "resolution": run.resolution, "seed": int(run.seed),
            **records, "labels": dumps(run.labels), "record_hash": record_hash(records),
            "source": prov["source"], "package_version": prov["package_version"],
            "git_revision": prov["git_revision"] or "", "config_hash": prov["config_hash"],
            "created_utc": prov["created_utc"], "domain_tags": list(ann["domain_tags"]),
            "content_hash": content_hash(arrays, run.text, run.labels),
        })
        for key in ("datacube_prior", "datacube_true"):
            cube = arrays[key]
            meta = ann["arrays"][key]
            variables = meta["variables"]
            self._dataset(g, key, cube, {
                "dimensions": " ".join(meta["dims"]), "long_name": meta.get("long_name"),
                "variable_names": [v["name"] for v in variables],
                "standard_names": [v["standard_name"] for v in variables],
                "units": [v["units"] for v in variables],
            }, chunks=(1, *cube.shape[1:]) if cube.size else True)  # one variable per chunk
        if arrays["spectrum"] is not None:
            cols = ann["arrays"]["spectrum"]["columns"]
            self._dataset(g, "spectrum", arrays["spectrum"], {
                "columns": [c["name"] for c in cols], "units": [c["units"] for c in cols],
                "long_name": ann["arrays"]["spectrum"].get("long_name")})
        if arrays["graph/x"] is not None:
            gg = g.create_group("graph")
            gg.attrs["num_nodes"] = int(run.graph.num_nodes)
            for key in ("graph/x", "graph/edge_index"):
                self._dataset(g, key, arrays[key], ann["arrays"][key])
        g.create_dataset("physics_features", data=arrays["physics_features"]).attrs.update({
            "names": list(PHYSICS_FEATURES), "units": "1",
            "long_name": "physics features of the observed planet (astrobio.world.features)"})
        text = g.create_dataset("text", data=run.text, dtype=h5py.string_dtype("utf-8"))
        text.attrs.update({k: v for k, v in ann.get("text", {}).items()})
        cg = g.create_group("coords")
        for name, meta in ann["coordinates"].items():
            self._dataset(cg, name, np.asarray(run.coords[name]), meta)
        return row_from_group(g, shard)

    # ---------------------------------------------------------------- index queries
    def _row(self, run_id: str) -> sqlite3.Row:
        row = self._db().execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise StorageError(f"run {run_id!r} is not in the store at {self.path}")
        return row

    @staticmethod
    def _row_dict(row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        for m in MODALITIES:
            d[f"has_{m}"] = bool(d[f"has_{m}"])
        d["quarantined"] = bool(d["quarantined"])
        d["quarantine_reasons"] = json.loads(d["quarantine_reasons"])
        return d

    @_guard_index
    def list_stored_runs(self, include_quarantined: bool = False) -> list[dict[str, Any]]:
        """Index rows (dicts) ordered by run_id; quarantined runs only when asked for."""
        where = "" if include_quarantined else " WHERE quarantined = 0"
        # Plain tuples and one dict per row: sqlite3.Row plus a json.loads per row cost 2x at 10^6 runs.
        cur = self._db().cursor()
        cur.row_factory = None
        rows = cur.execute(f"SELECT {', '.join(_ROW_KEYS)} FROM runs{where} ORDER BY run_id").fetchall()
        flags = [f"has_{m}" for m in MODALITIES] + ["quarantined"]
        out = []
        for r in rows:
            d = dict(zip(_ROW_KEYS, r))
            for k in flags:
                d[k] = bool(d[k])
            q = d["quarantine_reasons"]
            d["quarantine_reasons"] = [] if q == "[]" else json.loads(q)
            out.append(d)
        return out

    @_guard_index
    def index_columns(self, columns: Sequence[str] = ("run_id", "habitability_class"),
                      include_quarantined: bool = False) -> dict[str, list[Any]]:
        """Chosen index columns as lists, ordered by run_id: the cheap listing for stores of 10^6 runs
        (fetching every column of every row costs several seconds there; a few columns about one)."""
        for c in columns:
            if c not in _ROW_KEYS:
                raise InputValidationError("columns", c, f"one of {list(_ROW_KEYS)}")
        where = "" if include_quarantined else " WHERE quarantined = 0"
        cur = self._db().cursor()
        cur.row_factory = None
        rows = cur.execute(f"SELECT {', '.join(columns)} FROM runs{where} ORDER BY run_id").fetchall()
        cols = list(zip(*rows)) if rows else [() for _ in columns]
        return {c: list(v) for c, v in zip(columns, cols)}

    @_guard_index
    def existing_run_ids(self) -> set[str]:
        """Every stored run_id, quarantined ones included (empty before the first write)."""
        if self._conn is None and not self.index_path.exists():
            return set()
        return {r[0] for r in self._db().execute("SELECT run_id FROM runs")}

    @_guard_index
    def pending(self, truths: Iterable[PlanetTruth]) -> list[PlanetTruth]:
        """The truths whose run is not stored yet. Stores written before run ids carried a name hash hold
        catalog runs under the bare slug (`legacy_run_id_for`): such a row counts when its exact name matches."""
        if self._conn is None and not self.index_path.exists():
            return list(truths)
        names = dict(self._db().execute("SELECT run_id, name FROM runs").fetchall())
        return [t for t in truths if run_id_for(t) not in names and names.get(legacy_run_id_for(t)) != t.name]

    def has_run(self, run_id: str) -> bool:
        return run_id in self.existing_run_ids()

    def __len__(self) -> int:
        """Number of stored runs, quarantined ones included."""
        return len(self.existing_run_ids())

    @_guard_index
    def index_row(self, run_id: str) -> dict[str, Any]:
        """The index row of one run."""
        return self._row_dict(self._row(run_id))

    @_guard_index
    def fingerprint(self) -> str:
        """SHA-256 over the index (every table, its columns and its rows sorted) and the derived files beside
        it (DERIVED_FILES): any added, removed, re-written or re-quarantined run changes it, and so do new
        statistics. A checkpoint records it so a resume on other data is refused."""
        cur = self._db().cursor()
        cur.row_factory = None  # plain tuples: the repr of each row is what is hashed
        h = hashlib.sha256()
        tables = [r[0] for r in cur.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for table in tables:
            cols = [r[1] for r in cur.execute(f'PRAGMA table_info("{table}")')]
            h.update(f"{table}({','.join(cols)})".encode())
            for row in sorted(repr(r) for r in cur.execute(f'SELECT * FROM "{table}"')):
                h.update(row.encode())
        for name in DERIVED_FILES:
            extra = self.path / name
            if extra.is_file():
                h.update(name.encode())
                h.update(extra.read_bytes())
        return h.hexdigest()

    # ---------------------------------------------------------------- quarantine
    @_guard_index
    def quarantine(self, run_id: str, reasons: Iterable[str]) -> None:
        """Flag a run as quarantined with reasons (merged with earlier ones). Nothing is deleted."""
        reasons = [str(r) for r in reasons]
        if not reasons:
            raise InputValidationError("reasons", reasons, "at least one reason")
        conn = self._db()
        with conn:
            old = json.loads(self._row(run_id)["quarantine_reasons"])
            merged = old + [r for r in reasons if r not in old]
            conn.execute("UPDATE runs SET quarantined = 1, quarantine_reasons = ? WHERE run_id = ?",
                         (json.dumps(merged), run_id))

    @_guard_index
    def restore(self, run_id: str) -> None:
        """Lift the quarantine of a run and clear its reasons."""
        conn = self._db()
        with conn:
            self._row(run_id)
            conn.execute("UPDATE runs SET quarantined = 0, quarantine_reasons = '[]' WHERE run_id = ?", (run_id,))

    @_guard_index
    def quarantined_runs(self) -> list[dict[str, Any]]:
        return [self._row_dict(r) for r in
                self._db().execute("SELECT * FROM runs WHERE quarantined = 1 ORDER BY run_id")]

    # ---------------------------------------------------------------- meta
    @_guard_index
    def read_meta(self) -> dict[str, Any]:
        """All meta keys (schema_version, resolution, grid, and whatever else was written), decoded."""
        return {k: json.loads(v) for k, v in self._db().execute("SELECT key, value FROM meta")}

    @_guard_index
    def write_meta(self, values: Mapping[str, Any]) -> None:
        """Set meta keys (JSON-serialisable values) in one transaction."""
        if "schema_version" in values and values["schema_version"] != SCHEMA_VERSION:
            raise InputValidationError("schema_version", values["schema_version"], f"{SCHEMA_VERSION}")
        conn = self._db(create=True)
        with conn:
            conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, dumps(v)) for k, v in values.items()])

    # ---------------------------------------------------------------- reading
    def _group(self, run_id: str):
        self._own_process()
        if run_id not in self._where:
            row = self._row(run_id)
            self._where[run_id] = (row["shard"], row["group_path"])
        shard, gpath = self._where[run_id]
        return self._shard(shard)[gpath]

    @_guard_index
    def load_arrays(self, run_id: str) -> dict[str, Any]:
        """Fast read path: numpy arrays, text, labels and observed dict, no dataclasses or torch.

        Keys: run_id, system, resolution, seed, datacube_prior, datacube_true, spectrum (None when
        absent), graph_x, graph_edge_index (None when the run has no graph), physics_features (None in
        stores written before they were stored), coords (dict of arrays), text, labels (dict), observed
        (dict, NaN for unknown values), spectrum_reading (`world.features.spectrum_reading` of the extras),
        privileged (`world.labels.privileged_targets` of the truth: training targets, never inputs).
        """
        g = self._group(run_id)
        return {"run_id": run_id, "system": g.attrs["system"], "resolution": g.attrs["resolution"],
                "seed": int(g.attrs["seed"]), **_group_arrays(g)}

    @_guard_index
    def has_physics_features(self, run_id: str) -> bool:
        """Whether the run was stored with its physics features (False: written by an older astrobio)."""
        return "physics_features" in self._group(run_id)

    @_guard_index
    def record_hash_matches(self, run_id: str) -> bool | None:
        """Whether the run's JSON records still hash to the `record_hash` written with them (None for runs
        written before the attr existed)."""
        attrs = self._group(run_id).attrs
        if "record_hash" not in attrs:
            return None
        return record_hash({k: str(attrs[k]) for k in RECORD_ATTRS}) == str(attrs["record_hash"])

    @_guard_index
    def load_annotation(self, run_id: str) -> dict[str, Any]:
        return json.loads(self._group(run_id).attrs["annotation"])

    @_guard_index
    def load_run(self, run_id: str) -> PlanetRun:
        """The stored run, rebuilt exactly (extras come back as JSON types: arrays as lists)."""
        import torch
        from torch_geometric.data import Data

        a = self.load_arrays(run_id)
        if a["physics_features"] is None:
            raise StorageError(older_format_message(self.path, run_id))
        g = self._group(run_id)
        graph = None
        if a["graph_x"] is not None:
            graph = Data(x=torch.from_numpy(a["graph_x"]), edge_index=torch.from_numpy(a["graph_edge_index"]),
                         num_nodes=int(g["graph"].attrs["num_nodes"]))
        return PlanetRun(
            run_id=run_id, system=a["system"],
            truth=_record(PlanetTruth, json.loads(g.attrs["truth"])),
            observed=_record(PlanetObserved, a["observed"]),
            datacube_prior=a["datacube_prior"], datacube_true=a["datacube_true"], spectrum=a["spectrum"],
            graph=graph, text=a["text"], labels=a["labels"], coords=a["coords"],
            physics_features=a["physics_features"], resolution=a["resolution"], seed=a["seed"], extras=json.loads(g.attrs["extras"]),
        )


def older_format_message(path: Path | None, run_id: str) -> str:
    """Why a run without stored physics features cannot be served, and what to do."""
    where = f" in the store at {path}" if path is not None else ""
    return (f"run {run_id!r}{where} has no stored physics features: the store was written by an older astrobio; "
            f"simulate it again with `astrobio simulate` into a new directory")


def _record(cls, d: dict[str, Any]):
    """Rebuild a PlanetTruth/PlanetObserved from JSON, turning lists back into the tuples they were."""
    tuple_fields = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
    return dataclass_from_dict(cls, {k: tuple(v) if k in tuple_fields else v for k, v in d.items()})


def insert_rows(conn: sqlite3.Connection, rows: Iterable[Mapping[str, Any]]) -> None:
    """INSERT index rows (inside the caller's transaction)."""
    conn.executemany(f"INSERT INTO runs ({', '.join(_ROW_KEYS)}) VALUES ({', '.join('?' * len(_ROW_KEYS))})",
                     [tuple(r[k] for k in _ROW_KEYS) for r in rows])


__all__ = ["DERIVED_FILES", "INDEX_NAME", "STATS_FILE", "RealDataStorage", "WriteResult", "WrittenShard",
           "content_hash", "hashed_arrays", "older_format_message", "run_arrays", "row_from_group",
           "stored_content_hash",
           "MODALITIES", "SCHEMA_VERSION"]
