"""`astrobio train STORE --out RUN`: the unified multi-modal system on a store, single process or under
`torchrun` (DDP on every rank). Its config flags are generated from `TrainConfig` (astrobio.cli.config_flags).

    astrobio train store/ --out runs/tiny --preset tiny --max-steps 200
    torchrun --nproc_per_node 2 -m astrobio.cli train store/ --out runs/small --preset small
    astrobio train store/ --out runs/tiny --resume auto --max-steps 400
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from astrobio.cli.config_flags import with_config_flags
from astrobio.training.config import TrainConfig

_KW = inspect.Parameter.KEYWORD_ONLY
FIXED = [
    inspect.Parameter("store", _KW, annotation=Path, default=typer.Argument(
        ..., metavar="STORE", help="store directory to train on (written by `astrobio simulate`)")),
    inspect.Parameter("out", _KW, annotation=Path, default=typer.Option(
        ..., "--out", help="run directory to write: config, history, checkpoints, tensorboard")),
    inspect.Parameter("config", _KW, annotation=Optional[Path], default=typer.Option(
        None, "--config", help="YAML file of TrainConfig fields; flags given here override it")),
    inspect.Parameter("resume", _KW, annotation=Optional[str], default=typer.Option(
        None, "--resume", help="'auto' (RUN/checkpoints/last.pt if present) or a checkpoint file")),
]


@with_config_flags(TrainConfig, FIXED)
def train(store: Path, out: Path, config: Optional[Path], resume: Optional[str], overrides: dict[str, Any]) -> None:
    """Train the unified multi-modal system; under `torchrun` it runs DDP automatically.

    Settings: the preset's ← the resumed run's ← --config YAML ← the flags given here.
    """
    # imported here, not at start-up: torch, the models and the data loaders take seconds to import
    from astrobio.training.setup import resolve_config, run_training

    summary = run_training(resolve_config(config, resume, out, overrides), store, out, resume)
    if summary is not None:  # the main rank
        Console().print_json(json.dumps(summary))


def register(app: typer.Typer) -> None:
    app.command()(train)
