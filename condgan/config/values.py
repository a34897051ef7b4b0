"""Config values: one place for "an int, not a bool" and its relatives, and for building a
component from its options (:func:`construct`).

Each check returns the value (normalised where that is useful) or raises ``ValueError`` with one
line naming the setting, what was given and what is allowed.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any


def is_int(value: Any) -> bool:
    """An integer that is not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_int(name: str, value: Any, low: int = 0, high: int | None = None, *, optional: bool = False) -> int | None:
    """``value`` as an int in ``[low, high]`` (None allowed when ``optional``)."""
    if value is None and optional:
        return None
    if not is_int(value) or value < low or (high is not None and value > high):
        allowed = f"an int >= {low}" if high is None else f"an int in [{low}, {high}]"
        raise ValueError(f"{name} must be {'None or ' if optional else ''}{allowed}, got {value!r}")
    return int(value)


def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False, optional: bool = False) -> float | None:
    """``value`` as a finite float within the given bounds (open bounds exclude the endpoint)."""
    if value is None and optional:
        return None
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        allowed = "a finite number" + (f" {' and '.join(bounds)}" if bounds else "")
        raise ValueError(f"{name} must be {'None or ' if optional else ''}{allowed}, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple, *, optional: bool = False) -> Any:
    """``value`` if it is one of ``choices`` (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        shown = ", ".join(c if isinstance(c, str) else repr(c) for c in choices)
        raise ValueError(f"{name} must be {'None or ' if optional else ''}one of {shown}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if value not in (True, False) or not isinstance(value, (bool, numbers.Integral)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_options(name: str, value: Any) -> dict[str, Any]:
    """A dict of keyword options (None means {})."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{name} must be a dict of keyword options (or None), got {value!r}")
    return value


def construct(cls: Any, *args: Any, **options: Any) -> Any:
    """``cls(*args, **options)``, with an option the class does not take reported by name."""
    signature = inspect.signature(cls)
    try:
        signature.bind(*args, **options)
    except TypeError as exc:
        name = getattr(cls, "name", getattr(cls, "__name__", cls))
        params = list(signature.parameters.values())[len(args):]
        accepted = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        unknown = sorted(set(options) - set(accepted))
        if unknown and not any(p.kind == p.VAR_KEYWORD for p in params):
            raise ValueError(f"{name!r} does not accept option(s) {unknown}; its options are: {', '.join(accepted) or '(none)'}") from None
        raise ValueError(f"{name!r} cannot be built with options {sorted(options)}: {exc}") from None
    return cls(*args, **options)
