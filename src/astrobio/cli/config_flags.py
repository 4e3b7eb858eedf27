"""Command-line options generated from a config dataclass: one `--field-name` per field, typed by its
annotation, defaulting to the dataclass default, documented by the field's attribute docstring (the string
literal right after it in the class body). `astrobio train` gets its flags from `TrainConfig` this way, so a
new field needs no command-line code.

Every generated option defaults to None ("not given"), so the config's own precedence (preset ← YAML ←
flags) decides the value; the dataclass default is what help shows.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from astrobio.errors import InputValidationError

SCALARS = (int, float, str, Path)
PANEL = "Config fields (YAML keys of --config)"


def attribute_docs(cls: type) -> dict[str, str]:
    """{field: docstring} of a dataclass and its dataclass bases, read from their source with `ast`."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        body = ast.parse(textwrap.dedent(inspect.getsource(klass))).body[0].body
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(inspect.cleandoc(after.value.value).split())
    return docs


@dataclass(frozen=True)
class FieldFlag:
    """One generated option: the field it sets, its value type, and, for tuples and lists, the element type."""

    name: str
    kind: type
    element: Optional[type]
    default: Any
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parameter(self) -> inspect.Parameter:
        """The typer parameter of this option (default None: not given)."""
        if self.kind is bool:
            decls, annotation = (f"{self.flag}/--no-{self.flag[2:]}",), Optional[bool]
        else:
            decls, annotation = (self.flag,), Optional[str if self.element else self.kind]
        metavar = f"{self.element.__name__.upper()},..." if self.element else None
        option = typer.Option(None, *decls, help=self.help, show_default=_shown(self.default), metavar=metavar,
                              rich_help_panel=PANEL)
        return inspect.Parameter(self.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)

    def parse(self, raw: Any) -> Any:
        """The config value of what was given (None stays None); a tuple or list flag is a comma list."""
        if raw is None or self.element is None:
            return raw
        items = [s.strip() for s in raw.split(",") if s.strip()]
        try:
            return self.kind(self.element(s) for s in items)
        except ValueError:
            raise InputValidationError(self.name, raw, f"a comma list of {self.element.__name__}") from None


def field_flags(cls: type) -> list[FieldFlag]:
    """The options of every field of dataclass `cls`, in field order."""
    hints, docs = typing.get_type_hints(cls), attribute_docs(cls)
    flags = []
    for f in dataclasses.fields(cls):
        kind, element = _kind(f.name, hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        flags.append(FieldFlag(f.name, kind, element, default, docs.get(f.name, "")))
    return flags


def with_config_flags(cls: type, fixed: list[inspect.Parameter]) -> Callable[[Callable], Callable]:
    """Decorate a command taking the `fixed` parameters and `overrides` ({field: value, None = not given}):
    the command's signature becomes `fixed` + one option per field of `cls`."""
    flags = field_flags(cls)
    clash = sorted(({p.name for p in fixed} | {"overrides"}) & {f.name for f in flags})
    if clash:
        raise TypeError(f"{cls.__name__} fields {clash} clash with the command's own parameters")

    def decorate(func: Callable) -> Callable:
        def command(**kwargs: Any) -> Any:
            overrides = {f.name: f.parse(kwargs.pop(f.name)) for f in flags}
            return func(**kwargs, overrides=overrides)

        signature = inspect.Signature([*fixed, *(f.parameter() for f in flags)])
        command.__signature__ = signature  # what typer reads the parameters from
        command.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}
        command.__name__, command.__doc__, command.__module__ = func.__name__, func.__doc__, func.__module__
        return command

    return decorate


def _kind(name: str, annotation: Any) -> tuple[type, Optional[type]]:
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]  # Optional[X]: X (None is the flag's "not given")
        if len(rest) == 1:
            return _kind(name, rest[0])
    if annotation is bool or annotation in SCALARS:
        return annotation, None
    origin = typing.get_origin(annotation)
    if origin in (tuple, list) and args and all(a in SCALARS or a is Ellipsis for a in args) \
            and len({a for a in args if a is not Ellipsis}) == 1:
        return origin, args[0]
    raise TypeError(f"field {name!r}: no command-line option for type {annotation!r} "
                    "(bool, int, float, str, Path, a tuple or list of one of those, or Optional of these)")


def _shown(default: Any) -> str:
    if isinstance(default, (tuple, list)):
        return ",".join(map(str, default)) or "()"
    return str(default) if default != "" else '""'
