"""The `astrobio` app: every command, the global `--debug` option and the one error handler.

A typed error (`astrobio.errors.AstrobioError`) raised by any command is one line on stderr and exit code 2:
`error: FIELD=VALUE: expected ...` for an `InputValidationError`, `error: MESSAGE` for the others. `--debug`
re-raises it instead, with its traceback. Usage errors are click's (also exit code 2).
"""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from astrobio.cli import data, demo, evaluate, memory, serve, simulate, train
from astrobio.errors import AstrobioError, InputValidationError

DEBUG = "astrobio.debug"  # ctx.meta key, shared by every sub-context


def error_line(exc: AstrobioError) -> str:
    """The one line a typed error becomes."""
    if isinstance(exc, InputValidationError):
        return f"error: {exc.field}={exc.value!r}: expected {exc.expected}"
    return f"error: {exc}"


class AstrobioGroup(TyperGroup):
    """The root group: every command (sub-groups included) runs inside its `invoke`, so one handler catches
    the typed errors of all of them."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AstrobioError as exc:
            if ctx.meta.get(DEBUG):
                raise
            click.echo(error_line(exc), err=True)  # plain echo, not rich: one unwrapped line at any width
            ctx.exit(2)


app = typer.Typer(cls=AstrobioGroup, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="astrobio: physics-based planet runs, multi-modal models, habitability predictions.")


@app.callback()
def _global(ctx: typer.Context,
            debug: bool = typer.Option(False, "--debug", help="show the traceback of an error instead of one line")):
    ctx.meta[DEBUG] = debug


for family in (simulate, data, train, evaluate, memory, serve, demo):
    family.register(app)
