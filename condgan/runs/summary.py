"""A metric over the runs of a group: mean, standard deviation, min, max, and the best run.

The standard deviation is the sample one (``n - 1`` in the denominator, what papers quote as the
spread over seeds); one run has none (``None``). Runs without the metric (a failed evaluation)
are left out and counted.

Example:
    >>> s = spread({"seed_0": 12.0, "seed_1": 14.0, "seed_2": None}, "fid")
    >>> (s.mean, round(s.std, 3), s.best, s.missing)
    (13.0, 1.414, 'seed_0', 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

#: metrics where a lower value is better (every other metric: higher is better)
LOWER_IS_BETTER = {"fid", "intra_class_fid", "inception_fid", "kid", "condition_rmse", "g_loss", "d_loss"}


def lower_is_better(metric: str) -> bool:
    """True for FIDs, KID, RMSE and losses (``"precision_recall.recall"`` reads as ``recall``)."""
    return metric.rsplit(".", 1)[-1] in LOWER_IS_BETTER or metric.split(".", 1)[0] in LOWER_IS_BETTER


@dataclass(frozen=True)
class Spread:
    """One metric over a group's runs.

    Attributes:
        metric: its name; n: runs with a value; missing: runs without one.
        mean, std (sample; None for one run), min, max: over the runs with a value.
        best: the run with the best value (lowest for :data:`LOWER_IS_BETTER` metrics, else highest).
    """

    metric: str
    n: int
    mean: float
    std: float | None
    min: float
    max: float
    best: str
    missing: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean, "std": self.std, "min": self.min, "max": self.max, "best": self.best,
                "missing": self.missing, "lower_is_better": lower_is_better(self.metric)}

    def text(self, digits: int = 4) -> str:
        """``"12.3400 +/- 0.5600 (min 11.9000, max 12.8000; n=8)"``."""
        std = "-" if self.std is None else f"{self.std:.{digits}f}"
        lost = f", {self.missing} without" if self.missing else ""
        return f"{self.mean:.{digits}f} +/- {std} (min {self.min:.{digits}f}, max {self.max:.{digits}f}; n={self.n}{lost})"


def spread(values: Mapping[str, float | None], metric: str) -> Spread | None:
    """The :class:`Spread` of ``values`` (run name -> value), None when no run has a finite value."""
    good = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)}
    if not good:
        return None
    xs = list(good.values())
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else None
    pick = min if lower_is_better(metric) else max
    best = pick(good, key=lambda k: good[k])
    return Spread(metric, len(xs), mean, std, min(xs), max(xs), best, len(values) - len(good))


def spreads(rows: Mapping[str, Mapping[str, float | None]]) -> dict[str, Spread]:
    """Every metric of ``rows`` (run name -> metric -> value) over the runs, in the order first met."""
    metrics: list[str] = []
    for row in rows.values():
        metrics += [m for m in row if m not in metrics]
    out = {}
    for metric in metrics:
        s = spread({name: row.get(metric) for name, row in rows.items()}, metric)
        if s is not None:
            out[metric] = s
    return out


def scalars(results: Mapping[str, Any]) -> dict[str, float]:
    """``condgan eval``'s results of one row as plain numbers: ``{"fid": 12.3, "precision_recall.recall": 0.4}``."""
    out: dict[str, float] = {}
    for key, result in results.items():
        value = getattr(result, "value", result.get("value") if isinstance(result, Mapping) else result)
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": float(v) for k, v in value.items() if isinstance(v, (int, float))})
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = float(value)
    return out


def best_metric(summary: Mapping[str, Spread], preferred: tuple[str, ...] = ("fid", "label_accuracy")) -> str | None:
    """The metric that names the best run: the first of ``preferred`` present, else the first metric."""
    return next((m for m in preferred if m in summary), next(iter(summary), None))
