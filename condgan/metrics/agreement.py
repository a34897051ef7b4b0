"""Several judges as one protocol: figures per judge, their worst case, and targets met only under every judge.

Issue 27: a figure that only one judge confirms is not yet a result. Judges trained independently
(another architecture, augmentation, seed: ``condgan train-classifier --arch resnet --augment
--seed S``) read the same samples; each metric is reported under each judge and as the worst case
over them (the highest FID, the lowest label accuracy), and a target such as ``fid<=5`` counts as
met only when every judge's figure meets it.

Every judge of a set must read the same samples: the same dataset, image shape, condition kind and
classes (:func:`check_judges`); each keeps its own reference set (its held-out images).
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .judge import Judge, JudgeError, JudgeMismatchError, load_judge
from .result import MetricResult

#: scalar figures where a lower value is better (every other figure: higher is better)
LOWER_IS_BETTER = frozenset({"fid", "intra_class_fid", "condition_rmse", "inception_fid", "kid"})
#: figures that do not depend on the judge (computed once, under the first judge)
JUDGE_FREE = frozenset({"parzen_log_likelihood", "inception_fid", "inception_score", "kid"})


def split_paths(text: str) -> list[str]:
    """``"A.pt,B.pt, C.pt"`` as ``["A.pt", "B.pt", "C.pt"]``; an empty entry is refused in one line."""
    paths = [p.strip() for p in text.split(",")]
    if not paths or any(not p for p in paths):
        raise ValueError(f"--judges takes judge files separated by commas (A.pt,B.pt,C.pt), got {text!r}")
    return paths


def load_judges(paths: Sequence[str | Path], *, map_location: Any = "cpu") -> list[Judge]:
    """Load every judge file (a missing one is named first, before any loading) and :func:`check_judges` them."""
    if not paths:
        raise ValueError("no judge files given")
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise JudgeError(f"judge file {missing[0]!r} does not exist" + (f" (nor {', '.join(map(repr, missing[1:]))})"
                         if len(missing) > 1 else "") + "; train one with: condgan train-classifier --dataset NAME "
                         f"--data-root DIR --out {missing[0]}")
    judges = [load_judge(p, map_location=map_location) for p in paths]
    check_judges(judges, [str(p) for p in paths])
    return judges


def _describe(judge: Judge) -> str:
    classes = f", {judge.num_classes} classes" if judge.num_classes is not None else ""
    return f"{judge.dataset} at {'x'.join(map(str, judge.image_shape))}, {judge.kind}{classes}"


def check_judges(judges: Sequence[Judge], names: Sequence[str] | None = None) -> None:
    """Refuse, in one line, judges that cannot read the same samples, or the same judge twice.

    Raises:
        JudgeMismatchError: another dataset, image shape, condition kind, class count or class names.
        JudgeError: two files of the same weights (same SHA-256): they are one opinion, not two.
    """
    names = list(names or [f"judge {k + 1}" for k in range(len(judges))])
    first, first_name = judges[0], names[0]
    for judge, name in zip(judges[1:], names[1:]):
        if (judge.dataset, judge.image_shape, judge.kind, judge.out_dim) != (
                first.dataset, first.image_shape, first.kind, first.out_dim) or judge.class_names != first.class_names:
            raise JudgeMismatchError(f"the judges {first_name} ({_describe(first)}) and {name} ({_describe(judge)}) were "
                                     "trained on different datasets or image sizes; every judge of --judges must read "
                                     "the same samples: train them on one dataset at one --image-size")
    seen: dict[str, str] = {}
    for judge, name in zip(judges, names):
        if judge.sha256 in seen:
            raise JudgeError(f"{seen[judge.sha256]} and {name} are the same judge (sha256 {judge.sha256[:16]}...): "
                             "judges must be trained independently (another --arch, --augment or --seed)")
        seen[judge.sha256] = name


def scalars(results: Mapping[str, MetricResult]) -> dict[str, float]:
    """The scalar figures of one evaluation: ``fid``, ``label_accuracy``, ..., ``precision``, ``recall``, ``density``, ``coverage``."""
    out: dict[str, float] = {}
    for key, result in results.items():
        if isinstance(result.value, Mapping):
            out.update({k: float(v) for k, v in result.value.items()})
        else:
            out[key] = float(result.value)
    return out


def worse(metric: str, a: float, b: float) -> bool:
    """True when ``a`` is worse than ``b`` for ``metric`` (a NaN is worse than anything)."""
    if math.isnan(a):
        return not math.isnan(b)
    if math.isnan(b):
        return False
    return a > b if metric in LOWER_IS_BETTER else a < b


def worst_case(per_judge: Sequence[Mapping[str, MetricResult]]) -> dict[str, MetricResult]:
    """Each figure's worst value over the judges that have it, as :class:`MetricResult` s.

    A figure of pairs (precision and recall, density and coverage) takes each part's worst.
    ``details["judge"]`` is the index of the judge that gave the worst value (a dict of them for
    pairs), ``details["per_judge"]`` every judge's value (None where it has none); label
    accuracy's ``details["per_class"]`` is each class's lowest accuracy over the judges. Figures
    that do not depend on the judge (:data:`JUDGE_FREE`: Parzen, Inception) are the first judge's
    that has them, as they are.

    Example:
        >>> r = lambda a, f: {"label_accuracy": MetricResult("label_accuracy", a, {}), "fid": MetricResult("fid", f, {})}
        >>> w = worst_case([r(0.99, 2.0), r(0.97, 1.0)])
        >>> (w["label_accuracy"].value, w["label_accuracy"].details["judge"], w["fid"].value, w["fid"].details["judge"])
        (0.97, 1, 2.0, 0)
    """
    out: dict[str, MetricResult] = {}
    for key in dict.fromkeys(k for r in per_judge for k in r):
        have = [(j, r[key]) for j, r in enumerate(per_judge) if key in r]
        first = have[0][1]
        if key in JUDGE_FREE:
            out[key] = first
            continue
        protocol = {"worst over judges": [r.protocol.get("classifier", {}).get("sha256") for _, r in have],
                    "samples": first.protocol.get("samples"), "rule": "highest FID / RMSE, lowest accuracy and the rest"}
        if isinstance(first.value, Mapping):
            value, judge, values = {}, {}, {}
            for part in first.value:
                v, j, each = _worst_of(part, [(j, r.value[part]) for j, r in have], len(per_judge))
                value[part], judge[part], values[part] = v, j, each
        else:
            value, judge, values = _worst_of(key, [(j, r.value) for j, r in have], len(per_judge))
        details: dict[str, Any] = {"judge": judge, "per_judge": values}
        per = [r.details.get("per_class") for _, r in have] if key == "label_accuracy" else []
        if per and all(isinstance(p, list) and len(p) == len(per[0]) for p in per):
            details["per_class"] = [None if any(p[c] is None for p in per) else min(p[c] for p in per)
                                    for c in range(len(per[0]))]
        out[key] = MetricResult(key, value, protocol, details)
    return out


def _worst_of(metric: str, values: Sequence[tuple[int, float]], n: int) -> tuple[float, int, list[float | None]]:
    each: list[float | None] = [None] * n
    worst_j = values[0][0]
    for j, v in values:
        each[j] = float(v)
        if worse(metric, float(v), float(each[worst_j])):
            worst_j = j
    return each[worst_j], worst_j, each


_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_TARGET = re.compile(r"^\s*([A-Za-z_]+)\s*(>=|<=|>|<)\s*([-+0-9.eE]+)\s*$")
TARGET_METRICS = ("label_accuracy", "attribute_accuracy", "condition_rmse", "fid", "intra_class_fid", "precision",
                  "recall", "density", "coverage")


@dataclass(frozen=True)
class Target:
    """A quality target such as ``fid<=5``: ``metric``, ``op`` (``>=``, ``<=``, ``>``, ``<``) and ``level``."""

    metric: str
    op: str
    level: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.level:g}"

    def met(self, value: float | None) -> bool:
        """Whether ``value`` meets the target (a missing or NaN value does not)."""
        return value is not None and not math.isnan(value) and bool(_OPS[self.op](value, self.level))

    def check(self, per_judge: Sequence[Mapping[str, float]]) -> dict[str, Any]:
        """The target under each judge's scalar figures: met only when it is met under every one.

        Returns:
            ``{"target": "fid<=5", "met": bool, "per_judge": [{"value": v, "met": bool}, ...]}``.
        """
        each = [{"value": f.get(self.metric), "met": self.met(f.get(self.metric))} for f in per_judge]
        return {"target": str(self), "met": bool(each) and all(e["met"] for e in each), "per_judge": each}


def parse_target(text: str) -> Target:
    """``"label_accuracy>=0.99"`` as a :class:`Target`; anything else is refused in one line.

    Example:
        >>> parse_target("fid<=5"), parse_target("label_accuracy >= 0.99").met(0.995)
        (Target(metric='fid', op='<=', level=5.0), True)
    """
    m = _TARGET.match(text)
    if not m:
        raise ValueError(f"a target reads METRIC>=VALUE or METRIC<=VALUE (e.g. label_accuracy>=0.99, fid<=5), got {text!r}")
    metric, op, level = m.groups()
    if metric not in TARGET_METRICS:
        raise ValueError(f"unknown target metric {metric!r}; choose one of {', '.join(TARGET_METRICS)}")
    try:
        value = float(level)
    except ValueError:
        raise ValueError(f"target {text!r}: {level!r} is not a number") from None
    return Target(metric, op, value)
