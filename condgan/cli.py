"""The ``condgan`` command line: one parser whose subcommands come from the plugin registry.

Every subcommand is a :class:`~condgan.commands.Command` registered through a plugin's
``register_commands`` hook (the built-ins live in :mod:`condgan.commands`); a third-party
package adds one by entry point. Errors reach the user as follows (exit code 1 unless said):

- condgan's own errors and errors of the input (:func:`user_errors`: ``ValueError``, ``OSError``,
  ``CheckpointError``, ``NonFiniteLossError``, ``RunDirectoryError``, ``DatasetError``,
  ``PluginError``, ``DistributedError``, unknown keys and components, ...): one line
  ``condgan: error: ...``;
- allocation failures (``MemoryError``, ``torch.OutOfMemoryError``, PyTorch's CPU allocator
  failing): one line with advice;
- anything else is a bug in condgan or in a plugin: its traceback, the versions of condgan, Python
  and torch, then one line saying so and pointing to the README's "Reporting a bug" section;
- a ``condgan`` package that is not this one (a folder named ``condgan`` in the current
  directory shadowing the installed package): one line naming what was imported and from where;
- bad arguments exit 2 with one line, as argparse does (without the usage block); Ctrl-C exits 130.

Set ``CONDGAN_TRACEBACK=1`` to see the full traceback of every error instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn

from .commands import PROG, Command


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one line: ``condgan: error: ...`` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# -- main ---------------------------------------------------------------------------------------------
#: Where the user is sent to report a bug (printed under the traceback of an unexpected error).
BUG_REPORT_HELP = "the README's \"Reporting a bug\" section says what to include"


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception types that describe a problem with the input, printed as one line (no traceback).

    A bare ``KeyError`` or ``TypeError`` is not among them: condgan reports bad keys and values with
    its own errors, so those are bugs.
    """
    from .checkpoint import CheckpointError
    from .config import ConfigKeyError
    from .distributed import DistributedError
    from .plugins import PluginError, UnknownComponentError
    from .training.guards import NonFiniteLossError

    return (ValueError, OSError, CheckpointError, PluginError, NonFiniteLossError, DistributedError, ConfigKeyError,
            UnknownComponentError)


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its lines joined); its type name when it has none."""
    try:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args and isinstance(exc.args[0], str) else str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error
        text = ""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " ".join(lines) if lines else f"{type(exc).__name__} (no message)"


def is_allocation_failure(exc: BaseException) -> bool:
    """Out of memory: ``MemoryError``, ``torch.OutOfMemoryError`` or PyTorch's CPU allocator giving up."""
    import torch

    if isinstance(exc, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc) for text in ("can't allocate memory", "out of memory"))


def report(exc: BaseException) -> None:
    """Print ``exc`` to stderr as :func:`main` does (see the module docstring)."""
    if isinstance(exc, user_errors()):
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
    elif is_allocation_failure(exc):
        print(f"{PROG}: error: out of memory ({one_line(exc)[:300]}): lower batch_size or the model's sizes (--set "
              "latent_dim=..., widths), or use a device with more memory", file=sys.stderr)
    else:
        traceback.print_exception(exc, file=sys.stderr)
        print(versions(), file=sys.stderr)
        print(f"{PROG}: internal error: {type(exc).__name__}: {one_line(exc)[:300]}. This is a bug in condgan or in a "
              f"plugin, not in your input: please report it with the traceback and versions above ({BUG_REPORT_HELP})",
              file=sys.stderr)


def versions() -> str:
    """``condgan X (path), Python Y, torch Z on PLATFORM``: what a bug report needs to name."""
    import platform

    from . import __version__

    try:
        import torch

        torch_version = torch.__version__
    except Exception:  # noqa: BLE001 - a broken torch must not hide the error being reported
        torch_version = "not importable"
    return (f"condgan {__version__} ({Path(__file__).resolve().parent}), Python {platform.python_version()}, "
            f"torch {torch_version} on {platform.platform()}")


def package_problem(package: Any = None) -> str | None:
    """Why the imported ``condgan`` is not the package this command belongs to, or None when it is.

    A folder named ``condgan`` in the current directory (a clone's parent, an empty folder) comes
    first on ``python -m condgan``'s path and shadows the installed package.
    """
    package = sys.modules.get("condgan") if package is None else package
    here = Path(__file__).resolve().parent
    origin = getattr(package, "__file__", None)
    if origin is not None and Path(origin).resolve().parent == here and hasattr(package, "__version__"):
        return None
    where = origin or ", ".join(str(p) for p in getattr(package, "__path__", [])) or "an unknown location"
    what = "a folder without condgan's files (a namespace package)" if origin is None else "another 'condgan'"
    return (f"the 'condgan' package imported is {what}: {where}, not condgan's installation ({here}); a folder named "
            f"condgan in the current directory ({Path.cwd()}) shadows it: run condgan from another folder")


def build_parser(commands: list[Command] | None = None) -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog=PROG, description="condgan: train, sample and inspect conditional GANs.")
    parser.add_argument("--version", action="version", version=f"condgan {__version__}")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    if commands is None:
        from .plugins import list_components

        commands = [info.obj for info in list_components("command")]
    for command in commands:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 bad arguments, 128+N on signal N)."""
    problem = package_problem()
    if problem is not None:
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 1
    shown = warnings.formatwarning
    warnings.formatwarning = _format_warning
    try:
        return _main(argv)
    finally:
        warnings.formatwarning = shown


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as one line: ``condgan: warning: ...`` (Python's default adds the source line)."""
    return f"{PROG}: warning: {' '.join(str(message).split())}\n"


def _main(argv: list[str] | None) -> int:
    try:
        parser = build_parser()  # loads the installed plugins: a conflict between two is reported here
    except Exception as exc:  # noqa: BLE001 - reported as below
        if os.environ.get("CONDGAN_TRACEBACK"):
            raise
        report(exc)
        return 1
    args = parser.parse_args(argv)
    try:
        return args.command.run(args) or 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error is reported; SystemExit passes through
        if os.environ.get("CONDGAN_TRACEBACK"):
            raise
        report(exc)
        return 1
