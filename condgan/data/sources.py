"""The built-in datasets: :class:`~condgan.data.base.Dataset` components registered as a plugin.

Built-ins (each in its own module; this module registers them all):
    - ``imagefolder`` (:mod:`.folders`): one subfolder of images per class.
    - ``mnist``, ``fashion_mnist``, ``kmnist`` (:mod:`.mnist`): idx files in torchvision's layout.
    - ``cifar10``, ``cifar100`` (:mod:`.cifar`): the python-pickle batches, read by a safe unpickler.
    - ``celeba`` (:mod:`.celeba`): aligned faces, conditioned on chosen attributes.
    - ``tensors`` (:mod:`.arrays`): images with labels, tags or vectors in one .npz/.pt file.
    - ``digits`` (:mod:`.digits`): scikit-learn's bundled 8x8 digits (optional dependency).
    - ``synthetic``: a small built-in conditional set that needs no files: class k lights cell k of
      a grid laid over the image, so a model that follows its condition is easy to recognise. For
      tests, smoke runs and examples.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor

from ..conditions import ConditionSpec
from ..hookspecs import hookimpl
from .base import Dataset, ImageSet
from .arrays import TensorFile
from .celeba import CelebA
from .cifar import CIFAR10, CIFAR100
from .digits import Digits
from .folders import ImageFolder
from .mnist import KMNIST, MNIST, FashionMNIST


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


class Synthetic(Dataset):
    """The synthetic grid set of :func:`synthetic`: needs no files (``root`` is ignored)."""

    name = "synthetic"
    description = "made on the fly: class k lights cell k of a grid (no files; for tests and smoke runs)"

    def __init__(self, root=None, *, split="train", download=False, num_classes: int = 10, per_class: int = 64, seed: int = 0,
                 **options):
        super().__init__(root, split=split, download=download, **options)
        self.num_classes, self.per_class, self.seed = num_classes, per_class, seed

    def load(self, *, channels=None, size=None, fit="crop") -> ImageSet:
        h, w = size if size is not None else (16, 16)
        images, labels = synthetic(image_shape=(channels or 1, h, w), num_classes=self.num_classes, train=self.split == "train",
                                   per_class=self.per_class, seed=self.seed)
        return ImageSet(images, labels, ConditionSpec("class", self.num_classes))


@hookimpl
def register_datasets():
    return [ImageFolder, MNIST, FashionMNIST, KMNIST, CIFAR10, CIFAR100, CelebA, TensorFile, Digits, Synthetic]
