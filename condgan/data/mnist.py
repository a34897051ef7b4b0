"""The MNIST family (``mnist``, ``fashion_mnist``, ``kmnist``) read from idx files in torchvision's layout.

The idx format (LeCun's): a 4-byte magic number ``00 00 <type> <ndim>``, ``ndim`` big-endian
uint32 dimensions, then the values. :func:`read_idx` parses it itself and checks every part (magic
number, dimensions, exact file length), so a truncated, empty or foreign file gives one line
naming it instead of a reshape error. Files may be gzip-compressed (``.gz``).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..conditions import ConditionSpec
from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet
from .transforms import check_target, fit_images, resize_images

IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError, zlib.error) as exc:
            raise DatasetError(f"{path}: not a readable gzip file ({exc})") from None
    return path.read_bytes()


def read_idx(path: str | Path, *, ndim: int | None = None, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """Read one idx file (optionally ``.gz``) into a numpy array, checking it on the way.

    Args:
        path: the file.
        ndim: the number of dimensions the file must hold (3 for images, 1 for labels), or None.
        dtype: the value type the file must hold (idx type 0x08 is uint8).

    Raises:
        DatasetError: an empty, truncated or over-long file, a wrong magic number, dimension
            count or value type (one line naming the file).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "x-idx1-ubyte")
        >>> _ = open(p, "wb").write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
        >>> read_idx(p, ndim=1).tolist()
        [7, 8, 9]
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) == 0:
        raise DatasetError(f"{path}: the file is empty (an idx file starts with the magic number 00 00 <type> <ndim>)")
    if len(data) < 4:
        raise DatasetError(f"{path}: truncated: {len(data)} bytes, shorter than the 4-byte idx magic number")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise DatasetError(f"{path}: not an idx file: magic number {data[:4].hex(' ')} (expected 00 00 <type> <ndim>, "
                           f"type one of {', '.join(f'{t:02x}' for t in IDX_TYPES)})")
    file_dtype, nd = IDX_TYPES[data[2]], data[3]
    if ndim is not None and nd != ndim:
        raise DatasetError(f"{path}: holds a {nd}-dimensional array, expected {ndim} dimensions "
                           f"(idx3 files hold images, idx1 files labels)")
    if file_dtype.newbyteorder("=") != np.dtype(dtype).newbyteorder("="):
        raise DatasetError(f"{path}: holds {file_dtype.name} values (idx type {data[2]:02x}), expected {np.dtype(dtype).name}")
    header = 4 + 4 * nd
    if len(data) < header:
        raise DatasetError(f"{path}: truncated: {len(data)} bytes, shorter than its {header}-byte header")
    dims = struct.unpack(f">{nd}I", data[4:header])
    expected = header + math.prod(dims) * file_dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise DatasetError(f"{path}: {what}: {len(data)} bytes, but its header says {'x'.join(map(str, dims))} "
                           f"{file_dtype.name} values ({expected} bytes)")
    return np.frombuffer(data, file_dtype, offset=header).reshape(dims).astype(np.dtype(dtype).newbyteorder("="), copy=False)


def _find(root: Path, folder: str, stem: str) -> Path | None:
    for where in (root / folder / "raw", root / folder, root):
        for name in (stem, stem + ".gz"):
            if (where / name).is_file():
                return where / name
    return None


def read_idx_set(root: str | Path, folder: str, *, train: bool = True, num_classes: int = 10,
                 download_as: str | None = None) -> tuple[Tensor, Tensor]:
    """``(images, labels)`` of one MNIST-family split: uint8 (N, H, W) and int64 (N,).

    Files are looked up as ``root/<folder>/raw/<prefix>-images-idx3-ubyte[.gz]`` (torchvision's
    layout), then in ``root/<folder>`` and ``root``. When they are missing and ``download_as``
    names a torchvision dataset class, it downloads them (into torchvision's layout) first.
    """
    root = Path(root)
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    paths = [_find(root, folder, s) for s in stems]
    if None in paths and download_as:
        import torchvision

        try:
            getattr(torchvision.datasets, download_as)(str(root), train=train, download=True)
        except Exception as exc:  # noqa: BLE001 - any network failure gets the same advice
            raise DatasetNotFoundError(
                f"{folder} is not under {str(root)!r} and downloading it failed ({type(exc).__name__}: {exc}); put the files in "
                f"torchvision's layout ({root / folder / 'raw' / stems[0]}, ...) and pass that root") from None
        paths = [_find(root, folder, s) for s in stems]
    if None in paths:
        missing = stems[paths.index(None)]
        raise DatasetNotFoundError(f"{folder} not found under {str(root)!r} (expected {root / folder / 'raw' / missing}[.gz], "
                                   f"torchvision's layout) and --no-download is set: point --data-root at the folder that "
                                   f"holds {folder}/raw, or drop --no-download to download it there")
    images = read_idx(paths[0], ndim=3)
    labels = read_idx(paths[1], ndim=1)
    if len(images) != len(labels):
        raise DatasetError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels")
    if len(labels) and labels.max() >= num_classes:
        raise DatasetError(f"{paths[1]}: label {int(labels.max())} is out of range: labels must lie in [0, {num_classes})")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


class MNIST(Dataset):
    """MNIST (torchvision's layout: ``ROOT/MNIST/raw/*-idx3-ubyte``): 10 digit classes, 28x28 grey.

    Images are resized once. A square grey target uses :func:`~condgan.data.transforms.resize_images`
    (the pixels of the reference's per-epoch ``transforms.Resize``); any other target goes through
    :func:`~condgan.data.transforms.fit_images`.
    """

    name = "mnist"
    description = "MNIST digits, 10 classes, 28x28 grey (ROOT/MNIST/raw/*-idx3-ubyte[.gz])"
    folder = "MNIST"
    class_names: tuple[str, ...] = tuple(str(k) for k in range(10))

    def load(self, *, channels=None, size=None, fit="crop") -> ImageSet:
        channels, size = check_target(channels, size, fit)
        if self.root is None:
            raise DatasetNotFoundError(f"dataset {self.name!r} needs a data root holding {self.folder}/raw")
        images, labels = read_idx_set(self.root, self.folder, train=self.split == "train",
                                      download_as=type(self).folder if self.download else None)
        if channels in (None, 1) and (size is None or size[0] == size[1]):
            x = resize_images(images, size[0])[:, None].contiguous() if size is not None else images[:, None].contiguous()
        else:
            x = fit_images(images[:, None], channels, size, fit)
        return ImageSet(x, labels, ConditionSpec("class", len(self.class_names)), self.class_names)


class FashionMNIST(MNIST):
    """Fashion-MNIST (``ROOT/FashionMNIST/raw``): 10 clothing classes, 28x28 grey."""

    name = "fashion_mnist"
    description = "Fashion-MNIST, 10 clothing classes, 28x28 grey (ROOT/FashionMNIST/raw/*-idx3-ubyte[.gz])"
    folder = "FashionMNIST"
    class_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


class KMNIST(MNIST):
    """Kuzushiji-MNIST (``ROOT/KMNIST/raw``): 10 hiragana classes (romaji names), 28x28 grey."""

    name = "kmnist"
    description = "Kuzushiji-MNIST, 10 hiragana classes, 28x28 grey (ROOT/KMNIST/raw/*-idx3-ubyte[.gz])"
    folder = "KMNIST"
    class_names = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


def load_mnist(root: str | Path, *, train: bool = True, image_size: int = 32, download: bool = True) -> tuple[Tensor, Tensor]:
    """MNIST as ``(images, labels)``: uint8 (N, 1, S, S) and int64 (N,), on the CPU.

    Images are resized once, to the pixels the reference's ``transforms.Resize`` (PIL bilinear)
    gives per image and per epoch (:func:`resize_images`). ``root`` is torchvision's layout
    (``root/MNIST/raw/*-idx3-ubyte``, read and checked by :func:`condgan.data.mnist.read_idx`);
    when the files are missing they are downloaded (by torchvision) if ``download`` and the
    network allow.
    """
    images, labels = read_idx_set(root, "MNIST", train=train, download_as="MNIST" if download else None)
    images = resize_images(images, image_size)  # (N, S, S) uint8
    return images[:, None].contiguous(), labels  # (N, 1, S, S), (N,)
