"""The dataset contract: a :class:`Dataset` component reads its files into an :class:`ImageSet`.

A dataset is a registered component like a conditioner or a loss: a :class:`Dataset` subclass
with a unique ``name``, returned by a plugin's ``register_datasets`` hook (the built-ins live in
:mod:`condgan.data.sources`). It is made with ``(root, split=..., download=..., **options)`` and
its :meth:`Dataset.load` returns the decoded images with their conditions, which say what kind of
condition they are (:class:`~condgan.conditions.ConditionSpec`) and, for classes and tags, their
names. The model is then built to fit (image shape, class count), unless its config fixes them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor

from ..conditions import ConditionSpec

SPLITS = ("train", "test", "valid", "all")
FIT_MODES = ("crop", "pad", "stretch")


class DatasetNotFoundError(FileNotFoundError):
    """The dataset files are not under the given root and could not be downloaded."""


class DatasetError(ValueError):
    """A dataset's files or options are unusable (a damaged file, an unknown attribute, ...)."""


@dataclass
class ImageSet:
    """A labelled image set in memory: uint8 images and one condition per image.

    Args:
        images: (N, C, H, W) uint8 in [0, 255].
        conditions: (N,) int64 class indices, or (N, K) float32 multi-hot tags / vectors.
        spec: what the conditions are (kind, class count or vector size).
        class_names: one name per class or tag (None: unnamed, or vector conditions).

    Shape:
        - images: (N, C, H, W); conditions: (N,) or (N, K).
    """

    images: Tensor
    conditions: Tensor
    spec: ConditionSpec
    class_names: tuple[str, ...] | None = None

    def __post_init__(self):
        if not isinstance(self.images, Tensor) or self.images.dtype != torch.uint8 or self.images.dim() != 4:
            got = f"{tuple(self.images.shape)} {self.images.dtype}" if isinstance(self.images, Tensor) else type(self.images).__name__
            raise DatasetError(f"an ImageSet holds (N, C, H, W) uint8 images, got {got}")
        if len(self.images) == 0:
            raise DatasetError("the dataset holds no images")
        if not isinstance(self.conditions, Tensor) or len(self.conditions) != len(self.images):
            n = len(self.conditions) if isinstance(self.conditions, Tensor) else type(self.conditions).__name__
            raise DatasetError(f"{len(self.images)} images but {n} conditions: each image needs one")
        self.spec.check(self.conditions)
        if self.class_names is not None:
            self.class_names = tuple(str(n) for n in self.class_names)
            if self.spec.kind == "vector" or len(self.class_names) != self.spec.num_classes:
                raise DatasetError(f"{len(self.class_names)} class names for a {self.spec.kind!r} condition of "
                                   f"{self.spec.width} entries")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])


class Dataset:
    """Base class of dataset components.

    Subclasses set ``name`` (and a one-line ``description``) and implement :meth:`load`. Options
    given in the config's ``data.options`` reach ``__init__`` as keyword arguments; an unknown
    option is an error there (one line naming the dataset and what it accepts).

    Args:
        root: the folder (or file) holding the dataset.
        split: ``"train"``, ``"test"``, ``"valid"`` or ``"all"`` (what a dataset offers is its own).
        download: fetch missing files where the dataset can (never in tests).

    Example:
        >>> class Blank(Dataset):
        ...     name = "blank"
        ...     def load(self, *, channels=None, size=None, fit="crop"):
        ...         return ImageSet(torch.zeros(4, 1, 8, 8, dtype=torch.uint8), torch.arange(4),
        ...                         ConditionSpec("class", 4))
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    splits: ClassVar[Sequence[str]] = ("train", "test")

    def __init__(self, root: str | Path | None = None, *, split: str = "train", download: bool = False, **options: Any):
        if options:
            raise DatasetError(f"dataset {self.name!r} has no option {', '.join(map(repr, sorted(options)))}; "
                               f"its options: {', '.join(self.option_names()) or '(none)'}")
        if split not in self.splits:
            raise DatasetError(f"dataset {self.name!r} has the split(s) {', '.join(self.splits)}, not {split!r}")
        self.root = Path(root) if root is not None else None
        self.split = split
        self.download = bool(download)

    @classmethod
    def option_names(cls) -> list[str]:
        """The options this dataset takes: the keyword-only arguments of its ``__init__``."""
        params = inspect.signature(cls.__init__).parameters.values()
        return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name not in ("split", "download")]

    def load(self, *, channels: int | None = None, size: tuple[int, int] | None = None, fit: str = "crop") -> ImageSet:
        """Decode the images (converted to ``channels``, brought to ``size`` = (H, W) by ``fit``).

        ``None`` keeps the dataset's own channel count or size. ``fit``: ``"crop"`` (resize the
        short side, centre-crop), ``"pad"`` (resize the long side, pad with black) or
        ``"stretch"`` (resize both sides).
        """
        raise NotImplementedError
