"""The ``condgan`` command line: one parser whose subcommands come from the plugin registry.

Every subcommand is a :class:`~condgan.commands.Command` registered through a plugin's
``register_commands`` hook (the built-ins live in :mod:`condgan.commands`); a third-party
package adds one by entry point. Library errors (ValueError, KeyError, OSError, CheckpointError,
DatasetNotFoundError, ...) are printed as one ``condgan: error: ...`` line with exit code 1; bad
arguments exit 2 with one line, as argparse does (without the usage block). Set
``CONDGAN_TRACEBACK=1`` to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

from .commands import PROG, Command


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one line: ``condgan: error: ...`` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


# -- main ---------------------------------------------------------------------------------------------
def _user_errors() -> tuple[type[BaseException], ...]:
    from .checkpoint import CheckpointError
    from .plugins import PluginError
    from .distributed import DistributedError
    from .trainer import NonFiniteLossError

    return (ValueError, KeyError, OSError, CheckpointError, PluginError, NonFiniteLossError, DistributedError)


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
    args = build_parser().parse_args(argv)
    try:
        return args.command.run(args) or 0
    except _user_errors() as exc:
        if os.environ.get("CONDGAN_TRACEBACK"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
