"""Hook specifications: the one place that says what a condgan plugin can provide.

A plugin is any object (a module, a class, an instance) with functions named like the hooks below
and decorated with :data:`condgan.hookimpl`. Built-in components are plugins of exactly this kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    from .backbones import Backbone
    from .conditioners import Conditioner
    from .losses import Loss
    from .presets import Preset

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
def register_presets() -> Iterable[Preset]:
    """Return :class:`~condgan.presets.Preset` objects, each with a unique ``name``."""
