"""`astrobio evaluate RUN`, `astrobio predict RUN`, `astrobio report RUN`: scoring a trained run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from astrobio.errors import InputValidationError

RUN = typer.Argument(..., metavar="RUN", help="training run directory (written by `astrobio train`)")


def evaluate(run: Path = RUN,
             data: Optional[Path] = typer.Option(None, "--data", metavar="STORE",
                                                 help="store to score (default: the one trained on)"),
             split: str = typer.Option("test", "--split"),
             baselines: bool = typer.Option(True, "--baselines/--no-baselines")):
    """Model, ablations and baselines on one split: RUN/metrics.json and a table (the baselines use the run's
    training seed)."""
    # imported here, not at start-up: torch, LightGBM and the models take seconds to import
    from astrobio.evaluation.evaluate import evaluate_run, print_tables

    print_tables(evaluate_run(run, split=split, data=data, with_baselines=baselines))


def predict(run: Path = RUN,
            catalog_file: Optional[Path] = typer.Argument(
                None, metavar="[FILE]", help="with --catalog: a CSV with the shipped catalog's columns"),
            planet: Optional[str] = typer.Option(None, "--planet", help="Venus, Earth, Mars or a catalog name"),
            catalog: bool = typer.Option(False, "--catalog",
                                         help="every modelled planet of the shipped catalog, or of FILE"),
            out: Optional[Path] = typer.Option(None, "--out", help="CSV file to write (--catalog: default "
                                                                   "RUN/predictions.csv)"),
            seed: int = typer.Option(0, "--seed", help="seed of the simulated inputs and the MC-dropout passes")):
    """Class probabilities ± MC-dropout spread and modality weights for real planets:
    `predict RUN --planet NAME`, `predict RUN --catalog` or `predict RUN --catalog FILE`."""
    if catalog == (planet is not None):
        raise InputValidationError("planet", planet, "exactly one of --planet NAME or --catalog [FILE]")
    if catalog_file is not None and not catalog:
        raise InputValidationError("FILE", str(catalog_file), "a catalog FILE only with --catalog")
    # imported here, not at start-up: torch, the models and the simulator take seconds to import
    from astrobio.evaluation import predict as P
    from astrobio.evaluation.inference import load_trained
    from astrobio.seeding import seed_everything

    seed_everything(seed)
    if catalog:
        rows, skipped = P.predict_catalog(run, out, seed=seed, catalog_file=catalog_file)
        typer.echo(f"{len(rows)} catalog planets predicted -> {out or run / 'predictions.csv'}; "
                   f"{len(skipped)} skipped (cannot be parsed or modelled)")
        if catalog_file is not None:  # a user's own file: say why for every row
            for name, reason in skipped:
                typer.echo(f"  skipped {name}: {reason}")
        return
    row = P.predict_truths(load_trained(run), [P.truth_for(planet)], seed=seed,
                           temperature=P.temperature_of(run))[0]
    P.print_prediction(row)
    if out:
        P.write_csv([row], out)


def report(run: Path = RUN):
    """Self-contained HTML report of an evaluated run: RUN/report.html."""
    if not (run / "metrics.json").is_file():
        raise InputValidationError("run", str(run), "a run evaluated by `astrobio evaluate RUN` (RUN/metrics.json)")
    # imported here, not at start-up: numpy and the report module add most of a second to start-up
    from astrobio.evaluation.report import write_report

    typer.echo(f"report: {write_report(run)}")


def register(app: typer.Typer) -> None:
    for command in (evaluate, predict, report):
        app.command()(command)
