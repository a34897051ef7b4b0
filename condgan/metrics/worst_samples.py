"""What a judge rejects: for each class, the samples it gives the lowest probability of their condition, as a grid.

Issue 27: when two judges disagree on label accuracy, the samples each one scores worst show why
(malformed 8s, a 7 that reads as a 1). :func:`worst_scored` picks them, :func:`save_worst_grid`
draws one row per class, the lowest-scored sample first, each row labelled with its class and the
probabilities of its first and last tile. The tiles are the images as the judge reads them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .evaluate import check_conditions
from .images import guess_pixel_range
from .judge import Judge, JudgeMismatchError, judge_outputs


def worst_scored(judge: Judge, images: Tensor, labels: Tensor, per_class: int, *,
                 pixel_range: tuple[float, float] | None = None) -> tuple[Tensor, Tensor]:
    """For each class, the indices of the ``per_class`` samples of that label the judge finds least like it.

    Args:
        judge: a class judge.
        images: (N, C, H, W) samples at the judge's size.
        labels: (N,) the labels they were generated for.
        per_class: samples per class (a class with fewer samples gives all it has, padded with -1).

    Returns:
        ``indices`` (K, per_class) int64 into ``images`` (-1 where a class ran out) and ``probs``
        (K, per_class): the softmax probability of each sample's own label (NaN for padding), ascending.

    Shape:
        - images: (N, C, H, W); labels: (N,); indices, probs: (K, per_class), K the judge's classes.
    """
    if judge.kind != "class":
        raise JudgeMismatchError(f"a grid of worst-scored samples per class needs a class judge, this one is {judge.kind}")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    labels = check_conditions(judge, labels)
    _, logits = judge_outputs(judge, images, pixel_range=pixel_range)
    own = logits.softmax(1).gather(1, labels[:, None])[:, 0]  # (N,) probability of the asked class
    k = judge.num_classes
    indices = torch.full((k, per_class), -1, dtype=torch.long)
    probs = torch.full((k, per_class), float("nan"))
    for c in range(k):
        mine = (labels == c).nonzero()[:, 0]
        order = mine[own[mine].argsort(stable=True)][:per_class]
        indices[c, :len(order)], probs[c, :len(order)] = order, own[order]
    return indices, probs


def save_worst_grid(path: str | Path, judge: Judge, images: Tensor, labels: Tensor, per_class: int = 8, *,
                    pixel_range: tuple[float, float] | None = None) -> tuple[Path, Tensor, Tensor]:
    """Write the PNG grid of :func:`worst_scored`: one row per class, the lowest-scored sample at the left.

    Each row is labelled ``"NAME p=LOW..HIGH"`` (the probabilities of its first and last tile);
    padding tiles (a class with too few samples) are black.

    Returns:
        (the path written, indices, probs) as :func:`worst_scored` gives them.
    """
    from ..imagegrid import save_grid

    if pixel_range is None and images.dtype.is_floating_point:
        pixel_range = guess_pixel_range(images)  # once for the whole set, as the judge read it
    indices, probs = worst_scored(judge, images, labels, per_class, pixel_range=pixel_range)
    shown = judge.prepare(images[indices.clamp(min=0).flatten()], pixel_range)  # (K * per_class, C, H, W) in [0, 1]
    shown[indices.flatten() < 0] = 0.0
    names = judge.class_names or tuple(str(c) for c in range(judge.num_classes))
    row_labels = []
    for c, name in enumerate(names):
        p = probs[c][~probs[c].isnan()]
        row_labels.append(f"{name} p={float(p[0]):.2f}..{float(p[-1]):.2f}" if len(p) else f"{name} (none)")
    return save_grid(path, shown, per_class, row_labels=row_labels), indices, probs
