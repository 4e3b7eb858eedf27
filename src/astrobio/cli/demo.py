"""`astrobio demo --out DIR`: simulate, check, train, evaluate, predict and report, end to end."""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_RUNS = 2500
DEMO_TRAIN_STEPS = 250  # small's batch 64: 16,000 samples (8 epochs); early stopping (patience 4) ends it on the plateau first
DEMO_TRAIN_MINUTES = 8.0  # time guard only; the cosine schedule is planned on DEMO_TRAIN_STEPS


def demo(out: Path = typer.Option(Path("demo_output"), "--out", help="directory to write: DIR/data, DIR/run"),
         seed: int = typer.Option(0, "--seed", help="seed of the simulation, the training and the predictions"),
         n_runs: int = typer.Option(DEMO_RUNS, "--n", help="planet runs to simulate"),
         train_steps: int = typer.Option(DEMO_TRAIN_STEPS, "--train-steps"),
         train_minutes: float = typer.Option(DEMO_TRAIN_MINUTES, "--train-minutes"),
         sim_workers: int = typer.Option(2, "--sim-workers", min=1, help="simulation processes"),
         preset: str = typer.Option("small", "--preset")):
    """Simulate, check, train, evaluate, predict and report, end to end."""
    # imported here, not at start-up: the demo imports every layer (torch, dask, the physics)
    from astrobio.demo import run_demo

    run_demo(out, seed, n_runs, train_steps, train_minutes, sim_workers, preset)


def register(app: typer.Typer) -> None:
    app.command()(demo)
