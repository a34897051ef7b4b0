"""``imagefolder``: a folder with one subfolder of images per class (torchvision's ``ImageFolder`` layout).

Layouts::

    ROOT/cat/001.png              one split: "train" and "all" both read ROOT as it is
    ROOT/dog/xyz.jpg

    ROOT/train/cat/001.png        split subfolders: every subfolder of ROOT is train, valid or test;
    ROOT/test/cat/002.png         split="train"/"valid"/"test" reads that one, "all" reads them all

Classes are the subfolder names sorted (as torchvision's ``find_classes``), and become the class
names; images are the files below each class folder (searched recursively, sorted) whose names
end in .png, .jpg, .jpeg, .webp or .bmp (any case). Other files are ignored, as torchvision does.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..conditions import ConditionSpec
from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet
from .decode import IMAGE_EXTENSIONS, decode_files

SPLIT_FOLDERS = ("train", "valid", "test")


def _subfolders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def image_files(folder: Path) -> list[Path]:
    """The image files below ``folder`` (recursively, sorted; hidden files and folders skipped)."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


class ImageFolder(Dataset):
    """Labelled images in class subfolders: a class condition, with the folder names as class names.

    Args:
        root: the folder holding one subfolder per class (or ``train``/``valid``/``test``
            subfolders, each holding class folders).
        split: ``"train"`` or ``"all"`` for a folder of class folders; with split subfolders
            also ``"valid"`` and ``"test"`` (``"all"`` joins them).
        skip_bad: skip (and count, in one warning) files that do not decode; otherwise the first
            such file is an error naming it.

    Example:
        >>> data = ImageFolder("photos", skip_bad=True).load(channels=3, size=(64, 64))  # doctest: +SKIP
        >>> data.class_names  # doctest: +SKIP
        ('cat', 'dog')
    """

    name = "imagefolder"
    description = "your images, one subfolder per class (ROOT/<class>/*.png|jpg|webp|bmp, or ROOT/train|test/<class>/...)"
    splits = ("train", "valid", "test", "all")

    def __init__(self, root=None, *, split="train", download=False, skip_bad: bool = False, **options):
        super().__init__(root, split=split, download=download, **options)
        if not isinstance(skip_bad, bool):
            raise DatasetError(f"dataset 'imagefolder': skip_bad must be true or false, got {skip_bad!r}")
        self.skip_bad = skip_bad

    def split_folders(self) -> list[Path]:
        """The folders of class folders that this split reads."""
        root = self.root
        if root is None or not root.is_dir():
            raise DatasetNotFoundError(f"image folder {str(root)!r} does not exist (expected ROOT/<class name>/<image files>)")
        subs = _subfolders(root)
        if subs and all(p.name in SPLIT_FOLDERS for p in subs):
            if self.split == "all":
                return subs
            if not (root / self.split).is_dir():
                raise DatasetError(f"{root} has no {self.split}/ subfolder (it has {', '.join(p.name + '/' for p in subs)})")
            return [root / self.split]
        if self.split in ("valid", "test"):
            raise DatasetError(f"{root} holds class folders directly, which is one split: use split 'train' or 'all', "
                               f"or put the classes in {root}/train/ and {root}/{self.split}/")
        return [root]

    def files(self) -> tuple[list[Path], list[int], tuple[str, ...]]:
        """``(paths, labels, class_names)`` of this split, checked (no class folders, an empty one)."""
        folders = self.split_folders()
        per_folder = {}
        for folder in folders:
            classes = _subfolders(folder)
            if not classes:
                raise DatasetError(f"{folder} has no class subfolders: put each class's images in {folder}/<class name>/")
            per_folder[folder] = classes
        names = tuple(sorted({c.name for classes in per_folder.values() for c in classes}))
        index = {n: k for k, n in enumerate(names)}
        paths, labels = [], []
        for folder, classes in per_folder.items():
            for c in classes:
                found = image_files(c)
                if not found:
                    raise DatasetError(f"class folder {c} holds no images (files ending in {', '.join(IMAGE_EXTENSIONS)})")
                paths += found
                labels += [index[c.name]] * len(found)
        return paths, labels, names

    def index(self) -> tuple[list[Path], torch.Tensor, ConditionSpec, tuple[str, ...]]:
        """``(paths, labels, spec, class_names)`` of this split, checked, without decoding an image
        (what :class:`~condgan.data.stream.StreamBatches` takes)."""
        paths, labels, names = self.files()
        return paths, torch.tensor(labels, dtype=torch.int64), ConditionSpec("class", len(names)), names

    def load(self, *, channels=None, size=None, fit="crop") -> ImageSet:
        paths, labels, names = self.files()
        where = self.root if len(self.split_folders()) > 1 else self.split_folders()[0]
        images, kept = decode_files(paths, channels, size, fit, skip_bad=self.skip_bad, where=where)
        y = torch.tensor(labels, dtype=torch.int64)[kept]
        self.skipped = [paths[i] for i in sorted(set(range(len(paths))) - set(kept))]
        present = torch.bincount(y, minlength=len(names))
        if bool((present == 0).any()):
            empty = names[int((present == 0).nonzero()[0])]
            raise DatasetError(f"class {empty!r} under {where} has no readable image left after skipping unreadable files")
        return ImageSet(images, y, ConditionSpec("class", len(names)), names)
