"""A seeded, stratified held-out part of a labelled set: what a judge is measured on, and what a GAN
trained on the same images leaves out.

``stratified_holdout(labels, 0.1, seed=0)`` takes ``round(0.1 * n_k)`` images of each class k (at
least one of every class with two or more images, never all of one), drawn by one
``torch.Generator`` seeded with ``seed`` in class order. The draw depends only on the labels in
their order (for an image folder: the sorted file list), so the same folder, fraction and seed give
the same held-out files on every machine. :func:`judge_holdout` reads the rule a judge file
recorded (``condgan train-classifier`` on a flat folder), so that training can exclude those files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .base import DatasetError


def check_fraction(fraction: Any, what: str = "holdout") -> float:
    """``fraction`` as a float in (0, 1), or one line saying what is allowed."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < float(fraction) < 1:
        raise DatasetError(f"{what} must be a fraction between 0 and 1 (e.g. 0.1), got {fraction!r}")
    return float(fraction)


def stratified_holdout(labels: Tensor, fraction: float, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(held_out, kept)`` indices (each sorted) of a seeded, stratified ``fraction`` of ``labels``.

    Args:
        labels: (N,) class indices.
        fraction: the part of each class held out, in (0, 1).
        seed: the seed of the draw.

    Example:
        >>> held, kept = stratified_holdout(torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 1]), 0.25)
        >>> len(held), len(kept)
        (3, 7)
    """
    fraction = check_fraction(fraction)
    labels = torch.as_tensor(labels).long()
    gen = torch.Generator().manual_seed(int(seed))
    held = []
    for k in torch.unique(labels).tolist():
        members = (labels == k).nonzero().flatten()
        n = len(members)
        take = min(n - 1, max(1, round(fraction * n))) if n >= 2 else 0
        held.append(members[torch.randperm(n, generator=gen)[:take]])
    held_idx = torch.cat(held).sort().values if held else torch.zeros(0, dtype=torch.long)
    mask = torch.ones(len(labels), dtype=torch.bool)
    mask[held_idx] = False
    return held_idx, mask.nonzero().flatten()


def judge_holdout(path: str | Path) -> dict[str, Any] | None:
    """The dataset options of the held-out part recorded in a judge file (``holdout``, ``holdout_seed``),
    or None when the judge held out a split of its own (a test folder: nothing to exclude).

    Raises:
        DatasetError: the file is missing or is not a condgan judge file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"exclude_judge: judge file {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same line
        raise DatasetError(f"exclude_judge: {str(path)!r} is not a readable condgan judge file ({type(exc).__name__})") from None
    protocol = payload.get("protocol") if isinstance(payload, dict) else None
    options = ((protocol or {}).get("dataset") or {}).get("options") if isinstance(protocol, dict) else None
    if not isinstance(options, dict):
        raise DatasetError(f"exclude_judge: {str(path)!r} is not a condgan judge file (no recorded dataset)")
    if options.get("holdout") is None:
        return None
    return {"holdout": options["holdout"], "holdout_seed": int(options.get("holdout_seed", 0))}
