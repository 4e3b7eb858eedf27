"""`astrobio simulate --out STORE`: planet runs into an HDF5 + SQLite store, resumable, on a dask cluster."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


class Source(str, Enum):
    synthetic = "synthetic"
    catalog = "catalog"


class Resolution(str, Enum):
    demo = "demo"
    seed = "seed"


def simulate(
    out: Path = typer.Option(Path("data/runs"), "--out", help="store directory to write (or resume)"),
    n: int = typer.Option(200, "--n", help="number of planets (catalog: 0 = all modelled planets)"),
    seed: int = typer.Option(0, "--seed", help="seed of the synthetic planets and of every observation"),
    resolution: Resolution = typer.Option(Resolution.demo, "--resolution"),
    sim_workers: int = typer.Option(1, "--sim-workers", min=1,
                                    help="local simulation processes (a LocalCluster); unused with --scheduler"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler",
                                            help="a running dask scheduler: tcp://host:8786 or a scheduler file "
                                                 "(.json)"),
    source: Source = typer.Option(Source.synthetic, "--source"),
    survey: Optional[str] = typer.Option(None, "--survey",
                                         help="survey design of the synthetic planets "
                                              "(astrobio.world.survey.SURVEYS)"),
) -> None:
    """Simulate planet runs (synthetic survey or the real catalog) into an HDF5 + SQLite store."""
    # imported here, not at start-up: dask.distributed and the physics take seconds to import
    from astrobio.simulation import print_summary, simulate_to_store

    summary = simulate_to_store(out, n, seed, resolution.value, sim_workers, source.value, scheduler=scheduler,
                                **({"survey_name": survey} if survey else {}))
    print_summary(summary)
    console = Console()
    if summary["skipped"]:
        console.print(f"[yellow]{len(summary['skipped'])} catalog planets skipped; first reasons:")
        for row in summary["skipped"][:5]:
            console.print(f"  {row['name']}: {row['reason']}")
    if summary["failed"]:  # the others are stored; a rerun retries only these
        console.print(f"[red]{len(summary['failed'])} planets not stored (reasons above); rerun to retry them")
        raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    app.command()(simulate)
