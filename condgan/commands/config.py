"""``condgan config``: show a preset as a config file to start from, and list every config key."""

from __future__ import annotations

import argparse
import dataclasses
import json

from ..hookspecs import hookimpl
from . import Command


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                help="show: a preset as a config file; keys: every config key")
    show = sub.add_parser("show", help="print a preset's run config (model, data, training) as TOML or JSON")
    show.add_argument("preset", nargs="?", default="mnist_mlp", help="a registered preset (default mnist_mlp)")
    show.add_argument("--format", choices=["toml", "json"], default="toml")
    sub.add_parser("keys", help="list every key that --set and config files accept, with its section")


def run_config_command(args: argparse.Namespace) -> int:
    from .. import checkpoint as ckpt
    from ..config import all_keys, to_toml
    from ..resolve import run_config

    if args.action == "keys":
        config = run_config()
        for key in all_keys(config):
            section, rest = key.split(".", 1)
            print(f"{key}  (or {rest})" if _unique(config, rest) else key)
        return 0
    config = run_config(args.preset)
    plain = {"model": ckpt.config_to_plain(config.model), "data": ckpt.data_config_to_plain(config.data),
             "training": config.training.to_dict()}
    print(json.dumps(plain, indent=2) if args.format == "json" else to_toml(plain), end="" if args.format == "toml" else "\n")
    return 0


def _unique(config, key: str) -> bool:
    """True when ``key`` may be written without its section (only one section has it)."""
    head = key.split(".", 1)[0]
    return sum(head in {f.name for f in dataclasses.fields(getattr(config, s))} for s in ("model", "data", "training")) == 1


@hookimpl
def register_commands():
    return [Command("config", "show a preset as a config file (condgan config show PRESET) or list the config keys",
                    add_config_arguments, run_config_command)]
