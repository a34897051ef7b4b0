"""From a :class:`~condgan.config.DataConfig` to checked training data, and the model fitted to it.

- :func:`load_data`: make the registered dataset, decode it at the size the model (or the config)
  asks for, and check what it gave.
- :func:`fit_to_data`: fill the model fields a preset leaves to the data (``image_shape``, the
  condition, ``class_names``) and refuse a model that disagrees with the data; the data's
  fingerprint (:mod:`.fingerprint`) is kept for the fitted config, for the generator file.
- :func:`check_dataset`: the checks every training set passes once, before the first step.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from . import fingerprint as fingerprints
from .base import Dataset, DatasetError, ImageSet
from .transforms import decode_image

PIXEL_RANGE_TOLERANCE = 0.01  # float images may exceed pixel_range by this fraction of its width

if TYPE_CHECKING:  # pragma: no cover
    from ..config import DataConfig, GANConfig
    from ..gan import GAN


def make_dataset(config: DataConfig) -> Dataset:
    """The dataset component that ``config`` names, made with its root, split and options."""
    from ..models import construct
    from ..plugins import get_component

    cls = get_component("dataset", config.name)
    if not (isinstance(cls, type) and issubclass(cls, Dataset)):
        raise TypeError(f"dataset must be a registered name or a Dataset subclass, got {config.name!r}")
    return construct(cls, config.root, split=config.split, download=config.download, **config.options)


@dataclasses.dataclass
class FileSet:
    """A dataset to stream: one file per image, decoded batch by batch (``DataConfig.storage``).

    Has :class:`ImageSet`'s ``conditions``, ``spec``, ``class_names`` and ``image_shape``; ``paths``
    and ``fit`` are what :class:`~condgan.data.stream.StreamBatches` decodes.
    """

    paths: list
    conditions: Tensor
    spec: Any
    class_names: tuple[str, ...] | None
    image_shape: tuple[int, int, int]
    fit: str = "crop"

    def __len__(self) -> int:
        return len(self.paths)


def load_data(config: DataConfig, image_shape: tuple[int, int, int] | None = None) -> ImageSet | FileSet:
    """Load the dataset of ``config`` at the model's ``image_shape`` (or the config's size/channels).

    The data section's ``image_size``/``channels`` win; otherwise the model's shape is used when
    it has one, else the dataset's own.

    Raises:
        UnknownComponentError: no dataset of that name; ValueError/DatasetError: bad options or
        files; DatasetNotFoundError: files missing.
    """
    data = _load_data(config, image_shape)
    data.fingerprint = fingerprints.dataset_fingerprint(data, config.name)  # recorded in generator.pt (fit_to_data)
    return data


def _load_data(config: DataConfig, image_shape: tuple[int, int, int] | None) -> ImageSet | FileSet:
    size = config.size or (tuple(image_shape[1:]) if image_shape is not None else None)
    channels = config.channels or (image_shape[0] if image_shape is not None else None)
    dataset = make_dataset(config)
    if config.storage != "memory":
        files = _file_set(config, dataset, channels, size)
        if files is not None:
            return files
    data = dataset.load(channels=channels, size=size, fit=config.fit)
    if not isinstance(data, ImageSet):
        raise DatasetError(f"dataset {config.name!r} returned {type(data).__name__}, not an ImageSet")
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


def fit_to_data(model: GANConfig, data: ImageSet, source: str = "the dataset") -> GANConfig:
    """``model`` with the fields it leaves to the data (None) taken from ``data``, checked.

    Raises:
        ValueError: the model fixes an image shape or condition that the data does not have.
    """
    changes: dict[str, Any] = {}
    if model.image_shape is None:
        changes["image_shape"] = data.image_shape
    elif tuple(model.image_shape) != data.image_shape:
        raise ValueError(f"{source} has images of shape {data.image_shape} but the model's image_shape is "
                         f"{tuple(model.image_shape)}: set data.image_size/channels, or image_shape")
    spec = data.spec
    kind = model.condition_kind if model.condition_kind is not None else spec.kind
    if kind != spec.kind:
        raise ValueError(f"{source} has {spec.kind!r} conditions but the model's condition_kind is {kind!r}")
    changes["condition_kind"] = kind
    if kind in ("class", "multilabel"):
        if model.num_classes is None:
            changes["num_classes"] = spec.num_classes
        elif model.num_classes != spec.num_classes:
            what = "classes" if kind == "class" else "tags"
            raise ValueError(f"{source} has {spec.num_classes} {what} but the model has num_classes={model.num_classes}: "
                             f"leave num_classes to the data (None) or choose a matching dataset")
    elif model.condition_dim is None:
        changes["condition_dim"] = spec.dim
    elif model.condition_dim != spec.dim:
        raise ValueError(f"{source} has condition vectors of {spec.dim} but the model has condition_dim={model.condition_dim}")
    if model.class_names is None and data.class_names is not None:
        changes["class_names"] = data.class_names
    fitted = dataclasses.replace(model, **changes)
    fingerprint = getattr(data, "fingerprint", None)
    fingerprints.remember(fitted, fingerprint if fingerprint is not None else fingerprints.dataset_fingerprint(data))
    return fitted


def check_dataset(gan: GAN, images: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` unless ``images``/``labels`` can train ``gan``: checked once, before the loop.

    Images: a non-empty (N, C, H, W) tensor of the model's ``image_shape``, uint8, or float32 in the
    model's ``pixel_range``, finite; labels: N conditions that fit ``gan.spec`` (dtype, shape, range).
    """
    shape = tuple(gan.config.image_shape)
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
        raise ValueError(f"data must be (images, labels) tensors, got ({type(images).__name__}, {type(labels).__name__})")
    if images.dim() != 4 or tuple(images.shape[1:]) != shape:
        raise ValueError(f"images must have shape (N, {', '.join(map(str, shape))}) for this model (its image_shape), "
                         f"got {tuple(images.shape)}: resize the data or set image_shape")
    if len(images) == 0:
        raise ValueError("the dataset is empty: training needs at least one image")
    if images.dtype != torch.uint8 and not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 in [0, 255] or float in the model's pixel_range, got dtype {images.dtype}")
    if images.dtype.is_floating_point and images.dtype != torch.float32:
        raise ValueError(f"float images must be float32 (the training dtype), got {images.dtype}: convert them with "
                         "images.float(), or give uint8 images in [0, 255]")
    if images.dtype == torch.float32:
        if not bool(torch.isfinite(images).all()):
            raise ValueError(f"images contain NaN or inf (first bad image: index {int((~torch.isfinite(images)).flatten(1).any(1).nonzero()[0])})")
        lo, hi = gan.config.pixel_range
        slack = PIXEL_RANGE_TOLERANCE * (hi - lo)
        low, high = (float(v) for v in torch.aminmax(images))
        if low < lo - slack or high > hi + slack:
            hint = (": they look like [0, 255] pixels; give them as uint8 and condgan scales them" if 2 < high <= 255 + slack
                    and low >= -slack else ": scale them to pixel_range, or give uint8 images in [0, 255]")
            raise ValueError(f"float images must lie in the model's pixel_range [{lo:g}, {hi:g}], these lie in "
                             f"[{low:.4g}, {high:.4g}]{hint}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: each image needs one condition")
    gan.spec.check(labels)
