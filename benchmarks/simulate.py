"""Planet runs per second at demo and seed resolution, and our EBM beside climlab's seasonal EBM.

    .venv/bin/python benchmarks/simulate.py [--n-demo 400] [--n-seed 40] [--workers 2]

Each figure is the median of `--repeats` runs, measured side by side in one process on this machine.
The store write is included (it is part of `astrobio simulate`); the one-off loading of the genome-scale
metabolic models is timed separately.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path


def runs_per_second(n: int, resolution: str, workers: int, seed: int) -> float:
    from astrobio.world import cli as world_cli

    out = Path(tempfile.mkdtemp(prefix="astrobio-bench-"))
    try:
        t0 = time.perf_counter()
        world_cli.simulate_to_store(out, n, seed, resolution, workers, "synthetic", progress=False)
        return n / (time.perf_counter() - t0)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-demo", type=int, default=400)
    ap.add_argument("--n-seed", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--climlab-planets", type=int, default=256)
    args = ap.parse_args()

    from astrobio.world import metabolism

    t0 = time.perf_counter()
    metabolism.warm_up()
    print(f"metabolic models: cold load + FBA warm-up {time.perf_counter() - t0:.1f} s (once per process tree)")
    for resolution, n in (("demo", args.n_demo), ("seed", args.n_seed)):
        rates = [runs_per_second(n, resolution, args.workers, seed) for seed in range(args.repeats)]
        print(f"{resolution:>5} resolution, {n} runs, {args.workers} workers: median {statistics.median(rates):.2f} "
              f"runs/s (all: {', '.join(f'{r:.2f}' for r in rates)})")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from climate_ebm import _report, compare_with_climlab
    except ImportError as exc:  # climlab is a benchmark extra: pip install -e '.[bench]'
        print(f"climlab comparison skipped: {exc}")
        return
    for grid in ("demo", "seed"):
        _report(compare_with_climlab(grid, args.climlab_planets))

if __name__ == "__main__":
    main()
