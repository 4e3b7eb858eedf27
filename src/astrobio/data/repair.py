"""Scan a store for what its index misses or cannot read, and repair it without losing anything.

`scan_store` is read-only: it compares the index with the shards on disk and finds runs no index row
points to (a crash between a shard's rename and its index commit, a lost, emptied, corrupted or restored
older index), indexed runs whose data is gone, files that cannot be read and temp files of dead writers.
`repair_store` puts it right under the store's write lock: every readable run the index lacks is indexed
(a missing, empty or corrupt index is rebuilt from the shards alone, since every shard group carries its
run's complete metadata), indexed runs whose data is gone are quarantined with the reason, and files that
cannot be read, stale temp files, shards whose every run is also stored elsewhere and a corrupt index are
*moved* to `DIR/quarantine/` (UTC timestamp prefix), never deleted. `dry_run` returns the plan only.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from astrobio.data.storage import (INDEX_NAME, SCHEMA_VERSION, TMP_RE, RealDataStorage, _SCHEMA_SQL, _shard_names,
                                   dumps, insert_rows, row_from_group)
from astrobio.errors import StorageError
from astrobio.io import atomic_path, fsync_dir

QUARANTINE_DIR = "quarantine"
INDEX_SIDECARS = ("-wal", "-shm")  # SQLite WAL files that belong to (only) the index they sit beside


@dataclass
class StoreScan:
    """What `scan_store` found. Keys of `unreadable` are shard file names or `shard:run_id`."""

    path: Path
    index_state: str  # "ok", "missing", "empty" or "corrupt: <sqlite message>"
    indexed: dict[str, str] = field(default_factory=dict)  # run_id → shard, per the index (when readable)
    shards: list[str] = field(default_factory=list)
    unindexed: dict[str, dict[str, Any]] = field(default_factory=dict)  # run_id → index row rebuilt from its shard
    copies: dict[str, list[str]] = field(default_factory=dict)  # shard → its runs that are indexed from another shard
    unreadable: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # indexed run_id → why its data is gone
    stale_temps: list[str] = field(default_factory=list)
    recomputed_hashes: int = 0  # unindexed runs from shards older than the content_hash attr
    writer_active: bool = False  # a writer holds the lock: its shards may be written but not listed yet

    @property
    def orphan_shards(self) -> list[str]:
        """Shards no index row points to."""
        referenced = set(self.indexed.values())
        return [s for s in self.shards if s not in referenced]

    @property
    def redundant_shards(self) -> list[str]:
        """Orphan, readable shards whose every run is indexed from another shard: nothing in them is lost."""
        return [s for s in self.orphan_shards if s in self.copies
                and not any(k == s or k.startswith(f"{s}:") for k in self.unreadable)
                and not any(r["shard"] == s for r in self.unindexed.values())]

    @property
    def clean(self) -> bool:
        return not self.problems()

    def problems(self) -> list[str]:
        """One line per problem, for `data quality` (empty when the store is clean). While a writer is
        active, runs it has not listed yet are in flight, not lost, and are not reported."""
        out = [] if self.index_state == "ok" else [f"index {self.index_state}"]
        by_shard: dict[str, int] = {}
        for row in ([] if self.writer_active else self.unindexed.values()):
            by_shard[row["shard"]] = by_shard.get(row["shard"], 0) + 1
        out += [f"unindexed: {n} runs in {s} are not in the index" for s, n in sorted(by_shard.items())]
        out += [f"redundant shard: {s} (its {len(self.copies[s])} runs are indexed from other shards)"
                for s in ([] if self.writer_active else self.redundant_shards)]
        out += [f"unreadable: {k}: {v}" for k, v in sorted(self.unreadable.items())]
        out += [f"missing: {k}: {v}" for k, v in sorted(self.missing.items())]
        out += [f"stale temp file: {t}" for t in self.stale_temps]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"index_state": self.index_state, "indexed_runs": len(self.indexed), "shards": len(self.shards),
                "orphan_shards": self.orphan_shards, "unindexed_runs": sorted(self.unindexed),
                "redundant_shards": self.redundant_shards, "unreadable": dict(self.unreadable),
                "missing": dict(self.missing), "stale_temps": list(self.stale_temps), "clean": self.clean}


def _read_index(path: Path) -> tuple[str, dict[str, str]]:
    """(state, run_id → shard) of the index at `path`, without creating or changing it."""
    if not path.exists():
        return "missing", {}
    if path.stat().st_size == 0:
        return "empty", {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                return f"corrupt: {check}", {}
            return "ok", dict(conn.execute("SELECT run_id, shard FROM runs").fetchall())
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return f"corrupt: {exc}", {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _stale_temps(store: RealDataStorage, writer_active: bool) -> list[str]:
    """Temp files no live writer owns: all of them when nobody holds the lock, else those of dead pids."""
    out = []
    for p in sorted(store.path.iterdir()):
        m = TMP_RE.match(p.name)
        if m and (not writer_active or not _pid_alive(int(m.group(1) or m.group(2)))):
            out.append(p.name)
    return out


def _scan_shard(path: Path, scan: StoreScan) -> dict[str, dict[str, Any]]:
    """run_id → rebuilt row of every readable run in one shard; read failures go to scan.unreadable."""
    import h5py

    shard = path.name
    rows: dict[str, dict[str, Any]] = {}
    try:
        with h5py.File(path, "r") as f:
            for run_id in f["runs"]:
                try:
                    g = f["runs"][run_id]
                    recomputed = "content_hash" not in g.attrs
                    row = row_from_group(g, shard)
                    if row["run_id"] != run_id:
                        raise StorageError(f"group {run_id} says run_id {row['run_id']!r}")
                    rows[run_id] = {**row, "_recomputed_hash": recomputed}
                except Exception as exc:  # any corruption of one group: that run, not the shard
                    scan.unreadable[f"{shard}:{run_id}"] = f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # the file itself cannot be opened or has no runs group
        scan.unreadable[shard] = f"{type(exc).__name__}: {exc}"
        return {}
    return rows


def scan_store(store: RealDataStorage | str | os.PathLike, writer_active: bool | None = None) -> StoreScan:
    """Compare the index with the shards (read-only). `writer_active=None` probes the store's write lock."""
    store = store if isinstance(store, RealDataStorage) else RealDataStorage(store)
    if not store.path.is_dir():
        raise StorageError(f"no astrobio store at {store.path}")
    if writer_active is None:
        with store._write_lock(blocking=False) as locked:
            writer_active = not locked
    state, indexed = _read_index(store.path / INDEX_NAME)
    scan = StoreScan(store.path, state, indexed, _shard_names(store.path), writer_active=writer_active)
    for shard in scan.shards:
        for run_id, row in _scan_shard(store.path / shard, scan).items():
            home = indexed.get(run_id) or scan.unindexed.get(run_id, {}).get("shard")
            if home is None:
                scan.recomputed_hashes += row.pop("_recomputed_hash")
                scan.unindexed[run_id] = row
            elif home != shard:
                scan.copies.setdefault(shard, []).append(run_id)
    found: dict[str, set[str]] = {}
    for run_id, shard in indexed.items():
        if shard not in found:
            found[shard] = _group_names(store.path / shard)
        if run_id not in found[shard]:
            scan.missing[run_id] = (f"its shard {shard} is not in the store" if not (store.path / shard).exists()
                                    else f"its shard {shard} does not hold it (or cannot be read)")
    scan.stale_temps = _stale_temps(store, writer_active)
    return scan


def _group_names(path: Path) -> set[str]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return set(f["runs"])
    except Exception:  # reported as unreadable by _scan_shard
        return set()


@dataclass
class RepairReport:
    """What `repair_store` did (or, with dry_run, would do)."""

    dry_run: bool
    actions: list[str]
    runs_before: int  # rows of a usable index before (0 when it was missing, empty or corrupt)
    runs_after: int
    restored: list[str]  # run_ids indexed by the repair

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "actions": self.actions, "runs_before": self.runs_before,
                "runs_after": self.runs_after, "restored": self.restored}


def _quarantine_name(directory: Path, name: str, stamp: str) -> Path:
    target = directory / QUARANTINE_DIR / f"{stamp}-{name}"
    k = 1
    while target.exists():
        target, k = directory / QUARANTINE_DIR / f"{stamp}-{k}-{name}", k + 1
    return target


def _move_aside(directory: Path, name: str, stamp: str) -> Path:
    """Move `directory/name` into `directory/quarantine/` (same file system: a rename, never a copy+delete)."""
    target = _quarantine_name(directory, name, stamp)
    target.parent.mkdir(exist_ok=True)
    os.replace(directory / name, target)
    fsync_dir(target.parent)
    fsync_dir(directory)
    return target


def _grid_meta_from_shard(path: Path, group_path: str) -> dict[str, Any]:
    """The store meta `write_runs` records (resolution, grid), read back from one stored run."""
    import h5py

    with h5py.File(path, "r") as f:
        g = f[group_path]
        return {"schema_version": SCHEMA_VERSION, "resolution": str(g.attrs["resolution"]),
                "grid": {"shape": list(g["datacube_prior"].shape),
                         **{k: np.asarray(g["coords"][k][()]).tolist() for k in ("month", "lat_deg", "lon_deg",
                                                                                  "sigma")}}}


def _build_index(store: RealDataStorage, rows: list[dict[str, Any]], moves: list[str], stamp: str) -> None:
    """Write a fresh index holding `rows`, then move the old index files aside and put the new one in place."""
    with atomic_path(store.index_path) as tmp:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=DELETE")  # a single file, so the rename moves all of it
            conn.executescript(_SCHEMA_SQL)
            with conn:
                insert_rows(conn, rows)
                meta = _grid_meta_from_shard(store.path / rows[0]["shard"], rows[0]["group_path"]) if rows else \
                    {"schema_version": SCHEMA_VERSION}
                conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, dumps(v)) for k, v in meta.items()])
        finally:
            conn.close()
        for name in moves:  # old index and its WAL: a WAL left beside the new file would be replayed into it
            _move_aside(store.path, name, stamp)


def repair_store(store: RealDataStorage | str | os.PathLike, dry_run: bool = False) -> RepairReport:
    """Index every readable run the index lacks, quarantine indexed runs whose data is gone, and move
    unreadable files, stale temps, redundant shards and a corrupt index to `quarantine/` (see module doc)."""
    store = store if isinstance(store, RealDataStorage) else RealDataStorage(store)
    store.close()
    if not store.path.is_dir():
        raise StorageError(f"no astrobio store at {store.path}")
    with store._write_lock(blocking=False) as locked:
        if not locked:
            raise StorageError(f"a writer is using {store.path} right now; repair it when that has finished")
        scan = scan_store(store, writer_active=False)
        plan = _plan(store, scan)
        if not dry_run:
            _apply(store, scan, plan)
        runs_before = len(scan.indexed)
        restored = sorted(scan.unindexed)
        return RepairReport(dry_run, [a for a, _ in plan], runs_before, runs_before + len(restored), restored)


def _plan(store: RealDataStorage, scan: StoreScan) -> list[tuple[str, tuple]]:
    """(description, step) pairs; steps are applied in order by `_apply`."""
    plan: list[tuple[str, tuple]] = []
    rebuild = scan.index_state != "ok"
    if rebuild:
        old = [n for n in (INDEX_NAME, *(INDEX_NAME + s for s in INDEX_SIDECARS)) if (store.path / n).exists()]
        plan.append((f"rebuild the index ({scan.index_state}) from the shards: {len(scan.unindexed)} runs"
                     + (f"; move the old {', '.join(old)} to {QUARANTINE_DIR}/" if old else "")
                     + "; quarantine flags of the old index are not recoverable: run `astrobio data quality`",
                     ("rebuild", tuple(old))))
    elif scan.unindexed:
        plan.append((f"index {len(scan.unindexed)} runs found in shards but not in the index",
                     ("index", ())))
    if scan.recomputed_hashes:
        plan.append((f"{scan.recomputed_hashes} restored runs come from shards without a stored content_hash: "
                     "their hash is computed from the data as stored now", ("note", ())))
    for run_id, why in sorted(scan.missing.items()):
        plan.append((f"quarantine {run_id}: {why}", ("quarantine", (run_id, why))))
    unreadable_files = [k for k in scan.unreadable if ":" not in k]
    for name in sorted(unreadable_files) + scan.stale_temps + scan.redundant_shards:
        why = ("unreadable" if name in unreadable_files else
               "stale temp file of a dead writer" if name in scan.stale_temps else "redundant copy")
        plan.append((f"move {name} ({why}) to {QUARANTINE_DIR}/", ("move", (name,))))
    for key in sorted(k for k in scan.unreadable if ":" in k):
        plan.append((f"cannot read run {key} ({scan.unreadable[key]}); left in its shard", ("note", ())))
    return plan


def _apply(store: RealDataStorage, scan: StoreScan, plan: list[tuple[str, tuple]]) -> None:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    rows = sorted(scan.unindexed.values(), key=lambda r: r["run_id"])
    for _, (kind, args) in plan:
        if kind == "rebuild":
            _build_index(store, rows, list(args), stamp)
        elif kind == "index":
            with store._db() as conn:
                insert_rows(conn, rows)
        elif kind == "quarantine":
            store.quarantine(args[0], [f"missing:{args[1]}"])
        elif kind == "move":
            _move_aside(store.path, args[0], stamp)
    store.close()


def repair_summary(report: RepairReport) -> str:
    verb = "would restore" if report.dry_run else "restored"
    return (f"{verb} {len(report.restored)} runs: {report.runs_before} indexed before, {report.runs_after} after"
            + (" (dry run: nothing changed)" if report.dry_run else ""))


__all__ = ["StoreScan", "RepairReport", "scan_store", "repair_store", "repair_summary", "QUARANTINE_DIR"]

