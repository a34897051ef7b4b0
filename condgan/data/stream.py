"""Batches decoded from files while training: for image sets too large to hold decoded on the device.

:class:`StreamBatches` has :class:`~condgan.data.tensors.TensorBatches`' interface and yields the
same batches in the same order: one permutation per epoch drawn with the same generator (so a
resumed run replays the epoch's order and continues at the same image), the same split of each
global batch between processes under torchrun, the same float conversion. Only where the pixels
come from differs: DataLoader workers decode the files of each batch
(:func:`~condgan.data.transforms.decode_image`: the same pixels as the decoded-once path), into
pinned memory, a few batches ahead, and each batch is copied to the device without blocking
(uint8, converted to float on the device; for a CPU device the workers convert).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from .decode import decode_threads
from .tensors import to_float
from .transforms import check_target, decode_image


class _Decoder(torch.utils.data.Dataset):
    """Index -> (C, H, W) uint8 tensor, decoded in a DataLoader worker."""

    def __init__(self, items: Sequence, decode: Callable[[object], np.ndarray]):
        self.items, self.decode = items, decode

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Tensor:
        return torch.from_numpy(self.decode(self.items[i]))


class _EpochBatches(torch.utils.data.Sampler):
    """The index batches of the current epoch; set by the main process before each pass (workers persist)."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Collate:
    """Stack a batch of (C, H, W) uint8 images; on a CPU device also convert them to float here, in
    the worker (spreading the conversion over the workers instead of the training process)."""

    def __init__(self, pixel_range: tuple[float, float] | None):
        self.pixel_range = pixel_range

    def __call__(self, images: list[Tensor]) -> Tensor:
        x = torch.stack(images)  # (B, C, H, W) uint8
        return to_float(x, self.pixel_range) if self.pixel_range is not None else x


class _FitFile:
    """A picklable ``path -> (C, H, W) uint8`` decoder with fixed channels, size and fit."""

    def __init__(self, channels: int | None, size: tuple[int, int] | None, fit: str):
        self.channels, self.size, self.fit = channels, size, fit

    def __call__(self, path) -> np.ndarray:
        return decode_image(path, self.channels, self.size, self.fit, checked=True)


class StreamBatches:
    """Shuffled mini-batches decoded from files by DataLoader workers, with TensorBatches' order.

    Args:
        items: one entry per image (a file path, or whatever ``decode`` takes).
        labels: (N,) or (N, K) conditions, kept on the training device.
        batch_size: images per batch and process.
        channels, size, fit: what each file is decoded to (as
            :func:`~condgan.data.transforms.decode_image`); all images must come out the same
            shape, so give ``size`` unless every file has one size.
        decode: ``item -> (C, H, W) uint8 array`` instead of decoding files (must be picklable
            when workers are started with ``spawn``).
        device, pixel_range, drop_last, generator, rank, world_size: as TensorBatches.
        num_workers: decoding processes (default: the CPUs this process may use, at most 8; 0
            decodes in this process).
        prefetch: batches each worker decodes ahead.
        pin_memory: decode into page-locked memory for asynchronous copies (default: on CUDA).

    Shape:
        - yields (B, C, H, W) float in ``pixel_range`` and labels (B,) or (B, K), on ``device``.

    Example:
        >>> batches = StreamBatches(paths, labels, 64, size=(64, 64), generator=gen)  # doctest: +SKIP
        >>> for images, y in batches.iterate(start=10): ...  # doctest: +SKIP
    """

    def __init__(self, items: Sequence, labels: Tensor, batch_size: int, *, channels: int | None = None,
                 size: Sequence[int] | None = None, fit: str = "crop", decode: Callable | None = None,
                 device: torch.device | str = "cpu", pixel_range: tuple[float, float] = (-1.0, 1.0), drop_last: bool = False,
                 generator: torch.Generator | None = None, rank: int = 0, world_size: int = 1,
                 num_workers: int | None = None, prefetch: int = 4, pin_memory: bool | None = None):
        n = len(items)
        if n == 0:
            raise ValueError("the dataset is empty")
        if n != len(labels):
            raise ValueError(f"{n} images but {len(labels)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must lie in [0, world_size), got rank {rank} of world_size {world_size}")
        if world_size > 1 and n < batch_size * world_size:
            raise ValueError(f"{n} images cannot fill one global batch of {world_size} processes x "
                             f"{batch_size}: use a smaller batch_size or fewer processes")
        channels, size = check_target(channels, size, fit)
        self.device = torch.device(device)
        self.labels = labels.to(self.device)
        self.n, self.batch_size, self.pixel_range, self.generator = n, batch_size, pixel_range, generator
        self.drop_last = drop_last or world_size > 1
        self.rank, self.world_size = rank, world_size
        workers = decode_threads() if num_workers is None else int(num_workers)
        if pin_memory is None:
            pin_memory = self.device.type == "cuda"
        self._sampler = _EpochBatches()
        # uint8 travels to an accelerator (a quarter of the bytes) and is converted there; for a CPU
        # device the workers convert
        self._convert_in_workers = self.device.type == "cpu" and workers > 0
        self.loader = DataLoader(
            _Decoder(items, decode or _FitFile(channels, size, fit)), batch_sampler=self._sampler, num_workers=workers,
            collate_fn=_Collate(pixel_range if self._convert_in_workers else None),
            pin_memory=pin_memory, persistent_workers=workers > 0, prefetch_factor=prefetch if workers > 0 else None,
            # its own generator: a DataLoader draws its workers' base seed from the global RNG
            # otherwise, which would shift the noise and dropout draws of training
            generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        b = self.batch_size * self.world_size
        return self.n // b if self.drop_last else -(-self.n // b)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self.iterate(0)

    def iterate(self, start: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """One epoch from batch ``start`` on: the batches before it are neither decoded nor yielded.

        Draws the epoch's permutation exactly as TensorBatches does (one ``randperm`` with the
        generator, on the generator's device), so ``iterate(k)`` yields batches k, k+1, ... of
        ``iter(...)`` with the same generator state.
        """
        device = self.generator.device if self.generator is not None else self.device
        order = torch.randperm(self.n, device=device, generator=self.generator)
        step, offset = self.batch_size * self.world_size, self.rank * self.batch_size
        spans = [(i * step + offset, i * step + offset + self.batch_size) for i in range(start, len(self))]
        order_dev = order.to(self.device)
        order_cpu = order.cpu()  # one copy per epoch, not per batch
        self._sampler.batches = [order_cpu[a:b].tolist() for a, b in spans]
        for (a, b), x in zip(spans, self.loader):  # one pass at a time: a new pass resets the workers
            if x.dtype == torch.uint8:
                x = to_float(x.to(self.device, non_blocking=True), self.pixel_range)
            yield x, self.labels[order_dev[a:b]]


def stream_files(paths: Sequence[str | Path], labels: Tensor, batch_size: int, **kwargs) -> StreamBatches:
    """:class:`StreamBatches` over image files (a shorthand that names what the items are)."""
    return StreamBatches(list(paths), labels, batch_size, **kwargs)
