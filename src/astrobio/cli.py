"""`astrobio` command line. Each layer owns its commands; heavy imports happen inside commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="astrobio: physics-based planet runs, multi-modal models, habitability predictions.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)


def _register() -> None:
    from astrobio.world.cli import register as register_world

    register_world(app)
    for module in ("astrobio.data.cli", "astrobio.models.cli", "astrobio.training.cli",
                   "astrobio.evaluation.cli", "astrobio.serve.cli", "astrobio.demo"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:  # a layer not built yet must not break the others
            if exc.name != module:
                raise
            continue
        mod.register(app)


_register()

if __name__ == "__main__":
    app()
