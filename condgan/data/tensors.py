"""Datasets held as tensors: decoded and resized once, batched by index on the training device."""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor


def to_float(images: Tensor, pixel_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """uint8 images in [0, 255] to float in ``pixel_range`` (the reference: ToTensor + Normalize(0.5, 0.5))."""
    lo, hi = pixel_range
    return images.float().mul_((hi - lo) / 255.0).add_(lo)


def to_unit(images: Tensor, pixel_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Float images in ``pixel_range`` to [0, 1] (clamped), e.g. for saving or metrics."""
    lo, hi = pixel_range
    return ((images - lo) / (hi - lo)).clamp_(0.0, 1.0)


class TensorBatches:
    """Shuffled mini-batches of a dataset that lives on the training device.

    Each epoch draws one permutation on the device (with ``generator``) and indexes the stored
    tensors; uint8 images are converted to float per batch. The last batch may be smaller
    (``drop_last=False``, as a DataLoader by default).

    With ``world_size`` > 1 (torch.distributed), every process draws the same permutation (the
    same ``generator`` seed) and process ``rank`` takes its ``batch_size`` rows of each global batch
    of ``world_size * batch_size``; the last incomplete global batch is dropped.

    Shape:
        - images: (N, C, H, W) uint8 or float; labels: (N,) or (N, K); yields (B, C, H, W) float, labels.
    """

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, *, device: torch.device | str = "cpu",
                 pixel_range: tuple[float, float] = (-1.0, 1.0), drop_last: bool = False, generator: torch.Generator | None = None,
                 rank: int = 0, world_size: int = 1):
        if len(images) == 0:
            raise ValueError("the dataset is empty")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size), got rank {rank} of world_size {world_size}")
        if world_size > 1 and len(images) < batch_size * world_size:
            raise ValueError(f"{len(images)} images cannot fill one global batch of {world_size} processes x "
                             f"{batch_size}: use a smaller batch_size or fewer processes")
        self.images, self.labels = images.to(device), labels.to(device)
        self.batch_size, self.pixel_range, self.generator = batch_size, pixel_range, generator
        self.drop_last = drop_last or world_size > 1
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        n, b = len(self.images), self.batch_size * self.world_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.iterate(0)

    def iterate(self, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch from batch ``start`` on (the epoch's permutation is drawn in full either way)."""
        order = torch.randperm(len(self.images), device=self.images.device, generator=self.generator)
        step, offset = self.batch_size * self.world_size, self.rank * self.batch_size
        for i in range(start, len(self)):
            idx = order[i * step + offset:i * step + offset + self.batch_size]
            x = self.images[idx]
            yield (to_float(x, self.pixel_range) if x.dtype == torch.uint8 else x), self.labels[idx]
