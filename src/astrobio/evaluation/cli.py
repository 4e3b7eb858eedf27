"""`astrobio evaluate`, `astrobio predict`, `astrobio report`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(run: Path = typer.Argument(..., help="training run directory"),
                 split: str = typer.Option("test", "--split"),
                 data: Optional[Path] = typer.Option(None, "--data", help="store (default: the one trained on)"),
                 baselines: bool = typer.Option(True, "--baselines/--no-baselines"),
                 seed: int = typer.Option(0, "--seed", help="seed of the baselines")):
        """Model, ablations and baselines on one split: RUN/metrics.json and a table."""
        from astrobio.evaluation.evaluate import evaluate_run, print_tables
        from astrobio.training.trainer import seed_everything

        seed_everything(seed)
        print_tables(evaluate_run(run, split=split, data=data, with_baselines=baselines))

    @app.command()
    def predict(run: Path = typer.Argument(..., help="training run directory"),
                planet: Optional[str] = typer.Option(None, "--planet", help="Venus, Earth, Mars or a catalog name"),
                catalog: bool = typer.Option(False, "--catalog", help="every modelled planet of the catalog"),
                out: Optional[Path] = typer.Option(None, "--out", help="CSV path (default RUN/predictions.csv)"),
                seed: int = typer.Option(0, "--seed")):
        """Class probabilities ± MC-dropout spread and modality weights for real planets."""
        from astrobio.evaluation import predict as P
        from astrobio.evaluation.inference import load_trained
        from astrobio.training.trainer import seed_everything

        seed_everything(seed)
        if catalog == (planet is not None):
            raise typer.BadParameter("give exactly one of --planet NAME or --catalog")
        if catalog:
            rows, skipped = P.predict_catalog(run, out, seed=seed)
            typer.echo(f"{len(rows)} catalog planets predicted -> {out or run / 'predictions.csv'}; "
                       f"{len(skipped)} skipped (cannot be modelled; reasons in the simulate summary).")
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
