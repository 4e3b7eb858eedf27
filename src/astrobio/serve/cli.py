"""`astrobio serve RUN`: the explorer page and JSON API of a trained run, on uvicorn."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import typer

RUN_ENV = "ASTROBIO_SERVE_RUN"  # how `--workers N` processes find the run (uvicorn imports the app by name)
SEED_ENV = "ASTROBIO_SERVE_SEED"
CATALOG_ENV = "ASTROBIO_SERVE_CATALOG"


def build_app(run: Path, seed: int = 0, progress: bool = False, catalog: Optional[Path] = None):
    """The app for a trained run: its cached catalog table (built on first use) and its model."""
    from astrobio.serve.app import Predictor, create_app
    from astrobio.serve.table import catalog_table

    table = catalog_table(run, catalog_path=catalog, seed=seed, progress=progress)
    return create_app(table, Predictor(run))


def app_from_env():
    """uvicorn factory for worker processes (the parent has built the cache, so this only loads it)."""
    configure_logging()
    catalog = os.environ.get(CATALOG_ENV)
    return build_app(Path(os.environ[RUN_ENV]), seed=int(os.environ.get(SEED_ENV, "0")),
                     catalog=Path(catalog) if catalog else None)


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(run: Path = typer.Argument(..., help="trained run directory"),
              host: str = typer.Option("127.0.0.1", "--host", help="interface to bind (default: this machine only)"),
              port: int = typer.Option(8000, "--port", min=0, max=65535),
              workers: int = typer.Option(1, "--workers", min=1, help="server processes"),
              seed: int = typer.Option(0, "--seed", help="seed of the catalog predictions"),
              catalog: Optional[Path] = typer.Option(None, "--catalog", help="a CSV with the shipped catalog's "
                                                     "columns (default: the shipped catalog)")):
        """Explorer page at /, JSON API at /api, OpenAPI docs at /docs (catalog predictions cached beside RUN)."""
        import uvicorn
        from rich.console import Console

        from astrobio.errors import AstrobioError

        configure_logging()
        try:
            application = build_app(run, seed=seed, progress=True, catalog=catalog)
        except AstrobioError as exc:
            typer.echo(f"error: {type(exc).__name__}: {exc}", err=True)  # one line, no traceback
            raise typer.Exit(code=2)
        Console(stderr=True).print(f"astrobio serve: http://{host}:{port}/  (API docs http://{host}:{port}/docs)")
        # access_log off: the app logs one line per request itself (also for clients that disconnect)
        if workers == 1:
            uvicorn.run(application, host=host, port=port, access_log=False, log_config=None)
        else:
            os.environ[RUN_ENV], os.environ[SEED_ENV] = str(run.resolve()), str(seed)
            if catalog:
                os.environ[CATALOG_ENV] = str(catalog.resolve())
            uvicorn.run("astrobio.serve.cli:app_from_env", factory=True, host=host, port=port, workers=workers,
                        access_log=False, log_config=None)
