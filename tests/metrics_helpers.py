"""Synthetic labelled 'digits', a tiny classifier trained on them, and where to find MNIST (metrics tests)."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path

import torch

from condgan.classifier import MnistClassifier, fit_classifier

REPO = Path(__file__).resolve().parents[1]
MNIST_ENV = "CONDGAN_MNIST_ROOT"


def mnist_root() -> Path | None:
    """``$CONDGAN_MNIST_ROOT`` or ``<repo>/../shared/data`` when it holds MNIST's raw files, else None."""
    for root in (os.environ.get(MNIST_ENV), REPO.parent / "shared" / "data"):
        if root and (Path(root) / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
            return Path(root)
    return None


def synthetic_digits(n: int, *, seed: int = 0, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 1, 28, 28) float in [0, 1]: class k is a bright 5x8 block at its own place, jittered, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=gen)
    images = torch.zeros(n, 1, 28, 28)
    jitter = torch.randint(-1, 2, (n, 2), generator=gen)
    for i in range(n):
        k = int(labels[i])
        top, left = 3 + 12 * (k // 5) + int(jitter[i, 0]), 1 + 5 * (k % 5) + int(jitter[i, 1])
        images[i, 0, max(top, 0):top + 8, max(left, 0):left + 5] = 1.0
    images += noise * torch.randn(images.shape, generator=gen)
    return images.clamp_(0, 1), labels


@functools.lru_cache(maxsize=None)
def _trained_tiny() -> MnistClassifier:
    images, labels = synthetic_digits(1500, seed=1)
    model, _ = fit_classifier(images, labels, epochs=1, batch_size=64, lr=3e-3, channels=(4, 8), feature_dim=16, seed=0)
    return model


def tiny_classifier() -> MnistClassifier:
    """A small classifier trained (once per session) on synthetic digits; each call returns a fresh copy."""
    return copy.deepcopy(_trained_tiny())


def strokes(n: int, size: int, *, seed: int = 0, num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """n smooth 'digits' (n, 1, size, size) in [0, 1], labels n % num_classes: class k is two line strokes at class angles.

    Each figure is drawn from a continuous description (centres, lengths, angles, width jittered per
    image) and anti-aliased at ``size``, so the same seed gives the same figures at 28 and at 32 pixels.
    """
    import math

    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % num_classes
    base = torch.tensor([[k * math.pi / num_classes, k * math.pi / num_classes + math.pi / 2 * (1 + k % 3) / 3]
                         for k in range(num_classes)])
    angle = base[labels] + 0.15 * torch.randn(n, 2, generator=g)
    centre = 0.5 + 0.06 * torch.randn(n, 2, 2, generator=g)
    length = 0.28 + 0.05 * torch.randn(n, 2, 1, generator=g)
    width = 0.045 + 0.01 * torch.rand(n, 1, generator=g)
    coords = (torch.arange(size) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    p = torch.stack([xx, yy], -1).reshape(1, -1, 2)  # (1, P, 2) pixel centres
    img = torch.zeros(n, size * size)
    for s in range(2):
        d = torch.stack([angle[:, s].cos(), angle[:, s].sin()], -1)[:, None, :]  # (n, 1, 2)
        a, b = centre[:, s][:, None, :] - length[:, s][:, None] * d, centre[:, s][:, None, :] + length[:, s][:, None] * d
        t = (((p - a) * (b - a)).sum(-1) / ((b - a) ** 2).sum(-1)).clamp(0, 1)[..., None]
        dist = (p - (a + t * (b - a))).norm(dim=-1)  # (n, P) distance to the segment
        img = torch.maximum(img, ((width - dist) * size + 0.5).clamp(0, 1))
    return img.view(n, 1, size, size), labels


def speckle(images: torch.Tensor, fraction: float, *, seed: int = 1) -> torch.Tensor:
    """Salt noise: each pixel set to 1 with probability ``fraction`` (isolated bright pixels)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.where(torch.rand(images.shape, generator=gen) < fraction, torch.ones_like(images), images)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return (images * 255).round().clamp(0, 255).to(torch.uint8)


def shapes(n: int, size: int = 16, *, kind: str = "class", seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Coloured shapes on dark noise, uint8 (n, 3, size, size), with conditions of ``kind``.

    - ``class`` (4 classes, n % 4): a square, a disc, a horizontal or a vertical bar, in a random colour;
    - ``multilabel`` (3 tags): a square on the left, a disc on the right, a bar at the bottom, each present or not;
    - ``vector`` (2 entries): a disc centred at (x, y) in [0.25, 0.75]^2.
    """
    g = torch.Generator().manual_seed(seed)
    coords = (torch.arange(size) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (S, S)

    def box(cx, cy, hw, hh):  # (n,) -> (n, S, S) soft masks
        return (((hw[:, None, None] - (xx - cx[:, None, None]).abs()) * size + 0.5).clamp(0, 1)
                * ((hh[:, None, None] - (yy - cy[:, None, None]).abs()) * size + 0.5).clamp(0, 1))

    def disc(cx, cy, r):
        d = ((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2).sqrt()
        return ((r[:, None, None] - d) * size + 0.5).clamp(0, 1)

    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=g)  # noqa: E731
    colour = 0.4 + 0.6 * torch.rand(n, 3, generator=g)
    if kind == "class":
        y = torch.arange(n) % 4
        cx, cy, s = u(0.35, 0.65), u(0.35, 0.65), u(0.18, 0.26)
        masks = torch.stack([box(cx, cy, s, s), disc(cx, cy, s), box(cx, cy, s * 1.6, s * 0.45), box(cx, cy, s * 0.45, s * 1.6)], 1)
        mask = masks[torch.arange(n), y]
    elif kind == "multilabel":
        y = (torch.rand(n, 3, generator=g) < 0.5).float()
        parts = torch.stack([box(u(0.2, 0.3), u(0.25, 0.4), u(0.1, 0.14), u(0.1, 0.14)), disc(u(0.7, 0.8), u(0.25, 0.4), u(0.1, 0.14)),
                             box(u(0.45, 0.55), u(0.75, 0.82), u(0.3, 0.36), u(0.06, 0.09))], 1)
        mask = (parts * y[:, :, None, None]).amax(1)
    elif kind == "vector":
        y = torch.stack([u(0.25, 0.75), u(0.25, 0.75)], 1)
        mask = disc(y[:, 0], y[:, 1], u(0.14, 0.18))
    else:
        raise ValueError(kind)
    background = 0.15 * torch.rand(n, 3, size, size, generator=g)
    images = torch.maximum(background, mask[:, None] * colour[:, :, None, None])
    return to_uint8(images), y


SHAPE_NAMES = ("square", "disc", "horizontal_bar", "vertical_bar")


def write_shapes_folder(folder: Path, size: int = 32, n_train: int = 4000, n_test: int = 1000) -> Path:
    """:func:`shapes` (``class`` kind) as an image folder ``folder/train|test/<shape>/*.png``; returns ``folder``."""
    from PIL import Image

    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        images, labels = shapes(n, size, kind="class", seed=seed)
        for i, (image, label) in enumerate(zip(images, labels.tolist())):
            (folder / split / SHAPE_NAMES[label]).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / split / SHAPE_NAMES[label] / f"{i:05d}.png")
    return folder


def shapes_plugin(kind: str = "class", n_train: int = 800, n_test: int = 200, size: int = 16):
    """A plugin registering dataset ``shapes`` (:func:`shapes`; train and test splits from different seeds)."""
    from condgan import hookimpl
    from condgan.conditions import ConditionSpec
    from condgan.data import Dataset, ImageSet

    spec = {"class": ConditionSpec("class", 4), "multilabel": ConditionSpec("multilabel", 3),
            "vector": ConditionSpec("vector", dim=2)}[kind]
    names = {"class": ("square", "disc", "hbar", "vbar"), "multilabel": ("square", "disc", "bar"), "vector": None}[kind]

    class Shapes(Dataset):
        name = "shapes"
        description = f"coloured shapes ({kind} conditions), made on the fly for tests"

        def load(self, *, channels=None, size=None, fit="crop"):
            s = size[0] if size is not None else globals_size
            x, y = shapes(n_train if self.split == "train" else n_test, s, kind=kind, seed=0 if self.split == "train" else 1)
            if channels == 1:
                x = x.float().mean(1, keepdim=True).round().to(torch.uint8)
            return ImageSet(x, y, spec, names)

    globals_size = size

    class Plugin:
        @hookimpl
        def register_datasets(self):
            return [Shapes]

    return Plugin()
