"""The plugin manager and the component registries built from its hooks.

Built-ins are ordinary plugins (``DEFAULT_PLUGINS``); third-party packages declare an entry point in
the group ``condgan``; a quick experiment calls :func:`register_plugin`. Registries are rebuilt from
the hook results whenever the set of plugins changes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import warnings
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "condgan"
DISABLE_AUTOLOAD_ENV = "CONDGAN_DISABLE_PLUGIN_AUTOLOAD"

DEFAULT_PLUGINS = (
    "condgan.conditioners",
    "condgan.losses",
    "condgan.backbones",
    "condgan.presets",
    "condgan.loggers",
    "condgan.metrics.training_eval",
    "condgan.data.sources",
    "condgan.commands.listing",
    "condgan.commands.train",
    "condgan.commands.sample",
    "condgan.commands.evaluate",
    "condgan.commands.report",
)

# component kind -> the hook that provides it
KINDS = {
    "conditioner": "register_conditioners",
    "loss": "register_losses",
    "backbone": "register_backbones",
    "preset": "register_presets",
    "logger": "register_loggers",
    "dataset": "register_datasets",
    "command": "register_commands",
}


class UnknownComponentError(KeyError):
    """A component name that no plugin registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DuplicateComponentError(ValueError):
    """Two plugins registered components of the same kind under the same name."""


class PluginError(RuntimeError):
    """A plugin that cannot be registered (e.g. a hook implementation matching no spec)."""


@dataclass(frozen=True)
class ComponentInfo:
    """One registered component and where it came from."""

    kind: str
    name: str
    obj: Any
    plugin: str

    @property
    def qualname(self) -> str:
        obj = self.obj
        return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


class Registry:
    """Plugin manager plus the name -> component tables built from its hooks."""

    def __init__(self, *, autoload: bool | None = None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._tables: dict[str, dict[str, ComponentInfo]] | None = None
        for module_name in DEFAULT_PLUGINS:
            self.pm.register(importlib.import_module(module_name), name=module_name)
        if autoload is None:
            autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
        if autoload:
            self.load_entry_points()

    # -- plugins -------------------------------------------------------------------------------
    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object; its components become usable by name immediately.

        A hook implementation whose name matches no hook spec raises :class:`PluginError`, and a
        component name already taken raises :class:`DuplicateComponentError`; in both cases the
        plugin is left unregistered.
        """
        try:
            plugin_name = self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:  # e.g. a hook implementation with arguments no spec has
            if self.pm.is_registered(plugin):  # older pluggy releases leave it half registered
                self.pm.unregister(plugin)
            raise PluginError(str(exc)) from exc
        except ValueError as exc:  # pluggy: this plugin object or name is already registered
            raise PluginError(f"plugin {name or plugin!r}: {exc}") from exc
        if plugin_name is None:
            raise PluginError(f"plugin {name or plugin!r} is already registered or blocked")
        try:
            self._check_pending()
            self._tables = None
            self.tables()
        except Exception:
            self.pm.unregister(plugin)
            self._tables = None
            raise
        return plugin_name

    def unregister(self, plugin: object | str) -> None:
        if isinstance(plugin, str):
            plugin = self.pm.get_plugin(plugin)
        self.pm.unregister(plugin)
        self._tables = None

    def load_entry_points(self) -> list[str]:
        """Load every ``condgan`` entry point; one that fails warns (naming it) and is skipped."""
        loaded = []
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            try:
                self.register(ep.load(), name=ep.name)
            except Exception as exc:  # noqa: BLE001 - one bad plugin must not stop the others
                warnings.warn(
                    f"condgan plugin {ep.name!r} ({ep.value}) failed to load and was skipped: "
                    f"{type(exc).__name__}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            else:
                loaded.append(ep.name)
        return loaded

    def _check_pending(self) -> None:
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            known = ", ".join(sorted(name for name in vars(hookspecs) if hasattr(getattr(hookspecs, name), f"{hookspecs.PROJECT}_spec")))
            raise PluginError(f"{exc} (known hooks: {known})") from exc

    @property
    def hook(self) -> pluggy.HookRelay:
        """The hook caller, for firing training events: ``registry.hook.on_step_end(trainer=..., ...)``."""
        return self.pm.hook

    # -- components ------------------------------------------------------------------------------
    def tables(self) -> dict[str, dict[str, ComponentInfo]]:
        if self._tables is None:
            self._tables = {kind: self._collect(kind, hook) for kind, hook in KINDS.items()}
        return self._tables

    def _collect(self, kind: str, hook: str) -> dict[str, ComponentInfo]:
        table: dict[str, ComponentInfo] = {}
        # Call each implementation on its own so that every component knows its plugin.
        for impl in reversed(getattr(self.pm.hook, hook).get_hookimpls()):
            for obj in impl.function() or ():
                name = getattr(obj, "name", None)
                if not isinstance(name, str) or not name:
                    raise PluginError(f"plugin {impl.plugin_name!r} registered a {kind} without a `name`: {obj!r}")
                info = ComponentInfo(kind, name, obj, impl.plugin_name)
                if name in table:
                    first = table[name]
                    raise DuplicateComponentError(
                        f"{kind} name {name!r} is registered twice: by {first.qualname} "
                        f"(plugin {first.plugin!r}) and by {info.qualname} (plugin {info.plugin!r})"
                    )
                table[name] = info
        return table

    def get(self, kind: str, name_or_obj: Any) -> Any:
        """Resolve a component: a registered name, or the class/object itself (returned as is)."""
        if kind not in KINDS:
            raise ValueError(f"unknown component kind {kind!r}; kinds are {sorted(KINDS)}")
        if not isinstance(name_or_obj, str):
            return name_or_obj
        table = self.tables()[kind]
        if name_or_obj not in table:
            available = ", ".join(sorted(table)) or "(none)"
            raise UnknownComponentError(f"unknown {kind} {name_or_obj!r}; available: {available}")
        return table[name_or_obj].obj

    def components(self, kind: str | None = None) -> list[ComponentInfo]:
        kinds = [kind] if kind else list(KINDS)
        return [info for k in kinds for info in sorted(self.tables()[k].values(), key=lambda i: i.name)]


_registry: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, created (and entry points loaded) on first use."""
    global _registry
    if _registry is None:
        _registry = Registry()
    return _registry


def set_registry(registry: Registry | None) -> Registry | None:
    """Swap the process-wide registry (tests use this for isolation); returns the previous one."""
    global _registry
    previous, _registry = _registry, registry
    return previous


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin in this process, without packaging. Returns its plugin name."""
    return get_registry().register(plugin, name=name)


def unregister_plugin(plugin: object | str) -> None:
    get_registry().unregister(plugin)


def get_component(kind: str, name_or_obj: Any) -> Any:
    return get_registry().get(kind, name_or_obj)


def list_components(kind: str | None = None) -> list[ComponentInfo]:
    """What is registered: kind, name, the class (or preset) and the plugin that gave it."""
    return get_registry().components(kind)
