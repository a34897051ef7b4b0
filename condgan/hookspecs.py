"""Hook specifications: the one place that says what a condgan plugin can provide.

A plugin is any object (a module, a class, an instance) with functions named like the hooks below
and decorated with :data:`condgan.hookimpl`. Built-in components are plugins of exactly this kind.

This module sits below everything it describes: it imports no condgan module. A registration hook
returns classes (``type``) of the kind its docstring names; an event hook receives the running
trainer as a :class:`TrainerView`, the part of :class:`~condgan.training.trainer.Trainer` that
plugins may rely on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Protocol

import pluggy
from torch import Tensor

PROJECT = "condgan"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class TrainerView(Protocol):
    """What an event hook may read of the trainer (and the one thing it may ask: ``request_stop``)."""

    step: int  # steps done
    epoch: int
    config: Any  # the TrainerConfig
    gan: Any  # the GAN being trained (read only)
    out_dir: Path | None
    stop_reason: str | None
    elapsed_s: float

    @property
    def target_steps(self) -> int | None: ...

    def seconds_left(self, steps_per_s: float) -> float | None: ...

    def budget_text(self) -> str: ...

    def request_stop(self, reason: str = "requested") -> None: ...


@hookspec
def register_conditioners() -> Iterable[type]:
    """Return :class:`~condgan.conditioners.Conditioner` subclasses, each with a unique ``name``."""


@hookspec
def register_outputs() -> Iterable[type]:
    """Return :class:`~condgan.outputs.OutputSpec` subclasses (output kinds: image, vector, ...), each with a unique ``name``."""


@hookspec
def register_losses() -> Iterable[type]:
    """Return :class:`~condgan.losses.Loss` subclasses, each with a unique ``name``."""


@hookspec
def register_backbones() -> Iterable[type]:
    """Return :class:`~condgan.backbones.Backbone` subclasses, each with a unique ``name``."""


@hookspec
def register_augments() -> Iterable[type]:
    """Return :class:`~condgan.augment.Augment` subclasses (augmentations of D's inputs), each with a unique ``name``."""


@hookspec
def register_presets() -> Iterable[Any]:
    """Return :class:`~condgan.presets.Preset` objects, each with a unique ``name``."""


@hookspec
def register_loggers() -> Iterable[type]:
    """Return logger classes, each with a unique ``name``, selectable in ``TrainerConfig.loggers``.

    A logger is a plugin: the trainer makes one instance per run (no arguments), registers it for
    that run, and calls its training-event hooks below (see :mod:`condgan.loggers`).
    """


@hookspec
def register_datasets() -> Iterable[type]:
    """Return :class:`~condgan.data.Dataset` subclasses, each with a unique ``name``."""


@hookspec
def register_commands() -> Iterable[Any]:
    """Return :class:`~condgan.commands.Command` objects (``condgan NAME``), each with a unique ``name``."""


# -- training events ------------------------------------------------------------------------------
# Fired by :class:`condgan.training.trainer.Trainer` through ``get_registry().hook``, on process 0
# only, in this order (see :mod:`condgan.training.events`):
#     on_train_start, then per step on_step_end, with on_log / on_sample / on_checkpoint at their
#     intervals, then (on an error) on_failure, and always on_train_end.
# Implementations read the trainer (``trainer.step``, ``trainer.config``, ``trainer.gan``,
# ``trainer.target_steps`` ...) and must not change its models or optimizers; to end a run early
# they call ``trainer.request_stop(reason)``.


@hookspec
def register_callbacks() -> Iterable[type]:
    """Return callback classes, each with a unique ``name``, selectable in ``TrainerConfig.callbacks``.

    A callback is a plugin made per run, as a logger is: the trainer makes one instance (no
    arguments), registers it for that run and calls its training-event hooks below.
    """


@hookspec
def on_train_start(trainer: TrainerView) -> None:
    """Training is about to run its first step (of this session: ``trainer.step`` > 0 on resume)."""


@hookspec
def on_step_end(trainer: TrainerView, step: int) -> None:
    """Step ``step`` is done (its update applied, ``trainer.step == step``). Fired every step: keep it
    cheap and free of host syncs (no ``.item()``); losses arrive at ``on_log``."""


@hookspec
def on_log(trainer: TrainerView, step: int, metrics: dict[str, float]) -> None:
    """Every ``log_every`` steps, after step ``step``; ``metrics`` holds host floats.

    ``metrics`` has each loss of the step function (``g_loss``, ``d_loss``) averaged over the
    steps since the previous call. The only host sync of the loop happens to read them.
    """


@hookspec
def on_sample(trainer: TrainerView, step: int, images: Tensor, labels: Tensor, columns: int) -> None:
    """Every ``sample_every`` steps and at the end: a grid of samples from fixed noise.

    ``images`` (N, C, H, W) float in [0, 1] on the CPU, laid out row-major in ``columns`` columns
    (for class conditions: column k is label k, as the reference's grid); ``labels`` their conditions.
    The EMA generator makes them when EMA is on.
    """


@hookspec
def on_checkpoint(trainer: TrainerView, path: Path) -> None:
    """A checkpoint of step ``trainer.step`` was written (atomically) to ``path``."""


@hookspec
def on_failure(trainer: TrainerView, error: BaseException) -> None:
    """Training stopped on ``error`` (a diverged loss, a dead peer process, an interrupt that
    raised, ...); ``on_train_end`` follows. Nothing non-finite was saved."""


@hookspec
def on_train_end(trainer: TrainerView) -> None:
    """Training stopped; ``trainer.stop_reason`` says why (``"steps"``, ``"epochs"``, ``"minutes"``,
    ``"interrupted"``, ``"error"``, or the reason a callback gave to ``request_stop``). Fired after the
    final checkpoint, also on errors."""
