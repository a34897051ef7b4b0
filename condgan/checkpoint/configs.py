"""Configs as plain data: what a checkpoint stores of a run's config, with component classes
by their registered names (so resolving them needs the registry)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import torch

from ..config import GANConfig
from ..plugins import get_registry
from . import integrity as checks
from .files import COMPONENT_FIELDS, CONFIG_FILE, CheckpointError, atomic_write


# -- configs as plain data ----------------------------------------------------------------------------
def config_to_plain(config: GANConfig) -> dict[str, Any]:
    """``config.to_dict()`` with component classes replaced by their registered names.

    Raises:
        ValueError: a component class that is not registered, or a value that is not plain data
            (names the dotted key).
    """
    data = config.to_dict()
    tables = get_registry().tables()
    for key, kind in COMPONENT_FIELDS.items():
        *parents, last = key.split(".")
        holder = data
        for part in parents:
            holder = holder[part]
        value = holder[last]
        if value is not None and not isinstance(value, str):
            names = [info.name for info in tables[kind].values() if info.obj is value]
            if not names:
                raise ValueError(f"cannot save config key {key!r}: the {kind} {_qualname(value)} is not registered, so the "
                                 f"checkpoint could not name it; register it with condgan.register_plugin or give a registered name")
            holder[last] = names[0]
    for key in ("g_optimizer", "d_optimizer"):
        value = data[key]["name"]
        if not isinstance(value, str):
            if getattr(torch.optim, getattr(value, "__name__", ""), None) is not value:
                raise ValueError(f"cannot save config key '{key}.name': {_qualname(value)} is not a torch.optim class; "
                                 f"a checkpoint can only name optimizers of torch.optim")
            data[key]["name"] = value.__name__
    check_plain(data)
    return data


def save_run_config(run_dir: str | Path, model: GANConfig, data: Any, training: Any) -> Path:
    """Write the run's resolved config (sections model, data, training) as ``config.json``: the file
    ``condgan train --config`` reads, with every value the run used."""
    import json

    content = {"model": config_to_plain(model), "data": data_config_to_plain(data), "training": dataclasses.asdict(training)}
    text = json.dumps(content, indent=2) + "\n"
    return atomic_write(Path(run_dir) / CONFIG_FILE, lambda f: f.write(text.encode()))


def data_config_to_plain(config: Any) -> dict[str, Any] | None:
    """A DataConfig as plain data (a Dataset class by its registered name); None stays None
    (a run trained on tensors given in Python)."""
    if config is None:
        return None
    data = dataclasses.asdict(config)
    if not isinstance(data["name"], str):
        names = [info.name for info in get_registry().tables()["dataset"].values() if info.obj is data["name"]]
        if not names:
            raise ValueError(f"cannot save the data section: the dataset {_qualname(data['name'])} is not registered")
        data["name"] = names[0]
    check_plain(data, "data")
    return data


def check_plain(value: Any, key: str = "config") -> None:
    """Raise ValueError naming ``key`` unless value is None/bool/int/float/str or lists/tuples/str-keyed dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{key}[{i}]")
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise ValueError(f"cannot save {key}: key {k!r} is not a string")
            check_plain(item, f"{key}.{k}")
        return
    raise ValueError(f"cannot save {key} = {_qualname(value)}: checkpoints hold plain data only "
                     "(numbers, strings, lists, dicts); give a registered name instead of an object")


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def gan_config_from_plain(data: Mapping[str, Any], source: str | Path = "checkpoint") -> GANConfig:
    """A GANConfig from :func:`config_to_plain` output; a bad key gives a CheckpointError naming ``source``."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{source} is damaged: its model config must be a dict, got {type(data).__name__}")
    try:
        return GANConfig.from_dict(data)
    except KeyError as exc:
        raise CheckpointError(f"{source}: its model config does not fit this condgan version: {checks.first_line(exc)}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{source}: its model config holds a bad value: {checks.first_line(exc)}") from None
