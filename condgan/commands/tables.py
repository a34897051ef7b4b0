"""The plain-text table of ``condgan eval``: headline figures per evaluated set, then per-class label accuracy."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


COLUMNS = [  # (header, result key, how to read it)
    ("label acc", "label_accuracy", lambda r: _fmt(r.value, 4)),
    ("attr acc", "attribute_accuracy", lambda r: _fmt(r.value, 4)),
    ("cond RMSE", "condition_rmse", lambda r: _fmt(r.value, 4)),
    ("FID", "fid", lambda r: _fmt(r.value)),
    ("intra-FID", "intra_class_fid", lambda r: _fmt(r.value)),
    ("Parzen LL (sigma)", "parzen_log_likelihood",
     lambda r: f"{r.value:.1f} +/- {r.details['stderr']:.1f} ({r.details['sigma']:.3f})"),
    ("FD", "frechet_distance", lambda r: _fmt(r.value, 4)),
    ("intra-FD", "intra_class_fd", lambda r: _fmt(r.value, 4)),
    ("precision", "precision_recall", lambda r: _fmt(r.value["precision"])),
    ("recall", "precision_recall", lambda r: _fmt(r.value["recall"])),
    ("density", "density_coverage", lambda r: _fmt(r.value["density"])),
    ("coverage", "density_coverage", lambda r: _fmt(r.value["coverage"])),
    ("Incep. FID", "inception_fid", lambda r: _fmt(r.value, 2)),
    ("IS", "inception_score", lambda r: f"{r.value:.2f} +/- {r.details['std']:.2f}"),
    ("KID", "kid", lambda r: f"{r.value:.4f} +/- {r.details['std']:.4f}"),
]


def format_table(rows: dict[str, dict[str, Any]], seconds: dict[str, float] | None = None, *,
                 class_names: tuple[str, ...] | None = None, weak: dict[int, float] | None = None,
                 per_class: bool = True) -> str:
    """A plain-text table of the headline figures, one line per evaluated set, then per-class label accuracy.

    Columns that no row has are left out; a row without a figure shows ``-``; ``per_class=False``
    leaves out the per-class lines. ``weak`` (class ->
    the judge's held-out accuracy there) marks those classes' figures with ``*`` and a note.
    """
    weak = weak or {}
    used = [c for c in COLUMNS if any(c[1] in r for r in rows.values())]
    head = ["set", "n", *(c[0] for c in used), "s"]
    lines = []
    for name, r in rows.items():
        n = next(iter(r.values())).protocol.get("samples")
        lines.append([name, str(n), *(fmt(r[key]) if key in r else "-" for _, key, fmt in used),
                      f"{(seconds or {}).get(name, float('nan')):.0f}"])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    per_class = {name: r["label_accuracy"].details["per_class"] for name, r in rows.items()
                 if per_class and "label_accuracy" in r}
    if per_class:
        k = len(next(iter(per_class.values())))
        names = class_names or tuple(str(c) for c in range(k))
        out += ["", "per-class label accuracy: " + "  ".join(n[:5].rjust(5) + " " for n in names)]
        for name, per in per_class.items():
            out.append(f"  {name[:23]:<23} " + "  ".join(("  -  " if p is None else f"{p:.3f}") + ("*" if k in weak else " ")
                                                           for k, p in enumerate(per)))
        if weak:
            from ..metrics.judge import WEAK_CLASS_ACCURACY

            listed = ", ".join(f"{names[k] if k < len(names) else k} (held-out {a:.3f})" for k, a in sorted(weak.items()))
            out.append(f"* the judge is weak on {listed}: below {WEAK_CLASS_ACCURACY} held-out accuracy, so label accuracy "
                       "there says as much about the judge as about the samples")
    return "\n".join(out)
