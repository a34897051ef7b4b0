"""Training events and the callbacks that receive them.

The :class:`~condgan.training.trainer.Trainer` is the loop; everything else it does is fired as an
event to plugins (hook specifications in :mod:`condgan.hookspecs`), on process 0, in this order::

    on_train_start(trainer)                      once per train(), also on resume (trainer.step > 0)
    on_step_end(trainer, step)                   after every step (cheap: no host sync)
    on_log(trainer, step, metrics)               every log_every steps: mean losses as floats
    on_sample(trainer, step, images, labels, columns)   every sample_every steps and at the end
    on_checkpoint(trainer, path)                 after each checkpoint is written
    on_failure(trainer, error)                   when train() raises
    on_train_end(trainer)                        always, last; trainer.stop_reason says why

A callback is any object with ``@condgan.hookimpl`` methods named like these. Register it for every
run with :func:`condgan.register_plugin` (or an entry point), or make it a per-run component:
return its class from ``register_callbacks`` and name it in ``TrainerConfig.callbacks`` (loggers
are the same mechanism, through ``register_loggers`` and ``TrainerConfig.loggers``). A callback
ends a run early with ``trainer.request_stop(reason)``: the loop stops before its next step, with
the final checkpoint and ``generator.pt`` written as for any other stop.

Example:
    >>> class EarlyStop:
    ...     name = "early_stop"
    ...     def __init__(self):
    ...         self.best, self.bad = float("inf"), 0
    ...     @condgan.hookimpl
    ...     def on_log(self, trainer, step, metrics):
    ...         self.best, self.bad = (metrics["g_loss"], 0) if metrics["g_loss"] < self.best else (self.best, self.bad + 1)
    ...         if self.bad >= 3:
    ...             trainer.request_stop("early_stop")
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..plugins import Registry

EVENTS = ("on_train_start", "on_step_end", "on_log", "on_sample", "on_checkpoint", "on_failure", "on_train_end")


def check_run_plugins(registry: Registry, loggers: tuple[str, ...], callbacks: tuple[str, ...]) -> None:
    """Unknown logger or callback names fail now (an UnknownComponentError listing the registered ones)."""
    for name in loggers:
        registry.get("logger", name)
    for name in callbacks:
        registry.get("callback", name)


@contextlib.contextmanager
def run_plugins(registry: Registry, loggers: tuple[str, ...], callbacks: tuple[str, ...], *, active: bool) -> Iterator[list]:
    """One instance of each named logger and callback, registered for the ``with`` block (none when
    not ``active``: processes other than 0 fire no events)."""
    made = ([registry.get("logger", n)() for n in loggers] + [registry.get("callback", n)() for n in callbacks]
            if active else [])
    for plugin in made:
        registry.register(plugin)
    try:
        yield made
    finally:
        for plugin in made:
            registry.unregister(plugin)
