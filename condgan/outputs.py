"""What a generator makes: an image or a vector (the output spec, beside :class:`~condgan.conditions.ConditionSpec`).

An :class:`OutputSpec` says what one sample is: its kind (``name``), the shape of the tensor the
generator produces for it, and the model config fields that describe it. It validates a batch of
outputs at the boundary and converts to and from plain data (what a checkpoint stores).

Output kinds are components: a plugin's ``register_outputs`` hook returns :class:`OutputSpec`
subclasses, each with a unique ``name`` (the built-ins, ``image`` and ``vector``, are registered
by this module; :mod:`condgan.tabular.output` adds ``table``). A backbone lists the kinds it can
make in ``Backbone.outputs``; a model config names its kind in ``GANConfig.output_kind`` (a config
or checkpoint without it is an image model).

Example:
    >>> VectorOutput(16).shape
    (16,)
    >>> ImageOutput.from_dict(ImageOutput(1, 28, 28).to_dict())
    ImageOutput(channels=1, height=28, width=28)
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from .hookspecs import hookimpl


class OutputSpecError(ValueError):
    """An output spec, or a batch of outputs, that is not what the model makes (one line)."""


class OutputSpec:
    """Base class of output kinds (frozen dataclasses in the built-ins).

    Subclasses set ``name`` (the kind) and implement :attr:`shape`, :meth:`config_fields` and
    :meth:`from_config`; :meth:`to_dict` / :meth:`from_dict` work for any dataclass whose fields
    are plain data.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    @property
    def kind(self) -> str:
        return self.name

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one sample as the generator produces it (no batch dimension)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One short phrase, e.g. ``'vector (16,)'``, for messages."""
        return f"{self.name} {self.shape}"

    def config_fields(self) -> dict[str, Any]:
        """The :class:`~condgan.config.GANConfig` fields that describe this output (what
        :func:`~condgan.data.fitting.fit_to_data` fills in or checks)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: Any) -> OutputSpec:
        """The output a model config describes (the inverse of :meth:`config_fields`)."""
        raise NotImplementedError

    def make_head(self) -> Any:
        """A module applied to the generator's output (e.g. a table's activations), or None (the default)."""
        return None

    def check(self, x: Tensor, batch: int | None = None, *, values: bool = True) -> None:
        """Raise :class:`OutputSpecError` unless x is a float (B, *shape) batch (finite, with ``values``:
        that reads one scalar back from the device)."""
        if not isinstance(x, Tensor):
            raise OutputSpecError(f"{self.name} outputs must be a torch.Tensor, got {type(x).__name__}")
        if not x.dtype.is_floating_point:
            raise OutputSpecError(f"{self.name} outputs must be a float tensor, got dtype {x.dtype}")
        if x.dim() != 1 + len(self.shape) or tuple(x.shape[1:]) != self.shape:
            raise OutputSpecError(f"{self.name} outputs must have shape (B, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")
        if batch is not None and x.shape[0] != batch:
            raise OutputSpecError(f"{x.shape[0]} outputs for a batch of {batch}")
        if values and x.numel() and not bool(torch.isfinite(x).all()):
            raise OutputSpecError(f"{self.name} outputs contain NaN or inf")

    def to_dict(self) -> dict[str, Any]:
        """Plain data: ``{"kind": name, **fields}``."""
        return {"kind": self.name, **{f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OutputSpec:
        """The spec from :meth:`to_dict` output (the ``kind`` must be this class's ``name``)."""
        if not isinstance(data, Mapping) or data.get("kind") != cls.name:
            raise OutputSpecError(f"not a {cls.name!r} output spec: {data!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"kind"})
        if unknown:
            raise OutputSpecError(f"a {cls.name!r} output spec has no field {', '.join(map(repr, unknown))}; its fields: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in data.items() if k != "kind"})


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value.to_dict() if hasattr(value, "to_dict") else value


def _side(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise OutputSpecError(f"{what} must be an int >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class ImageOutput(OutputSpec):
    """An image (C, H, W): float in the model's ``pixel_range`` from the generator, uint8 in a dataset.

    Args:
        channels, height, width: the image's shape.
    """

    name: ClassVar[str] = "image"
    description: ClassVar[str] = "an image (C, H, W); GANConfig.image_shape"
    channels: int
    height: int
    width: int

    def __post_init__(self):
        for what in ("channels", "height", "width"):
            _side(getattr(self, what), f"image {what}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    def config_fields(self) -> dict[str, Any]:
        return {"output_kind": "image", "image_shape": self.shape, "output_dim": None}

    @classmethod
    def from_config(cls, config: Any) -> ImageOutput:
        if config.image_shape is None:
            raise OutputSpecError("an image model needs image_shape (C, H, W)")
        return cls(*(int(s) for s in config.image_shape))


@dataclass(frozen=True)
class VectorOutput(OutputSpec):
    """A float vector (D,), e.g. a word embedding or a point; no range (the generator's head decides).

    Args:
        dim: the vector's length D.
    """

    name: ClassVar[str] = "vector"
    description: ClassVar[str] = "a float vector (D,); GANConfig.output_dim"
    dim: int

    def __post_init__(self):
        _side(self.dim, "vector output dim")

    @property
    def shape(self) -> tuple[int]:
        return (self.dim,)

    def config_fields(self) -> dict[str, Any]:
        return {"output_kind": "vector", "output_dim": self.dim, "image_shape": None}

    @classmethod
    def from_config(cls, config: Any) -> VectorOutput:
        if config.output_dim is None:
            raise OutputSpecError("a vector model needs output_dim (the vector's length)")
        return cls(int(config.output_dim))


def as_output(value: OutputSpec | Sequence[int]) -> OutputSpec:
    """An output spec from a spec (returned as is) or a shape: (C, H, W) an image, (D,) a vector."""
    if isinstance(value, OutputSpec):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str):
        sides = [int(s) if isinstance(s, numbers.Integral) and not isinstance(s, bool) else s for s in value]
        if len(sides) == 3:
            return ImageOutput(*sides)
        if len(sides) == 1:
            return VectorOutput(sides[0])
    raise OutputSpecError(f"an output is an OutputSpec, an image shape (C, H, W) or a vector shape (D,), got {value!r}")


@hookimpl
def register_outputs():
    return [ImageOutput, VectorOutput]
