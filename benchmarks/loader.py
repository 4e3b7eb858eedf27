"""Loader throughput: samples per second from the HDF5/SQLite store to a collated `MultiModalBatch`.

For each resolution it builds a store from a few simulated planets (or uses --data), opens the train
split (stats and tokenizer are computed on first open and timed separately), then reads epochs with
0 and 2 workers.
"first epoch" includes worker start-up; "steady" is the mean over the following epochs (persistent
workers), with the per-process item cache off (every item read from HDF5) and on (default 256 MB).
Prints a table, and the rows as JSON to --out when given.

    .venv/bin/python benchmarks/loader.py                       # demo and seed, 0 and 2 workers
    .venv/bin/python benchmarks/loader.py --resolutions demo --runs 512 --epochs 3
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

DEFAULT_RUNS = {"demo": 256, "seed": 64}
DEFAULT_TEMPLATES = {"demo": 8, "seed": 4}


def build_store(path: Path, runs: int, templates: int, resolution: str, seed: int) -> float:
    """Simulate `templates` synthetic planets and store `runs` runs cycling through them (each copy its own
    run_id and system), so the store has the simulator's real array sizes without simulating every run.
    Returns the seconds the simulation took."""
    from astrobio.data.storage import RealDataStorage
    from astrobio.world import simulate_runs
    from astrobio.world.simulate import sample_population

    t0 = time.perf_counter()
    sims = simulate_runs(sample_population(templates, seed, resolution), seed=seed, resolution=resolution)
    sim_s = time.perf_counter() - t0
    copies = [replace(sims[k % templates], run_id=f"{sims[k % templates].run_id}-{k:05d}",
                      system=f"{sims[k % templates].system}-{k:05d}") for k in range(runs)]
    store = RealDataStorage(path)
    for start in range(0, runs, 64):  # one shard per 64 runs, as the simulate CLI writes them
        store.write_runs(copies[start:start + 64])
    store.close()
    return sim_s


def read_epochs(dataset, batch_size: int, workers: int, epochs: int, seed: int) -> dict:
    """Seconds per epoch of a shuffled loader; the first epoch includes worker start-up."""
    from astrobio.data.dataset import make_dataloader

    loader = make_dataloader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers, seed=seed)
    times, n = [], 0
    for _ in range(epochs):
        t0 = time.perf_counter()
        n = sum(len(b) for b in loader)
        times.append(time.perf_counter() - t0)
    steady = times[1:] or times
    return {"samples": n, "first_epoch_s": times[0], "first_epoch_sps": n / times[0],
            "steady_sps": n / (sum(steady) / len(steady))}


def bench_resolution(resolution: str, data: Path | None, runs: int, templates: int, batch_size: int,
                     workers: list[int], epochs: int, seed: int) -> list[dict]:
    from astrobio.data.dataset import PlanetRunDataset

    with tempfile.TemporaryDirectory(prefix=f"astrobio-loader-{resolution}-") as tmp:
        path, sim_s = data, 0.0
        if path is None:
            path = Path(tmp) / "store"
            sim_s = build_store(path, runs, templates, resolution, seed)
        t0 = time.perf_counter()
        PlanetRunDataset(path, "train", seed=seed)
        open_s = time.perf_counter() - t0
        rows = []
        for cache_mb in (0.0, 256.0):
            for w in workers:
                ds = PlanetRunDataset(path, "train", seed=seed, cache_mb=cache_mb)  # fresh: empty cache
                r = read_epochs(ds, batch_size, w, epochs, seed)
                rows.append({"resolution": resolution, "grid": "x".join(map(str, ds.grid_shape[2:])), "workers": w,
                             "cache_mb": cache_mb, "batch_size": batch_size, "train_runs": len(ds),
                             "simulate_s": sim_s, "first_open_s": open_s, **r})
        rows[0]["item_ms"] = 1e3 * _item_seconds(PlanetRunDataset(path, "train", seed=seed, cache_mb=0))
        return rows


def _item_seconds(ds, n: int = 32) -> float:
    """Mean seconds of one __getitem__ in this process (read + normalise + tokenise)."""
    idx = [i % len(ds) for i in range(n)]
    ds[idx[0]]
    t0 = time.perf_counter()
    for i in idx:
        ds[i]
    return (time.perf_counter() - t0) / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--resolutions", nargs="+", default=["demo", "seed"], choices=["demo", "seed"])
    p.add_argument("--runs", type=int, default=None, help="runs in the store per resolution (default: demo 256, "
                                                          "seed 64)")
    p.add_argument("--templates", type=int, default=None, help="planets actually simulated, cycled to fill the "
                                                               "store (default: demo 8, seed 4)")
    p.add_argument("--data", type=Path, default=None, help="an existing store (one resolution) instead of simulating")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)  # loader work is per-sample numpy/h5py; keep the main process from oversubscribing
    rows = []
    for res in args.resolutions:
        rows += bench_resolution(res, args.data, args.runs or DEFAULT_RUNS[res],
                                 args.templates or DEFAULT_TEMPLATES[res], args.batch_size, args.workers,
                                 args.epochs, args.seed)
    print(f"{'resolution':<10} {'grid':<9} {'workers':>7} {'cache MB':>8} {'samples':>7} {'1st epoch s':>11} "
          f"{'1st samples/s':>13} {'steady samples/s':>16}")
    for r in rows:
        print(f"{r['resolution']:<10} {r['grid']:<9} {r['workers']:>7} {r['cache_mb']:>8.0f} {r['samples']:>7} "
              f"{r['first_epoch_s']:>11.2f} {r['first_epoch_sps']:>13.0f} {r['steady_sps']:>16.0f}")
    for r in rows:
        if "item_ms" in r:
            print(f"{r['resolution']}: simulate {args.templates or DEFAULT_TEMPLATES[r['resolution']]} planets "
                  f"{r['simulate_s']:.1f} s; first open (train stats + tokenizer) {r['first_open_s']:.2f} s; "
                  f"one uncached item {r['item_ms']:.1f} ms in the main process")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
