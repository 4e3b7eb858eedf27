"""Typed errors. Every message names the field, the value and what was expected."""

from __future__ import annotations

from typing import Any


class AstrobioError(Exception):
    """Base class of every error this package raises on purpose."""


class InputValidationError(AstrobioError, ValueError):
    """A physical or configuration input is outside what the code can model."""

    def __init__(self, field: str, value: Any, expected: str):
        self.field, self.value, self.expected = field, value, expected
        super().__init__(f"invalid {field}={value!r}: expected {expected}")

    def __reduce__(self):
        # Rebuilt from its own fields: the default rebuild passes only the message, and an error that cannot be
        # unpickled in the parent once hung a process pool forever (issue "Dask").
        return type(self), (self.field, self.value, self.expected)


class AnnotationError(AstrobioError):
    """A run's annotation (units, CF names, provenance) is missing or inconsistent."""


class StorageError(AstrobioError):
    """The on-disk store is missing, corrupt or was asked for something it does not hold."""


class CorruptRunError(StorageError):
    """A stored run holds a value no model may use (non-finite, malformed); names the run and the field."""

    def __init__(self, run_id: str, field: str, problem: str):
        self.run_id, self.field, self.problem = run_id, field, problem
        super().__init__(f"run {run_id!r}: {field} {problem}; quarantine it (`astrobio data quality`) or re-simulate")

    def __reduce__(self):
        return type(self), (self.run_id, self.field, self.problem)


class UnsafeCheckpointError(StorageError):
    """A checkpoint that would need foreign code (pickled globals beyond tensors, dicts, numbers, strings) to load."""


class QualityError(AstrobioError):
    """A data-quality check could not be evaluated."""


class TrainingInstabilityError(AstrobioError, RuntimeError):
    """A non-finite loss or gradient stopped training."""


def check_finite_range(field: str, value: float, lo: float | None = None, hi: float | None = None,
                       unit: str = "") -> float:
    """Return `value` as float, or raise InputValidationError naming the field.

    NaN/inf always fail; `lo`/`hi` are inclusive bounds when given.
    """
    import math

    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputValidationError(field, value, "a number") from None
    bounds = f"[{lo}, {hi}]" if lo is not None and hi is not None else (
        f">= {lo}" if lo is not None else (f"<= {hi}" if hi is not None else "finite"))
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        raise InputValidationError(field, value, f"a finite value {bounds}{(' ' + unit) if unit else ''}")
    return v


def choose(field: str, key: Any, table: dict) -> Any:
    """`table[key]`, or InputValidationError naming the field and the allowed keys (e.g. a preset name)."""
    if key not in table:
        raise InputValidationError(field, key, f"one of {sorted(table)}")
    return table[key]
