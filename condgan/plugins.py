"""The plugin manager and the component registries built from its hooks.

Built-ins are ordinary plugins (``DEFAULT_PLUGINS``); third-party packages declare an entry point in
the group ``condgan``; a quick experiment calls :func:`register_plugin`. Registries are rebuilt from
the hook results whenever the set of plugins changes.

Two plugins that register a component of the same kind under the same name are an error
(:class:`DuplicateComponentError`, naming both plugins and, for installed ones, their
distributions): nothing decides silently which one wins. Installed plugins can be switched off by
entry-point name with ``CONDGAN_DISABLE_PLUGINS=name1,name2`` (``condgan list`` shows the names),
and all of them with ``CONDGAN_DISABLE_PLUGIN_AUTOLOAD=1``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import traceback
import warnings
from dataclasses import dataclass
from typing import Any

import pluggy

from . import hookspecs
from .errors import UnknownComponentError

ENTRY_POINT_GROUP = "condgan"
DISABLE_AUTOLOAD_ENV = "CONDGAN_DISABLE_PLUGIN_AUTOLOAD"
DISABLE_PLUGINS_ENV = "CONDGAN_DISABLE_PLUGINS"
BUILTIN_ORIGIN = "built into condgan"

DEFAULT_PLUGINS = (
    "condgan.outputs",
    "condgan.tabular.output",
    "condgan.tabular.dataset",
    "condgan.conditioners",
    "condgan.losses",
    "condgan.backbones",
    "condgan.tabular.networks",
    "condgan.tabular.conditional",
    "condgan.augment",
    "condgan.presets",
    "condgan.loggers",
    "condgan.training.evaluation",
    "condgan.data.sources",
    "condgan.commands.listing",
    "condgan.commands.train",
    "condgan.commands.config",
    "condgan.commands.sample",
    "condgan.commands.evaluate",
    "condgan.commands.export",
    "condgan.commands.report",
    "condgan.commands.search",
)

# component kind -> the hook that provides it
KINDS = {
    "output": "register_outputs",
    "conditioner": "register_conditioners",
    "loss": "register_losses",
    "backbone": "register_backbones",
    "augment": "register_augments",
    "preset": "register_presets",
    "logger": "register_loggers",
    "callback": "register_callbacks",
    "dataset": "register_datasets",
    "command": "register_commands",
}


class DuplicateComponentError(ValueError):
    """Two plugins registered components of the same kind under the same name.

    Attributes:
        kind, name: the component kind and the name both plugins registered.
        first, second: the :class:`ComponentInfo` of each (``second`` was refused).
    """

    def __init__(self, message: str, *, kind: str = "", name: str = "", first: ComponentInfo | None = None,
                 second: ComponentInfo | None = None):
        super().__init__(message)
        self.kind, self.name, self.first, self.second = kind, name, first, second


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
        self._origins: dict[str, str] = {}  # plugin name -> where it came from (built-in, a distribution)
        for module_name in DEFAULT_PLUGINS:
            self.pm.register(importlib.import_module(module_name), name=module_name)
            self._origins[module_name] = BUILTIN_ORIGIN
        for name in disabled_plugins():
            self.block(name)
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

    def block(self, name: str) -> None:
        """Never load the entry point (installed plugin) ``name``; what ``CONDGAN_DISABLE_PLUGINS`` does.

        Raises:
            PluginError: ``name`` is one of condgan's own plugins, which cannot be disabled.
        """
        if name in DEFAULT_PLUGINS:
            raise PluginError(f"{DISABLE_PLUGINS_ENV} names {name!r}, one of condgan's own plugins; only installed "
                              "plugins (entry points, as `condgan list` shows them) can be disabled")
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
            self._tables = None
        self.pm.set_blocked(name)

    def origin(self, plugin_name: str) -> str:
        """Where a plugin came from: built into condgan, an installed distribution's entry point, or this process."""
        return self._origins.get(plugin_name, "registered in this process")

    def unregister(self, plugin: object | str) -> None:
        if isinstance(plugin, str):
            plugin = self.pm.get_plugin(plugin)
        self.pm.unregister(plugin)
        self._tables = None

    def load_entry_points(self) -> list[str]:
        """Load every ``condgan`` entry point not blocked (``CONDGAN_DISABLE_PLUGINS``); returns their names.

        One that fails to load warns (naming it) and is skipped. Two that register the same
        component name raise :class:`DuplicateComponentError`, naming both and how to disable one.

        Raises:
            DuplicateComponentError: an entry point registers a component name already taken.
            PluginError: two distributions declare entry points of the same name.
        """
        loaded = []
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.is_blocked(ep.name):
                continue
            origin = _entry_point_origin(ep)
            if self.pm.has_plugin(ep.name):
                previous = self._origins.get(ep.name, "")
                if previous.startswith("entry point") and previous != origin:
                    raise PluginError(f"two installed plugins are both named {ep.name!r} ({previous}, and {origin}); "
                                      "uninstall one of them")
                continue
            self._origins[ep.name] = origin
            plugin = None
            try:
                plugin = ep.load()
                self.register(plugin, name=ep.name)
            except DuplicateComponentError:
                self._origins.pop(ep.name, None)
                raise
            except Exception as exc:  # noqa: BLE001 - one bad plugin must not stop the others
                self._origins.pop(ep.name, None)
                # The warning points at the plugin's own code (the line that failed, or the hook that
                # matches no spec), not at this line: that is where the fix is.
                filename, lineno = _plugin_location(ep, exc, plugin)
                warnings.warn_explicit(
                    f"condgan plugin {ep.name!r} ({ep.value}) failed to load and was skipped: "
                    f"{type(exc).__name__}: {exc}",
                    RuntimeWarning, filename, lineno, module=ep.module,
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
                    raise self._duplicate(kind, name, table[name], info)
                table[name] = info
        return table

    def _duplicate(self, kind: str, name: str, first: ComponentInfo, second: ComponentInfo) -> DuplicateComponentError:
        """The error for two plugins giving one name, with where each came from and how to disable one."""
        installed = [i.plugin for i in (second, first) if self.origin(i.plugin).startswith("entry point")]
        if installed:
            advice = (f"disable one with {DISABLE_PLUGINS_ENV}={installed[0]} (a comma-separated list of entry-point "
                      "names) or uninstall its package")
        else:
            advice = "register one of them under another name"
        return DuplicateComponentError(
            f"{kind} name {name!r} is registered twice: by {first.qualname} (plugin {first.plugin!r}, "
            f"{self.origin(first.plugin)}) and by {second.qualname} (plugin {second.plugin!r}, "
            f"{self.origin(second.plugin)}); {advice}",
            kind=kind, name=name, first=first, second=second)

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


def disabled_plugins() -> list[str]:
    """The entry-point names listed in ``CONDGAN_DISABLE_PLUGINS`` (comma-separated, blanks ignored)."""
    return [name.strip() for name in os.environ.get(DISABLE_PLUGINS_ENV, "").split(",") if name.strip()]


def _entry_point_origin(ep: importlib.metadata.EntryPoint) -> str:
    """``entry point of distribution condgan-demo 0.1``."""
    dist = getattr(ep, "dist", None)
    return f"entry point of distribution {dist.name} {dist.version}" if dist is not None else f"entry point {ep.value}"


def _plugin_location(ep: importlib.metadata.EntryPoint, exc: BaseException, plugin: object | None) -> tuple[str, int]:
    """(file, line) in a failed plugin's own code: where the error was raised in it, else its hook
    implementation that matches no hook spec, else its module's first line."""
    roots = _source_roots(ep.module)
    raised = [(frame.f_code.co_filename, lineno) for frame, lineno in traceback.walk_tb(exc.__traceback__)
              if _within(frame.f_code.co_filename, roots)]
    if raised:
        return raised[-1]  # the deepest frame in the plugin's code
    if plugin is not None:
        for name in dir(plugin):
            fn = getattr(plugin, name, None)
            spec = getattr(hookspecs, name, None)
            if hasattr(fn, f"{hookspecs.PROJECT}_impl") and not hasattr(spec, f"{hookspecs.PROJECT}_spec"):
                try:
                    return inspect.getsourcefile(fn) or "?", inspect.getsourcelines(fn)[1]
                except (OSError, TypeError):
                    break
    return (roots[0], 1) if roots else (f"<entry point {ep.name} = {ep.value}>", 1)


def _source_roots(module: str) -> list[str]:
    """The plugin's source: its top-level package's folders, or its module's file (found without importing it)."""
    try:
        spec = importlib.util.find_spec(module.partition(".")[0])
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [str(p) for p in spec.submodule_search_locations]
    return [spec.origin] if spec.origin else []


def _within(filename: str, roots: list[str]) -> bool:
    return any(filename == root or filename.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


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
