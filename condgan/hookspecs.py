"""Hook specifications: the one place that says what a condgan plugin can provide.

A plugin is any object (a module, a class, an instance) with functions named like the hooks below
and decorated with :data:`condgan.hookimpl`. Built-in components are plugins of exactly this kind.

This module sits below everything it describes: it imports no condgan module, and the types in the
signatures (``Conditioner``, ``Trainer``, ...) are names for the reader, resolved nowhere.
"""

from __future__ import annotations

from typing import Any, Iterable

import pluggy

PROJECT = "condgan"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_conditioners() -> Iterable[type[Conditioner]]:
    """Return :class:`~condgan.conditioners.Conditioner` subclasses, each with a unique ``name``."""


@hookspec
def register_losses() -> Iterable[type[Loss]]:
    """Return :class:`~condgan.losses.Loss` subclasses, each with a unique ``name``."""


@hookspec
def register_backbones() -> Iterable[type[Backbone]]:
    """Return :class:`~condgan.backbones.Backbone` subclasses, each with a unique ``name``."""


@hookspec
def register_augments() -> Iterable[type[Augment]]:
    """Return :class:`~condgan.augment.Augment` subclasses (augmentations of D's inputs), each with a unique ``name``."""


@hookspec
def register_presets() -> Iterable[Preset]:
    """Return :class:`~condgan.presets.Preset` objects, each with a unique ``name``."""


@hookspec
def register_loggers() -> Iterable[type]:
    """Return logger classes, each with a unique ``name``, selectable in ``TrainerConfig.loggers``.

    A logger is a plugin: the trainer makes one instance per run (no arguments), registers it for
    that run, and calls its training-event hooks below (see :mod:`condgan.loggers`).
    """


@hookspec
def register_datasets() -> Iterable[type[Dataset]]:
    """Return :class:`~condgan.data.Dataset` subclasses, each with a unique ``name``."""


@hookspec
def register_commands() -> Iterable[Command]:
    """Return :class:`~condgan.commands.Command` objects (``condgan NAME``), each with a unique ``name``."""


# -- training events ------------------------------------------------------------------------------
# Fired by :class:`condgan.training.trainer.Trainer` through ``get_registry().hook``. Implementations must not
# change the trainer's models or optimizers; they read ``trainer.step``, ``trainer.epoch``,
# ``trainer.config``, ``trainer.gan``, ``trainer.target_steps`` and so on.


@hookspec
def on_train_start(trainer: Trainer) -> None:
    """Training is about to run its first step (of this session: ``trainer.step`` > 0 on resume)."""


@hookspec
def on_step_end(trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
    """Every ``log_every`` steps, after step ``step``; ``metrics`` holds host floats.

    ``metrics`` has each loss of the step function (``g_loss``, ``d_loss``) averaged over the
    steps since the previous call. The only host sync of the loop happens to read them.
    """


@hookspec
def on_sample(trainer: Trainer, step: int, images: Tensor, labels: Tensor, columns: int) -> None:
    """Every ``sample_every`` steps and at the end: a grid of samples from fixed noise.

    ``images`` (N, C, H, W) float in [0, 1] on the CPU, laid out row-major in ``columns`` columns
    (for class conditions: column k is label k, as the reference's grid); ``labels`` their conditions.
    The EMA generator makes them when EMA is on.
    """


@hookspec
def on_checkpoint(trainer: Trainer, path: Path) -> None:
    """A checkpoint of step ``trainer.step`` was written (atomically) to ``path``."""


@hookspec
def on_train_end(trainer: Trainer) -> None:
    """Training stopped; ``trainer.stop_reason`` says why (``"steps"``, ``"epochs"``, ``"minutes"``,
    ``"interrupted"`` or ``"error"``). Fired after the final checkpoint, also on errors."""
