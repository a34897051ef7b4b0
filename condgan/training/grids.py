"""The sample grid a run draws at intervals: fixed conditions and fixed noise, so that grids of
different steps show the same samples as they train. For images the grid is a picture (images in
[0, 1]); for other outputs (vectors, ...) it is the samples themselves, as the generator makes them
(the ``grid`` logger saves them as ``.npz``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..conditions import ConditionSpec
from ..data import to_unit

GRID_ROWS = 10
GRID_MAX_COLUMNS = 32


def grid_conditions(spec: ConditionSpec, labels: Tensor, device: torch.device) -> tuple[Tensor, int]:
    """(the grid's conditions in row-major order, its number of columns): for classes, column k is
    label k (the reference's grid); other conditions: the dataset's first ones, 10 a row."""
    if spec.kind == "class":
        columns = min(spec.num_classes, GRID_MAX_COLUMNS)
        return torch.arange(columns, device=device).repeat(GRID_ROWS), columns
    n = min(len(labels), GRID_ROWS * 10)
    return labels[:n].to(device), 10


def grid_noise(generator: nn.Module, n: int, seed: int, device: torch.device) -> Tensor:
    """The grid's fixed noise, drawn from its own generator apart from the training RNG."""
    return generator.sample_noise(n, "cpu", torch.Generator().manual_seed(seed)).to(device)


def draw_grid(generator: nn.Module, conditions: Tensor, z: Tensor, pixel_range: tuple[float, float]) -> tuple[Tensor, Tensor]:
    """Images (N, C, H, W) in [0, 1] on the CPU from ``generator`` (other outputs: (N, *shape) as
    made), and their conditions."""
    devices = [conditions.device] if conditions.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # a head that draws noise (a table's Gumbel-softmax) leaves the
        samples = generator.sample(conditions, z=z)  # training RNG as it was: a resumed run stays the same run
    output = getattr(generator, "output", None)
    if output is not None and output.name != "image":
        return samples.float().cpu(), conditions.cpu()
    return to_unit(samples.float(), pixel_range).cpu(), conditions.cpu()
