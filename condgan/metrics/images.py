"""The one rule that brings images of any size and range to the metrics' input: (B, 1, 28, 28) in [0, 1].

Every metric in :mod:`condgan.metrics` (classifier features, label accuracy, Parzen windows) and
the classifier's own training pass images through :func:`to_metric_input`, so a figure never
depends on how a caller happened to scale or resize its images.

The rule (``IMAGE_RULE`` states it in the protocol of every result):

1. Range: ``uint8`` images are divided by 255. Float images are taken as ``pixel_range`` when it
   is given; otherwise as [-1, 1] when their minimum is below -0.01 (a tanh generator) and as
   [0, 1] otherwise. Float values outside [-1.01, 1.01] are refused without an explicit
   ``pixel_range`` (e.g. floats in [0, 255]). Values are mapped linearly to [0, 1] and clamped.
2. Channels: 1 channel is kept; 3 channels are averaged to one (unweighted mean).
3. Size: any other size than 28x28 is resized with bilinear interpolation with antialiasing
   (``torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

METRIC_IMAGE_SIZE = 28
IMAGE_RULE = (
    "uint8 /255; float: [-1,1] if min < -0.01 else [0,1] (or the given pixel_range), mapped to [0,1] and clamped; "
    "3 channels averaged to 1; resized to 28x28 by bilinear interpolation with antialias (align_corners=False)"
)


def guess_pixel_range(images: Tensor) -> tuple[float, float]:
    """The rule's range of float images: (-1, 1) if their minimum is below -0.01, else (0, 1).

    Raises ValueError for values outside [-1.01, 1.01] (give the range explicitly instead).
    Evaluate it once on a whole set, so that its batches cannot be read differently.
    """
    lo_val, hi_val = float(images.min()), float(images.max())
    if lo_val < -1.01 or hi_val > 1.01:
        raise ValueError(
            f"float images span [{lo_val:.3g}, {hi_val:.3g}], outside [-1, 1] and [0, 1]; "
            "pass pixel_range=(low, high) (e.g. (0, 255)) to say what they are"
        )
    return (-1.0, 1.0) if lo_val < -0.01 else (0.0, 1.0)


def to_metric_input(images: Tensor, *, pixel_range: tuple[float, float] | None = None,
                    size: int = METRIC_IMAGE_SIZE) -> Tensor:
    """Images of any size and range as float32 (B, 1, size, size) in [0, 1], by the module's rule.

    Args:
        images: (B, C, H, W) or (B, H, W), uint8 or float, C in {1, 3}.
        pixel_range: the (low, high) range of float images; guessed by the rule when None.
        size: output side (28, the classifier's and the Parzen protocol's input).

    Shape:
        - images: (B, C, H, W) or (B, H, W); output: (B, 1, size, size) float32.

    Example:
        >>> to_metric_input(torch.full((2, 1, 32, 32), -1.0)).shape, float(to_metric_input(torch.full((1, 1, 32, 32), -1.0)).max())
        (torch.Size([2, 1, 28, 28]), 0.0)
    """
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() == 3:
        images = images[:, None]  # (B, 1, H, W)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (B, C, H, W) with C in (1, 3), or (B, H, W); got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError("images is empty (0 images)")
    if images.dtype == torch.uint8:
        x = images.float() / 255.0
    elif images.dtype.is_floating_point:
        x = images.float()
        if not bool(torch.isfinite(x).all()):
            raise ValueError("images contain NaN or inf")
        if pixel_range is None:
            pixel_range = guess_pixel_range(x)
        lo, hi = map(float, pixel_range)
        if not hi > lo:
            raise ValueError(f"pixel_range must be (low, high) with high > low, got {pixel_range}")
        x = (x - lo) / (hi - lo)
    else:
        raise ValueError(f"images must be uint8 or floating point, got dtype {images.dtype}")
    if x.shape[1] == 3:
        x = x.mean(dim=1, keepdim=True)  # (B, 1, H, W)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0).contiguous()
