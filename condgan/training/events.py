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
import inspect
import threading
from typing import Callable, Iterator

from .. import hookspecs
from ..hookspecs import hookimpl
from ..plugins import Registry

EVENTS = ("on_train_start", "on_step_end", "on_log", "on_sample", "on_checkpoint", "on_failure", "on_train_end")


def check_run_plugins(registry: Registry, loggers: tuple[str, ...], callbacks: tuple[str, ...]) -> None:
    """Unknown logger or callback names fail now (an UnknownComponentError listing the registered ones)."""
    for name in loggers:
        registry.get("logger", name)
    for name in callbacks:
        registry.get("callback", name)


_REGISTERING = threading.Lock()  # runs side by side (condgan.runs.stacked) register their plugins from threads


@contextlib.contextmanager
def run_plugins(registry: Registry, loggers: tuple[str, ...], callbacks: tuple[str, ...], *, active: bool,
                owner: object | None = None) -> Iterator[list]:
    """One instance of each named logger and callback, registered for the ``with`` block (none when
    not ``active``: processes other than 0 fire no events). With ``owner`` (a trainer training beside
    others in one process), each instance receives the events of that trainer only."""
    made = ([registry.get("logger", n)() for n in loggers] + [registry.get("callback", n)() for n in callbacks]
            if active else [])
    registered = [plugin if owner is None else _owned(plugin, owner) for plugin in made]
    with _REGISTERING:
        for plugin in registered:
            registry.register(plugin)
    try:
        yield made
    finally:
        with _REGISTERING:
            for plugin in registered:
                registry.unregister(plugin)


def _forward_if_owner(impl: Callable, owner: object) -> Callable:
    """A function with ``impl``'s own parameter names (pluggy calls an implementation by the names its
    code declares) that calls ``impl`` when the event's ``trainer`` is ``owner``."""
    names = list(inspect.signature(impl).parameters)
    if "trainer" not in names or any(not n.isidentifier() or n.startswith("_cg_") for n in names):
        raise TypeError(f"{impl.__qualname__}: an event method takes the trainer as a 'trainer' argument")
    params = ", ".join(names)
    namespace = {"_cg_impl": impl, "_cg_owner": owner}
    exec(f"def {impl.__name__}({params}):\n    return _cg_impl({params}) if trainer is _cg_owner else None", namespace)
    call = namespace[impl.__name__]
    call.__doc__, call.__defaults__ = impl.__doc__, getattr(impl, "__defaults__", None)  # defaults: as the impl's
    return call


def _owned(plugin: object, owner: object) -> object:
    """A stand-in for ``plugin`` whose event methods pass on the events whose ``trainer`` is ``owner``."""
    stand_in = type(f"Owned{type(plugin).__name__}", (), {})()
    for event in EVENTS:
        impl = getattr(plugin, event, None)
        marks = getattr(impl, hookspecs.PROJECT + "_impl", None)
        if impl is None or marks is None:
            continue
        call = _forward_if_owner(impl, owner)
        setattr(stand_in, event, hookimpl(**marks)(call) if marks else hookimpl(call))
    return stand_in
