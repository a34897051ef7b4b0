"""The report of a group of runs: one HTML page with every run's final figures, each metric over the
runs (mean, sample std, min, max), the best run, and the curves as bands.

A band is the runs' mean at each step all of them logged, shaded from their min to their max.
Sources: ``GROUP/group.json`` (:mod:`condgan.runs.groups`), each run's ``metrics.jsonl``
(:mod:`condgan.training.evaluation`) and ``GROUP/*.json`` written by ``condgan eval GROUP --json``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

from .reporting import PALETTE, STYLE, SVG_MARGINS, _esc, _eval_tables, _fmt, _table, svg_end, svg_frame

Band = tuple[list[float], list[float], list[float], list[float]]  # steps, mean, min, max


def bands(curves: dict[str, tuple[list[int], list[float]]]) -> Band | None:
    """The band of one metric over the runs (run -> (steps, values)): at each step every run logged."""
    if not curves:
        return None
    common = set.intersection(*(set(xs) for xs, _ in curves.values()))
    steps = sorted(common)
    if not steps:
        return None
    at = [{x: y for x, y in zip(xs, ys)} for xs, ys in curves.values()]
    values = [[run[s] for run in at] for s in steps]
    return ([float(s) for s in steps], [sum(v) / len(v) for v in values], [min(v) for v in values], [max(v) for v in values])


def plot_bands_svg(title: str, series: dict[str, Band], ylabel: str, *, width: int = 540, height: int = 320) -> str:
    """An inline SVG: each series' mean as a line over its min-max band."""
    points = [(x, y) for xs, _, lo, hi in series.values() for x, a, b in zip(xs, lo, hi) for y in (a, b)]
    parts, sx, sy = svg_frame(title, points, ylabel, width=width, height=height)
    left, _, top, _ = SVG_MARGINS
    if points:
        for i, ((name, (xs, mean, lo, hi)), colour) in enumerate(zip(series.items(), PALETTE)):
            outline = [(sx(x), sy(y)) for x, y in zip(xs, hi)] + [(sx(x), sy(y)) for x, y in zip(reversed(xs), reversed(lo))]
            parts.append(f'<polygon class="band" fill="{colour}" fill-opacity="0.2" stroke="none" points="'
                         + " ".join(f"{a:.1f},{b:.1f}" for a, b in outline) + '"/>')
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="'
                         + " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, mean)) + '"/>')
            parts.append(f'<text x="{left + 8}" y="{top + 14 + 13 * i}" font-size="11" fill="{colour}">{_esc(name)} '
                         "(mean, min-max band)</text>")
    return svg_end(parts, width=width, height=height, empty=not points)


def _plot_bands_matplotlib(title: str, series: dict[str, Band], ylabel: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import io

    from .reporting import _png_data

    fig, ax = plt.subplots(figsize=(5.4, 3.2), dpi=100)
    for (name, (xs, mean, lo, hi)), colour in zip(series.items(), PALETTE):
        ax.fill_between(xs, lo, hi, color=colour, alpha=0.2, linewidth=0)
        ax.plot(xs, mean, color=colour, linewidth=1.4, label=f"{name} (mean; band: min-max)")
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return f'<img alt="{_esc(title)}" src="{_png_data(buf.getvalue())}">'


def plot_bands(title: str, series: dict[str, Band], ylabel: str, *, svg: bool = False) -> str:
    return (None if svg else _plot_bands_matplotlib(title, series, ylabel)) or plot_bands_svg(title, series, ylabel)


def _curves(entries: dict[str, list[dict[str, Any]]], kind: str, key: str) -> dict[str, tuple[list[int], list[float]]]:
    out = {}
    for run, rows in entries.items():
        pts = [(e["step"], e[key]) for e in rows if e.get("kind") == kind and isinstance(e.get(key), (int, float))
               and math.isfinite(e[key])]
        if pts:
            out[run] = ([p[0] for p in pts], [p[1] for p in pts])
    return out


def build_group_report(group_dir: str | Path, *, svg: bool = False) -> str:
    """The report page of a group directory as one HTML string.

    Raises:
        GroupError: ``group_dir`` holds no group file.
    """
    from .runs.groups import read_group
    from .runs.summary import best_metric, spreads
    from .training.evaluation import METRICS_FILE, read_metrics

    group = read_group(group_dir)
    entries = {r.name: (read_metrics(group.run_dir(r) / METRICS_FILE) if (group.run_dir(r) / METRICS_FILE).is_file() else [])
               for r in group.runs}
    finals: dict[str, dict[str, float]] = {}
    for r in group.runs:
        evals = [e for e in entries[r.name] if e.get("kind") == "eval"]
        losses = [e for e in entries[r.name] if e.get("kind") == "losses"]
        last = {**({k: losses[-1].get(k) for k in ("g_loss", "d_loss")} if losses else {}),
                **({k: evals[-1][k] for k in ("fid", "label_accuracy", "attribute_accuracy", "condition_rmse") if k in evals[-1]}
                   if evals else {})}
        finals[r.name] = last
    summary = spreads(finals)
    head_metrics = list(summary)
    rows = [[r.name, r.status, (r.result or {}).get("step", "-"), ", ".join(f"{k}={v!r}" for k, v in r.overrides.items()),
             *(_fmt(finals[r.name].get(m)) for m in head_metrics)] for r in group.runs]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>condgan group: {_esc(group.path.name)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>condgan group report: {_esc(group.path)}</h1>",
             f'<p class="note">written {time.strftime("%Y-%m-%d %H:%M:%S")}; {len(group.runs)} runs of preset '
             f'{_esc(group.preset)}, one after another; each run directory also has its own report (condgan report RUN)</p>',
             "<h2>Runs</h2>", _table(["run", "status", "step", "overrides", *(f"last {m}" for m in head_metrics)], rows)]
    parts.append("<h2>Over the runs</h2>")
    if summary:
        key = best_metric(summary)
        parts.append(_table(["metric (last value of each run)", "mean", "std", "min", "max", "n", "best run"],
                            [[m, _fmt(s.mean), _fmt(s.std), _fmt(s.min), _fmt(s.max), s.n, s.best] for m, s in summary.items()]))
        parts.append(f'<p class="best">best run by {_esc(key)}: <b>{_esc(summary[key].best)}</b> '
                     f'({"lowest" if summary[key].to_dict()["lower_is_better"] else "highest"}); std is the sample '
                     "standard deviation over the runs</p>")
    else:
        parts.append('<p class="note">no run has logged figures yet (metrics.jsonl: --eval-every N --judge FILE, or '
                     "--loggers with metrics)</p>")
    parts.extend(_eval_tables(group.path))
    parts.append("<h2>Curves over the runs</h2><div class='plots'>")
    loss_bands = {k: b for k in ("g_loss", "d_loss") if (b := bands(_curves(entries, "losses", k))) is not None}
    if loss_bands:
        parts.append(plot_bands("training losses", loss_bands, "loss", svg=svg))
    for key, label in (("fid", "FID (judge features)"), ("label_accuracy", "label accuracy"),
                       ("attribute_accuracy", "attribute accuracy"), ("condition_rmse", "condition RMSE")):
        band = bands(_curves(entries, "eval", key))
        if band is not None:
            parts.append(plot_bands(label, {key: band}, key, svg=svg))
    parts.append("</div>")
    parts.append("<h2>Group</h2>")
    parts.append(f"<pre>{_esc(json.dumps({'preset': group.preset, 'base': group.base}, indent=1, default=str))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_group_report(group_dir: str | Path, out: str | Path | None = None, *, svg: bool = False) -> Path:
    """Write :func:`build_group_report`'s page to ``out`` (default ``GROUP/report.html``); returns the path."""
    from .checkpoint import atomic_write

    page = build_group_report(group_dir, svg=svg)
    out = Path(out) if out is not None else Path(group_dir) / "report.html"
    atomic_write(out, lambda f: f.write(page.encode()))
    return out


__all__: Sequence[str] = ("bands", "build_group_report", "plot_bands", "write_group_report")
