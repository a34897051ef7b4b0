"""Typed configuration of a conditional GAN, and dotted-key overrides (``generator.backbone``)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from .conditions import ConditionSpec


@dataclass
class NetworkConfig:
    """One network: its conditioner and backbone (registered names or classes) and their options."""

    conditioner: Any = "embedding"
    conditioner_options: dict[str, Any] = field(default_factory=dict)
    backbone: Any = "mlp"
    backbone_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizerConfig:
    """An optimizer: a ``torch.optim`` class name (or class), its learning rate, other options, and
    a per-step schedule (see :mod:`condgan.schedules`; empty: constant)."""

    name: Any = "Adam"
    lr: float = 2e-4
    options: dict[str, Any] = field(default_factory=lambda: {"betas": (0.5, 0.999)})
    schedule: dict[str, Any] = field(default_factory=dict)


@dataclass
class GANConfig:
    """Everything needed to build a conditional GAN and its optimizers.

    ``condition_kind``/``num_classes``/``condition_dim`` describe y (see
    :class:`~condgan.conditions.ConditionSpec`); ``image_shape`` is (C, H, W).
    """

    condition_kind: str = "class"
    num_classes: int | None = 10
    condition_dim: int | None = None
    image_shape: tuple[int, int, int] = (1, 32, 32)
    latent_dim: int = 100
    noise: str = "normal"
    generator: NetworkConfig = field(default_factory=NetworkConfig)
    discriminator: NetworkConfig = field(default_factory=NetworkConfig)
    loss: Any = "lsgan"
    loss_options: dict[str, Any] = field(default_factory=dict)
    g_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    d_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    dataset: str = "mnist"
    batch_size: int = 64
    epochs: int = 200
    sample_every: int = 400
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    class_names: tuple[str, ...] | None = None  # names of the classes or tags (None: unnamed)

    @property
    def spec(self) -> ConditionSpec:
        return ConditionSpec(self.condition_kind, self.num_classes, self.condition_dim)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GANConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error."""
        return apply_overrides(cls(), _flatten(data))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and not key.endswith(("options", "schedule")):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_keys(obj: Any, prefix: str = "") -> list[str]:
    """Every dotted key that :func:`apply_overrides` accepts for ``obj``."""
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += config_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of ``config`` with dotted keys set, e.g. ``{"generator.conditioner": "onehot"}``.

    Keys inside an ``*_options`` or ``schedule`` dict may be anything (the component checks them); any other
    unknown key raises ``KeyError`` listing the allowed keys.
    """
    if not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping of dotted keys to values, got {type(overrides).__name__}")
    config = copy.deepcopy(config)
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigKeyError(f"unknown config key {key!r}: keys are dotted strings; allowed: {', '.join(config_keys(config))}")
        *path, last = key.split(".")
        target: Any = config
        try:
            for part in path:
                target = target[part] if isinstance(target, dict) else _field(target, part)
            if isinstance(target, dict):
                target[last] = value
            else:
                current = _field(target, last)
                if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
                    # a whole section given as a dict: a fresh section with those keys set
                    value = apply_overrides(type(current)(), _flatten(value))
                elif dataclasses.is_dataclass(current) and not isinstance(value, type(current)):
                    raise ValueError(f"config key {key!r} is a section: give a dict of its keys or a "
                                     f"{type(current).__name__}, got {value!r}")
                elif isinstance(current, dict) and not (value is None or isinstance(value, Mapping)):
                    raise ValueError(f"config key {key!r} takes a dict (or None for {{}}), got {value!r}")
                elif isinstance(current, dict) and value is None:
                    value = {}
                elif isinstance(value, list) and isinstance(current, tuple):
                    value = tuple(value)
                setattr(target, last, copy.deepcopy(value))
        except ConfigKeyError as exc:  # from a nested section given as a dict
            raise ConfigKeyError(f"in {key!r}: {exc}") from None
        except (KeyError, AttributeError):
            raise ConfigKeyError(f"unknown config key {key!r}; allowed: {', '.join(config_keys(config))}") from None
    return config


class ConfigKeyError(KeyError):
    """A config key that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


def _field(obj: Any, name: str) -> Any:
    if not dataclasses.is_dataclass(obj) or name not in {f.name for f in dataclasses.fields(obj)}:
        raise KeyError(name)
    return getattr(obj, name)
