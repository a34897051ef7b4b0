"""Config files: a TOML or JSON file read as dotted overrides, and a run config written as TOML."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from .schema import SECTIONS, ConfigKeyError, _flatten


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The dotted overrides of a TOML or JSON config file (sections ``model``, ``data``, ``training``).

    TOML has no null: the string ``"none"`` stands for None in a TOML file (as
    :func:`to_toml` writes it).
    """
    return config_overrides(read_config_tables(path), path)


def read_config_tables(path: str | Path) -> dict[str, Any]:
    """A TOML or JSON config file as its tables (``"none"`` in TOML read as None), unchecked:
    :func:`config_overrides` checks the sections (``condgan search`` takes its ``[search]`` table first)."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the config file {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix == ".toml":
            import tomllib

            data = _none_from_toml(tomllib.loads(text.decode("utf-8")))
        else:
            raise ValueError(f"config file {path} must end in .toml or .json")
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("config file"):
            raise
        raise ValueError(f"config file {path} is not valid {path.suffix[1:].upper()}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a table of sections ({', '.join(SECTIONS)}), got {type(data).__name__}")
    return data


def config_overrides(data: Mapping[str, Any], path: str | Path, *, allow_empty: bool = False) -> dict[str, Any]:
    """The dotted overrides of a config file's tables (:func:`read_config_tables`)."""
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigKeyError(f"config file {path}: unknown section(s) {unknown}; sections are {', '.join(SECTIONS)}")
    if not allow_empty and not any(_flatten(body) if isinstance(body, dict) else True for body in data.values()):
        raise ValueError(f"config file {path} is empty: it sets no key (sections {', '.join(SECTIONS)}; "
                         "'condgan config show PRESET' prints one to start from)")
    return {f"{section}.{key}": as_tuples(value) for section, body in data.items() for key, value in _flatten(body).items()}


def as_tuples(value: Any) -> Any:
    """Lists (TOML and JSON arrays) as tuples, recursively, as the presets write them."""
    if isinstance(value, list):
        return tuple(as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: as_tuples(v) for k, v in value.items()}
    return value


def _none_from_toml(value: Any) -> Any:
    if value == "none":
        return None
    if isinstance(value, dict):
        return {k: _none_from_toml(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_none_from_toml(v) for v in value]
    return value


def to_toml(data: Mapping[str, Any]) -> str:
    """A RunConfig's plain dict as TOML (None written as ``"none"``; options as inline tables)."""
    lines: list[str] = []

    def emit(table: Mapping[str, Any], name: str) -> None:
        scalars = {k: v for k, v in table.items() if not _is_section(k, v)}
        sections = {k: v for k, v in table.items() if _is_section(k, v)}
        if name:
            lines.append(f"\n[{name}]")
        for key, value in scalars.items():
            lines.append(f"{key} = {_toml_value(value)}")
        for key, value in sections.items():
            emit(value, f"{name}.{key}" if name else key)

    emit(data, "")
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_section(key: str, value: Any) -> bool:
    return isinstance(value, Mapping) and not key.endswith(("options", "schedule"))


def _toml_value(value: Any) -> str:
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"cannot write {value!r} to a config file: plain data only")
