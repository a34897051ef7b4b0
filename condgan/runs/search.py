"""``condgan search``: an Optuna study over a config file's ``[search]`` space, each trial a run directory.

``condgan search CONFIG.toml --trials 12 --metric fid --judge J --out runs/s`` stores the study in
SQLite beside its trials (``runs/s/study.db``, ``runs/s/trial_0000/`` ...), so a killed search
resumes where it stopped: run the same command again and the study continues to ``--trials``
finished trials (a trial that was running when the process died is marked failed and its
parameters are tried again). The best trial's full run config is written to ``runs/s/best.toml``,
which ``condgan train --config runs/s/best.toml --out DIR`` reads, with ``runs/s/best.json``.

Metrics: ``fid``, ``label_accuracy``, ``attribute_accuracy`` and ``condition_rmse`` are those of
the metrics during training (:mod:`condgan.training.evaluation`) and need a judge (``--judge``); they
are measured every ``eval_every`` steps (default: every log point) and a trial's value is its last
evaluation, at the end of its budget. Without a judge, ``g_loss`` and ``d_loss`` (the mean loss of
the last log interval) let a search run, but a GAN's loss says little about its samples: use them
for smoke tests, not to pick a model. Weak trials are pruned at those points (Optuna's median
pruner by default): a callback on the trainer's ``on_log`` event reports each value to the trial
and calls ``trainer.request_stop("pruned")`` when Optuna says so.

The study records what it searches (the base config, the space, the metric); the same ``--out`` with
another config is refused, in one line.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..hookspecs import hookimpl
from .space import Param, parse_space, read_search_file
from .summary import lower_is_better

STUDY_FILE = "study.db"
STUDY_NAME = "condgan"
BEST_CONFIG = "best.toml"
BEST_FILE = "best.json"
JUDGED = ("fid", "label_accuracy", "attribute_accuracy", "condition_rmse")
LOSSES = ("g_loss", "d_loss")
METRICS = JUDGED + LOSSES


class SearchError(ValueError):
    """A search that cannot start or continue: a missing extra, a metric without a judge, a study of
    another config (one line)."""


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or raise :class:`SearchError` naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise SearchError(f"this needs {module.split('.')[0]}, which is not installed: pip install 'condgan[{extra}]'") from None


# -- the plan -------------------------------------------------------------------------------------------
#: make_config(overrides, out_dir) -> RunConfig, as condgan train builds a new run's config
MakeConfig = Callable[[Mapping[str, Any], Path], Any]


@dataclass
class SearchPlan:
    """What one search runs: every trial starts from ``base`` and sets the space's keys.

    Attributes:
        out: the search directory (study.db, trial_NNNN/, best.toml).
        base: dotted overrides of every trial (the config file's tables, ``--set``, the options).
        space: key -> :class:`Param`.
        metric, direction: what is optimised (``"minimize"``/``"maximize"``).
        trials: finished trials wanted in all (a resumed study counts those it has).
        resources: the config's ``[resources]`` table (Ray: cpus_per_trial, gpus_per_trial).
    """

    out: Path
    base: dict[str, Any]
    space: dict[str, Param]
    metric: str
    trials: int
    make_config: MakeConfig
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int = 0
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def direction(self) -> str:
        return "minimize" if lower_is_better(self.metric) else "maximize"

    def describe(self) -> dict[str, Any]:
        """What makes two searches the same study (stored in it, compared on resume)."""
        return json.loads(json.dumps({"base": self.base, "space": {k: p.to_dict() for k, p in self.space.items()},
                                      "metric": self.metric}, default=str))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.describe(), sort_keys=True).encode()).hexdigest()[:16]

    def trial_config(self, values: Mapping[str, Any], run_dir: Path) -> Any:
        """The RunConfig of a trial with these values of the space's keys."""
        return self.make_config({**self.base, **values}, run_dir)


def plan_search(config_file: str | Path, overrides: Mapping[str, Any], flags: Mapping[str, Any], *, metric: str,
                trials: int, out: str | Path, make_config: MakeConfig, **options: Any) -> SearchPlan:
    """Read and check a search before any trial: the base config, the space, the metric.

    Raises:
        SearchSpaceError: an unknown key or an impossible range in ``[search]``.
        SearchError: a judged metric without a judge.
    """
    file_overrides, table, resources = read_search_file(config_file)
    base = {**file_overrides, **overrides, **flags}
    out = Path(out)
    config = make_config(base, out / "trial")  # a bad base config fails here, in one line
    if metric in JUDGED:
        if config.training.judge is None:
            raise SearchError(f"--metric {metric} is measured by a judge: give --judge FILE (condgan train-classifier), "
                              f"or search on a loss ({', '.join(LOSSES)}; a smoke test, not a quality measure)")
        if config.training.eval_every is None:  # pruning needs values during training: evaluate at each log point
            base["training.eval_every"] = config.training.log_every
            config = make_config(base, out / "trial")
    space = parse_space(table, config, config_file)
    return SearchPlan(out, base, space, metric, trials, make_config, resources=resources, **options)


# -- one trial ----------------------------------------------------------------------------------------
class ReportToTrial:
    """A callback for one trial's trainer: at each log point it reads the metric (from the ``on_log``
    losses, or the evaluation the metrics logger just wrote), passes it to ``report(value, step)``
    and stops the run (``request_stop("pruned")``) when that returns True.

    Args:
        metric: one of :data:`METRICS`.
        report: ``report(value, step) -> prune?`` (Optuna: ``trial.report`` then ``trial.should_prune``).
    """

    def __init__(self, metric: str, report: Callable[[float, int], bool]):
        self.metric, self.report = metric, report
        self.last: float | None = None

    @hookimpl(trylast=True)  # after the metrics logger has evaluated at this step
    def on_log(self, trainer: Any, step: int, metrics: Mapping[str, float]) -> None:
        value = metrics.get(self.metric) if self.metric in LOSSES else _evaluation(trainer.out_dir, step, self.metric)
        if value is None or not math.isfinite(value):
            return
        self.last = float(value)
        if self.report(self.last, step):
            trainer.request_stop("pruned")


def _evaluation(run_dir: Path | None, step: int, metric: str) -> float | None:
    from ..training.evaluation import METRICS_FILE, read_metrics

    path = Path(run_dir or ".") / METRICS_FILE
    if run_dir is None or not path.is_file():
        return None
    found = [e.get(metric) for e in read_metrics(path) if e.get("kind") == "eval" and e.get("step") == step]
    return found[-1] if found else None


def final_value(run_dir: Path, metric: str, callback: ReportToTrial) -> float | None:
    """A finished trial's value: its last evaluation (judged metrics) or last logged loss."""
    from ..training.evaluation import METRICS_FILE, read_metrics

    if metric in LOSSES:
        return callback.last
    path = run_dir / METRICS_FILE
    evals = [e.get(metric) for e in read_metrics(path) if e.get("kind") == "eval"] if path.is_file() else []
    return evals[-1] if evals and evals[-1] is not None else None


def train_trial(plan: SearchPlan, values: Mapping[str, Any], run_dir: Path, report: Callable[[float, int], bool]) -> tuple[str, float | None, int]:
    """Train one trial in ``run_dir`` with ``report`` called at each metric point; returns
    (stop reason, its value, its last step)."""
    from ..plugins import get_registry
    from ..training.trainer import Trainer

    trainer = Trainer(plan.trial_config(values, run_dir))
    callback = ReportToTrial(plan.metric, report)
    registry = get_registry()
    registry.register(callback, name=f"search_report_{id(callback)}")
    try:
        reason = trainer.train()
    finally:
        registry.unregister(callback)
    value = final_value(run_dir, plan.metric, callback)
    if value is None and reason not in ("pruned", "interrupted"):
        raise SearchError(f"{run_dir}: the trial logged no {plan.metric} (its budget ends before the first log point: "
                          "lower --log-every / --eval-every or raise its budget)")
    return reason, value, trainer.step


def trial_dir(out: Path, number: int) -> Path:
    return out / f"trial_{number:04d}"


# -- the best trial -------------------------------------------------------------------------------------
def write_best(plan: SearchPlan, number: int, value: float, values: Mapping[str, Any], run_dir: Path) -> Path:
    """Write the best trial's full run config as ``best.toml`` (``condgan train --config`` reads it;
    no out_dir: give ``--out``) and ``best.json``; returns the TOML's path."""
    from .. import checkpoint as ckpt
    from ..checkpoint import atomic_write
    from ..config import to_toml

    config = plan.trial_config(values, run_dir)
    training = config.training.to_dict()
    training["out_dir"] = None
    plain = {"model": ckpt.config_to_plain(config.model), "data": ckpt.data_config_to_plain(config.data),
             "training": training}
    header = (f"# condgan search {plan.out}: best trial {number} ({plan.metric} {value:.6g}); "
              f"condgan train --config {plan.out / BEST_CONFIG} --out DIR\n")
    path = plan.out / BEST_CONFIG
    text = header + to_toml(plain)
    atomic_write(path, lambda f: f.write(text.encode()))
    summary = {"trial": number, "metric": plan.metric, "direction": plan.direction, "value": value,
               "values": json.loads(json.dumps(dict(values), default=str)), "run_dir": str(run_dir), "config": str(path)}
    atomic_write(plan.out / BEST_FILE, lambda f: f.write((json.dumps(summary, indent=1) + "\n").encode()))
    return path


def describe_values(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v!r}" for k, v in values.items())
