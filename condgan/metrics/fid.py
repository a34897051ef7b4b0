"""Frechet distance between Gaussians fitted to feature sets (FID in a chosen feature space).

``FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr(sqrt(S1 S2))``, where ``tr(sqrt(S1 S2))`` is
computed without scipy as the sum of the square roots of the eigenvalues of the symmetric matrix
``sqrt(S1) S2 sqrt(S1)`` (which has the same eigenvalues as ``S1 S2``), all in float64; tiny
negative eigenvalues from rounding are clamped to zero.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .result import MetricResult


def _check_features(features: Tensor, name: str, min_count: int = 2) -> Tensor:
    if not isinstance(features, Tensor) or features.dim() != 2:
        raise ValueError(f"{name} must be a (N, D) tensor, got {getattr(features, 'shape', type(features).__name__)}")
    if features.shape[0] < min_count:
        raise ValueError(f"{name} needs at least {min_count} rows to estimate a covariance, got {features.shape[0]}")
    if not bool(torch.isfinite(features).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return features.detach().to(dtype=torch.float64)


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
    f = _check_features(features, "features")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _sqrt_psd(matrix: Tensor) -> Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues clamped at 0)."""
    w, v = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor) -> float:
    """Frechet distance between N(mu1, cov1) and N(mu2, cov2), computed in float64.

    Shape:
        - mu1, mu2: (D,); cov1, cov2: (D, D).

    Example:
        >>> frechet_distance(torch.zeros(2), torch.eye(2), torch.ones(2), torch.eye(2))
        2.0
    """
    mu1, mu2, cov1, cov2 = (t.detach().to(torch.float64) for t in (mu1, mu2, cov1, cov2))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"shapes must be (D,), (D, D), (D,), (D, D); got {tuple(mu1.shape)}, {tuple(cov1.shape)}, "
                         f"{tuple(mu2.shape)}, {tuple(cov2.shape)}")
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    value = (mu1 - mu2).square().sum() + cov1.trace() + cov2.trace() - 2 * trace_sqrt
    return max(float(value), 0.0)


def fid_from_features(features: Tensor, reference: Tensor, *, protocol: dict[str, Any] | None = None) -> MetricResult:
    """Frechet distance between two feature sets (N, D) and (M, D).

    Args:
        features: e.g. classifier features of generated images.
        reference: e.g. classifier features of the MNIST test set.
        protocol: what the features are (extractor, sets); counts are added.

    Example:
        >>> f = torch.randn(500, 4)
        >>> round(fid_from_features(f, f).value, 6)
        0.0
    """
    mu1, cov1 = feature_statistics(features)
    mu2, cov2 = feature_statistics(reference)
    if mu1.shape != mu2.shape:
        raise ValueError(f"feature dimensions differ: {mu1.shape[0]} vs {mu2.shape[0]}")
    value = frechet_distance(mu1, cov1, mu2, cov2)
    return MetricResult("fid", value, {**(protocol or {}), "samples": features.shape[0], "reference_samples": reference.shape[0],
                                       "feature_dim": mu1.shape[0]})


def intra_class_fid(features: Tensor, labels: Tensor, reference: Tensor, reference_labels: Tensor, *,
                    num_classes: int = 10, protocol: dict[str, Any] | None = None) -> MetricResult:
    """The Frechet distance computed within each class, then averaged over the classes (unweighted).

    Args:
        features, labels: (N, D) and (N,): e.g. generated images' features and their conditioning labels.
        reference, reference_labels: (M, D) and (M,): e.g. test-set features and true labels.

    Returns:
        ``value`` is the mean over classes; ``details["per_class"]`` lists each class's FID.
    """
    labels, reference_labels = torch.as_tensor(labels).long(), torch.as_tensor(reference_labels).long()
    if labels.shape != (features.shape[0],) or reference_labels.shape != (reference.shape[0],):
        raise ValueError(f"labels must be (N,) and (M,) matching the features, got {tuple(labels.shape)} and {tuple(reference_labels.shape)}")
    per_class, counts = [], []
    for c in range(num_classes):
        mine, theirs = features[labels == c], reference[reference_labels == c]
        if len(mine) < 2 or len(theirs) < 2:
            raise ValueError(f"class {c} has {len(mine)} samples and {len(theirs)} reference samples; each needs at least 2")
        per_class.append(fid_from_features(mine, theirs).value)
        counts.append([len(mine), len(theirs)])
    value = sum(per_class) / num_classes
    return MetricResult("intra_class_fid", value,
                        {**(protocol or {}), "samples": features.shape[0], "reference_samples": reference.shape[0],
                         "classes": num_classes, "average": "unweighted mean over classes"},
                        {"per_class": per_class, "per_class_counts": counts})
