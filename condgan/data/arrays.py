"""``tensors``: images or vectors and their conditions in one ``.npz`` or ``.pt`` file (``root`` is the file).

Keys:
    - exactly one output: ``images``: (N, C, H, W) uint8, or float in [0, 1] (what ``condgan
      sample`` writes), which is converted to uint8 (``round(x * 255)``); C is 1 (grey), 3 (RGB),
      or 2/4 with alpha. Or ``outputs``: (N, D) float vectors, finite (a vector model's samples,
      what ``condgan sample`` writes for one).
    - exactly one condition: ``labels`` (N,) integer class indices, ``tags`` (N, K) 0/1 (a
      multi-hot condition), or ``vectors`` (N, D) float.
    - optional ``class_names``: one name per class or tag.

``.npz`` files are read with ``allow_pickle=False`` and ``.pt`` files with
``torch.load(weights_only=True)``: neither can run code from the file.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..conditions import ConditionSpec
from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet, VectorSet
from .transforms import check_target, fit_images

CONDITION_KEYS = ("labels", "tags", "vectors")
OUTPUT_KEYS = ("images", "outputs")
EXPECTED = ("'images' (N, C, H, W) or 'outputs' (N, D) float, and one of 'labels' (N,) int, 'tags' (N, K) 0/1, "
            "'vectors' (N, D) float")


def _read(path: Path) -> dict[str, Any]:
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: _npz_entry(f, k, path) for k in f.files}
        except DatasetError:
            raise
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise DatasetError(f"{path}: not a readable .npz file ({' '.join(str(exc).split())})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable or unsafe file is reported the same way
        text = " ".join(str(exc).split()) or type(exc).__name__
        if "WeightsUnpickler error:" in text:  # torch's long advice; keep the reason
            text = "weights_only=True refuses it: " + text.split("WeightsUnpickler error:", 1)[1].strip()
        first = text[:200]
        raise DatasetError(f"{path}: not a readable .pt file of tensors ({first})") from None
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: a .pt dataset holds a dict of tensors ({EXPECTED}), this one holds a {type(obj).__name__}")
    return obj


def _npz_entry(f: Any, key: str, path: Path) -> np.ndarray:
    try:
        return f[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # an object array: numpy's form of rows of different lengths
            raise DatasetError(f"{path}: {key!r} is an array of objects (rows of different lengths?), which is read only "
                               "as numbers: give a float (N, D) array") from None
        raise


def _array(value: Any, key: str, path: Path) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(r, (torch.Tensor, np.ndarray, list, tuple)) for r in value):
        lengths = [len(r) for r in value]
        if len(set(lengths)) > 1:
            first = next(i for i, n in enumerate(lengths) if n != lengths[0])
            raise DatasetError(f"{path}: the rows of {key!r} differ in length (row 0 has {lengths[0]} values, row {first} "
                               f"has {lengths[first]}): every row needs the same length")
        rows = [r.detach().cpu().numpy() if isinstance(r, torch.Tensor) else np.asarray(r) for r in value]
        return np.stack(rows) if rows else np.zeros((0,))
    raise DatasetError(f"{path}: {key!r} must be an array or tensor, got {type(value).__name__}")


def _vectors(outputs: np.ndarray, path: Path) -> torch.Tensor:
    """Float (N, D) vector outputs, checked: finite, float."""
    if outputs.ndim != 2 or not np.issubdtype(outputs.dtype, np.floating):
        raise DatasetError(f"{path}: 'outputs' must be (N, D) floats, got shape {outputs.shape} {outputs.dtype}")
    if not len(outputs) or not outputs.shape[1]:
        raise DatasetError(f"{path}: 'outputs' holds no vectors (shape {outputs.shape})")
    bad = ~np.isfinite(outputs)
    if bad.any():
        row, col = (int(i[0]) for i in np.nonzero(bad))
        raise DatasetError(f"{path}: 'outputs' row {row} column {col} is {outputs[row, col]}: vector outputs must be finite "
                           f"({int(bad.any(axis=1).sum())} rows hold NaN or inf)")
    return torch.from_numpy(outputs.astype(np.float32))


def _to_uint8(images: np.ndarray, path: Path) -> torch.Tensor:
    if images.ndim != 4 or not 1 <= images.shape[1] <= 4:
        raise DatasetError(f"{path}: 'images' must be (N, C, H, W) with C in 1..4, got shape {images.shape}")
    if images.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(images))
    if not np.issubdtype(images.dtype, np.floating):
        raise DatasetError(f"{path}: 'images' must be uint8 in [0, 255] or float in [0, 1], got {images.dtype}")
    lo, hi = (float(images.min()), float(images.max())) if images.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo >= 0.0 and hi <= 1.0):
        raise DatasetError(f"{path}: float 'images' must lie in [0, 1] (as condgan sample writes them), these lie in [{lo:g}, {hi:g}]")
    return torch.from_numpy(np.rint(images.astype(np.float32) * 255.0).astype(np.uint8))


class TensorFile(Dataset):
    """Images or vectors, and conditions, from one ``.npz`` or ``.pt`` file: class labels, multi-hot tags or float vectors.

    Args:
        root: the ``.npz`` or ``.pt`` file.
        split: ``"train"`` or ``"all"`` (the file is one set).
        num_classes: the class count for ``labels`` when neither ``class_names`` nor the labels
            show it (default: ``len(class_names)``, else the largest label + 1).

    Example:
        >>> np.savez("set.npz", images=np.zeros((4, 3, 8, 8), np.uint8), labels=np.arange(4))  # doctest: +SKIP
        >>> TensorFile("set.npz").load().spec  # doctest: +SKIP
        ConditionSpec(kind='class', num_classes=4, dim=None)
    """

    name = "tensors"
    description = ("images or vector outputs with labels, tags or vectors in one .npz/.pt file (ROOT is the file; what "
                   "condgan sample writes)")
    splits = ("train", "all")

    def __init__(self, root=None, *, split="train", download=False, num_classes: int | None = None, **options):
        super().__init__(root, split=split, download=download, **options)
        if num_classes is not None and (not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1):
            raise DatasetError(f"dataset 'tensors': num_classes must be an int >= 1, got {num_classes!r}")
        self.num_classes = num_classes

    def load(self, *, channels=None, size=None, fit="crop") -> ImageSet | VectorSet:
        channels, size = check_target(channels, size, fit)
        path = self.root
        if path is None or path.suffix not in (".npz", ".pt"):
            raise DatasetError(f"dataset 'tensors' reads one .npz or .pt file (the data root), got {str(path)!r}")
        if not path.is_file():
            raise DatasetNotFoundError(f"{path} does not exist")
        data = _read(path)
        keys = ", ".join(map(repr, sorted(map(str, data)))) or "nothing"
        outputs = [k for k in OUTPUT_KEYS if k in data]
        if len(outputs) != 1:
            what = "no 'images' or 'outputs'" if not outputs else "both 'images' and 'outputs'; keep one"
            raise DatasetError(f"{path} has {what}: expected {EXPECTED}; it holds {keys}")
        given = [k for k in CONDITION_KEYS if k in data]
        if len(given) != 1:
            what = "no condition" if not given else f"{len(given)} conditions ({', '.join(given)}); keep one"
            raise DatasetError(f"{path} holds {what}: expected {EXPECTED}; it holds {keys}")
        key, out_key = given[0], outputs[0]
        if out_key == "images":
            images = _to_uint8(_array(data["images"], "images", path), path)
        else:
            images = _vectors(_array(data["outputs"], "outputs", path), path)
        one = "image" if out_key == "images" else "output"
        y = _array(data[key], key, path)
        if len(y) != len(images):
            raise DatasetError(f"{path}: {len(images)} {one}s but {len(y)} {key}: each {one} needs one")
        names = data.get("class_names")
        if names is not None:
            names = [str(n) for n in (names.tolist() if isinstance(names, np.ndarray) else names)]
        if key == "labels":
            if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
                raise DatasetError(f"{path}: 'labels' must be (N,) integers, got shape {y.shape} {y.dtype}")
            count = self.num_classes or (len(names) if names is not None else int(y.max()) + 1 if len(y) else 1)
            if len(y) and (y.min() < 0 or y.max() >= count):
                raise DatasetError(f"{path}: label {int(y.min() if y.min() < 0 else y.max())} is out of range: labels must lie in [0, {count})")
            spec, cond = ConditionSpec("class", count), torch.from_numpy(y.astype(np.int64))
        elif key == "tags":
            if y.ndim != 2 or not np.isin(y, (0, 1)).all():
                raise DatasetError(f"{path}: 'tags' must be (N, K) of 0 and 1, got shape {y.shape}"
                                   + ("" if y.ndim != 2 else " with other values"))
            spec, cond = ConditionSpec("multilabel", int(y.shape[1])), torch.from_numpy(y.astype(np.float32))
        else:
            if y.ndim != 2 or not np.issubdtype(y.dtype, np.floating) or not np.isfinite(y).all():
                raise DatasetError(f"{path}: 'vectors' must be (N, D) finite floats, got shape {y.shape} {y.dtype}")
            if names is not None:
                raise DatasetError(f"{path}: 'class_names' go with labels or tags, not with vectors")
            spec, cond = ConditionSpec("vector", dim=int(y.shape[1])), torch.from_numpy(y.astype(np.float32))
        if names is not None and len(names) != spec.num_classes:
            raise DatasetError(f"{path}: {len(names)} class_names for {spec.num_classes} {'classes' if key == 'labels' else 'tags'}")
        names = tuple(names) if names is not None else None
        if out_key == "outputs":
            return VectorSet(images, cond, spec, names)
        return ImageSet(fit_images(images, channels, size, fit), cond, spec, names)
