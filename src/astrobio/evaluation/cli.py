"""`astrobio evaluate`, `astrobio predict`, `astrobio report`.

A bad input, an unreadable or unsafe checkpoint or store is one line on stderr and exit code 2.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer


@contextmanager
def _clean_errors() -> Iterator[None]:
    from astrobio.errors import AstrobioError

    try:
        yield
    except AstrobioError as exc:
        typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(code=2) from None


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(run: Path = typer.Argument(..., help="training run directory"),
                 split: str = typer.Option("test", "--split"),
                 data: Optional[Path] = typer.Option(None, "--data", help="store (default: the one trained on)"),
                 baselines: bool = typer.Option(True, "--baselines/--no-baselines"),
                 seed: int = typer.Option(0, "--seed", help="seed of the baselines")):
        """Model, ablations and baselines on one split: RUN/metrics.json and a table."""
        from astrobio.evaluation.evaluate import evaluate_run, print_tables
        from astrobio.seeding import seed_everything

        seed_everything(seed)
        with _clean_errors():
            print_tables(evaluate_run(run, split=split, data=data, with_baselines=baselines))

    @app.command()
    def predict(run: Path = typer.Argument(..., help="training run directory"),
                catalog_file: Optional[Path] = typer.Argument(
                    None, metavar="[FILE]", help="with --catalog: a CSV with the shipped catalog's columns"),
                planet: Optional[str] = typer.Option(None, "--planet", help="Venus, Earth, Mars or a catalog name"),
                catalog: bool = typer.Option(False, "--catalog",
                                             help="every modelled planet of the shipped catalog, or of FILE"),
                out: Optional[Path] = typer.Option(None, "--out", help="CSV path (default RUN/predictions.csv)"),
                seed: int = typer.Option(0, "--seed")):
        """Class probabilities ± MC-dropout spread and modality weights for real planets:
        `predict RUN --planet NAME`, `predict RUN --catalog` or `predict RUN --catalog FILE`."""
        from astrobio.evaluation import predict as P
        from astrobio.evaluation.inference import load_trained
        from astrobio.seeding import seed_everything

        seed_everything(seed)
        if catalog == (planet is not None):
            raise typer.BadParameter("give exactly one of --planet NAME or --catalog [FILE]")
        if catalog_file is not None and not catalog:
            raise typer.BadParameter(f"{catalog_file}: a catalog FILE goes with --catalog")
        with _clean_errors():
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

    @app.command()
    def report(run: Path = typer.Argument(..., help="training run directory (after evaluate)"),
               seed: int = typer.Option(0, "--seed", help="unused by the report itself; accepted for uniformity")):
        """Self-contained HTML report: RUN/report.html."""
        from astrobio.evaluation.report import write_report

        typer.echo(f"report: {write_report(run)}")
