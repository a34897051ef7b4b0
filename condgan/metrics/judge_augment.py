"""The ``--augment`` training of a judge: random rotations and shifts of a few pixels (no noise).

A judge trained with it sees digits and shapes a little turned and displaced, so it errs elsewhere
than the plain judges (issue 27: judges trained differently). No noise, blur or colour change:
a judge that learned to ignore speckle could not see it in samples (issue 16).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

AUGMENT_DEGREES = 10.0  # rotations uniform in [-10, 10] degrees


def augment_shift(h: int, w: int) -> int:
    """The largest shift in pixels: a tenth of the smaller side, at least 1 (3 at 28 and 32 px).

    Example:
        >>> augment_shift(28, 28), augment_shift(8, 8)
        (3, 1)
    """
    return max(1, round(min(h, w) / 10))


def augment_settings(h: int, w: int) -> dict[str, Any]:
    """What the file records: ``{"rotation_degrees": 10.0, "max_shift_px": S, "rule": ...}``."""
    return {"rotation_degrees": AUGMENT_DEGREES, "max_shift_px": augment_shift(h, w),
            "rule": "per image: a rotation uniform in [-d, d] degrees about the centre and an integer shift in [-s, s] px "
                    "per axis, bilinear resampling (grid_sample, align_corners=False), zeros outside"}


def random_affine(x: Tensor, max_shift: int, degrees: float, generator: torch.Generator) -> Tensor:
    """Rotate each image by a random angle in [-degrees, degrees] and shift it by up to ``max_shift`` pixels.

    Args:
        x: (B, C, H, W) float images in [0, 1].
        max_shift: the largest shift per axis, in pixels (integers).
        degrees: the largest rotation.
        generator: the source of the random draws (on the CPU).

    Shape:
        - x: (B, C, H, W); output: (B, C, H, W), values still in [0, 1].

    Example:
        >>> x = torch.zeros(1, 1, 9, 9); x[0, 0, 4, 4] = 1.0
        >>> float(random_affine(x, 0, 0.0, torch.Generator().manual_seed(0)).sum())
        1.0
    """
    b, _, h, w = x.shape
    angle = (torch.rand(b, generator=generator) * 2 - 1) * math.radians(degrees)
    shift = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator).float()
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(b, 2, 3)
    # a rotation in pixel space, written in normalised coordinates (x spans 2/w per pixel, y 2/h)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = cos, -sin * h / w, shift[:, 0] * 2 / w
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sin * w / h, cos, shift[:, 1] * 2 / h
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp_(0.0, 1.0)
