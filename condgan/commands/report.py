"""``condgan report RUN``: one self-contained HTML page of a run (curves, sample grids, metrics, config)."""

from __future__ import annotations

import argparse

from ..hookspecs import hookimpl
from . import Command, positive_int


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="a run directory (condgan train --out DIR), or a group of runs (condgan train "
                                    "--seeds/--sweep): each metric over the runs and the curves as bands")
    parser.add_argument("--out", help="the HTML file to write (default RUN/report.html)")
    parser.add_argument("--max-grids", type=positive_int, default=8, help="sample grids shown, evenly spaced over training")
    parser.add_argument("--svg", action="store_true", help="draw curves as inline SVG even when matplotlib is installed")
    parser.add_argument("--eval", action="store_true",
                        help="a table run: first judge its rows against the rows it held out (condgan eval RUN --json "
                             "RUN/eval_table.json), then write the report")


def run_report(args: argparse.Namespace) -> int:
    from ..runs.groups import is_group

    if is_group(args.run):
        from ..group_report import write_group_report

        path = write_group_report(args.run, args.out, svg=args.svg)
    else:
        from ..reporting import write_report

        if args.eval:
            _table_eval(args.run)
        path = write_report(args.run, args.out, max_grids=args.max_grids, svg=args.svg)
    print(f"wrote {path} (open it in a browser; images are inlined)")
    return 0


def _table_eval(run: str) -> None:
    """``condgan eval RUN --json RUN/eval_table.json`` of a table run (one line for another kind of run)."""
    from pathlib import Path

    from ..checkpoint import saved_output
    from ..reporting import TABLE_EVAL_FILE
    from .evaluate import add_eval_arguments
    from .evaluate_tables import run_table_eval

    kind = saved_output(run).name
    if kind != "table":
        raise ValueError(f"--eval judges table runs by their held-out rows, and {run} makes {kind} outputs: run condgan eval "
                         f"with its judge and --json {Path(run) / TABLE_EVAL_FILE.replace('table', kind)}")
    parser = argparse.ArgumentParser()
    add_eval_arguments(parser)
    run_table_eval(parser.parse_args([str(run), "--json", str(Path(run) / TABLE_EVAL_FILE)]))


@hookimpl
def register_commands():
    return [Command("report", "write a run's HTML report: loss and metric curves, sample grids, metrics, config",
                    add_report_arguments, run_report)]
