"""`astrobio simulate`: planet runs into an HDF5 + SQLite store, resumable, on a dask cluster (astrobio.simulation)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from astrobio.errors import AstrobioError, InputValidationError


class Source(str, Enum):
    synthetic = "synthetic"
    catalog = "catalog"


class Resolution(str, Enum):
    demo = "demo"
    seed = "seed"


def _fail(exc: AstrobioError) -> None:
    """One line on stderr and exit code 2 (the convention of issue 12 item 5), never a traceback."""
    msg = f"{exc.field}={exc.value!r}: expected {exc.expected}" if isinstance(exc, InputValidationError) else str(exc)
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(code=2)


def register(app: typer.Typer) -> None:
    @app.command()
    def simulate(
        n: int = typer.Option(200, "--n", help="number of planets (catalog: 0 = all modelled planets)"),
        out: Path = typer.Option(Path("data/runs"), "--out", help="store directory"),
        seed: int = typer.Option(0, "--seed"),
        resolution: Resolution = typer.Option(Resolution.demo, "--resolution"),
        sim_workers: int = typer.Option(1, "--sim-workers", min=1,
                                        help="local simulation processes (a LocalCluster); unused with --scheduler"),
        workers: int = typer.Option(None, "--workers", min=1, hidden=True, help="old name of --sim-workers"),
        scheduler: str = typer.Option(None, "--scheduler",
                                      help="a running dask scheduler: tcp://host:8786 or a scheduler file (.json)"),
        source: Source = typer.Option(Source.synthetic, "--source"),
        survey: str = typer.Option(None, "--survey",
                                   help="survey design of the synthetic planets (astrobio.world.survey.SURVEYS)"),
    ):
        """Simulate planet runs (synthetic survey or the real catalog) into an HDF5 + SQLite store."""
        # Imported here: dask.distributed and the physics take seconds to import, and every other command
        # (and `astrobio --help`) would pay for them.
        from rich.console import Console

        from astrobio.simulation import print_summary, simulate_to_store

        try:
            summary = simulate_to_store(out, n, seed, resolution.value, workers or sim_workers, source.value,
                                        scheduler=scheduler, **({"survey_name": survey} if survey else {}))
        except AstrobioError as exc:
            _fail(exc)
        print_summary(summary)
        c = Console()
        if summary["skipped"]:
            c.print(f"[yellow]{len(summary['skipped'])} catalog planets skipped; first reasons:")
            for row in summary["skipped"][:5]:
                c.print(f"  {row['name']}: {row['reason']}")
        if summary["failed"]:  # the others are stored; a rerun retries only these
            c.print(f"[red]{len(summary['failed'])} planets not stored (reasons above); rerun to retry them")
            raise typer.Exit(code=1)
