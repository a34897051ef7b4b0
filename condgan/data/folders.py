"""``imagefolder``: a folder with one subfolder of images per class (torchvision's ``ImageFolder`` layout).

Layouts::

    ROOT/cat/001.png              one split: "train" and "all" both read ROOT as it is
    ROOT/dog/xyz.jpg

    ROOT/train/cat/001.png        split subfolders: every subfolder of ROOT is train, valid or test;
    ROOT/test/cat/002.png         split="train"/"valid"/"test" reads that one, "all" reads them all

A flat folder can hold out a seeded, stratified part (``holdout=0.1``, ``holdout_seed=0``:
:func:`~condgan.data.holdout.stratified_holdout` over the sorted file list): split ``"test"``
(or ``"valid"``) is then that part and ``"train"`` the rest. ``exclude_judge=FILE`` takes the
fraction and seed that a judge file recorded (``condgan train-classifier`` on a flat folder), so a
GAN trained on the folder leaves out the judge's held-out images.

A folder with a single class folder is refused (a conditional GAN of one condition is an
unconditional one, and usually means ROOT points one level too deep); ``single_class=True``
accepts it.

Classes are the subfolder names sorted (as torchvision's ``find_classes``), and become the class
names; images are the files below each class folder (searched recursively, sorted) whose names
end in .png, .jpg, .jpeg, .webp or .bmp (any case). Other files are ignored, as torchvision does.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from ..conditions import ConditionSpec
from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet
from .decode import IMAGE_EXTENSIONS, decode_files
from .holdout import check_fraction, judge_holdout, stratified_holdout

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
        holdout: hold out this fraction of each class of a flat folder (split ``"test"`` reads it,
            ``"train"`` the rest); None: no held-out part.
        holdout_seed: the seed of that draw.
        exclude_judge: a judge file: use the ``holdout`` and ``holdout_seed`` it recorded (train
            on the images the judge did not see).
        single_class: accept a folder with one class folder.

    Example:
        >>> data = ImageFolder("photos", skip_bad=True).load(channels=3, size=(64, 64))  # doctest: +SKIP
        >>> data.class_names  # doctest: +SKIP
        ('cat', 'dog')
    """

    name = "imagefolder"
    description = "your images, one subfolder per class (ROOT/<class>/*.png|jpg|webp|bmp, or ROOT/train|test/<class>/...)"
    splits = ("train", "valid", "test", "all")

    def __init__(self, root=None, *, split="train", download=False, skip_bad: bool = False, holdout: float | None = None,
                 holdout_seed: int = 0, exclude_judge: str | None = None, single_class: bool = False, **options):
        super().__init__(root, split=split, download=download, **options)
        for key, value in (("skip_bad", skip_bad), ("single_class", single_class)):
            if not isinstance(value, bool):
                raise DatasetError(f"dataset 'imagefolder': {key} must be True or False, got {value!r}")
        if exclude_judge is not None:
            recorded = judge_holdout(exclude_judge)
            if recorded is not None:
                if holdout is not None and (holdout, holdout_seed) != (recorded["holdout"], recorded["holdout_seed"]):
                    raise DatasetError(f"dataset 'imagefolder': holdout={holdout!r} and exclude_judge={exclude_judge!r} "
                                       f"(holdout={recorded['holdout']!r}) disagree: give one of them")
                holdout, holdout_seed = recorded["holdout"], recorded["holdout_seed"]
        if holdout is not None:
            holdout = check_fraction(holdout, "dataset 'imagefolder': holdout")
        if isinstance(holdout_seed, bool) or not isinstance(holdout_seed, int) or holdout_seed < 0:
            raise DatasetError(f"dataset 'imagefolder': holdout_seed must be a whole number >= 0, got {holdout_seed!r}")
        self.skip_bad, self.single_class = skip_bad, single_class
        self.holdout, self.holdout_seed, self.exclude_judge = holdout, holdout_seed, exclude_judge
        self.files_sha256: str | None = None  # of the relative paths of this split's files, set by files()

    def is_flat(self) -> bool:
        """True when ROOT holds class folders directly (no train/valid/test subfolders)."""
        self._check_root()
        subs = _subfolders(self.root)
        return not (subs and all(p.name in SPLIT_FOLDERS for p in subs))

    def has_split(self, split: str) -> bool:
        """Whether this folder offers ``split`` as it stands (a flat folder has test/valid only with ``holdout``)."""
        if split == "all" or (split == "train" and self.is_flat()):
            return True
        if self.is_flat():
            return self.holdout is not None
        return (self.root / split).is_dir()

    def _check_root(self) -> None:
        if self.root is None or not self.root.is_dir():
            raise DatasetNotFoundError(f"image folder {str(self.root)!r} does not exist (expected ROOT/<class name>/<image files>)")

    def split_folders(self) -> list[Path]:
        """The folders of class folders that this split reads."""
        self._check_root()
        root = self.root
        subs = _subfolders(root)
        if subs and all(p.name in SPLIT_FOLDERS for p in subs):
            if self.holdout is not None:
                raise DatasetError(f"{root} has split subfolders ({', '.join(p.name + '/' for p in subs)}): holdout applies "
                                   "to a flat folder of class folders; use its own test/ split instead")
            if self.split == "all":
                return subs
            if not (root / self.split).is_dir():
                raise DatasetError(f"{root} has no {self.split}/ subfolder (it has {', '.join(p.name + '/' for p in subs)})")
            return [root / self.split]
        if self.split in ("valid", "test") and self.holdout is None:
            raise DatasetError(f"{root} holds class folders directly, which is one split: hold out a part of it "
                               f"(option holdout=0.1), use split 'train' or 'all', or put the classes in {root}/train/ "
                               f"and {root}/{self.split}/")
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
        if len(names) == 1 and not self.single_class:
            raise DatasetError(f"{folders[0]} holds a single class folder ({names[0]!r}): a conditional GAN needs at least 2 "
                               "classes, one subfolder each (is --data-root one level too deep?); to train on one class "
                               "anyway, pass --set data.options.single_class=True")
        if self.holdout is not None and self.split != "all":
            held, kept = stratified_holdout(torch.tensor(labels), self.holdout, self.holdout_seed)
            chosen = (held if self.split in ("valid", "test") else kept).tolist()
            paths, labels = [paths[i] for i in chosen], [labels[i] for i in chosen]
        relative = "\n".join(p.relative_to(self.root).as_posix() for p in paths)
        self.files_sha256 = hashlib.sha256(relative.encode()).hexdigest()
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
