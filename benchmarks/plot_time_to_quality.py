"""Curves of time-to-quality runs: label accuracy, FID and recall against training minutes, one line per contender.

Reads one or more JSON files written by ``time_to_quality.py --json`` and draws the three curves of
every contender in them (named ``file stem: contender`` when several files are given) into one PNG,
with the issue's thresholds as dotted lines. Needs matplotlib (``pip install condgan[report]``).

    python benchmarks/plot_time_to_quality.py results/time_to_quality_cpu_10min.json --out results/time_to_quality_cpu_10min.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from time_to_quality import THRESHOLDS

PANELS = (("label_accuracy", "label accuracy (higher is better)", False),
          ("fid", "FID, judge features (lower is better; log scale)", True),
          ("recall", "recall (higher is better)", False))


def load_curves(paths: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """{contender label: its curve (a list of evaluations)} from time_to_quality JSON files."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        try:
            data = json.loads(path.read_text())
            contenders = data["contenders"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"plot_time_to_quality: {path} is not a time_to_quality.py JSON file ({exc})") from None
        for contender in contenders:
            name = contender["name"] if len(paths) == 1 else f"{path.stem}: {contender['name']}"
            curves[name] = contender["curve"]
    return curves


def plot(curves: dict[str, list[dict[str, Any]]], out: Path, title: str | None = None) -> None:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("plot_time_to_quality needs matplotlib: pip install condgan[report]") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4), constrained_layout=True)
    for ax, (key, label, log) in zip(axes, PANELS):
        for name, curve in curves.items():
            points = [(e["minutes"], e[key]) for e in curve if e.get(key) is not None]
            if points:
                ax.plot(*zip(*points), marker="o", label=name)
        for threshold in THRESHOLDS[key][1]:
            ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("training minutes")
        ax.set_title(label, fontsize=10)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", nargs="+", type=Path, help="time_to_quality.py --json files")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--title", help="a title above the panels")
    args = parser.parse_args(argv)
    plot(load_curves(args.json), args.out, args.title)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
