"""Simulation throughput with 1 and 2 local dask workers, and what the store's index costs at 10^6 runs.

    .venv/bin/python benchmarks/simulate.py [--n 1024] [--repeats 3] [--chunks auto,64] [--index-runs 1000000]
        [--skip-sim] [--skip-index]

Part 1, runs/s: both clusters are started (1 worker = a thread in this process, as `astrobio simulate
--sim-workers 1` runs it; 2 workers = 2 processes) and warmed by a first simulation (cluster start plus
each worker loading the metabolic models: reported as the one-off cost), then every (workers, chunk
policy) pair is timed in turn, `--repeats` times each, into fresh stores; the store write is included.
Chunk policies: `auto` (simulate_to_store's default, `simulation.task_sizes`) and fixed sizes. Medians
reported, with the 1-minute load average beside each (other users of the machine slow the wall clock; the
CPU per run, client plus workers, is the steadier figure: 2 cores / 30 runs/s = 66 ms per run).

Part 2, the index at scale: `--index-runs` index rows (`--runs-per-shard` per shard, the simulation's
chunk) are recorded through the storage's own two-step writer (`RealDataStorage.writing`/`record_shard`,
the code `astrobio simulate` uses; the shard files are empty stand-ins, since only the index is measured),
then listing every run, looking one up and quarantining one are timed. Medians reported.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path


def _median_s(fn, repeats: int) -> float:
    return _median_wall_cpu(fn, repeats)[0]


def _median_wall_cpu(fn, repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU (this process) seconds: on a shared machine the CPU time is the steadier."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def _cpu_s(client) -> float:
    """CPU seconds used so far by this process and by the cluster's worker processes (each counted once)."""
    per_worker = client.run(lambda: (os.getpid(), time.process_time()))
    return time.process_time() + sum(cpu for pid, cpu in per_worker.values() if pid != os.getpid())


def simulation_rates(n: int, repeats: int, seed: int, chunks: list[int | None]) -> None:
    from astrobio import simulation

    root = Path(tempfile.mkdtemp(prefix="astrobio-bench-sim-"))
    try:
        with simulation.dask_client(None, 1) as one, simulation.dask_client(None, 2) as two:
            clients = {1: one, 2: two}
            cases = [(w, c) for w in clients for c in chunks]
            rates: dict[tuple, list[float]] = {k: [] for k in cases}
            cpu_per_run: dict[tuple, list[float]] = {k: [] for k in cases}
            loads: dict[tuple, list[float]] = {k: [] for k in cases}
            for workers, client in clients.items():  # first run: plugin warm-up on every worker
                t0 = time.perf_counter()
                simulation.simulate_to_store(root / f"warm-{workers}", 2 * workers, seed, "demo", progress=False,
                                             scheduler=client.scheduler.address)
                print(f"{workers} worker(s): warm-up (metabolic models on each worker + first runs) "
                      f"{time.perf_counter() - t0:.1f} s, once per cluster")
            for r in range(repeats):
                for workers, chunk in cases:
                    client = clients[workers]
                    cpu0 = _cpu_s(client)
                    s = simulation.simulate_to_store(root / f"run-{workers}-{chunk}-{r}", n, seed + 1 + r, "demo",
                                                     chunk=chunk, progress=False, scheduler=client.scheduler.address)
                    cpu_per_run[workers, chunk].append((_cpu_s(client) - cpu0) / s["simulated_now"])
                    rates[workers, chunk].append(s["simulated_now"] / s["seconds"])
                    loads[workers, chunk].append(os.getloadavg()[0])
        for (workers, chunk), rs in rates.items():
            print(f"demo resolution, {n} runs, {workers} worker(s), chunk {chunk or 'auto'}: median "
                  f"{statistics.median(rs):.1f} runs/s (all: {', '.join(f'{x:.1f}' for x in rs)}; load average "
                  f"{', '.join(f'{x:.1f}' for x in loads[workers, chunk])}); CPU per run (client + workers) median "
                  f"{1e3 * statistics.median(cpu_per_run[workers, chunk]):.0f} ms")
        for chunk in chunks:
            print(f"chunk {chunk or 'auto'}: 2 vs 1 worker x"
                  f"{statistics.median(rates[2, chunk]) / statistics.median(rates[1, chunk]):.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _rows(shard: str, start: int, count: int) -> tuple[dict, ...]:
    """Index rows shaped like a synthetic survey's (the values matter only for their size)."""
    rows = []
    for i in range(start, start + count):
        name = f"BENCH-{i // 4:07d} {'bcde'[i % 4]}"
        rows.append({"run_id": f"synthetic-bench-{i:08d}", "name": name, "system": name[:-2], "source": "synthetic",
                     "shard": shard, "group_path": f"/runs/synthetic-bench-{i:08d}", "habitability_class": i % 3,
                     "resolution": "demo", "seed": 0, "has_datacube": 1, "has_graph": i % 3 == 2,
                     "has_spectrum": i % 5 != 0, "has_text": 1, "created_at": "2026-01-01T00:00:00+00:00",
                     "content_hash": f"{i:064x}", "quarantined": 0, "quarantine_reasons": "[]"})
    return tuple(rows)


def index_at_scale(n_runs: int, per_shard: int, repeats: int) -> None:
    from astrobio.data import RealDataStorage
    from astrobio.data.storage import WrittenShard

    root = Path(tempfile.mkdtemp(prefix="astrobio-bench-index-"))
    try:
        storage = RealDataStorage(root)
        grid = {"shape": [10, 12, 4, 8, 3], "month": list(range(1, 13)), "lat_deg": [0.0] * 4,
                "lon_deg": [0.0] * 8, "sigma": [0.0] * 3}
        n_shards = -(-n_runs // per_shard)
        t0 = time.perf_counter()
        with storage.writing():
            shards = storage.reserve_shards(n_shards)
            for k, shard in enumerate(shards):
                (root / shard).touch()  # stand-in: record_shard checks the file is there
                count = min(per_shard, n_runs - k * per_shard)
                storage.record_shard(WrittenShard(shard, _rows(shard, k * per_shard, count), "demo", grid))
        write_s = time.perf_counter() - t0
        size_mb = sum((root / f).stat().st_size for f in os.listdir(root) if f.startswith("index.sqlite")) / 1e6
        print(f"index: {n_runs:,} rows in {n_shards:,} shards ({per_shard}/shard), written in {write_s:.1f} s "
              f"({n_runs / write_s:,.0f} rows/s, one transaction per shard); index files {size_mb:.0f} MB")
        storage.close()
        storage = RealDataStorage(root)  # a fresh reader, as a training job would open it
        list_s, list_cpu = _median_wall_cpu(lambda: storage.list_stored_runs(include_quarantined=True), repeats)
        cols_s, cols_cpu = _median_wall_cpu(lambda: storage.index_columns(("run_id", "habitability_class")), repeats)
        ids_s, ids_cpu = _median_wall_cpu(storage.existing_run_ids, repeats)
        ids = [f"synthetic-bench-{i:08d}" for i in random.Random(0).sample(range(n_runs), 200)]
        look = [_median_s(lambda rid=rid: storage.index_row(rid), 1) for rid in ids]
        quar = [_median_s(lambda rid=rid: storage.quarantine(rid, ["benchmark"]), 1) for rid in ids[:50]]
        qlist_s = _median_s(storage.quarantined_runs, repeats)
        print(f"list all {n_runs:,} rows (list_stored_runs): median {list_s:.2f} s wall, {list_cpu:.2f} s CPU  "
              "[goal < 2 s]")
        print(f"list all {n_runs:,} runs' ids and classes (index_columns): median {cols_s:.2f} s wall, "
              f"{cols_cpu:.2f} s CPU  [goal < 2 s]")
        print(f"all run ids (existing_run_ids, what a resume reads): median {ids_s:.2f} s wall, {ids_cpu:.2f} s CPU")
        print(f"one lookup (index_row): median {1e3 * statistics.median(look):.3f} ms over {len(look)}  [goal < 1 ms]")
        print(f"quarantine one run: median {1e3 * statistics.median(quar):.2f} ms over {len(quar)} (one transaction)")
        print(f"list the {len(quar)} quarantined runs: median {1e3 * qlist_s:.1f} ms")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1024, help="runs per timed simulation")
    ap.add_argument("--chunks", default="auto", help="comma-separated chunk policies: auto or a fixed size")
    ap.add_argument("--skip-index", action="store_true", help="only the simulation part")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--index-runs", type=int, default=1_000_000)
    ap.add_argument("--runs-per-shard", type=int, default=64)
    ap.add_argument("--skip-sim", action="store_true", help="only the index part")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    if not args.skip_sim:
        chunks = [None if c == "auto" else int(c) for c in args.chunks.split(",")]
        simulation_rates(args.n, args.repeats, args.seed, chunks)
    if not args.skip_index:
        index_at_scale(args.index_runs, args.runs_per_shard, args.repeats)
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
