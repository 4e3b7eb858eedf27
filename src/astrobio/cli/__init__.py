"""The `astrobio` command line: the only package that imports typer.

One module per command family; `main` builds the app, its global `--debug` option and the one error handler.
Conventions: the store or run a command reads is its first positional argument, `--out` is what it writes,
`--sim-workers` are simulation processes and `--loader-workers` DataLoader workers, `--seed` only where it
changes the result.
"""

from astrobio.cli.main import app

__all__ = ["app"]
