"""The search on Optuna in this process: TPE (or random) sampling, median pruning, a SQLite study.

A killed search resumes: the study in ``OUT/study.db`` keeps every trial; trials still marked
running (their process died: this one holds ``OUT``'s lock) become failed trials marked
``interrupted`` and their parameters are queued again. Finished trials (complete, pruned, failed
for a non-finite loss) count towards ``--trials``; interrupted ones do not.
"""

from __future__ import annotations

from typing import Any, Callable

from .search import (STUDY_FILE, STUDY_NAME, SearchError, SearchPlan, describe_values, require, train_trial, trial_dir,
                     write_best)

CONFIG_ATTR = "condgan_search"


def make_sampler(optuna: Any, name: str, seed: int) -> Any:
    return {"tpe": lambda: optuna.samplers.TPESampler(seed=seed),
            "random": lambda: optuna.samplers.RandomSampler(seed=seed)}[name]()


def make_pruner(optuna: Any, name: str) -> Any:
    return {"median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
            "none": lambda: optuna.pruners.NopPruner()}[name]()


def open_study(plan: SearchPlan, storage: Any = None) -> Any:
    """The study of ``plan`` in ``OUT/study.db``: created, or loaded when it holds this search.

    Raises:
        SearchError: the file holds a study of another config (naming what differs).
    """
    optuna = require("optuna", "search")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan.out.mkdir(parents=True, exist_ok=True)
    storage = storage or optuna.storages.RDBStorage(f"sqlite:///{plan.out / STUDY_FILE}")
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction=plan.direction, load_if_exists=True,
                                sampler=make_sampler(optuna, plan.sampler, plan.seed), pruner=make_pruner(optuna, plan.pruner))
    saved = study.user_attrs.get(CONFIG_ATTR)
    if saved is None:
        if study.trials:
            raise SearchError(f"{plan.out / STUDY_FILE} holds a study that condgan search did not make: use another --out")
        study.set_user_attr(CONFIG_ATTR, {"fingerprint": plan.fingerprint(), **plan.describe()})
    elif saved.get("fingerprint") != plan.fingerprint():
        raise SearchError(f"{plan.out / STUDY_FILE} holds the study of another config (differs in: {differences(saved, plan)}); "
                          "resume it with the config it was made with, or give another --out")
    return study


def differences(saved: dict[str, Any], plan: SearchPlan) -> str:
    now = plan.describe()
    keys = [f"the metric ({saved.get('metric')} then, {now['metric']} now)"] if saved.get("metric") != now["metric"] else []
    for part in ("base", "space"):
        a, b = saved.get(part) or {}, now[part]
        keys += [f"{part} {k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(keys[:6]) or "its description"


def finished(study: Any) -> list[Any]:
    """The trials that count towards ``--trials``: complete, pruned, or failed but not interrupted."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return [t for t in study.trials if t.state in done and not t.user_attrs.get("interrupted")]


def recover_interrupted(study: Any, storage: Any) -> list[int]:
    """Mark the trials left running by a dead process failed (``interrupted``) and queue their
    parameters again; returns their numbers."""
    from optuna.trial import TrialState

    study_id = storage.get_study_id_from_name(STUDY_NAME)
    numbers = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        numbers.append(t.number)
    return numbers


def run_optuna(plan: SearchPlan, echo: Callable[[str], None] = print) -> Any:
    """Run (or resume) the study until it has ``plan.trials`` finished trials; returns the study."""
    from ..training.guards import NonFiniteLossError
    from ..training.rundir import lock_run_directory

    optuna = require("optuna", "search")
    plan.out.mkdir(parents=True, exist_ok=True)
    with lock_run_directory(plan.out):  # one search process per directory: a running trial here is a dead one's
        storage = optuna.storages.RDBStorage(f"sqlite:///{plan.out / STUDY_FILE}")
        study = open_study(plan, storage)
        again = recover_interrupted(study, storage)
        if again:
            echo(f"search {plan.out}: trial(s) {', '.join(map(str, again))} were cut off by a kill: marked failed "
                 "(interrupted), their parameters queued again")
        left = plan.trials - len(finished(study))
        echo(f"search {plan.out}: {len(finished(study))} of {plan.trials} trials finished; running {max(left, 0)} "
             f"({plan.sampler} sampler, {plan.pruner} pruner, {plan.direction} {plan.metric})")

        def objective(trial: Any) -> float:
            values = {key: param.suggest(trial) for key, param in plan.space.items()}
            run_dir = trial_dir(plan.out, trial.number)
            trial.set_user_attr("run_dir", str(run_dir))

            def report(value: float, step: int) -> bool:
                trial.report(value, step)
                return trial.should_prune()

            echo(f"trial {trial.number}: {describe_values(values)} -> {run_dir}")
            try:
                reason, value, step = train_trial(plan, values, run_dir, report)
            except NonFiniteLossError as exc:
                echo(f"trial {trial.number}: failed ({str(exc).splitlines()[0][:160]})")
                raise
            if reason == "interrupted":  # Ctrl-C: the trial is tried again when the search resumes
                trial.set_user_attr("interrupted", True)
                study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
                raise KeyboardInterrupt
            if reason == "pruned":
                echo(f"trial {trial.number}: pruned at step {step} ({plan.metric} {value:.4g})")
                raise optuna.TrialPruned()
            echo(f"trial {trial.number}: {plan.metric} {value:.4g} at step {step}")
            return value

        if left > 0:
            study.optimize(objective, n_trials=left, catch=(NonFiniteLossError,))
        best = best_trial(study)
        if best is not None:
            values = {k: plan.space[k].value(v) for k, v in best.params.items()}
            write_best(plan, best.number, best.value, values, trial_dir(plan.out, best.number))
    return study


def best_trial(study: Any) -> Any:
    try:
        return study.best_trial
    except ValueError:  # no complete trial
        return None


def summary_line(plan: SearchPlan, study: Any) -> str:
    from optuna.trial import TrialState

    from .search import BEST_CONFIG

    counted = finished(study)
    states = {s: sum(t.state == s for t in counted) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    best = best_trial(study)
    head = (f"search {plan.out}: {len(counted)} trials ({states[TrialState.COMPLETE]} complete, "
            f"{states[TrialState.PRUNED]} pruned, {states[TrialState.FAIL]} failed)")
    if best is None:
        return head + "; no trial completed, so no best config"
    values = {k: plan.space[k].value(v) for k, v in best.params.items()}
    return (f"{head}; best trial {best.number}: {plan.metric} {best.value:.4g} with {describe_values(values)}; "
            f"its config: {plan.out / BEST_CONFIG} (condgan train --config {plan.out / BEST_CONFIG} --out DIR)")
