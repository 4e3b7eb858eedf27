"""The store-writing simulation engine: planet runs simulated on a `dask.distributed` cluster into one store.

It sits above `world/` (the physics) and `data/` (the store). One task simulates one chunk of true planets
and writes that chunk's shard itself (`RealDataStorage.write_shard`, atomic); the client holds the store's
write lock for the whole simulation and is the only writer of the SQLite index: it records each chunk's
runs in one transaction as the chunk's result arrives (`record_shard`), so a run is listed only once its
shard is complete, and a killed simulation resumes by simulating exactly the runs the index lacks.

Failure handling, so a simulation never hangs:
- a planet whose simulation raises is reported (run id, planet, reason) and the rest of its chunk is
  stored: the task re-simulates the chunk one planet at a time to isolate it (a run depends only on its
  truth and the seed, so this changes no stored value). Errors cross the process boundary as text, never
  as a pickled exception (a typed error that cannot be rebuilt from its pickle is how the old
  `multiprocessing` pool hung);
- a worker that dies mid-task has its chunk rerun on another worker by the scheduler; a chunk whose
  workers keep dying (`distributed.scheduler.allowed-failures`) is reported like a failed planet.

Without a scheduler address the client starts a `LocalCluster`: `workers` processes, or for one worker a
thread in this process (no process start, and the metabolic models this process already loaded are reused).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.config
from distributed import Client, LocalCluster, WorkerPlugin, as_completed

from astrobio.data.storage import RealDataStorage, WrittenShard
from astrobio.data.summary import class_and_modality_counts
from astrobio.errors import InputValidationError
from astrobio.io import write_json
from astrobio.world import catalog, metabolism, simulate, survey
from astrobio.world.types import CLASS_NAMES, PlanetTruth, run_id_for

SOURCES = ("synthetic", "catalog")
# Planets per task at most. The climate is vectorised over a task's planets and costs about half as much per
# planet in batches of 256 as of 64 at demo resolution (a demo run is ~50 kB in memory); a seed-grid run holds
# ~4 MB of datacubes, so its tasks stay at 64.
MAX_CHUNK = {"demo": 256}
DEFAULT_MAX_CHUNK = 64
MIN_CHUNK = 16  # the smallest task sizing makes (the last one may be smaller): below, per-task costs dominate


@dataclass(frozen=True)
class Failure:
    """A planet that could not be simulated or stored, and why."""

    run_id: str
    name: str
    reason: str


@dataclass(frozen=True)
class ChunkResult:
    """What a task sends back: the shard it wrote (None if no run of the chunk succeeded) and failures."""

    written: WrittenShard | None
    failures: tuple[Failure, ...]


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _simulate(truths: list[PlanetTruth], seed: int, resolution: str, source: str, survey_name: str):
    if source == "synthetic":  # survey planets are abiotic until assign_biospheres gives them life
        return simulate.simulate_population_runs(truths, seed=seed, resolution=resolution, survey_name=survey_name)
    return simulate.simulate_runs(truths, seed=seed, resolution=resolution)


def simulate_chunk(store: str, shard: str, truths: list[PlanetTruth], seed: int, resolution: str, source: str,
                   survey_name: str, config: dict[str, Any]) -> ChunkResult:
    """The task: simulate `truths` and write them as `shard` of `store`. Never raises for a planet's error
    (any exception of the physics or the store becomes a Failure the client can always unpickle)."""
    failures: list[Failure] = []
    try:
        runs = _simulate(truths, seed, resolution, source, survey_name)
    except Exception:  # noqa: BLE001 — isolate the planet(s) that fail, keep the others
        runs = []
        for t in truths:
            try:
                runs.extend(_simulate([t], seed, resolution, source, survey_name))
            except Exception as exc:  # noqa: BLE001 — reported to the client as text
                failures.append(Failure(run_id_for(t), t.name, _reason(exc)))
    if not runs:
        return ChunkResult(None, tuple(failures))
    try:
        written = RealDataStorage(store).write_shard(shard, runs, config=config)
    except Exception as exc:  # noqa: BLE001 — e.g. a full disk: every run of the chunk is reported
        return ChunkResult(None, (*failures, *(Failure(r.run_id, r.truth.name, _reason(exc)) for r in runs)))
    return ChunkResult(written, tuple(failures))


class WarmMetabolism(WorkerPlugin):
    """Load the genome-scale metabolic models and solve their FBA problems once per worker (~10 s of CPU),
    when the worker joins, instead of inside its first tasks. Runs in a thread so heartbeats go on."""

    name = "astrobio-warm-metabolism"

    async def setup(self, worker) -> None:
        await asyncio.get_running_loop().run_in_executor(None, metabolism.warm_up)


def _scheduler_client(address: str) -> Client:
    """A client of a running scheduler: an address (tcp://host:8786) or a scheduler file (JSON)."""
    expected = "the address (tcp://host:8786) or scheduler file (.json) of a running dask scheduler"
    if address.endswith(".json") and not Path(address).is_file():  # dask would wait for it to appear
        raise InputValidationError("scheduler", address, f"{expected}; no such file")
    kwargs = {"scheduler_file": address} if address.endswith(".json") else {"address": address}
    try:
        return Client(timeout="20s", **kwargs)
    except (OSError, ValueError) as exc:  # unreachable, refused, malformed, or no such scheduler file
        raise InputValidationError("scheduler", address, f"{expected} ({_reason(exc)})") from None


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Client]:
    """A client of `scheduler`, or of a LocalCluster of `workers` (closed, with its workers, on exit)."""
    if scheduler:
        with _scheduler_client(scheduler) as client:
            yield client
        return
    with _environment_restored():
        with warnings.catch_warnings():
            # The scheduler's HTTP endpoint moves to a free port when 8787 is taken; nothing for the user to do.
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=workers > 1,
                                   dashboard_address=None, silence_logs=logging.ERROR)
        with cluster, Client(cluster) as client:
            yield client


@contextmanager
def _environment_restored() -> Iterator[None]:
    """Put back, on exit, the variables a LocalCluster's nannies write into this process's environment.

    distributed sets `distributed.nanny.pre-spawn-environ` (OMP/MKL/OPENBLAS_NUM_THREADS=1,
    MALLOC_TRIM_THRESHOLD_=65536) in the parent's os.environ before spawning workers and leaves it there: every
    later torch matrix multiply of the caller, and every process it starts, ran on one thread with glibc
    trimming freed memory back to the OS (the demo's training ran at ~half speed)."""
    keys = list(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    saved = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def true_planets(source: str, n: int, seed: int, survey_name: str) -> tuple[list[PlanetTruth], list[tuple[str, str]]]:
    """The planets to simulate and the catalog planets skipped (name, reason)."""
    if source == "catalog":
        truths, skipped = catalog.catalog_planets()
        return (truths[:n] if n > 0 else truths), skipped
    if source != "synthetic":
        raise InputValidationError("source", source, f"one of {SOURCES}")
    return survey.sample_abiotic_population(n, seed, survey.survey_design(survey_name)), []


def store_summary(runs_index: list[dict]) -> dict:
    """Class balance and modality presence of a store's index rows."""
    n = len(runs_index)
    classes, mods = class_and_modality_counts(runs_index)
    return {"runs": n, "class_counts": classes,
            "class_fractions": {c: (k / n if n else 0.0) for c, k in classes.items()},
            "modalities_present": mods}


def task_sizes(n: int, workers: int, most: int) -> list[int]:
    """Planets per task for `n` planets on `workers` parallel workers: guided self-scheduling (Polychronopoulos
    & Kuck 1987, IEEE Trans. Comput. 36, 1425) with half its share: each task takes 1/(2 workers) of what is
    left, between MIN_CHUNK and `most`. The large, cheaper-per-planet tasks come first and the last ones are
    small, so no worker idles long while another finishes a large task."""
    sizes, left = [], n
    while left > 0:
        size = min(left, most, max(MIN_CHUNK, -(-left // (2 * max(workers, 1)))))
        sizes.append(size)
        left -= size
    return sizes


def _check_store_resolution(storage: RealDataStorage, resolution: str) -> None:
    # Refuse before simulating anything rather than after the first chunk's work.
    if RealDataStorage.exists(storage.path):
        stored = storage.read_meta().get("resolution", resolution)
        if stored != resolution:
            raise InputValidationError("resolution", resolution, f"{stored!r}, the resolution of {storage.path}")


def simulate_to_store(out: Path, n: int, seed: int, resolution: str, workers: int = 1, source: str = "synthetic",
                      chunk: int | None = None, progress: bool = True, scheduler: str | None = None,
                      survey_name: str = survey.DEFAULT_SURVEY) -> dict:
    """Simulate into `out`, skipping runs already stored (an interrupted simulation resumes where it stopped).

    `workers` local processes unless `scheduler` names a running dask scheduler. `chunk` planets per task, or
    None for `task_sizes` over the cluster's workers (a run's values do not depend on its task's size or
    companions). Returns the summary (also written to `out/simulate_summary_<source>.json`); `failed` lists
    the planets not stored and why.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if workers < 1:
        raise InputValidationError("workers", workers, "at least 1")
    if chunk is not None and chunk < 1:
        raise InputValidationError("chunk", chunk, "at least 1 (or None: sized to the cluster)")
    out = Path(out)
    console = Console(stderr=True)
    truths, skipped = true_planets(source, n, seed, survey_name)
    storage = RealDataStorage(out)
    _check_store_resolution(storage, resolution)
    todo = storage.pending(truths)  # also recognises catalog runs stored under the older slug-only ids
    config = {"command": "simulate", "n": n, "seed": seed, "resolution": resolution, "source": source}
    if source == "synthetic":
        config["survey"] = survey_name
    failures: list[Failure] = []
    t0 = time.perf_counter()
    # Connect before taking the lock: an unreachable scheduler then leaves the store untouched.
    with dask_client(scheduler, workers) if todo else nullcontext() as client, storage.writing():
        chunks = _chunks(todo, chunk, client, resolution) if todo else []
        shards = storage.reserve_shards(len(chunks))
        if chunks:
            with Progress(TextColumn("[bold]simulate"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          console=console, disable=not progress) as bar:
                client.register_plugin(WarmMetabolism())
                task = bar.add_task("runs", total=len(todo))
                token = secrets.token_hex(4)  # task keys unique on a scheduler other simulations share
                futures = {client.submit(simulate_chunk, str(out), shard, c, seed, resolution, source, survey_name,
                                         config, key=f"astrobio-simulate-{token}-{shard}", pure=False): c
                           for shard, c in zip(shards, chunks)}
                for future in as_completed(futures):
                    planets = futures.pop(future)
                    result = _result(future, planets)
                    if result.written is not None:
                        storage.record_shard(result.written)
                    for f in result.failures:
                        console.print(f"[red]not stored[/] {f.run_id} ({f.name}): {f.reason}")
                    failures.extend(result.failures)
                    bar.advance(task, len(planets))
    elapsed = time.perf_counter() - t0
    done = len(todo) - len(failures)
    summary = store_summary(storage.list_stored_runs(include_quarantined=True))
    summary.update({"simulated_now": done, "already_stored": len(truths) - len(todo), "seconds": elapsed,
                    "runs_per_second": done / elapsed if elapsed > 0 and done else 0.0,
                    "resolution": resolution, "seed": seed, "source": source, "survey": config.get("survey"),
                    "workers": None if scheduler else workers, "scheduler": scheduler,
                    "failed": [{"run_id": f.run_id, "name": f.name, "reason": f.reason} for f in failures],
                    "skipped": [{"name": nm, "reason": why} for nm, why in skipped]})
    write_json(out / f"simulate_summary_{source}.json", summary)
    return summary


def _chunks(todo: list[PlanetTruth], chunk: int | None, client: Client, resolution: str) -> list[list[PlanetTruth]]:
    if chunk is not None:
        sizes = [chunk] * -(-len(todo) // chunk)
    else:
        sizes = task_sizes(len(todo), sum(client.nthreads().values()), MAX_CHUNK.get(resolution, DEFAULT_MAX_CHUNK))
    starts = [0]
    for size in sizes:
        starts.append(starts[-1] + size)
    return [todo[a:b] for a, b in zip(starts[:-1], starts[1:])]


def _result(future, truths: list[PlanetTruth]) -> ChunkResult:
    """The chunk's result, or every planet of it reported when the task itself was lost."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 — KilledWorker (workers kept dying), a lost connection, ...
        return ChunkResult(None, tuple(Failure(run_id_for(t), t.name, _reason(exc)) for t in truths))
    finally:
        future.release()


def print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    names = [name.replace("_", " ") for name in CLASS_NAMES]
    table = Table(title=f"planet runs ({summary['source']}, {summary['resolution']} resolution)")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("runs in store", str(summary["runs"]))
    table.add_row("simulated now / already stored", f"{summary['simulated_now']} / {summary['already_stored']}")
    for c, name in enumerate(names):
        table.add_row(f"class {c} ({name})",
                      f"{summary['class_counts'][c]} ({100 * summary['class_fractions'][c]:.1f}%)")
    for m, k in summary["modalities_present"].items():
        table.add_row(f"{m} present", f"{k} ({100 * k / max(summary['runs'], 1):.0f}%)")
    table.add_row("throughput", f"{summary['runs_per_second']:.1f} runs/s ({summary['seconds']:.1f} s)")
    if summary["failed"]:
        table.add_row("[red]planets not stored", f"{len(summary['failed'])} (run ids and reasons above and in "
                                                 f"simulate_summary_{summary['source']}.json)")
    if summary["skipped"]:
        table.add_row("catalog planets skipped", f"{len(summary['skipped'])} (reasons in simulate_summary_catalog.json)")
    Console().print(table)


__all__ = ["ChunkResult", "DEFAULT_MAX_CHUNK", "Failure", "MAX_CHUNK", "MIN_CHUNK", "SOURCES", "WarmMetabolism",
           "dask_client", "print_summary", "simulate_chunk", "simulate_to_store", "store_summary", "task_sizes",
           "true_planets"]
