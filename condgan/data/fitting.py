"""The data a model trains on: files to stream (:class:`FileSet`), the model fitted to the data, and
the checks before the loop (:func:`condgan.resolve.load_data` makes the data from a config).

- :func:`fit_to_data`: fill the model fields a preset leaves to the data (``image_shape``, the
  condition, ``class_names``) and refuse a model that disagrees with the data.
- :func:`check_dataset`: the checks every training set passes once, before the first step.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..outputs import ImageOutput
from .base import ImageSet, VectorSet

PIXEL_RANGE_TOLERANCE = 0.01  # float images may exceed pixel_range by this fraction of its width

if TYPE_CHECKING:  # pragma: no cover
    from ..config import GANConfig


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

    @property
    def output(self) -> ImageOutput:
        return ImageOutput(*self.image_shape)


def fit_to_data(model: GANConfig, data: ImageSet | VectorSet | FileSet, source: str = "the dataset") -> GANConfig:
    """``model`` with the fields it leaves to the data (None) taken from ``data``, checked.

    The output fields (``output_kind``, ``image_shape``, ``output_dim``) are those of the data's
    ``output`` (:meth:`~condgan.outputs.OutputSpec.config_fields`).

    Raises:
        ValueError: the model fixes an output kind or shape, or a condition, that the data does not have.
    """
    changes: dict[str, Any] = {}
    output = data.output
    if model.output_kind is not None and model.output_kind != output.name:
        extra = ", image_shape=null" if output.name != "image" else ", output_dim=null"
        raise ValueError(f"{source} has {output.describe()} outputs but the model makes {model.output_kind!r} outputs: "
                         f"choose a preset for {output.name}s (condgan list preset) or set model.output_kind={output.name}{extra}")
    for key, value in output.config_fields().items():
        current = getattr(model, key)
        current = tuple(current) if isinstance(current, list) else current
        if current is None or current == {} or current == value:
            changes[key] = value
        elif key == "image_shape" and value is not None:
            raise ValueError(f"{source} has images of shape {value} but the model's image_shape is "
                             f"{current}: set data.image_size/channels, or image_shape")
        else:
            raise ValueError(f"{source} has {output.describe()} outputs but the model's {key} is {current!r}: "
                             f"leave {key} to the data (null) or choose a matching dataset")
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
    return dataclasses.replace(model, **changes)


def check_dataset(gan: nn.Module, images: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` unless ``images``/``labels`` can train ``gan``: checked once, before the loop.

    Images: a non-empty (N, C, H, W) tensor of the model's ``image_shape``, uint8, or float32 in the
    model's ``pixel_range``, finite; labels: N conditions that fit ``gan.spec`` (dtype, shape, range).
    """
    if gan.output.name != "image":
        return check_outputs(gan, images, labels)
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


def check_outputs(gan: nn.Module, samples: Tensor, labels: Tensor) -> None:
    """The check of :func:`check_dataset` for outputs other than images (vectors, ...): a non-empty
    float32 (N, *shape) tensor of finite values and N conditions that fit ``gan.spec``."""
    output = gan.output
    if not isinstance(samples, Tensor) or not isinstance(labels, Tensor):
        raise ValueError(f"data must be ({output.name}s, labels) tensors, got ({type(samples).__name__}, {type(labels).__name__})")
    if samples.dim() != 1 + len(output.shape) or tuple(samples.shape[1:]) != output.shape:
        raise ValueError(f"{output.name}s must have shape (N, {', '.join(map(str, output.shape))}) for this model, got {tuple(samples.shape)}")
    if len(samples) == 0:
        raise ValueError(f"the dataset is empty: training needs at least one {output.name}")
    if samples.dtype != torch.float32:
        raise ValueError(f"{output.name}s must be float32 (the training dtype), got {samples.dtype}")
    bad = ~torch.isfinite(samples).flatten(1).all(1)
    if bool(bad.any()):
        raise ValueError(f"{output.name}s contain NaN or inf (first bad row: index {int(bad.nonzero()[0])})")
    if len(labels) != len(samples):
        raise ValueError(f"{len(samples)} {output.name}s but {len(labels)} labels: each needs one condition")
    gan.spec.check(labels)
