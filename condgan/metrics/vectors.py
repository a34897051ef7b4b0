"""Judges of generated vectors: the vectors themselves against held-out real vectors.

No feature extractor stands between a vector and its judge: the Frechet distance
(:func:`~condgan.metrics.fid.fid_from_features`) and k-NN precision/recall and density/coverage
(:func:`~condgan.metrics.precision_recall.knn_metrics`) read the (N, D) vectors as they are, and
for class conditions the Frechet distance is also taken within each class (the conditional
fidelity: a condition's samples against that condition's real vectors). Every figure carries its
protocol (the reference file and its SHA-256, the sample rule, k, the distance).

Example:
    >>> real, fake = torch.randn(500, 4), torch.randn(500, 4)
    >>> r = evaluate_vectors(fake, torch.zeros(500, dtype=torch.long), real, torch.zeros(500, dtype=torch.long),
    ...                      num_classes=1, protocol={"reference": "toy"})
    >>> sorted(r)
    ['density_coverage', 'frechet_distance', 'intra_class_fd', 'precision_recall']
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .fid import fid_from_features, intra_class_fid
from .precision_recall import knn_metrics
from .result import MetricResult

FEATURES = "the vectors themselves (no feature extractor), float64 statistics"


def evaluate_vectors(fake: Tensor, fake_conditions: Tensor, real: Tensor, real_conditions: Tensor, *,
                     num_classes: int | None = None, protocol: dict[str, Any] | None = None, k_pr: int = 3,
                     k_dc: int = 5) -> dict[str, MetricResult]:
    """The vector judges of ``fake`` (N, D) against ``real`` (M, D), keyed by metric.

    Args:
        fake, fake_conditions: generated vectors and the conditions they were asked for.
        real, real_conditions: held-out real vectors and their conditions.
        num_classes: for class conditions, the class count: adds ``intra_class_fd`` (the mean over
            classes of the Frechet distance within the class; classes with fewer than 2 vectors on
            either side are left out and named in its details); None: not class conditions.
        protocol: what the sets are (reference file, sample rule), added to each figure's protocol.
        k_pr, k_dc: the k of precision/recall and of density/coverage.

    Raises:
        ValueError: the sets differ in dimension, or hold too few vectors (one line).
    """
    for name, x in (("generated vectors", fake), ("reference vectors", real)):
        if not isinstance(x, Tensor) or x.dim() != 2 or not x.dtype.is_floating_point:
            raise ValueError(f"{name} must be a float (N, D) tensor, got {getattr(x, 'shape', type(x).__name__)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contain NaN or inf")
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"generated vectors have {fake.shape[1]} values and reference vectors {real.shape[1]}: they must match")
    base = {**(protocol or {}), "features": FEATURES}
    fake, real = fake.double(), real.double()
    results = {"frechet_distance": _renamed(fid_from_features(fake, real, protocol=base), "frechet_distance")}
    pr, dc = knn_metrics(real, fake, k_pr=k_pr, k_dc=k_dc, protocol={**base, "samples": len(fake)})
    results.update(precision_recall=pr, density_coverage=dc)
    if num_classes is not None:
        results["intra_class_fd"] = _intra_class(fake, fake_conditions, real, real_conditions, num_classes, base)
    return results


def _renamed(result: MetricResult, name: str) -> MetricResult:
    return MetricResult(name, result.value, result.protocol, result.details)


def _intra_class(fake, fake_y, real, real_y, num_classes: int, protocol: dict[str, Any]) -> MetricResult:
    fake_y, real_y = torch.as_tensor(fake_y).long().cpu(), torch.as_tensor(real_y).long().cpu()
    kept = [c for c in range(num_classes) if int((fake_y == c).sum()) >= 2 and int((real_y == c).sum()) >= 2]
    if not kept:
        raise ValueError("no class has 2 generated and 2 reference vectors: the within-class Frechet distance needs them")
    remap = torch.full((num_classes,), -1, dtype=torch.long)
    remap[kept] = torch.arange(len(kept))
    f_keep, r_keep = remap[fake_y] >= 0, remap[real_y] >= 0
    result = intra_class_fid(fake[f_keep], remap[fake_y[f_keep]], real[r_keep], remap[real_y[r_keep]], num_classes=len(kept),
                             protocol=protocol)
    details = {**result.details, "classes": kept, "left_out": [c for c in range(num_classes) if c not in kept]}
    return MetricResult("intra_class_fd", result.value, result.protocol, details)
