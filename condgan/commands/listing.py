"""``condgan list``: what is registered, and the plugin that gave each."""

from __future__ import annotations

import argparse
from typing import Any

from ..hookspecs import hookimpl
from . import Command

def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", help="only this kind (conditioner, loss, backbone, preset, logger)")


def run_list(args: argparse.Namespace) -> int:
    from ..plugins import KINDS, list_components

    if args.kind is not None and args.kind not in KINDS:
        raise ValueError(f"unknown kind {args.kind!r}; kinds are {', '.join(KINDS)}")
    for kind in [args.kind] if args.kind else KINDS:
        infos = list_components(kind)
        print(f"{kind}es:" if kind.endswith("s") else f"{kind}s:")
        if not infos:
            print("  (none)")
        name_width = max((len(i.name) for i in infos), default=0)
        plugin_width = max((len(i.plugin) for i in infos), default=0)
        for info in infos:
            print(f"  {info.name:<{name_width}}  {info.plugin:<{plugin_width}}  {_summary(info.obj)}")
    return 0


def _summary(obj: Any) -> str:
    text = getattr(obj, "description", "") or (getattr(obj, "__doc__", "") or "")
    return text.strip().splitlines()[0].replace("``", "") if text.strip() else ""


@hookimpl
def register_commands():
    return [Command("list", "list registered components and the plugin that gave each", add_list_arguments, run_list)]
