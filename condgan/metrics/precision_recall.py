"""k-nearest-neighbour precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each real feature vector r_i gets a ball whose radius is the distance to its k-th nearest other
real vector (each fake vector likewise for recall). Following the reference implementations
(``prdc``), membership is strict (``distance < radius``):

- precision: fraction of fake vectors inside at least one real ball (fidelity);
- recall: fraction of real vectors inside at least one fake ball (diversity);
- density: mean over fakes of (number of real balls containing it) / k (can exceed 1);
- coverage: fraction of real balls that contain at least one fake vector.

Distances are Euclidean, computed in float64 in chunks of rows; nothing of size N x M is held at
once. :func:`knn_metrics` computes all four with four passes over the distance matrices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .result import MetricResult


def _points(x: Tensor, name: str, k: int) -> Tensor:
    if not isinstance(x, Tensor) or x.dim() != 2:
        raise ValueError(f"{name} must be a (N, D) tensor, got {getattr(x, 'shape', type(x).__name__)}")
    if x.shape[0] <= k:
        raise ValueError(f"{name} needs more than k={k} rows, got {x.shape[0]}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x.detach().to(torch.float64)


def _sq_distances(a: Tensor, b: Tensor, b_sq: Tensor) -> Tensor:
    """Squared distances (A, B) as |b|^2 - 2 a.b + |a|^2, clamped at 0."""
    return torch.addmm(b_sq, a, b.T, alpha=-2).add_(a.square().sum(1, keepdim=True)).clamp_(min=0)


def _chunks(n: int, size: int):
    return (slice(s, s + size) for s in range(0, n, size))


def knn_radii(x: Tensor, ks: int | tuple[int, ...], *, chunk_size: int = 1000) -> Tensor:
    """Squared distance from each row of x to its k-th nearest other row (itself excluded), for each k.

    Shape:
        - x: (N, D); output: (N,) for one k, (len(ks), N) for several.
    """
    many = not isinstance(ks, int)
    ks_t = (ks,) if not many else tuple(ks)
    x_sq = x.square().sum(1)
    out = torch.empty(len(ks_t), len(x), dtype=x.dtype)
    for rows in _chunks(len(x), chunk_size):
        # the (k+1)-th smallest includes the point itself at distance 0
        nearest = _sq_distances(x[rows], x, x_sq).topk(max(ks_t) + 1, dim=1, largest=False).values  # (C, k+1), ascending
        for i, k in enumerate(ks_t):
            out[i, rows] = nearest[:, k]
    return out if many else out[0]


def _check_k(k: int) -> None:
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")


def knn_metrics(real: Tensor, fake: Tensor, *, k_pr: int = 3, k_dc: int = 5, chunk_size: int = 1000,
                protocol: dict[str, Any] | None = None) -> tuple[MetricResult, MetricResult]:
    """Precision/recall (k = ``k_pr``) and density/coverage (k = ``k_dc``) of ``fake`` against ``real``.

    Shape:
        - real: (N, D); fake: (M, D).

    Returns:
        (precision_recall, density_coverage) results; values are dicts of floats.
    """
    _check_k(k_pr)
    _check_k(k_dc)
    r, f = _points(real, "real", max(k_pr, k_dc)), _points(fake, "fake", k_pr)
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real has {r.shape[1]} dimensions but fake has {f.shape[1]}")
    r_pr, r_dc = knn_radii(r, (k_pr, k_dc), chunk_size=chunk_size)  # (N,), (N,)
    f_pr = knn_radii(f, k_pr, chunk_size=chunk_size)  # (M,)
    r_sq, f_sq = r.square().sum(1), f.square().sum(1)
    precise, inside = torch.empty(len(f), dtype=torch.bool), torch.empty(len(f), dtype=torch.float64)
    for rows in _chunks(len(f), chunk_size):
        d = _sq_distances(f[rows], r, r_sq)  # (C, N)
        precise[rows] = (d < r_pr).any(1)
        inside[rows] = (d < r_dc).sum(1).double()
    recalled, covered = torch.empty(len(r), dtype=torch.bool), torch.empty(len(r), dtype=torch.bool)
    for rows in _chunks(len(r), chunk_size):
        d = _sq_distances(r[rows], f, f_sq)  # (C, M)
        recalled[rows] = (d < f_pr).any(1)
        covered[rows] = d.min(1).values < r_dc[rows]
    base = {**(protocol or {}), "real_samples": len(r), "fake_samples": len(f), "distance": "Euclidean, float64"}
    pr = MetricResult("precision_recall", {"precision": float(precise.double().mean()), "recall": float(recalled.double().mean())},
                      {**base, "k": k_pr, "method": "Kynkaanniemi et al. 2019, k-NN balls, strict <"})
    dc = MetricResult("density_coverage", {"density": float(inside.mean() / k_dc), "coverage": float(covered.double().mean())},
                      {**base, "k": k_dc, "method": "Naeem et al. 2020, k-NN balls around real samples, strict <"})
    return pr, dc


def precision_recall(real: Tensor, fake: Tensor, *, k: int = 3, chunk_size: int = 1000,
                     protocol: dict[str, Any] | None = None) -> MetricResult:
    """Improved precision and recall of ``fake`` relative to ``real`` (Kynkaanniemi et al. 2019).

    Shape:
        - real: (N, D); fake: (M, D).

    Returns:
        ``value`` = ``{"precision": p, "recall": r}``, each in [0, 1].

    Example:
        >>> f = torch.randn(100, 3)
        >>> precision_recall(f, f).value
        {'precision': 1.0, 'recall': 1.0}
    """
    return knn_metrics(real, fake, k_pr=k, k_dc=k, chunk_size=chunk_size, protocol=protocol)[0]


def density_coverage(real: Tensor, fake: Tensor, *, k: int = 5, chunk_size: int = 1000,
                     protocol: dict[str, Any] | None = None) -> MetricResult:
    """Density and coverage of ``fake`` relative to ``real`` (Naeem et al. 2020).

    Shape:
        - real: (N, D); fake: (M, D).

    Returns:
        ``value`` = ``{"density": d, "coverage": c}``; density is ~1 when the sets match.
    """
    return knn_metrics(real, fake, k_pr=k, k_dc=k, chunk_size=chunk_size, protocol=protocol)[1]
