"""Datasets by name: each loader returns a labelled image set as uint8 tensors for ``TensorBatches``.

``GANConfig.dataset`` names one of ``DATASETS``; :func:`load_dataset` checks that the images fit the
model's ``image_shape`` and ``num_classes`` before training starts. Add a dataset with
:func:`register_dataset`.

Built-ins:
    - ``mnist``: MNIST (torchvision layout under ``root``), resized once to the model's size.
    - ``synthetic``: a small built-in conditional set that needs no files: class k lights cell k of
      a grid laid over the image, so a model that follows its condition is easy to recognise. For
      tests, smoke runs and examples.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Protocol, Sequence

import torch
from torch import Tensor

from .data import load_mnist


class DatasetLoader(Protocol):
    def __call__(self, root: str | Path, *, image_shape: tuple[int, int, int], num_classes: int,
                 train: bool = True, download: bool = True) -> tuple[Tensor, Tensor]: ...


DATASETS: dict[str, DatasetLoader] = {}


def register_dataset(name: str) -> Callable[[DatasetLoader], DatasetLoader]:
    """Decorator: make a loader available as ``GANConfig.dataset = name``.

    A loader takes ``(root, *, image_shape, num_classes, train, download)`` and returns uint8
    images (N, C, H, W) of ``image_shape`` and int64 labels (N,) in ``[0, num_classes)``.
    """
    def add(loader: DatasetLoader) -> DatasetLoader:
        if name in DATASETS and DATASETS[name] is not loader:
            raise ValueError(f"dataset {name!r} is already registered by {DATASETS[name]!r}")
        DATASETS[name] = loader
        return loader
    return add


def load_dataset(name: str, root: str | Path, *, image_shape: Sequence[int], num_classes: int | None,
                 train: bool = True, download: bool = True) -> tuple[Tensor, Tensor]:
    """``(images, labels)`` of the dataset ``name``, checked against the model's shape and classes.

    Raises:
        ValueError: unknown name, or images/labels that do not fit ``image_shape``/``num_classes``.
        DatasetNotFoundError: the files are missing (from the loader).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"dataset {name!r} has class labels: the model needs num_classes >= 1, got {num_classes!r}")
    image_shape = tuple(int(s) for s in image_shape)
    images, labels = DATASETS[name](root, image_shape=image_shape, num_classes=num_classes, train=train, download=download)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != image_shape:
        raise ValueError(f"dataset {name!r} gave images {tuple(images.shape)} {images.dtype}; "
                         f"expected uint8 (N, {', '.join(map(str, image_shape))})")
    if labels.shape != (len(images),):
        raise ValueError(f"dataset {name!r} gave labels of shape {tuple(labels.shape)} for {len(images)} images")
    return images, labels.long()


@register_dataset("mnist")
def mnist(root: str | Path, *, image_shape: tuple[int, int, int], num_classes: int,
          train: bool = True, download: bool = True) -> tuple[Tensor, Tensor]:
    """MNIST at ``image_shape`` (1, S, S): 10 classes, resized once with PIL bilinear."""
    c, h, w = image_shape
    if c != 1 or h != w:
        raise ValueError(f"MNIST images are 1-channel and square: image_shape must be (1, S, S), got {image_shape}")
    if num_classes != 10:
        raise ValueError(f"MNIST has 10 classes, but the model has num_classes={num_classes}")
    return load_mnist(root, train=train, image_size=h, download=download)


@register_dataset("synthetic")
def synthetic(root: str | Path | None = None, *, image_shape: tuple[int, int, int], num_classes: int,
              train: bool = True, download: bool = True, per_class: int = 64, seed: int = 0) -> tuple[Tensor, Tensor]:
    """A conditional image set made on the fly: class k lights cell k of a g x g grid (g = ceil(sqrt(K))).

    Each image is dark background noise (0..40) with its class's cell bright (160..255, one random
    brightness per image and channel). ``root`` and ``download`` are ignored; the train and test
    sets are drawn from different fixed seeds.

    Shape:
        - images: (num_classes * per_class, C, H, W) uint8; labels: (num_classes * per_class,) int64.

    Example:
        >>> x, y = synthetic(image_shape=(1, 8, 8), num_classes=4, per_class=2)
        >>> x.shape, y.tolist()
        (torch.Size([8, 1, 8, 8]), [0, 0, 1, 1, 2, 2, 3, 3])
    """
    c, h, w = image_shape
    grid = math.ceil(math.sqrt(num_classes))
    if h < grid or w < grid:
        raise ValueError(f"the synthetic dataset needs images of at least {grid}x{grid} for {num_classes} classes, got {h}x{w}")
    gen = torch.Generator().manual_seed(seed if train else seed + 1)
    n = num_classes * per_class
    labels = torch.arange(num_classes).repeat_interleave(per_class)  # (N,)
    images = torch.randint(0, 41, (n, c, h, w), generator=gen, dtype=torch.uint8)  # (N, C, H, W)
    brightness = torch.randint(160, 256, (n, c), generator=gen, dtype=torch.uint8)
    rows = torch.linspace(0, grid, h + 1)[:-1].floor().long()  # grid row of each pixel row
    cols = torch.linspace(0, grid, w + 1)[:-1].floor().long()
    for k in range(num_classes):
        mask = (rows[:, None] == k // grid) & (cols[None, :] == k % grid)  # (H, W)
        sel = labels == k
        images[sel] = torch.where(mask, brightness[sel][:, :, None, None], images[sel])
    return images, labels
