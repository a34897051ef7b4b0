"""``cifar10`` and ``cifar100`` from the python-pickle batches (torchvision's layout), read safely.

The batches are pickled dicts (``data``: (N, 3072) uint8, rows of 1024 red, 1024 green, 1024 blue
values; ``labels``, or ``fine_labels`` and ``coarse_labels``; the label names in the ``meta``
file). A pickle can run any code when it is loaded, and these files come from the internet, so
they are read by :class:`SafeUnpickler`, which builds dicts, lists, strings, bytes and numbers and
exactly one kind of object, a numpy array (``numpy.core.multiarray._reconstruct``,
``numpy.ndarray``, ``numpy.dtype``): any other global in the file is refused with one line naming
the file. Shapes, dtypes and label ranges are checked before use.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..conditions import ConditionSpec
from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet
from .transforms import check_target, fit_images


def _reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct as fn  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct as fn
    return fn


# What an array in a pickle refers to. numpy 1 writes numpy.core.multiarray, numpy 2 numpy._core.multiarray:
# the same function under its two names.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
}


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that builds only plain data and numpy arrays (see :data:`ALLOWED_GLOBALS`).

    Example:
        >>> SafeUnpickler(io.BytesIO(pickle.dumps({"a": [1, b"x"]}))).load()
        {'a': [1, b'x']}
    """

    def find_class(self, module: str, name: str) -> Any:
        make = ALLOWED_GLOBALS.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}; only dicts, lists, strings, numbers and numpy "
                                         "arrays are read from it")
        return make()


def safe_load(path: Path) -> Any:
    """Unpickle ``path`` with :class:`SafeUnpickler` (latin-1 for python-2 strings, as torchvision)."""
    try:
        with open(path, "rb") as f:
            return SafeUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated, foreign or hostile files all fail the same way
        text = " ".join(str(exc).split()) or type(exc).__name__
        raise DatasetError(f"{path}: not a readable CIFAR pickle ({text})") from None


def _str_keys(obj: Any, path: Path) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: a CIFAR file holds a dict, this one holds a {type(obj).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _names(meta: dict[str, Any], key: str, count: int, path: Path) -> tuple[str, ...]:
    names = meta.get(key)
    if not isinstance(names, (list, tuple)) or len(names) != count or not all(isinstance(n, (str, bytes)) for n in names):
        raise DatasetError(f"{path}: expected {key!r}, a list of {count} names")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


class CIFAR10(Dataset):
    """CIFAR-10 (``ROOT/cifar-10-batches-py``: data_batch_1..5, test_batch, batches.meta): 10 classes, 32x32 RGB."""

    name = "cifar10"
    description = "CIFAR-10, 10 classes, 32x32 RGB (ROOT/cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta)"
    folder = "cifar-10-batches-py"
    meta_file = "batches.meta"
    torchvision_class = "CIFAR10"
    num_classes = 10

    def batch_files(self) -> list[str]:
        return [f"data_batch_{k}" for k in range(1, 6)] if self.split == "train" else ["test_batch"]

    def label_key(self) -> str:
        return "labels"

    def names_key(self) -> str:
        return "label_names"

    def _folder(self) -> Path:
        if self.root is None:
            raise DatasetNotFoundError(f"dataset {self.name!r} needs a data root holding {self.folder}/")
        for where in (self.root / self.folder, self.root):
            if (where / self.meta_file).is_file():
                return where
        if self.download:
            import torchvision

            try:
                getattr(torchvision.datasets, self.torchvision_class)(str(self.root), train=self.split == "train", download=True)
            except Exception as exc:  # noqa: BLE001 - any network failure gets the same advice
                raise DatasetNotFoundError(f"{self.name} is not under {str(self.root)!r} and downloading it failed "
                                           f"({type(exc).__name__}: {exc})") from None
            return self.root / self.folder
        raise DatasetNotFoundError(f"{self.name} not found: expected {self.root / self.folder / self.meta_file} "
                                   "(torchvision's layout of the python version); pass download=True or point the data root at it")

    def load(self, *, channels=None, size=None, fit="crop") -> ImageSet:
        channels, size = check_target(channels, size, fit)
        folder = self._folder()
        meta_path = folder / self.meta_file
        names = _names(_str_keys(safe_load(meta_path), meta_path), self.names_key(), self.num_classes, meta_path)
        arrays, labels = [], []
        for file in self.batch_files():
            path = folder / file
            if not path.is_file():
                raise DatasetNotFoundError(f"{path} is missing ({self.name}'s {self.split} split is "
                                           f"{', '.join(self.batch_files())} in {folder})")
            batch = _str_keys(safe_load(path), path)
            data, y = batch.get("data"), batch.get(self.label_key())
            if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
                got = f"{data.shape} {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
                raise DatasetError(f"{path}: 'data' must be an (N, 3072) uint8 array, got {got}")
            try:
                y = np.asarray(y, dtype=np.int64)
            except (TypeError, ValueError):
                y = np.empty(0)
            if y.shape != (len(data),):
                raise DatasetError(f"{path}: {self.label_key()!r} must hold one integer label per image ({len(data)}), "
                                   f"got {np.shape(y) if y.size else type(batch.get(self.label_key())).__name__}")
            if len(y) and (y.min() < 0 or y.max() >= self.num_classes):
                bad = int(y[(y < 0) | (y >= self.num_classes)][0])
                raise DatasetError(f"{path}: label {bad} is out of range: {self.label_key()!r} must lie in [0, {self.num_classes})")
            arrays.append(data)
            labels.append(y)
        images = torch.from_numpy(np.concatenate(arrays).reshape(-1, 3, 32, 32))  # (N, 3, 32, 32)
        images = fit_images(images, channels, size, fit)
        return ImageSet(images, torch.from_numpy(np.concatenate(labels)), ConditionSpec("class", self.num_classes), names)


class CIFAR100(CIFAR10):
    """CIFAR-100 (``ROOT/cifar-100-python``: train, test, meta): 100 fine or 20 coarse classes, 32x32 RGB.

    Args:
        labels: ``"fine"`` (100 classes, the default) or ``"coarse"`` (20 superclasses).
    """

    name = "cifar100"
    description = "CIFAR-100, 100 fine or 20 coarse classes (labels=), 32x32 RGB (ROOT/cifar-100-python/train, test, meta)"
    folder = "cifar-100-python"
    meta_file = "meta"
    torchvision_class = "CIFAR100"

    def __init__(self, root=None, *, split="train", download=False, labels: str = "fine", **options):
        super().__init__(root, split=split, download=download, **options)
        if labels not in ("fine", "coarse"):
            raise DatasetError(f"dataset 'cifar100': labels must be 'fine' or 'coarse', got {labels!r}")
        self.labels = labels
        self.num_classes = 100 if labels == "fine" else 20

    def batch_files(self) -> list[str]:
        return [self.split]

    def label_key(self) -> str:
        return f"{self.labels}_labels"

    def names_key(self) -> str:
        return f"{self.labels}_label_names"
