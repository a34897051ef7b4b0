"""``condgan search CONFIG``: a hyperparameter search over the config file's ``[search]`` space.

Each trial is a run directory under ``--out``; the study is stored beside them (Optuna,
``OUT/study.db``) so that the same command resumes a killed search; the best trial's config is
written to ``OUT/best.toml`` for ``condgan train --config``. ``--backend ray`` runs the trials on Ray
Tune workers (:mod:`condgan.runs.ray_backend`). See :mod:`condgan.runs.search` for the metrics and
the pruning.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from ..hookspecs import hookimpl
from . import Command, non_negative_int, parse_override, positive_float, positive_int

#: the training options of condgan train that a search takes: flag -> dotted key
SEARCH_FLAGS = {"steps": "training.steps", "epochs": "training.epochs", "minutes": "training.minutes",
                "batch_size": "training.batch_size", "device": "training.device", "log_every": "training.log_every",
                "eval_every": "training.eval_every", "eval_samples": "training.eval_samples", "judge": "training.judge",
                "loggers": "training.loggers", "checkpoint_every": "training.checkpoint_every",
                "sample_every": "training.sample_every", "data_root": "data.root", "dataset": "data.name"}


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    from ..runs.search import METRICS

    parser.add_argument("config_file", metavar="CONFIG", help="a TOML or JSON config file with a [search] table "
                        '(e.g. "model.g_optimizer.lr" = {low = 1e-5, high = 1e-3, log = true}); its model, data and '
                        "training tables are every trial's config")
    parser.add_argument("--trials", type=positive_int, required=True,
                        help="finished trials in all (a resumed search runs the ones left)")
    parser.add_argument("--metric", choices=METRICS, default="fid",
                        help="what the search optimises (default fid; fid, label_accuracy, attribute_accuracy and "
                             "condition_rmse need --judge; g_loss/d_loss are for smoke tests only)")
    parser.add_argument("--out", required=True, help="the search directory: study.db, trial_NNNN/, best.toml")
    parser.add_argument("--preset", help="the preset every trial starts from (default mnist_mlp)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], type=parse_override, metavar="KEY=VALUE",
                        help="override a config key of every trial (as condgan train --set)")
    parser.add_argument("--judge", help="judge file for the judged metrics (condgan train-classifier)")
    parser.add_argument("--eval-every", type=positive_int, metavar="N",
                        help="steps between evaluations, the points where weak trials are pruned (default: --log-every)")
    parser.add_argument("--eval-samples", type=positive_int, help="samples per evaluation (default 1000)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=positive_int, help="each trial's budget in steps")
    budget.add_argument("--epochs", type=positive_int, help="each trial's budget in epochs")
    budget.add_argument("--minutes", type=positive_float, help="each trial's budget in minutes")
    parser.add_argument("--batch-size", type=positive_int, help="images per step of every trial; default: the config's")
    parser.add_argument("--log-every", type=positive_int, help="steps between log points (default 100)")
    parser.add_argument("--checkpoint-every", type=positive_int, help="steps between each trial's checkpoints (default 2000)")
    parser.add_argument("--sample-every", type=non_negative_int, help="steps between each trial's sample grids (0: at the end only)")
    parser.add_argument("--loggers", type=lambda s: tuple(n for n in s.split(",") if n),
                        help="each trial's loggers (default console,grid,tensorboard)")
    parser.add_argument("--device", help="auto (default), cpu, cuda")
    parser.add_argument("--dataset", help="a registered dataset; default: the config's")
    parser.add_argument("--data-root", help="folder holding the dataset")
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe", help="Optuna's sampler (default tpe)")
    parser.add_argument("--pruner", choices=["median", "none"], default="median",
                        help="prune a trial whose metric is worse than the median of earlier trials at the same step "
                             "(default median; after 2 trials)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="the sampler's seed (each trial keeps its config's seed)")
    parser.add_argument("--backend", choices=["optuna", "ray"], default="optuna",
                        help="optuna: trials one after another in this process (default); ray: Ray Tune workers")
    parser.add_argument("--ray-address", metavar="HOST:PORT",
                        help="with --backend ray: an existing cluster's head (default: a local Ray instance)")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="with --backend ray and no --ray-address: the local instance's CPUs (default 2)")


def run_search(args: argparse.Namespace) -> int:
    from ..runs.search import SearchError, plan_search
    from .train import new_run_config

    if args.backend != "ray" and args.ray_address:
        raise SearchError("--ray-address goes with --backend ray")
    flags = {key: getattr(args, flag) for flag, key in SEARCH_FLAGS.items() if getattr(args, flag) is not None}

    def make_config(overrides: Mapping[str, Any], run_dir: Path):
        return new_run_config(run_dir, args.preset, overrides, {})

    if args.backend == "ray":  # before the config is read: a missing Ray or a dead address is said first
        from ..runs.ray_backend import check_ray

        check_ray(args.ray_address)
    else:
        from ..runs.search import require

        require("optuna", "search")
    plan = plan_search(args.config_file, dict(args.overrides), flags, metric=args.metric, trials=args.trials,
                       out=args.out, make_config=make_config, sampler=args.sampler, pruner=args.pruner, seed=args.seed)
    if args.backend == "ray":
        from ..runs.ray_backend import run_ray

        print(run_ray(plan, address=args.ray_address, workers=args.workers))
        return 0
    from ..runs.optuna_backend import run_optuna, summary_line

    study = run_optuna(plan)
    print(summary_line(plan, study))
    return 0


@hookimpl
def register_commands():
    return [Command("search", "search hyperparameters (Optuna, or Ray Tune): a [search] space in a config file, "
                              "each trial a run directory, the study resumable, the best config written",
                    add_search_arguments, run_search)]
