"""Gaussian Parzen-window log-likelihood, the protocol of Goodfellow et al. (2014) used by the cGAN paper.

A Gaussian kernel of width sigma is put on each of N samples mu_i (e.g. 10,000 generated images,
flattened, in [0, 1] at 28x28); the log-density of a point x is

    log p(x) = logsumexp_i(-||x - mu_i||^2 / (2 sigma^2)) - log N - d/2 log(2 pi sigma^2).

sigma is the value of a grid (by default Goodfellow's ``logspace(-1, 0, 10)``) with the highest
mean log-likelihood on a validation set (1,000 held-out training images); the figure is the mean
log-likelihood of the test set (10,000 MNIST test images) and its standard error
(``std / sqrt(M)``, population std as in Goodfellow's ``parzen_ll.py``). Squared distances are
computed in float64 in chunks of points (``|x|^2 + |mu|^2 - 2 x.mu``, clamped at 0); the
distances do not depend on sigma, so one pass serves every sigma of the grid.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from .images import IMAGE_RULE, guess_pixel_range, to_metric_input
from .result import MetricResult

GOODFELLOW_SIGMAS: tuple[float, ...] = tuple(float(s) for s in torch.logspace(-1, 0, 10, dtype=torch.float64))


def _as_points(x: Tensor, name: str) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x.detach().to(torch.float64)


def parzen_log_likelihoods(samples: Tensor, points: Tensor, sigmas: float | Sequence[float], *,
                           chunk_size: int = 500) -> Tensor:
    """log p(x) of each point under a Gaussian Parzen window on ``samples``, for each sigma (float64).

    Args:
        samples: (N, D) kernel centres.
        points: (M, D) points to evaluate.
        sigmas: one width or a sequence of S widths (> 0).
        chunk_size: points per chunk (memory ~ chunk_size * N * 8 bytes per live buffer).

    Shape:
        - output: (S, M), or (M,) when ``sigmas`` is a single float.

    Example:
        >>> ll = parzen_log_likelihoods(torch.zeros(1, 1), torch.zeros(1, 1), 1.0)
        >>> round(float(ll[0]), 6) == round(-0.5 * math.log(2 * math.pi), 6)
        True
    """
    single = isinstance(sigmas, (int, float))
    sig = torch.tensor([sigmas] if single else list(sigmas), dtype=torch.float64)
    if sig.numel() == 0 or not bool((sig > 0).all()):
        raise ValueError(f"sigmas must be positive, got {sigmas}")
    mu, x = _as_points(samples, "samples"), _as_points(points, "points")
    if mu.shape[1] != x.shape[1]:
        raise ValueError(f"samples have {mu.shape[1]} dimensions but points have {x.shape[1]}")
    n, d = mu.shape
    mu_sq = mu.square().sum(1)  # (N,)
    const = -math.log(n) - 0.5 * d * torch.log(2 * math.pi * sig.square())  # (S,)
    scale = (-0.5 / sig.square())[:, None, None]  # (S, 1, 1)
    out = torch.empty(len(sig), x.shape[0], dtype=torch.float64)
    for start in range(0, x.shape[0], chunk_size):
        xc = x[start:start + chunk_size]  # (C, D)
        sq = torch.addmm(mu_sq, xc, mu.T, alpha=-2).add_(xc.square().sum(1, keepdim=True)).clamp_(min=0)  # (C, N)
        for s in range(len(sig)):
            out[s, start:start + chunk_size] = torch.logsumexp(sq * scale[s], dim=1) + const[s]
    return out[0] if single else out


def select_sigma(samples: Tensor, validation: Tensor, sigmas: Sequence[float] = GOODFELLOW_SIGMAS, *,
                 chunk_size: int = 500) -> tuple[float, list[float]]:
    """The sigma of the grid with the highest mean validation log-likelihood, and each sigma's mean."""
    means = parzen_log_likelihoods(samples, validation, list(sigmas), chunk_size=chunk_size).mean(1)
    return float(sigmas[int(means.argmax())]), [float(m) for m in means]


def _flat_unit_images(images: Tensor, pixel_range: tuple[float, float] | None, chunk: int = 2000) -> Tensor:
    if pixel_range is None and images.dtype.is_floating_point:
        pixel_range = guess_pixel_range(images)  # once for the whole set
    return torch.cat([to_metric_input(images[s:s + chunk], pixel_range=pixel_range).flatten(1)
                      for s in range(0, len(images), chunk)])  # (N, 784) in [0, 1]


def parzen_log_likelihood(samples: Tensor, test: Tensor, validation: Tensor, *, sigmas: Sequence[float] = GOODFELLOW_SIGMAS,
                          chunk_size: int = 500, pixel_range: tuple[float, float] | None = None,
                          protocol: dict[str, Any] | None = None) -> MetricResult:
    """Mean Parzen-window log-likelihood of test images, with sigma chosen on validation images.

    All three sets are images brought to (N, 1, 28, 28) in [0, 1] by the metric image rule
    (``pixel_range`` applies to ``samples``; the others are guessed by the rule), then flattened.

    Args:
        samples: (N, C, H, W) the window's centres (e.g. 10,000 generated images).
        test: (M, C, H, W) the images whose mean log-likelihood is reported (e.g. the MNIST test set).
        validation: (V, C, H, W) the images that choose sigma (e.g. 1,000 held-out training images).

    Returns:
        ``value``: mean test log-likelihood (nats); ``details``: ``stderr``, ``sigma``, the
        validation mean for each sigma of the grid, and whether sigma hit the grid's edge.
    """
    mu = _flat_unit_images(samples, pixel_range)
    val, tst = _flat_unit_images(validation, None), _flat_unit_images(test, None)
    sigma, val_means = select_sigma(mu, val, sigmas, chunk_size=chunk_size)
    ll = parzen_log_likelihoods(mu, tst, sigma, chunk_size=chunk_size)
    stderr = float(ll.std(unbiased=False) / math.sqrt(len(ll)))
    return MetricResult(
        "parzen_log_likelihood", float(ll.mean()),
        {**(protocol or {}), "samples": len(mu), "test_samples": len(tst), "validation_samples": len(val),
         "space": "pixels, 28x28 in [0, 1], flattened (784 dims)", "image_rule": IMAGE_RULE,
         "sigma_grid": [float(s) for s in sigmas], "kernel": "Gaussian, isotropic",
         "stderr": "population std / sqrt(test samples)", "units": "nats"},
        {"stderr": stderr, "sigma": sigma, "validation_mean_per_sigma": val_means,
         "sigma_at_grid_edge": sigma in (min(sigmas), max(sigmas))},
    )
