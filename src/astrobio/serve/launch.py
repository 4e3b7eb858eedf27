"""Starting the explorer for a trained run on uvicorn (what `astrobio serve RUN` runs), without the command line."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional

import uvicorn

from astrobio.serve.app import Predictor, create_app
from astrobio.serve.table import catalog_table

RUN_ENV = "ASTROBIO_SERVE_RUN"  # how `--workers N` processes find the run (uvicorn imports the app by name)
SEED_ENV = "ASTROBIO_SERVE_SEED"
CATALOG_ENV = "ASTROBIO_SERVE_CATALOG"


def build_app(run: Path, seed: int = 0, progress: bool = False, catalog: Optional[Path] = None):
    """The app for a trained run: its cached catalog table (built on first use) and its model."""
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


def serve_run(application, run: Path, host: str, port: int, workers: int, seed: int,
              catalog: Optional[Path]) -> None:
    """Serve `application` (built by `build_app` in this process, which also fills the catalog cache); with
    `workers` > 1, uvicorn's worker processes rebuild it from the cache through `app_from_env`."""
    # access_log off: the app logs one line per request itself (also for clients that disconnect)
    if workers == 1:
        uvicorn.run(application, host=host, port=port, access_log=False, log_config=None)
        return
    os.environ[RUN_ENV], os.environ[SEED_ENV] = str(run.resolve()), str(seed)
    if catalog:
        os.environ[CATALOG_ENV] = str(catalog.resolve())
    uvicorn.run("astrobio.serve.launch:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_config=None)
