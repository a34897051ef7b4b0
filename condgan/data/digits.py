"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes; no download).

A real data set that ships inside the scikit-learn wheel, for examples and learning tests. Needs the
optional dependency ``scikit-learn`` (``pip install condgan[digits]``). Pixel values 0..16 become
0..255 (``round(v * 255 / 16)``). Splits are fixed: every fifth image (index 4, 9, 14, ...) is
``"test"`` (359 images), the others ``"train"`` (1,438); ``"all"`` is all 1,797.
"""

from __future__ import annotations

import numpy as np
import torch

from ..conditions import ConditionSpec
from .base import Dataset, DatasetError, ImageSet
from .transforms import check_target, fit_images


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (1797, 8, 8) float 0..16 images and (1797,) int labels."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise DatasetError("dataset 'digits' needs scikit-learn, which is not installed: "
                           "pip install scikit-learn (or condgan[digits])") from None
    bunch = load_digits()
    return bunch.images, bunch.target


class Digits(Dataset):
    """scikit-learn's 8x8 digits: 10 classes, 1 grey channel; ``root`` is ignored."""

    name = "digits"
    description = "scikit-learn's bundled 8x8 digits, 10 classes, 1,797 images (no files; needs scikit-learn)"
    splits = ("train", "test", "all")

    def load(self, *, channels=None, size=None, fit="crop") -> ImageSet:
        channels, size = check_target(channels, size, fit)
        images, labels = load_digits_arrays()
        if self.split != "all":
            test = np.arange(len(images)) % 5 == 4
            keep = test if self.split == "test" else ~test
            images, labels = images[keep], labels[keep]
        x = torch.from_numpy(np.rint(images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None])  # (N, 1, 8, 8)
        return ImageSet(fit_images(x, channels, size, fit), torch.from_numpy(labels.astype(np.int64)),
                        ConditionSpec("class", 10), tuple(str(k) for k in range(10)))
