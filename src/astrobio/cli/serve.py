"""`astrobio serve RUN`: the explorer page and JSON API of a trained run, on uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def serve(run: Path = typer.Argument(..., metavar="RUN", help="trained run directory"),
          host: str = typer.Option("127.0.0.1", "--host", help="interface to bind (default: this machine only)"),
          port: int = typer.Option(8000, "--port", min=0, max=65535),
          workers: int = typer.Option(1, "--workers", min=1, help="server processes"),
          seed: int = typer.Option(0, "--seed", help="seed of the catalog predictions"),
          catalog: Optional[Path] = typer.Option(None, "--catalog", help="a CSV with the shipped catalog's "
                                                 "columns (default: the shipped catalog)")):
    """Explorer page at /, JSON API at /api, OpenAPI docs at /docs (catalog predictions cached beside RUN)."""
    # imported here, not at start-up: fastapi, uvicorn, torch and the models take seconds to import
    from astrobio.serve.launch import build_app, configure_logging, serve_run

    configure_logging()
    application = build_app(run, seed=seed, progress=True, catalog=catalog)
    Console(stderr=True).print(f"astrobio serve: http://{host}:{port}/  (API docs http://{host}:{port}/docs)")
    serve_run(application, run, host, port, workers, seed, catalog)


def register(app: typer.Typer) -> None:
    app.command()(serve)
