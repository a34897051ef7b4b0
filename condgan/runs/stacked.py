"""A group's runs trained side by side in one process (issue 26, item 1): the driver around
:class:`~condgan.training.stacked.StackedStep`.

Each run keeps its own ordinary :class:`~condgan.training.Trainer` (its loop, budget, loggers,
metrics, sample grids, checkpoints and ``generator.pt``, in its own run directory), run in a thread
of its own whose step is handed to one coordinator: when every run still training has asked for its
step, the coordinator (the main thread) computes them all at once and hands each its losses. So
everything but the step is the solo code, and a run's checkpoint is an ordinary one (its random
state is its own generator's, :attr:`Trainer.step_rng`).

- :func:`train_side_by_side`: train built trainers stacked; returns each one's stop reason.
- :func:`check_memory`: before the first step, the largest K that fits, from one built trainer.

Example:
    >>> reasons = train_side_by_side(trainers, generators)
"""

from __future__ import annotations

import os
import threading
from typing import Any, Sequence

import torch

from ..training.signals import stop_on_signals
from ..training.stacked import StackedStep, global_generator


class _Coordinator:
    """Collects the runs' step requests and answers them with one stacked step."""

    def __init__(self, step: StackedStep):
        self.step, self.cond = step, threading.Condition()
        self.pending: dict[int, tuple[Any, Any]] = {}
        self.results: dict[int, Any] = {}
        self.alive = set(range(step.k))

    def submit(self, k: int, real, y):
        with self.cond:
            self.pending[k] = (real, y)
            self.cond.notify_all()
            while k not in self.results:
                self.cond.wait()
            result = self.results.pop(k)
        if isinstance(result, BaseException):
            raise result
        return result

    def leave(self, k: int) -> None:
        with self.cond:
            self.alive.discard(k)
            self.cond.notify_all()

    def serve(self) -> None:
        """Until every run has left: wait for each live run's request, then step them all."""
        while True:
            with self.cond:
                while self.alive and set(self.pending) != self.alive:
                    self.cond.wait(0.5)
                if not self.alive:
                    return
                members = sorted(self.pending)
                batches = [self.pending.pop(k) for k in members]
            try:
                out: list[Any] = self.step(members, batches)
            except BaseException as exc:  # noqa: BLE001 - handed to each run's own loop, which reports it
                out = [exc] * len(members)
            with self.cond:
                self.results.update(zip(members, out))
                self.cond.notify_all()


def train_side_by_side(trainers: Sequence, generators: Sequence[torch.Generator]) -> list[str]:
    """Train ``trainers`` (runs that :func:`~condgan.training.stacked.refusal` accepts) with one
    stacked step; returns each run's stop reason (as ``Trainer.train``). ``generators[k]``: run k's
    random stream (the global RNG's state right after trainer k was built or resumed). SIGINT and
    SIGTERM stop every run between steps. Raises the first error of a run, after every run ended."""
    step = StackedStep(trainers, generators)
    coord = _Coordinator(step)
    reasons: list[Any] = [None] * len(trainers)
    errors: list[BaseException] = []

    def run(k: int, trainer) -> None:
        try:
            reasons[k] = trainer.train()
        except BaseException as exc:  # noqa: BLE001 - raised in the main thread below
            errors.append(exc)
        finally:
            coord.leave(k)

    for k, (trainer, gen) in enumerate(zip(trainers, generators)):
        trainer.step_rng = gen
        trainer.step_fn = (lambda k: lambda real, y: coord.submit(k, real, y))(k)

    def on_signal(signum: int) -> None:
        for trainer in trainers:
            trainer.stop_signal = signum

    threads = [threading.Thread(target=run, args=(k, t), name=f"condgan-run-{k}", daemon=True)
               for k, t in enumerate(trainers)]
    with stop_on_signals(on_signal):
        for thread in threads:
            thread.start()
        coord.serve()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return reasons


# -- memory ------------------------------------------------------------------------------------------
def run_bytes(trainer) -> int:
    """About the memory one more stacked run takes: weights, gradients, Adam's two moments and the
    EMA copy; the activations of one step (G on B rows, D on B and 2B rows: each layer's output and
    what autograd keeps, about 3 floats per unit); and its dataset, when held in memory."""
    gan, rows = trainer.gan, trainer.config.batch_size
    params = sum(p.numel() for p in gan.parameters()) * 4
    slots = 4 + (1 if trainer.ema is not None else 0)  # weights, gradient, exp_avg, exp_avg_sq (+ EMA)
    units = 0
    for net, passes in ((gan.generator, 1), (gan.discriminator, 3)):
        units += passes * sum(m.out_features for m in net.modules() if isinstance(m, torch.nn.Linear))
    data = getattr(getattr(trainer, "batches", None), "images", None)
    data_bytes = data.numel() * data.element_size() if torch.is_tensor(data) else 0
    return params * slots + rows * units * 3 * 4 + data_bytes


def available_bytes(device: torch.device) -> int:
    """Free memory now: CUDA's free memory on a GPU, else the host's MemAvailable."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def check_memory(trainer, k: int, available: int | None = None) -> None:
    """ValueError (one line, with the largest K that fits) unless K - 1 more runs like ``trainer``
    (built) fit in ``available`` bytes (default: :func:`available_bytes` of its device)."""
    per_run = run_bytes(trainer)
    free = available_bytes(trainer.device) if available is None else int(available)
    fits = 1 + free // per_run if per_run else k
    if k > fits:
        raise ValueError(f"{k} runs side by side need about {k * per_run / 2**30:.2f} GiB ({per_run / 2**20:.0f} MiB a "
                         f"run) and {free / 2**30:.2f} GiB is free on {trainer.device}: at most {fits} fit; "
                         "train fewer runs at once (fewer seeds or sweep values) or one after another (--no-stack)")


# -- a group -------------------------------------------------------------------------------------------
#: config keys a group may vary and still be stacked (each run keeps its own seed and optimizers)
STACKABLE_KEYS = ("seed", "training.seed")
STACKABLE_PREFIXES = ("model.g_optimizer.", "model.d_optimizer.", "g_optimizer.", "d_optimizer.")


def varying_refusal(runs: Sequence) -> str | None:
    """One line naming a swept key that may change the architecture or the batches, else None."""
    for run in runs:
        for key in run.overrides:
            if key not in STACKABLE_KEYS and not key.startswith(STACKABLE_PREFIXES):
                return f"the sweep over {key} may change the architecture or the batches (stacked: seeds and optimizer settings)"
    return None


def train_group_stacked(group, todo: Sequence, make_trainer, echo, *, resume: bool = False) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Train the group's runs ``todo`` side by side; returns (the stop as ``train_group`` returns it,
    {}), or, where they cannot be stacked (one line echoed, naming the part), (None, prebuilt
    trainers by run name for the one-after-another path).

    Before any step: the memory check (:func:`check_memory`: ValueError with the largest K that
    fits). A run already at its budget is finished as the sequential path does.
    """
    from ..checkpoint import files as ckpt
    from ..training import state
    from ..training.stacked import refusal

    why = varying_refusal(todo)
    built: list[tuple[Any, Any, torch.Generator]] = []
    if why is None:
        first = todo[0]
        trainer = make_trainer(group.run_dir(first), first.overrides, resume and ckpt.latest_checkpoint(group.run_dir(first)) is not None)
        why = refusal([trainer])
        if why:
            echo(f"group {group.path}: runs one after another: {why}")
            return None, {first.name: trainer}
        check_memory(trainer, len(todo))
        built.append((first, trainer, global_generator(trainer.device)))
        for run in todo[1:]:
            again = resume and ckpt.latest_checkpoint(group.run_dir(run)) is not None
            trainer = make_trainer(group.run_dir(run), run.overrides, again)
            built.append((run, trainer, global_generator(trainer.device)))
            _share_data(built[0][1], trainer)
        why = refusal([t for _, t, _ in built])
    if why:
        echo(f"group {group.path}: runs one after another: {why}")
        return None, {}
    active = []
    for run, trainer, gen in built:
        if trainer.budget.reached(trainer.step, trainer.epoch, trainer.elapsed_s):
            if state.generator_behind(trainer):
                trainer.train()  # writes the generator.pt its last checkpoint is ahead of, and returns
            else:
                echo(f"group {group.path}: run {run.name} already reached its budget at step {trainer.step}")
            run.status, run.result = "done", {"step": trainer.step, "stop_reason": trainer.stop_reason}
        else:
            active.append((run, trainer, gen))
            run.status = "running"
    group.save()
    if not active:
        return {"reason": "done"}, {}
    names = ", ".join(r.name + (f" (at step {t.step})" if t.step else "") for r, t, _ in active[:4])
    echo(f"group {group.path}: {len(active)} runs side by side, weights stacked: {names}{', ...' if len(active) > 4 else ''}")
    reasons = train_side_by_side([t for _, t, _ in active], [g for _, _, g in active])
    stop: dict[str, Any] = {"reason": "done"}
    for (run, trainer, _), reason in zip(active, reasons):
        if reason == "interrupted":
            stop = {"reason": reason, "run": run.name, "step": trainer.step, "signal": trainer.stop_signal}
        else:
            run.status, run.result = "done", {"step": trainer.step, "stop_reason": reason}
    group.save()
    return stop, {}


def _share_data(first, trainer) -> None:
    """One copy of a dataset the runs hold alike (device-resident tensors), not K."""
    a, b = getattr(first, "batches", None), getattr(trainer, "batches", None)
    if all(hasattr(x, "images") and torch.is_tensor(x.images) for x in (a, b)) and a.images.shape == b.images.shape \
            and torch.equal(a.labels, b.labels) and torch.equal(a.images, b.images):
        b.images, b.labels = a.images, a.labels
