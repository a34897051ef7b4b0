"""The search on Ray Tune: Optuna's sampler as Tune's searcher, one trial per worker.

``condgan search CONFIG --backend ray`` starts a local Ray instance of ``--workers`` CPUs, or joins
an existing cluster with ``--ray-address HOST:PORT`` (checked to answer before anything else).
Each trial asks for the resources of the config's ``[resources]`` table (``cpus_per_trial``,
default 1; ``gpus_per_trial``, default 1 when the training device is CUDA, else 0). Trials report
their metric at each metric point (``ray.tune.report``); Tune's ASHA scheduler stops weak ones
(Ray's pruning: a stopped trial's worker ends without a final checkpoint). The Optuna study is
stored as with the Optuna backend (``OUT/study.db``), so a rerun counts the trials it holds and runs
the rest; the best trial's config is written to ``OUT/best.toml``.

Every path the trials use (the search directory, the judge, the data root) is made absolute: a
worker runs in another process, on another machine with a cluster, where those paths must exist.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from .search import BEST_CONFIG, STUDY_FILE, STUDY_NAME, SearchError, SearchPlan, describe_values, require, train_trial, write_best

PATH_KEYS = ("training.judge", "data.root")


def check_ray(address: str | None, timeout: float = 3.0) -> None:
    """Ray and Optuna importable, and ``address`` (``HOST:PORT``, ``ray://HOST:PORT``) answering a TCP connection.

    Raises:
        SearchError: one line naming the missing extra or the address that does not answer.
    """
    require("ray.tune", "ray")
    require("optuna", "ray")
    if not address or address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SearchError(f"--ray-address {address!r}: expected HOST:PORT (e.g. 10.0.0.5:6379, the head's GCS address)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise SearchError(f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); start the head with "
                          "'ray start --head' or check the address") from None


class DefineByRun:
    """Optuna's define-by-run space for Tune's searcher (a class: the searcher is pickled)."""

    def __init__(self, params: list[Any]):
        self.params = params

    def __call__(self, trial: Any) -> None:
        for param in self.params:
            param.suggest(trial)


def _absolute(plan: SearchPlan) -> SearchPlan:
    plan.out = plan.out.resolve()
    for key in PATH_KEYS:
        for k in (key, key.split(".", 1)[1]):
            if isinstance(plan.base.get(k), str) and plan.base[k] not in ("none",):
                plan.base[k] = str(Path(plan.base[k]).resolve())
    return plan


def resources(plan: SearchPlan) -> dict[str, float]:
    """``{"cpu": c, "gpu": g}`` per trial from the config's ``[resources]`` table."""
    config = plan.trial_config({}, plan.out / "trial")
    cuda = str(config.training.device or "").startswith("cuda")
    return {"cpu": float(plan.resources.get("cpus_per_trial", 1)), "gpu": float(plan.resources.get("gpus_per_trial", 1 if cuda else 0))}


def run_ray(plan: SearchPlan, *, address: str | None = None, workers: int = 2) -> str:
    """Run the search on Ray Tune; returns the summary line (best trial and its config file)."""
    optuna = require("optuna", "ray")
    ray = require("ray", "ray")
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from .optuna_backend import finished, open_study, recover_interrupted

    plan = _absolute(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{plan.out / STUDY_FILE}")
    study = open_study(plan, storage)  # another config's study is refused here
    recover_interrupted(study, storage)
    left = plan.trials - len(finished(study))
    if left <= 0:
        return f"search {plan.out}: {len(finished(study))} of {plan.trials} trials finished; nothing to run"
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    if address:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    else:
        ray.init(num_cpus=workers, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)

    def trainable(config: dict[str, Any]) -> None:
        values = {k: plan.space[k].value(config[k]) for k in plan.space}
        run_dir = plan.out / f"trial_{tune.get_context().get_trial_id()}"

        def report(value: float, step: int) -> bool:
            tune.report({plan.metric: value, "step": step, "run_dir": str(run_dir)})
            return False  # Tune's scheduler stops a weak trial itself

        reason, value, step = train_trial(plan, values, run_dir, report)
        tune.report({plan.metric: value, "step": step, "run_dir": str(run_dir), "done": True})

    mode = "min" if plan.direction == "minimize" else "max"
    searcher = OptunaSearch(space=DefineByRun(list(plan.space.values())), metric=plan.metric, mode=mode, study_name=STUDY_NAME, storage=storage,
                            sampler=optuna.samplers.TPESampler(seed=plan.seed) if plan.sampler == "tpe"
                            else optuna.samplers.RandomSampler(seed=plan.seed))
    scheduler = ASHAScheduler(grace_period=2, reduction_factor=2) if plan.pruner != "none" else None
    tuner = tune.Tuner(tune.with_resources(trainable, resources(plan)),
                       tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=left,
                                                   metric=plan.metric, mode=mode),
                       run_config=tune.RunConfig(storage_path=str(plan.out / "ray"), name="search", verbose=0))
    try:
        results = tuner.fit()
    finally:
        ray.shutdown()  # a local instance ends with the search; a cluster's client disconnects
    errors = [r.error for r in results if r.error is not None]
    done = [r for r in results if r.metrics.get("done")]
    if not done:
        raise SearchError(f"search {plan.out}: no Ray trial finished ({len(errors)} failed: "
                          f"{str(errors[0]).splitlines()[0][:200] if errors else 'see ' + str(plan.out / 'ray')})")
    best = results.get_best_result(metric=plan.metric, mode=mode, filter_nan_and_inf=True)
    values = {k: plan.space[k].value(best.config[k]) for k in plan.space}
    name = Path(best.metrics["run_dir"]).name
    write_best(plan, name, best.metrics[plan.metric], values, Path(best.metrics["run_dir"]))
    return (f"search {plan.out} on Ray: {len(results)} trials ({len(done)} ran to the end, {len(errors)} failed, "
            f"the rest stopped by ASHA); best {name}: {plan.metric} {best.metrics[plan.metric]:.4g} with "
            f"{describe_values(values)}; its config: {plan.out / BEST_CONFIG}")
