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
