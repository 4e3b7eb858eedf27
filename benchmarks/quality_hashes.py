"""Cost of `data quality --verify-hashes` (the default) per 1,000 runs, at demo resolution.

Simulates a few real demo runs, stores copies of them under new run ids (the hash cost depends on the
arrays' size, not on their values), and times the assessment with and without hash verification.
Usage: python benchmarks/quality_hashes.py [--copies 200] [--out /tmp/astrobio-hash-bench]
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from astrobio.data.quality import AdvancedDataQualityManager
from astrobio.data.storage import RealDataStorage
from astrobio.simulation import simulate_to_store


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=200)
    ap.add_argument("--out", type=Path, default=Path("/tmp/astrobio-hash-bench"))
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    seed_store = args.out / "seed"
    simulate_to_store(seed_store, 4, seed=1, resolution="demo", workers=1, progress=False)
    src = RealDataStorage(seed_store)
    originals = [src.load_run(r["run_id"]) for r in src.list_stored_runs()]
    store = RealDataStorage(args.out / "store")
    batch = []
    for i in range(args.copies):
        run = originals[i % len(originals)]
        run.run_id = f"copy-{i:05d}"
        batch.append(run.__class__(**{**run.__dict__}))
    store.write_runs(batch)
    manager = AdvancedDataQualityManager()
    timings = {}
    for verify in (False, True, False, True):  # twice each, so the page cache is warm for both
        t0 = time.perf_counter()
        manager.assess_data_quality(store, quarantine=False, verify_hashes=verify)
        timings[verify] = time.perf_counter() - t0
    per_k = {k: 1000 * v / args.copies for k, v in timings.items()}
    print(f"{args.copies} runs, grid {originals[0].datacube_true.shape}: quality {per_k[False]:.1f} s/1000 runs "
          f"without hashes, {per_k[True]:.1f} s/1000 runs with; hashes cost {per_k[True] - per_k[False]:.1f} s "
          f"per 1,000 runs ({100 * (per_k[True] / per_k[False] - 1):.0f} %)")


if __name__ == "__main__":
    main()
