"""A run report: one self-contained HTML page (images inlined) from what a run directory holds.

Sources: ``RUN/metrics.jsonl`` (losses, in-training metrics and their protocol:
:mod:`condgan.training.evaluation`), ``RUN/samples/step_*.png`` (the ``grid`` logger),
``RUN/*.json`` written by ``condgan eval --json``, and the config in the latest checkpoint. Curves
are drawn with matplotlib when it is installed (``pip install condgan[report]``), otherwise as
inline SVG polylines.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Sequence

GRID_FILE = re.compile(r"^step_(\d+)\.png$")
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;max-width:1150px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}pre{background:#f7f7f7;padding:8px;font-size:12px;overflow:auto;max-height:420px}
.plots{display:flex;flex-wrap:wrap;gap:12px}.grids{display:flex;flex-wrap:wrap;gap:10px}
figure{margin:0}figcaption{font-size:12px;text-align:center;color:#555}.grids img{width:260px;image-rendering:pixelated}
.note{color:#666;font-size:13px}
"""


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _png_data(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def _plot_matplotlib(title: str, series: dict[str, tuple[list[float], list[float]]], ylabel: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(5.4, 3.2), dpi=100)
    for (name, (xs, ys)), colour in zip(series.items(), PALETTE):
        ax.plot(xs, ys, label=name, color=colour, linewidth=1.4, marker="o" if len(xs) < 30 else None, markersize=3)
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


SVG_MARGINS = (56, 12, 28, 36)  # left, right, top, bottom (pixels)


def svg_frame(title: str, points: list[tuple[float, float]], ylabel: str, *, width: int, height: int,
              xlabel: str | None = None):
    """(SVG parts so far, x -> pixel, y -> pixel) of a plot over ``points``: the title, and with points
    the frame, min/max labels and axis names (the maps are None without points). :func:`svg_end` closes it."""
    left, right, top, bottom = SVG_MARGINS
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
             f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">{_esc(title)}</text>']
    if not points:
        return parts, None, None
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    sx = lambda x: left + (x - x0) / (x1 - x0) * (width - left - right)  # noqa: E731
    sy = lambda y: height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)  # noqa: E731
    parts.append(f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
                 'fill="none" stroke="#999"/>')
    for value, y in ((y0, height - bottom), (y1, top)):
        parts.append(f'<text x="{left - 4}" y="{y + 4}" text-anchor="end" font-size="11">{value:.3g}</text>')
    for value, x in ((x0, left), (x1, width - right)):
        parts.append(f'<text x="{x}" y="{height - bottom + 14}" text-anchor="middle" font-size="11">{value:.0f}</text>')
    if xlabel:
        parts.append(f'<text x="{width / 2}" y="{height - 4}" text-anchor="middle" font-size="11">{_esc(xlabel)}</text>')
    parts.append(f'<text x="12" y="{height / 2}" font-size="11" transform="rotate(-90 12 {height / 2})" '
                 f'text-anchor="middle">{_esc(ylabel)}</text>')
    return parts, sx, sy


def svg_end(parts: list[str], *, width: int, height: int, empty: bool) -> str:
    """The SVG text of ``parts``, with "no data" when the plot had no points."""
    if empty:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="12">no data</text>')
    return "".join(parts + ["</svg>"])


def plot_svg(title: str, series: dict[str, tuple[list[float], list[float]]], ylabel: str, *,
             width: int = 540, height: int = 320) -> str:
    """An inline SVG line plot (the fallback without matplotlib): axes, min/max labels, one polyline per series."""
    points = [(x, y) for xs, ys in series.values() for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    parts, sx, sy = svg_frame(title, points, ylabel, width=width, height=height, xlabel="step")
    left, _, top, _ = SVG_MARGINS
    if points:
        for i, ((name, (xs, ys)), colour) in enumerate(zip(series.items(), PALETTE)):
            pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys) if y is not None and math.isfinite(y))
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{pts}"/>')
            parts.append(f'<text x="{left + 8}" y="{top + 14 + 13 * i}" font-size="11" fill="{colour}">{_esc(name)}</text>')
    return svg_end(parts, width=width, height=height, empty=not points)


def plot(title: str, series: dict[str, tuple[list[float], list[float]]], ylabel: str, *, svg: bool = False) -> str:
    """A plot as inline HTML: matplotlib's PNG, or SVG when ``svg`` or matplotlib is absent."""
    return (None if svg else _plot_matplotlib(title, series, ylabel)) or plot_svg(title, series, ylabel)


def _series(entries: Sequence[dict[str, Any]], kind: str, keys: Sequence[str] | None = None) -> dict[str, tuple[list, list]]:
    rows = [e for e in entries if e.get("kind") == kind]
    skip = {"kind", "step", "elapsed_s", "seconds", "best", "error"}
    names = keys or sorted({k for e in rows for k, v in e.items() if k not in skip and isinstance(v, (int, float))})
    return {k: ([e["step"] for e in rows if e.get(k) is not None], [e[k] for e in rows if e.get(k) is not None]) for k in names}


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join(f'<th class="{"l" if i == 0 else ""}">{_esc(h)}</th>' for i, h in enumerate(head))
    def cls(i: int, c: Any) -> str:  # numbers right, words left
        return "" if i and re.fullmatch(r"[-+]?[\d.]+(e[-+]?\d+)?", str(c)) else "l"

    body = "".join("<tr>" + "".join(f'<td class="{cls(i, c)}">{_esc(c)}</td>' for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return "-" if v is None else str(v)


def weak_note(identity: Any) -> str:
    """``"; weak on circle (held-out 0.664)"`` for the classes a judge identity's per-class held-out
    accuracy puts below the agreed level, else ``""``."""
    from .metrics.judge import WEAK_CLASS_ACCURACY

    held = identity.get("held_out") if isinstance(identity, dict) else None
    per_class = held.get("per_class_accuracy") if isinstance(held, dict) else None
    if not isinstance(per_class, list):
        return ""
    names = identity.get("class_names") if isinstance(identity.get("class_names"), list) else []
    weak = [(names[k] if k < len(names) else k, a) for k, a in enumerate(per_class)
            if isinstance(a, (int, float)) and a < WEAK_CLASS_ACCURACY]
    if not weak:
        return ""
    return (f"; the judge is weak (held-out accuracy below {WEAK_CLASS_ACCURACY}) on "
            + ", ".join(f"{n} ({a:.3f})" for n, a in weak) + ": label accuracy there is unreliable")


def _per_class_table(data: dict[str, Any], judge: dict[str, Any]) -> str:
    """Per-class label accuracy of ``condgan eval --json`` rows, a weak judge's classes marked ``*``."""
    from .metrics.judge import WEAK_CLASS_ACCURACY

    rows = {name: r["label_accuracy"].get("details", {}).get("per_class") for name, r in data["rows"].items()
            if isinstance(r.get("label_accuracy"), dict)}
    rows = {k: v for k, v in rows.items() if isinstance(v, list)}
    if not rows:
        return ""
    k = len(next(iter(rows.values())))
    names = judge.get("class_names") if isinstance(judge.get("class_names"), list) else [str(c) for c in range(k)]
    per = (judge.get("held_out") or {}).get("per_class_accuracy") if isinstance(judge.get("held_out"), dict) else None
    weak = {c for c, a in enumerate(per or []) if isinstance(a, (int, float)) and a < WEAK_CLASS_ACCURACY}
    head = ["per-class label accuracy", *(f"{n}*" if c in weak else str(n) for c, n in enumerate(names[:k]))]
    body = [[name, *((_fmt(v) + ("*" if c in weak else "")) for c, v in enumerate(values))] for name, values in rows.items()]
    return _table(head, body)


def _grids(run: Path, max_grids: int) -> list[tuple[int, Path]]:
    folder = run / "samples"
    found = sorted((int(m.group(1)), p) for p in folder.glob("step_*.png") if (m := GRID_FILE.match(p.name))) if folder.is_dir() else []
    if len(found) <= max_grids:
        return found
    picks = sorted({round(i * (len(found) - 1) / (max_grids - 1)) for i in range(max_grids)})
    return [found[i] for i in picks]


def _config(run: Path) -> dict[str, Any] | None:
    from . import checkpoint as ckpt

    path = ckpt.latest_checkpoint(run)
    if path is None and (run / "best.pt").is_file():
        path = run / "best.pt"
    if path is None:
        return None
    state = ckpt.read_file(path, formats=(ckpt.CHECKPOINT_FORMAT,))
    return {"checkpoint": str(path), "step": state.get("step"), "model": state["gan_config"], "trainer": state["trainer_config"]}


def _eval_tables(run: Path) -> list[str]:
    """Tables of ``condgan eval --json`` files found in the run directory."""
    out = []
    for path in sorted(run.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if not isinstance(data, dict) or not isinstance(data.get("rows"), dict):
            continue
        if _is_table_eval(data):
            out.append(_table_eval(path, data))
            continue
        if _is_vector_eval(data):
            out.append(_vector_eval(path, data))
            continue
        if "classifier" not in data:
            continue
        keys = [("label_accuracy", None), ("attribute_accuracy", None), ("condition_rmse", None), ("fid", None),
                ("intra_class_fid", None), ("precision_recall", "precision"), ("precision_recall", "recall"),
                ("density_coverage", "density"), ("density_coverage", "coverage"), ("inception_fid", None),
                ("inception_score", None), ("kid", None), ("parzen_log_likelihood", None)]
        used = [k for k in keys if any(k[0] in r for r in data["rows"].values())]
        rows = []
        for name, results in data["rows"].items():
            n = next(iter(results.values()))["protocol"].get("samples")
            rows.append([name, n, *(_fmt(results[a]["value"][b] if b else results[a]["value"]) if a in results else "-"
                                    for a, b in used)])
        judge = data["classifier"].get("protocol", {})
        out.append(f"<h3>{_esc(path.name)} (condgan eval)</h3>"
                   + _table(["set", "n", *(b or a for a, b in used)], rows) + _per_class_table(data, judge)
                   + f'<p class="note">judge {_esc(data["classifier"].get("path"))}, sha256 {_esc(str(data["classifier"].get("sha256"))[:16])}…, '
                   f'dataset {_esc((judge.get("dataset") or {}).get("name"))} at {_esc(judge.get("image_shape"))}; '
                   f'reference: {_esc(data.get("reference", {}).get("reference"))}{_esc(weak_note(judge))}</p>')
    return out


TABLE_EVAL_KEYS = (("quality", "quality score"), ("column_shapes", "column shapes"), ("column_pair_trends", "column pairs"),
                   ("conditional_fidelity", "conditional fidelity"), ("ml_synthetic", "ML efficacy synth"),
                   ("ml_real", "ML efficacy real"), ("ml_ratio", "ML synth/real"), ("copies", "DCR copy fraction"),
                   ("median_dcr_ratio", "median DCR ratio"))
VECTOR_EVAL_KEYS = (("frechet_distance", None, "Frechet distance"), ("intra_class_fd", None, "intra-class FD"),
                    ("precision_recall", "precision", "precision"), ("precision_recall", "recall", "recall"),
                    ("density_coverage", "density", "density"), ("density_coverage", "coverage", "coverage"))


TABLE_EVAL_FILE = "eval_table.json"  # what ``condgan report RUN --eval`` writes


def _output_kind(config: dict[str, Any] | None) -> str | None:
    """The output kind in a run's config (older configs: image); None without a config."""
    if config is None:
        return None
    model = config.get("model") or {}
    return (model.get("output_kind") or "image") if isinstance(model, dict) else "image"


def _is_table_eval(data: dict[str, Any]) -> bool:
    """``condgan eval --json`` of table models (``kind`` "table"; older files: rows with a quality score)."""
    return data.get("kind") == "table" or (isinstance(data.get("protocol"), dict)
                                           and all(isinstance(r, dict) and "quality" in r for r in data["rows"].values()))


def _is_vector_eval(data: dict[str, Any]) -> bool:
    """``condgan eval --reference FILE --json`` of vector models: rows keyed by the vector judges."""
    return "classifier" not in data and bool(data["rows"]) and all(
        isinstance(r, dict) and "frechet_distance" in r for r in data["rows"].values())


def _table_eval(path: Path, data: dict[str, Any]) -> str:
    """The table judges of a ``condgan eval --json`` file of table models, with their protocol."""
    used = [(k, h) for k, h in TABLE_EVAL_KEYS if any(k in r for r in data["rows"].values())]
    rows = [[name, r.get("rows"), *(_fmt(r.get(k)) for k, _ in used)] for name, r in data["rows"].items()]
    protocol = data.get("protocol") or {}
    target = next((f'{r["ml_target"]} ({r.get("ml_metric")})' for r in data["rows"].values() if "ml_target" in r), None)
    notes = [f'reference: {protocol.get("reference")}', f'samples: {protocol.get("samples")}']
    if protocol.get("real"):
        notes.append(f'ML efficacy: gradient boosting predicting {target}, trained on synthetic rows against on '
                     f'{protocol["real"]}, scored on the reference; DCR copy fraction: synthetic rows that copy a training row')
    if data.get("torch"):
        notes.append(f'torch {data["torch"]}')
    return (f"<h3>{_esc(path.name)} (condgan eval, table judges)</h3>" + _table(["set", "rows", *(h for _, h in used)], rows)
            + f'<p class="note">{_esc("; ".join(notes))}</p>')


def _vector_eval(path: Path, data: dict[str, Any]) -> str:
    """The vector judges of a ``condgan eval --reference FILE --json`` file of vector models."""
    used = [k for k in VECTOR_EVAL_KEYS if any(k[0] in r for r in data["rows"].values())]

    def value(results: dict[str, Any], metric: str, part: str | None) -> str:
        if metric not in results:
            return "-"
        v = results[metric].get("value")
        return _fmt(v.get(part) if part and isinstance(v, dict) else v)

    rows = [[name, (next(iter(r.values())).get("protocol") or {}).get("samples"), *(value(r, a, b) for a, b, _ in used)]
            for name, r in data["rows"].items()]
    return (f"<h3>{_esc(path.name)} (condgan eval, vector judges)</h3>" + _table(["set", "n", *(h for *_, h in used)], rows)
            + f'<p class="note">reference: {_esc(data.get("reference"))}; distances between the vectors themselves'
            f'{"; torch " + _esc(data["torch"]) if data.get("torch") else ""}</p>')


def build_report(run_dir: str | Path, *, max_grids: int = 8, svg: bool = False) -> str:
    """The report page of a run directory as one HTML string (every image inlined as base64).

    Raises:
        FileNotFoundError: ``run_dir`` is not a directory.
    """
    from .training.evaluation import METRICS_FILE, read_metrics

    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run} is not a run directory (condgan train --out DIR makes one)")
    entries = read_metrics(run / METRICS_FILE) if (run / METRICS_FILE).exists() else []
    config = _config(run)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>condgan report: {_esc(run.name)}</title>"
             f"<style>{STYLE}</style></head><body>",
             f"<h1>condgan run report: {_esc(run)}</h1>",
             f'<p class="note">written {time.strftime("%Y-%m-%d %H:%M:%S")}; '
             f'{"step " + str(config["step"]) + " (" + _esc(config["checkpoint"]) + ")" if config else "no checkpoint found"}</p>']

    evals = [e for e in entries if e.get("kind") == "eval"]
    protocol = next((e for e in reversed(entries) if e.get("kind") == "protocol"), None)
    parts.append("<h2>Final metrics</h2>")
    if evals:
        last, keys = evals[-1], [k for k in ("fid", "label_accuracy", "attribute_accuracy", "condition_rmse") if k in evals[-1]]
        best_key = protocol.get("best_metric", "fid") if protocol else "fid"
        best = next((e for e in reversed(evals) if e.get("best")), None)
        rows = [["last", last["step"], *(_fmt(last.get(k)) for k in keys), _fmt(last.get("seconds"))]]
        if best is not None:
            rows.append([f"best by {best_key} (best.pt)", best["step"], *(_fmt(best.get(k)) for k in keys), _fmt(best.get("seconds"))])
        parts.append(_table(["evaluation", "step", *keys, "seconds"], rows))
        if protocol:
            judge = protocol.get("judge") if isinstance(protocol.get("judge"), dict) else {}
            held = judge.get("held_out") if isinstance(judge.get("held_out"), dict) else {}
            parts.append(_table(["protocol", "value"], [
                ["judge", f'{judge.get("path")} ({judge.get("architecture")}, sha256 {str(judge.get("sha256"))[:16]}…)'],
                ["judge data", f'{(judge.get("dataset") or {}).get("name")} at {judge.get("image_shape")}, held-out '
                               f'{held.get("split")} accuracy {_fmt(held.get("accuracy"))}{weak_note(judge)}'],
                ["features", judge.get("features")], ["samples", protocol.get("samples")],
                ["reference", protocol.get("reference")], ["noise", protocol.get("noise")],
                ["conditions", protocol.get("conditions")], ["generator", protocol.get("generator")]]))
    elif _output_kind(config) == "image":
        parts.append('<p class="note">no in-training evaluations (train with --eval-every N --judge FILE)</p>')
    tables = _eval_tables(run)
    parts.extend(tables)
    if not tables and _output_kind(config) == "table":
        parts.append(f'<p class="note">no table judgement in this run yet: condgan report {_esc(run)} --eval (or condgan eval '
                     f'{_esc(run)} --json {_esc(run / TABLE_EVAL_FILE)}) judges its rows against the rows it held out</p>')

    parts.append("<h2>Curves</h2><div class='plots'>")
    losses = _series(entries, "losses")
    if any(xs for xs, _ in losses.values()):
        parts.append(plot("training losses", losses, "loss", svg=svg))
    for key, label in (("fid", "FID (judge features)"), ("label_accuracy", "label accuracy"),
                       ("attribute_accuracy", "attribute accuracy"), ("condition_rmse", "condition RMSE")):
        s = _series(entries, "eval", [key])
        if s[key][0]:
            parts.append(plot(label, s, key, svg=svg))
    if not entries:
        parts.append(f'<p class="note">no {METRICS_FILE} in this run (it is written by the metrics logger: '
                     "--eval-every N, or --loggers with metrics)</p>")
    parts.append("</div>")

    parts.append("<h2>Samples over training</h2><div class='grids'>")
    grids = _grids(run, max_grids)
    for step, path in grids:
        parts.append(f'<figure><img alt="samples at step {step}" src="{_png_data(path.read_bytes())}">'
                     f"<figcaption>step {step}</figcaption></figure>")
    if not grids:
        parts.append('<p class="note">no sample grids (the grid logger writes RUN/samples/step_*.png)</p>')
    parts.append("</div>")

    parts.append("<h2>Config</h2>")
    parts.append(f"<pre>{_esc(json.dumps(config, indent=1, default=str))}</pre>" if config
                 else '<p class="note">no checkpoint to read the config from</p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: str | Path, out: str | Path | None = None, **options: Any) -> Path:
    """Write :func:`build_report`'s page to ``out`` (default ``RUN/report.html``) atomically; returns the path."""
    from .checkpoint import atomic_write

    page = build_report(run_dir, **options)
    out = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write(out, lambda f: f.write(page.encode()))
    return out
