"""`astrobio demo`: the whole path on the embedded default data, on a laptop (the command is
`astrobio.cli.demo`; this is what it runs).

simulate (synthetic survey) → quality control → train `small` → evaluate with baselines and
ablations → predict the real catalog and Venus/Earth/Mars → HTML report.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from astrobio.data import AdvancedDataQualityManager, RealDataStorage
from astrobio.errors import InputValidationError
from astrobio.evaluation import predict as P
from astrobio.evaluation.evaluate import evaluate_run, print_tables
from astrobio.evaluation.inference import load_trained
from astrobio.evaluation.report import write_report
from astrobio.simulation import print_summary, simulate_to_store
from astrobio.training.config import TrainConfig

DEMO_PATIENCE = 4  # evaluations (every 50 steps) without a gain in the preset's select_on score before stopping
DEMO_CATALOG_MC = 5  # MC-dropout passes per catalog planet (20 for single planets)
# The demo trains data-parallel: DEMO_TRAIN_RANKS processes under `torch.distributed.run` (gloo), one intra-op
# thread each, each rank a 1/DEMO_TRAIN_RANKS share of the global batch of DEMO_BATCH (the recipe is that of one
# process with batch 16: the ranks average their gradients). Intra-op threading scales poorly on this model's
# small operators (two threads ran ~1.25x one), two one-thread processes ~2x; with the gradient all-reduce, two
# ranks trained ~1.08x faster than one two-thread process (benchmarks/train_compare.py, docs/results.md).
DEMO_TRAIN_RANKS = 2
DEMO_BATCH = 16


def train_environment(environ, threads: int = 1) -> dict[str, str]:
    """`environ` with the training process's thread counts, `threads` for OpenMP, MKL and OpenBLAS alike
    (torch's CPU matrix multiplies obey MKL's count), whatever the caller's environment says."""
    n = str(threads)
    return {**environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def demo_train_ranks(cuda_available: bool, cpus: int) -> int:
    """How many ranks the demo trains on: one process where there is a GPU (it trains there; a second rank
    would want a second GPU), else one single-thread rank per CPU, at most DEMO_TRAIN_RANKS."""
    return 1 if cuda_available else max(1, min(DEMO_TRAIN_RANKS, cpus))


def train_command(data: Path, run: Path, preset: str, steps: int, minutes: float, seed: int, patience: int,
                  environ, ranks: int = DEMO_TRAIN_RANKS) -> tuple[list[str], dict[str, str]]:
    """The demo's training: the command line and environment of `ranks` data-parallel `astrobio train`
    processes on one machine (one process, no launcher, when `ranks` is 1), global batch DEMO_BATCH."""
    if ranks < 1 or DEMO_BATCH % ranks:
        raise InputValidationError("ranks", ranks, f"a divisor of the global batch {DEMO_BATCH}")
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(ranks)] if ranks > 1 else []
    cmd = [sys.executable, *launcher, "-m", "astrobio.cli", "train", str(data), "--out", str(run),
           "--preset", preset, "--max-steps", str(steps), "--batch-size", str(DEMO_BATCH // ranks),
           "--eval-every", "50", "--max-minutes", str(minutes), "--seed", str(seed),
           # the item cache of each rank serves its shard after the first epoch; a loader process per rank
           # would only take CPU from the two compute threads
           "--loader-workers", "0", "--resume", "auto", "--patience", str(patience)]
    return cmd, train_environment(environ)


def _step(console, title: str) -> float:
    console.rule(f"[bold cyan]{title}")
    return time.perf_counter()


def run_demo(out: Path, seed: int, n_runs: int, train_steps: int, train_minutes: float, sim_workers: int,
             preset: str) -> None:
    """The six steps into `out`/data (the store) and `out`/run (the trained run), printing as it goes."""
    if n_runs < 1:
        raise InputValidationError("n", n_runs, "at least 1 planet run")
    # the training settings are checked before minutes of simulation, not after
    TrainConfig.for_preset(preset, max_steps=train_steps, max_minutes=train_minutes, seed=seed)
    console = Console()
    t_start = time.perf_counter()
    data, run = out / "data", out / "run"

    _step(console, f"1/6 simulate {n_runs} planet runs (demo resolution)")
    summary = simulate_to_store(data, n_runs, seed, "demo", sim_workers, "synthetic")
    print_summary(summary)

    _step(console, "2/6 data quality")
    report = AdvancedDataQualityManager().assess_data_quality(RealDataStorage(data))
    console.print(report.render())

    t0 = _step(console, f"3/6 train `{preset}`: {train_steps} steps (at most {train_minutes:g} minutes)")
    import torch

    # the CPUs this process may run on (sched_getaffinity is Linux-only)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    ranks = demo_train_ranks(torch.cuda.is_available(), cpus)
    cmd, env = train_command(data, run, preset, train_steps, train_minutes, seed, DEMO_PATIENCE, os.environ, ranks)
    subprocess.run(cmd, check=True, env=env)
    console.print(f"trained in {time.perf_counter() - t0:.0f} s")

    _step(console, "4/6 evaluate: model, ablations and baselines on the test split")
    metrics = evaluate_run(run)
    print_tables(metrics)

    _step(console, "5/6 predict: Venus, Earth, Mars and the real catalog")
    loaded = load_trained(run)
    temperature = P.temperature_of(run)
    for row in P.predict_truths(loaded, [P.truth_for(n) for n in P.SOLAR_SYSTEM], seed=seed, temperature=temperature):
        P.print_prediction(row)
    rows, skipped = P.predict_catalog(run, seed=seed, mc_samples=DEMO_CATALOG_MC)
    console.print(f"{len(rows)} catalog planets predicted ({len(skipped)} skipped with reasons) -> "
                  f"{run / 'predictions.csv'}")

    _step(console, "6/6 report")
    path = write_report(run, data)
    console.rule("[bold green]done")
    console.print(f"report: [bold]{path.resolve()}[/]   (total {time.perf_counter() - t_start:.0f} s)")
    print_tables(metrics)
    # last line: the explorer page and API of this run (the first start predicts the catalog once, then caches)
    console.print(f"explore it in a browser: [bold]astrobio serve {escape(shlex.quote(str(run)))}[/]  ->  "
                  "http://127.0.0.1:8000/", soft_wrap=True)
