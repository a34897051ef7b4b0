"""Config resolution: the names in a config turned into registered components.

A config is plain data (:mod:`condgan.config`); here a preset name becomes its run config and a
dataset name becomes its loaded data, through the registry (:mod:`condgan.plugins`). Models are
built from their config in :mod:`condgan.models` and :mod:`condgan.gan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from torch import Tensor

from .config import DataConfig, RunConfig, apply_overrides, construct
from .data.base import Dataset, DatasetError, ImageSet, VectorSet
from .data.fitting import FileSet
from .data.transforms import decode_image
from .outputs import OutputSpec, OutputSpecError
from .plugins import get_component


def run_config(preset: str | RunConfig = "mnist_mlp", overrides: Mapping[str, Any] | None = None) -> RunConfig:
    """The run config of a registered preset (or a RunConfig) with dotted-key overrides applied.

    Example:
        >>> run_config("mnist_mlp", {"steps": 1000, "data.root": "data"}).training.steps
        1000
    """
    if isinstance(preset, RunConfig):
        config = preset
    else:
        found = get_component("preset", preset)
        if not callable(getattr(found, "run_config", None)):
            raise TypeError(f"preset must be a registered preset name or a Preset, got {preset!r}")
        config = found.run_config()
    return apply_overrides(config, dict(overrides or {}))


def output_class(kind: str) -> type[OutputSpec]:
    """The registered output kind ``kind`` (``condgan list output``)."""
    cls = get_component("output", kind)
    if not (isinstance(cls, type) and issubclass(cls, OutputSpec)):
        raise TypeError(f"output kind must be a registered name or an OutputSpec subclass, got {kind!r}")
    return cls


def output_spec(config: Any) -> OutputSpec:
    """What the model config ``config`` makes: its ``output_kind`` built from its fields.

    Raises:
        UnknownComponentError: no output kind of that name; ValueError: fields it needs are missing.
    """
    if config.output_kind is None:
        raise ValueError("the model config leaves output_kind to the dataset: train it on a dataset or set it")
    return output_class(config.output_kind).from_config(config)


def output_from_plain(data: Any, source: str | Path = "checkpoint") -> OutputSpec:
    """An output spec from its plain form (``OutputSpec.to_dict``), the kind found in the registry."""
    if not isinstance(data, Mapping) or not isinstance(data.get("kind"), str):
        raise OutputSpecError(f"{source}: its output spec must be a dict with a 'kind', got {data!r}")
    return output_class(data["kind"]).from_dict(data)


def make_dataset(config: DataConfig) -> Dataset:
    """The dataset component that ``config`` names, made with its root, split and options."""
    cls = get_component("dataset", config.name)
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        raise TypeError(f"dataset must be a registered name or a Dataset subclass, got {config.name!r}")
    return construct(cls, config.root, split=config.split, download=config.download, **config.options)


def load_data(config: DataConfig, image_shape: tuple[int, int, int] | None = None) -> ImageSet | VectorSet | FileSet:
    """Load the dataset of ``config`` at the model's ``image_shape`` (or the config's size/channels).

    The data section's ``image_size``/``channels`` win; otherwise the model's shape is used when
    it has one, else the dataset's own.

    Raises:
        UnknownComponentError: no dataset of that name; ValueError/DatasetError: bad options or
        files; DatasetNotFoundError: files missing.
    """
    size = config.size or (tuple(image_shape[1:]) if image_shape is not None else None)
    channels = config.channels or (image_shape[0] if image_shape is not None else None)
    dataset = make_dataset(config)
    if config.storage != "memory":
        files = _file_set(config, dataset, channels, size)
        if files is not None:
            return files
    data = dataset.load(channels=channels, size=size, fit=config.fit)
    if isinstance(data, VectorSet):
        return data
    if not isinstance(data, ImageSet):
        raise DatasetError(f"dataset {config.name!r} returned {type(data).__name__}, not an ImageSet or a VectorSet")
    c, h, w = data.image_shape
    if (channels is not None and c != channels) or (size is not None and (h, w) != tuple(size)):
        raise DatasetError(f"dataset {config.name!r} gave images of shape ({c}, {h}, {w}); "
                           f"asked for ({channels or c}, {(size or (h, w))[0]}, {(size or (h, w))[1]})")
    return data


def _file_set(config: DataConfig, dataset: Dataset, channels: int | None, size: tuple[int, int] | None) -> FileSet | None:
    """The dataset as files to stream, when ``config.storage`` asks for it (``auto``: when the
    decoded set exceeds the memory budget); None to decode it into memory."""
    index = getattr(dataset, "index", None)
    if index is None:
        if config.storage == "stream":
            raise DatasetError(f"dataset {config.name!r} cannot stream (it is not a set of image files); "
                               "use data.storage='memory' or 'auto'")
        return None
    paths, conditions, spec, names = index()
    if size is None:
        if config.storage == "stream":
            raise DatasetError("streaming needs an image size: give --image-size (data.image_size) or a model image_shape")
        return None
    if channels is None:
        channels = decode_image(paths[0], None, size, config.fit).shape[0]  # the first image's channels
    shape = (int(channels), int(size[0]), int(size[1]))
    megabytes = len(paths) * shape[0] * shape[1] * shape[2] / 1e6
    if config.storage == "auto" and megabytes <= config.memory_budget_mb:
        return None
    spec.check(conditions)
    return FileSet(list(paths), conditions, spec, names, shape, config.fit)


def load_dataset(name: str, root: str | Path, *, image_shape: Sequence[int], num_classes: int | None,
                 train: bool = True, download: bool = True, fit: str = "crop",
                 options: Mapping[str, Any] | None = None) -> tuple[Tensor, Tensor]:
    """``(images, labels)`` of the registered dataset ``name`` at ``image_shape`` (:func:`load_data` in memory).

    ``fit`` (crop, pad, stretch) says how images of another size are brought to it; ``options``
    are the dataset's own keyword options (e.g. ``{"attributes": ["Smiling"]}`` for ``celeba``).

    Raises:
        UnknownComponentError: no dataset of that name is registered.
        ValueError: images/labels that do not fit ``image_shape``/``num_classes``.
        DatasetNotFoundError: the files are missing (from the loader).
    """
    image_shape = tuple(int(s) for s in image_shape)
    config = DataConfig(name=name, root=str(root), split="train" if train else "test", download=download, fit=fit,
                        options=dict(options or {}), storage="memory")
    data = load_data(config, image_shape)
    if data.spec.kind == "class" and num_classes is not None and data.spec.num_classes != num_classes:
        raise ValueError(f"dataset {name!r} has {data.spec.num_classes} classes, but the model has num_classes={num_classes}")
    return data.images, data.conditions
