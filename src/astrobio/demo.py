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

DEMO_PATIENCE = 4  # evaluations (the preset's eval_every) without a gain in its select_on score before stopping
# The demo's peak learning rate relative to the preset's own (chosen at 16k training runs). On the demo store's
# 2,000 training runs (seed 0, `small`) the validation log-loss, which picks best.pt, reached 0.665 at half of
# `small`'s 4e-4 (step 169) against 0.688 at 4e-4 (step 91, then rising): the smaller set overfits sooner at the
# larger rate. A ratio, not a number, so `--preset` keeps its own scale.
DEMO_LR_SCALE = 0.5
DEMO_CATALOG_MC = 5  # MC-dropout passes per catalog planet (20 for single planets)
# Intra-op threads of the training process. Two, although one loader worker shares the two cores: the loader is
# busy only in the first epoch (its item cache then serves every batch), so from the second epoch on both cores
# compute (~1.5x per step on 2 cores; benchmarks/train_compare.py measures the whole training side by side).
DEMO_TRAIN_THREADS = 2


def train_environment(environ, threads: int = DEMO_TRAIN_THREADS) -> dict[str, str]:
    """`environ` with the training process's thread counts, `threads` for OpenMP, MKL and OpenBLAS alike
    (torch's CPU matrix multiplies obey MKL's count), whatever the caller's environment says."""
    n = str(threads)
    return {**environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "OPENBLAS_NUM_THREADS": n}


def _step(console, title: str) -> float:
    console.rule(f"[bold cyan]{title}")
    return time.perf_counter()


def run_demo(out: Path, seed: int, n_runs: int, train_steps: int, train_minutes: float, sim_workers: int,
             preset: str) -> None:
    """The six steps into `out`/data (the store) and `out`/run (the trained run), printing as it goes."""
    if n_runs < 1:
        raise InputValidationError("n", n_runs, "at least 1 planet run")
    # the training settings are checked before minutes of simulation, not after
    config = TrainConfig.for_preset(preset, max_steps=train_steps, max_minutes=train_minutes, seed=seed)
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
    cmd = [sys.executable, "-m", "astrobio.cli", "train", str(data), "--out", str(run), "--preset", preset,
           "--max-steps", str(train_steps), "--lr", str(config.lr * DEMO_LR_SCALE), "--max-minutes",
           str(train_minutes), "--seed", str(seed), "--loader-workers", "1", "--resume", "auto",
           "--patience", str(DEMO_PATIENCE)]
    subprocess.run(cmd, check=True, env=train_environment(os.environ))
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
