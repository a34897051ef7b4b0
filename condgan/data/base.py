"""The dataset contract: a :class:`Dataset` component reads its files into an :class:`ImageSet`
(uint8 images) or a :class:`VectorSet` (float vectors); either says what its samples are
(``output``, :mod:`condgan.outputs`) and what its conditions are (``spec``).

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
from ..outputs import ImageOutput, OutputSpec, VectorOutput

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
        self.class_names = _check_conditions(len(self.images), "image", self.conditions, self.spec, self.class_names)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])

    @property
    def output(self) -> ImageOutput:
        """What a model trained on it makes (:mod:`condgan.outputs`)."""
        return ImageOutput(*self.image_shape)

    @property
    def samples(self) -> Tensor:
        """The outputs a model learns to make: the images."""
        return self.images


def _check_conditions(n: int, one: str, conditions: Tensor, spec: ConditionSpec, class_names) -> tuple[str, ...] | None:
    if not isinstance(conditions, Tensor) or len(conditions) != n:
        got = len(conditions) if isinstance(conditions, Tensor) else type(conditions).__name__
        raise DatasetError(f"{n} {one}s but {got} conditions: each {one} needs one")
    spec.check(conditions)
    if class_names is None:
        return None
    class_names = tuple(str(n) for n in class_names)
    if spec.kind == "vector" or len(class_names) != spec.num_classes:
        raise DatasetError(f"{len(class_names)} class names for a {spec.kind!r} condition of {spec.width} entries")
    return class_names


@dataclass
class VectorSet:
    """A conditional set of float vectors in memory: one (D,) output and one condition per row.

    Args:
        vectors: (N, D) float32, finite (what G learns to make).
        conditions: (N,) int64 class indices, or (N, K) float32 tags / vectors.
        spec: what the conditions are.
        class_names: one name per class or tag (None: unnamed, or vector conditions).
        output_spec: what the vectors encode when they are not plain vectors (e.g. a
            :class:`~condgan.tabular.output.TableOutput`: table rows); None: ``VectorOutput(D)``.
        fingerprint: what the run records of its data (the checkpoint's ``data``; a table's file,
            hash and held-out split: :func:`~condgan.tabular.holdout.table_record`); None: nothing.

    Shape:
        - vectors: (N, D); conditions: (N,) or (N, K).
    """

    vectors: Tensor
    conditions: Tensor
    spec: ConditionSpec
    class_names: tuple[str, ...] | None = None
    output_spec: OutputSpec | None = None
    fingerprint: dict | None = None

    def __post_init__(self):
        v = self.vectors
        if not isinstance(v, Tensor) or v.dtype != torch.float32 or v.dim() != 2:
            got = f"{tuple(v.shape)} {v.dtype}" if isinstance(v, Tensor) else type(v).__name__
            raise DatasetError(f"a VectorSet holds (N, D) float32 vectors, got {got}")
        if len(v) == 0 or v.shape[1] == 0:
            raise DatasetError(f"the dataset holds no vectors (shape {tuple(v.shape)})")
        if not bool(torch.isfinite(v).all()):
            row = int((~torch.isfinite(v)).any(1).nonzero()[0])
            raise DatasetError(f"vector outputs must be finite: row {row} holds NaN or inf")
        self.class_names = _check_conditions(len(v), "vector", self.conditions, self.spec, self.class_names)
        if self.output_spec is not None and self.output_spec.shape != (v.shape[1],):
            raise DatasetError(f"{self.output_spec.describe()} outputs, but the vectors have {v.shape[1]} values")

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def output(self) -> OutputSpec:
        return self.output_spec if self.output_spec is not None else VectorOutput(int(self.vectors.shape[1]))

    @property
    def samples(self) -> Tensor:
        """The outputs a model learns to make: the vectors."""
        return self.vectors


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
