"""Tiny models on the synthetic dataset, shared by the trainer, checkpoint and CLI tests."""

from __future__ import annotations

from typing import Any

import condgan
from condgan.config import GANConfig
from condgan.data import synthetic

# the mnist_mlp preset, shrunk: 8x8 images, widths of 16, batch 16, synthetic data (no files needed)
TINY_BATCH = 16
TINY: dict[str, Any] = {
    "image_shape": (1, 8, 8),
    "latent_dim": 8,
    "generator.backbone_options.widths": (16, 16, 16, 16),
    "discriminator.backbone_options.widths": (16, 16, 16),
}


def tiny_config(**overrides: Any) -> GANConfig:
    return condgan.apply_overrides(condgan.get_component("preset", "mnist_mlp").config(), {**TINY, **overrides})


def tiny_training(**fields: Any) -> condgan.TrainerConfig:
    """A TrainerConfig at the tiny batch size."""
    return condgan.TrainerConfig(**{"batch_size": TINY_BATCH, **fields})


def tiny_set_args() -> list[str]:
    """The same model, the synthetic data and batch 16 as ``--set`` arguments for ``condgan train``."""
    args = []
    for key, value in {**TINY, "data.name": "synthetic", "batch_size": TINY_BATCH}.items():
        args += ["--set", f"{key}={value!r}" if not isinstance(value, str) else f"{key}={value}"]
    return args


def small_data(per_class: int = 10):
    """100 synthetic 8x8 images: 7 batches of 16 per epoch, the last one of 4."""
    return synthetic(image_shape=(1, 8, 8), num_classes=10, per_class=per_class)
