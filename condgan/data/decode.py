"""Decode many image files once, in a few threads, into one (N, C, H, W) uint8 tensor.

Used by the file-based datasets (``imagefolder``, ``celeba``). PIL releases the GIL while it
decodes and resizes, so threads give a real speed-up without the start-up cost of processes.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .base import DatasetError
from .transforms import check_target, decode_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
UPSCALE_WARNING = 4  # a picture enlarged this many times or more (per side) is counted in a warning
SKIP_BAD_HINT = ("--set data.options.skip_bad=True (condgan train), --options skip_bad=True (condgan train-classifier) "
                 "or skip_bad=True (Python)")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _warn_upscaled(sizes: list, paths: list, size: tuple[int, int], where) -> None:
    """One warning counting the pictures enlarged UPSCALE_WARNING times or more to reach ``size``."""
    th, tw = size
    factors = [max(th / hw[0], tw / hw[1]) if hw else 0.0 for hw in sizes]
    tiny = [k for k, f in enumerate(factors) if f >= UPSCALE_WARNING]
    if tiny:
        k = max(tiny, key=lambda j: factors[j])
        h, w = sizes[k]
        warnings.warn(f"{len(tiny)} of {len(sizes)} images in {where or paths[k].parent} are enlarged {UPSCALE_WARNING}x or "
                      f"more to reach {th}x{tw} (the smallest: {paths[k]} is {h}x{w}): they carry little detail at that "
                      "size; check --image-size, or remove them", RuntimeWarning, stacklevel=3)


def decode_threads() -> int:
    """How many threads decode: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def decode_files(paths: Sequence[Path], channels: int | None = None, size: Sequence[int] | None = None, fit: str = "crop", *,
                 skip_bad: bool = False, where: str | Path = "") -> tuple[Tensor, list[int]]:
    """Decode ``paths`` into one tensor; returns ``(images, kept)`` with the indices of the files kept.

    Every picture goes through :func:`~condgan.data.transforms.decode_image`. With
    ``channels=None`` each keeps its own channel count, and a set that mixes grey and colour
    pictures is made RGB (grey repeated). With ``size=None`` all pictures must have one size.

    Args:
        paths: the image files, in the order of the result.
        channels, size, fit: as :func:`~condgan.data.transforms.decode_image`.
        skip_bad: skip files that do not decode (not an image, truncated, ...) and warn once with
            their count; otherwise the first one raises.
        where: the folder named in the warning.

    Raises:
        DatasetError: a file that does not decode (without ``skip_bad``), pictures of different
            sizes with ``size=None``, or no readable picture at all.

    Shape:
        - images: (len(kept), C, H, W) uint8.
    """
    channels, size = check_target(channels, size, fit)
    n = len(paths)
    out = np.empty((n, channels, *size), dtype=np.uint8) if channels and size else None
    arrays: list[np.ndarray | None] = [None] * n
    errors: list[tuple[int, str] | None] = [None] * n
    own: list[tuple[int, int] | None] = [None] * n  # each picture's own (H, W)

    def work(i: int) -> None:
        def seen(h: int, w: int) -> None:
            own[i] = (h, w)

        try:
            arr = decode_image(paths[i], channels, size, fit, checked=True, on_size=seen)
        except Exception as exc:  # noqa: BLE001 - PIL raises many kinds for damaged files; each is reported
            errors[i] = (i, _one_line(exc))
            return
        if out is not None:
            out[i] = arr
        else:
            arrays[i] = arr

    threads = decode_threads()
    if threads == 1 or n < 64:
        for i in range(n):
            work(i)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(work, range(n), chunksize=32))

    bad = [e for e in errors if e is not None]
    if bad and not skip_bad:
        i, reason = bad[0]
        raise DatasetError(f"{paths[i]}: not a readable image ({reason}); to skip unreadable files, pass "
                           f"{SKIP_BAD_HINT}")
    if bad:
        i, reason = bad[0]
        warnings.warn(f"skipped {len(bad)} unreadable image(s) of {n} in {where or paths[i].parent} "
                      f"(first: {paths[i]}: {reason})", RuntimeWarning, stacklevel=3)
    kept = [i for i in range(n) if errors[i] is None]
    if not kept:
        raise DatasetError(f"none of the {n} image files in {where or paths[0].parent} is readable")
    if size is not None:
        _warn_upscaled([own[i] for i in kept], [paths[i] for i in kept], size, where)
    if out is not None:
        return torch.from_numpy(out if not bad else out[kept]), kept

    shapes = {arrays[i].shape[1:] for i in kept}
    if len(shapes) > 1:
        first = arrays[kept[0]].shape[1:]
        other = next(i for i in kept if arrays[i].shape[1:] != first)
        h, w = arrays[other].shape[1:]
        raise DatasetError(f"images of different sizes and no size given: {paths[kept[0]]} is {first[0]}x{first[1]}, "
                           f"{paths[other]} is {h}x{w}; give an image size (size=(H, W), --image-size) to resize them")
    if channels is None and len({arrays[i].shape[0] for i in kept}) > 1:
        for i in kept:
            if arrays[i].shape[0] == 1:
                arrays[i] = np.repeat(arrays[i], 3, axis=0)
    return torch.from_numpy(np.stack([arrays[i] for i in kept])), kept
