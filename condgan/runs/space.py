"""A search space from a config file's ``[search]`` table, checked before any trial.

Each entry names a dotted config key (as ``--set`` takes it) and its range or choices::

    [search]
    "model.g_optimizer.lr" = {low = 1e-5, high = 1e-3, log = true}     # a float, log-uniform
    "model.generator.backbone_options.widths" = {choices = [[64, 64, 64, 64], [128, 128, 128, 128]]}
    "model.loss" = {choices = ["lsgan", "hinge"]}                        # one of these
    "training.batch_size" = {low = 32, high = 128, step = 32}            # whole numbers: an int range

``low``/``high`` both whole numbers make an integer range, otherwise a float range; ``log = true``
samples on a log scale (``low > 0``); ``step`` quantises. The other tables of the file (``model``,
``data``, ``training``) are the config every trial starts from, as for ``condgan train --config``.

Example:
    >>> space = parse_space({"model.g_optimizer.lr": {"low": 1e-5, "high": 1e-3, "log": True}}, run_config())
    >>> space["model.g_optimizer.lr"].kind
    'float'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

SEARCH_TABLE = "search"
RESOURCES_TABLE = "resources"
FIELDS = {"low", "high", "log", "step", "choices"}


class SearchSpaceError(ValueError):
    """A search space that names an unknown key or an impossible range (one line naming the entry)."""


@dataclass(frozen=True)
class Param:
    """One dimension of a search space.

    Attributes:
        key: the dotted config key it sets.
        kind: ``"float"``, ``"int"`` or ``"choice"``.
        low, high, log, step: the range (float and int).
        choices: the values (choice).
    """

    key: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"choices": [list(c) if isinstance(c, tuple) else c for c in self.choices]}
        return {"low": self.low, "high": self.high, "log": self.log, **({"step": self.step} if self.step else {})}

    def suggest(self, trial: Any) -> Any:
        """This parameter's value for an Optuna trial (``trial.suggest_*``)."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, log=self.log, step=self.step or 1)
        return self.value(trial.suggest_categorical(self.key, self.optuna_choices()))

    def optuna_choices(self) -> list[Any]:
        """What Optuna chooses from: the choices, or their indices where a choice is a list."""
        return list(range(len(self.choices))) if _unhashable(self.choices) else list(self.choices)

    def value(self, raw: Any) -> Any:
        """The config value of what Optuna stored for this parameter (``trial.params[key]``)."""
        return self.choices[raw] if self.kind == "choice" and _unhashable(self.choices) else raw


def _unhashable(choices: tuple[Any, ...]) -> bool:
    """Optuna's choices must be None, bool, int, float or str: others (lists) are chosen by index."""
    return not all(c is None or isinstance(c, (bool, int, float, str)) for c in choices)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_param(key: str, spec: Any, where: str) -> Param:
    """One ``[search]`` entry as a :class:`Param` (its key not yet checked against the config)."""
    at = f"{where}: [search] {key!r}"
    if not isinstance(spec, Mapping):
        raise SearchSpaceError(f"{at} must be a table: {{low = ..., high = ...}} or {{choices = [...]}}, got {spec!r}")
    unknown = sorted(set(spec) - FIELDS)
    if unknown:
        raise SearchSpaceError(f"{at}: unknown field(s) {unknown}; fields are low, high, log, step, choices")
    if "choices" in spec:
        if set(spec) != {"choices"}:
            raise SearchSpaceError(f"{at}: choices stand alone (no low/high/log/step beside them)")
        choices = spec["choices"]
        if not isinstance(choices, (list, tuple)) or not choices:
            raise SearchSpaceError(f"{at}: choices must be a non-empty list, got {choices!r}")
        return Param(key, "choice", choices=tuple(tuple(c) if isinstance(c, list) else c for c in choices))
    if "low" not in spec or "high" not in spec:
        raise SearchSpaceError(f"{at}: give low and high (a range) or choices")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if not (_number(low) and _number(high)):
        raise SearchSpaceError(f"{at}: low and high must be numbers, got {low!r} and {high!r}")
    if not low < high:
        raise SearchSpaceError(f"{at}: low ({low}) must be below high ({high})")
    if not isinstance(log, bool):
        raise SearchSpaceError(f"{at}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise SearchSpaceError(f"{at}: a log range needs low > 0, got low = {low}")
    if step is not None and (not _number(step) or step <= 0 or log):
        raise SearchSpaceError(f"{at}: step must be a number > 0 and cannot go with log, got step = {step!r}")
    kind = "int" if all(isinstance(v, int) for v in (low, high)) and (step is None or isinstance(step, int)) else "float"
    return Param(key, kind, low, high, log, step)


def parse_space(table: Mapping[str, Any], base: Any, where: str | Path = "the config file") -> dict[str, Param]:
    """The search space of a ``[search]`` table, each key and each end of its range checked against
    ``base`` (a :class:`~condgan.config.RunConfig`): an unknown key, or a value the config refuses,
    raises before any trial.

    Raises:
        SearchSpaceError: an empty table, an unknown key or field, an impossible range (low >= high,
            log with low <= 0), or a value that the config refuses.
    """
    from ..config import ConfigKeyError, apply_overrides

    if not isinstance(table, Mapping) or not table:
        raise SearchSpaceError(f"{where}: the [search] table is empty; give at least one key, e.g. "
                               '"model.g_optimizer.lr" = {low = 1e-5, high = 1e-3, log = true}')
    space = {}
    for key, spec in table.items():
        param = parse_param(key, spec, str(where))
        for value in (param.choices if param.kind == "choice" else (param.low, param.high)):
            try:
                apply_overrides(base, {key: value})
            except ConfigKeyError as exc:
                raise SearchSpaceError(f"{where}: [search] {exc}") from None
            except ValueError as exc:
                raise SearchSpaceError(f"{where}: [search] {key!r} = {value!r} is refused by the config: {exc}") from None
        space[key] = param
    return space


def read_search_file(path: str | Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(the config's dotted overrides, the ``[search]`` table, the ``[resources]`` table) of a search
    config file (TOML or JSON)."""
    from ..config.files import config_overrides, read_config_tables

    tables = dict(read_config_tables(path))
    space = tables.pop(SEARCH_TABLE, None)
    resources = tables.pop(RESOURCES_TABLE, None) or {}
    if space is None:
        raise SearchSpaceError(f"{path} has no [search] table: add one, e.g. [search] "
                               '"model.g_optimizer.lr" = {low = 1e-5, high = 1e-3, log = true}')
    if not isinstance(resources, Mapping) or set(resources) - {"cpus_per_trial", "gpus_per_trial"}:
        raise SearchSpaceError(f"{path}: [resources] takes cpus_per_trial and gpus_per_trial, got {resources!r}")
    return config_overrides(tables, path, allow_empty=True), dict(space), dict(resources)
