"""Subcommands of the ``condgan`` command line, each a :class:`Command` registered through a plugin.

A command is a :class:`Command` (name, one-line help, ``add_arguments(parser)``, ``run(args)``)
returned by a plugin's ``register_commands`` hook, exactly like a conditioner or a loss: the
built-in ones below are ordinary plugins, and a package adds its own through an entry point.
``run`` returns the exit code (None means 0) and may raise library errors (ValueError, KeyError,
OSError, CheckpointError, ...): :func:`condgan.cli.main` prints them as one line and exits 1.

Example:
    >>> from condgan import hookimpl, register_plugin
    >>> from condgan.commands import Command
    >>> def hello(args):
    ...     print("hello", args.who)
    >>> class Plugin:
    ...     @hookimpl
    ...     def register_commands(self):
    ...         return [Command("hello", "say hello", lambda p: p.add_argument("who"), hello)]
    >>> register_plugin(Plugin())  # now: condgan hello world
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass
from typing import Any, Callable

PROG = "condgan"


@dataclass(frozen=True)
class Command:
    """One subcommand: ``condgan NAME ...``.

    Args:
        name: the subcommand's name.
        help: one line for ``condgan --help``.
        add_arguments: adds the subcommand's options to its argparse parser.
        run: runs it from the parsed arguments; returns the exit code (None: 0).
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]

    @property
    def description(self) -> str:
        return self.help


# -- argument types shared by the commands ----------------------------------------------------------
def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``("key", value)``; the value is a Python literal when it parses as one, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = raw
    return key.strip(), value


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a number >= {low}, got {value}")
        return value
    parse.__name__ = f"int>={low}"
    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value
