"""``celeba``: CelebA's aligned faces with their 40 binary attributes (torchvision's layout).

Files, under ``ROOT/celeba/`` (or ``ROOT`` itself)::

    img_align_celeba/000001.jpg ...
    list_attr_celeba.txt        line 1: the image count; line 2: the attribute names;
                                then one row per image: "000001.jpg -1 1 1 -1 ..." (+1 has it, -1 not)
    list_eval_partition.txt     one row per image: "000001.jpg 0" (0 train, 1 valid, 2 test)

The condition is the multi-hot vector of the chosen attributes (``attributes=[...]``, all 40 by
default; the class names are the attribute names), or one attribute as two classes
(``attribute="Smiling"``: class 0 "not Smiling", class 1 "Smiling").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..conditions import ConditionSpec
from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet
from .decode import decode_files

ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"
IMAGE_FOLDER = "img_align_celeba"
PARTITIONS = {"train": "0", "valid": "1", "test": "2"}


def read_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """``(attribute names, image file names, values)`` of ``list_attr_celeba.txt``; values (N, K) bool.

    Raises:
        DatasetError: a count line that is not a number or disagrees with the rows, a row with the
            wrong number of values or a value other than 1/-1 (naming the file and line).
    """
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DatasetError(f"{path}: expected a count line and a line of attribute names, got {len(lines)} line(s)")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DatasetError(f"{path}: line 1 must be the image count, got {lines[0].strip()[:40]!r}") from None
    names = lines[1].split()
    if not names:
        raise DatasetError(f"{path}: line 2 must name the attributes, it is empty")
    rows = [line.split() for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise DatasetError(f"{path}: line 1 says {count} images, but the file has {len(rows)} rows")
    files, values = [], np.empty((len(rows), len(names)), dtype=bool)
    for i, row in enumerate(rows):
        if len(row) != len(names) + 1:
            raise DatasetError(f"{path}: line {i + 3} has {len(row) - 1} values, expected {len(names)} (one per attribute)")
        files.append(row[0])
        vals = row[1:]
        for v in vals:
            if v not in ("1", "-1"):
                raise DatasetError(f"{path}: line {i + 3} has the value {v!r}; attribute values are 1 or -1")
        values[i] = [v == "1" for v in vals]
    return names, files, values


def read_partition(path: Path) -> dict[str, str]:
    """``{image file name: "0" | "1" | "2"}`` of ``list_eval_partition.txt``."""
    out = {}
    for i, line in enumerate(path.read_text().splitlines()):
        row = line.split()
        if not row:
            continue
        if len(row) != 2 or row[1] not in ("0", "1", "2"):
            raise DatasetError(f"{path}: line {i + 1} must be '<image> 0|1|2' (train, valid, test), got {line.strip()[:60]!r}")
        out[row[0]] = row[1]
    return out


class CelebA(Dataset):
    """CelebA aligned faces (178x218 RGB) conditioned on chosen attributes.

    Args:
        root: the folder holding ``celeba/`` (or the ``celeba`` folder itself).
        split: ``"train"``, ``"valid"``, ``"test"`` (by ``list_eval_partition.txt``) or ``"all"``.
        attributes: attribute names for a multi-hot condition (a list, or one comma-separated
            string); default all of them.
        attribute: one attribute name, as a 2-class condition instead.
        skip_bad: skip (and count) images that do not decode, instead of an error.

    Example:
        >>> data = CelebA("data", attributes=["Smiling", "Male"]).load(size=(64, 64))  # doctest: +SKIP
        >>> data.spec.kind, data.class_names  # doctest: +SKIP
        ('multilabel', ('Smiling', 'Male'))
    """

    name = "celeba"
    description = ("CelebA aligned faces with attributes= (multi-hot) or attribute= (2 classes), 178x218 RGB "
                   "(ROOT/celeba/img_align_celeba/*.jpg, list_attr_celeba.txt, list_eval_partition.txt)")
    splits = ("train", "valid", "test", "all")

    def __init__(self, root=None, *, split="train", download=False, attributes: list[str] | str | None = None,
                 attribute: str | None = None, skip_bad: bool = False, **options):
        super().__init__(root, split=split, download=download, **options)
        if attributes is not None and attribute is not None:
            raise DatasetError("dataset 'celeba': give attributes=[...] (multi-hot) or attribute=NAME (2 classes), not both")
        if isinstance(attributes, str):
            attributes = [a.strip() for a in attributes.split(",") if a.strip()]
        if attributes is not None and (not isinstance(attributes, (list, tuple)) or not attributes
                                       or not all(isinstance(a, str) for a in attributes)):
            raise DatasetError(f"dataset 'celeba': attributes must be a non-empty list of attribute names, got {attributes!r}")
        if attributes is not None and len(set(attributes)) != len(attributes):
            raise DatasetError(f"dataset 'celeba': attributes name one attribute twice: {list(attributes)}")
        if attribute is not None and not isinstance(attribute, str):
            raise DatasetError(f"dataset 'celeba': attribute must be one attribute name, got {attribute!r}")
        self.attributes = list(attributes) if attributes is not None else None
        self.attribute = attribute
        self.skip_bad = bool(skip_bad)

    def folder(self) -> Path:
        if self.root is None:
            raise DatasetNotFoundError("dataset 'celeba' needs a data root holding celeba/")
        for where in (self.root / "celeba", self.root):
            if (where / IMAGE_FOLDER).is_dir():
                return where
        raise DatasetNotFoundError(f"celeba not found: expected the folder {self.root / 'celeba' / IMAGE_FOLDER} "
                                   f"(with {ATTR_FILE} and {PARTITION_FILE} beside it); condgan does not download CelebA "
                                   "(its Google Drive quota fails most downloads): fetch it by hand")

    def index(self) -> tuple[list[Path], torch.Tensor, ConditionSpec, tuple[str, ...]]:
        """``(paths, conditions, spec, class_names)`` of this split, checked, without decoding an image
        (what :class:`~condgan.data.stream.StreamBatches` takes)."""
        folder = self.folder()
        attr_path = folder / ATTR_FILE
        if not attr_path.is_file():
            raise DatasetNotFoundError(f"the attribute file {attr_path} is missing (CelebA's {ATTR_FILE})")
        names, files, values = read_attributes(attr_path)
        chosen = [self.attribute] if self.attribute is not None else (self.attributes or names)
        unknown = [a for a in chosen if a not in names]
        if unknown:
            raise DatasetError(f"unknown CelebA attribute(s) {', '.join(map(repr, unknown))}; the attributes in {attr_path.name} "
                               f"are: {', '.join(names)}")
        row_of = {f: i for i, f in enumerate(files)}
        if self.split == "all":
            selected = files
        else:
            part_path = folder / PARTITION_FILE
            if not part_path.is_file():
                raise DatasetNotFoundError(f"the partition file {part_path} is missing (needed for split {self.split!r}; "
                                           "split 'all' reads every image without it)")
            partition = read_partition(part_path)
            selected = [f for f, p in partition.items() if p == PARTITIONS[self.split]]
            unlabelled = [f for f in selected if f not in row_of]
            if unlabelled:
                raise DatasetError(f"{len(unlabelled)} image(s) of the {self.split} split in {part_path.name} have no row in "
                                   f"{attr_path.name} (first: {unlabelled[0]}): labels are missing for them")
            if not selected:
                raise DatasetError(f"{part_path}: no image is in the {self.split} split")
        image_dir = folder / IMAGE_FOLDER
        present = set(os.listdir(image_dir))
        missing = [f for f in selected if f not in present]
        if missing:
            raise DatasetError(f"{len(missing)} image(s) listed in {attr_path.name} are missing from {image_dir} (first: {missing[0]})")
        rows = np.array([row_of[f] for f in selected], dtype=np.int64)
        tags = torch.from_numpy(values[rows][:, [names.index(a) for a in chosen]])  # (N, K) bool
        paths = [image_dir / f for f in selected]
        if self.attribute is not None:
            return paths, tags[:, 0].long(), ConditionSpec("class", 2), (f"not {self.attribute}", self.attribute)
        return paths, tags.float(), ConditionSpec("multilabel", len(chosen)), tuple(chosen)

    def load(self, *, channels=None, size=None, fit="crop") -> ImageSet:
        paths, conditions, spec, names = self.index()
        images, kept = decode_files(paths, channels, size, fit, skip_bad=self.skip_bad, where=paths[0].parent)
        return ImageSet(images, conditions[kept], spec, names)
