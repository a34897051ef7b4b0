"""Label accuracy: how often the classifier assigns a generated image to its conditioning label."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..classifier import MnistClassifier, classifier_identity
from .features import classifier_outputs
from .images import IMAGE_RULE
from .result import MetricResult


def accuracy_from_predictions(predictions: Tensor, labels: Tensor, *, num_classes: int = 10,
                              protocol: dict[str, Any] | None = None) -> MetricResult:
    """Overall and per-class accuracy of predicted labels (N,) against labels (N,).

    ``value`` is the overall fraction correct; ``details["per_class"][c]`` the fraction of the
    images labelled c that were predicted c (None for a class with no images).
    """
    predictions, labels = torch.as_tensor(predictions).long().flatten(), torch.as_tensor(labels).long()
    if labels.shape != predictions.shape or labels.numel() == 0:
        raise ValueError(f"labels must be a non-empty (N,) tensor matching the {predictions.numel()} predictions, got {tuple(labels.shape)}")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}), got range [{int(labels.min())}, {int(labels.max())}]")
    correct = (predictions == labels).double()
    counts = torch.bincount(labels, minlength=num_classes)
    hits = torch.bincount(labels, weights=correct, minlength=num_classes)
    per_class = [float(h / n) if n else None for h, n in zip(hits, counts)]
    return MetricResult("label_accuracy", float(correct.mean()),
                        {**(protocol or {}), "samples": labels.numel(), "classes": num_classes},
                        {"per_class": per_class, "per_class_counts": counts.tolist()})


def label_accuracy(classifier: MnistClassifier, images: Tensor, labels: Tensor, *,
                   pixel_range: tuple[float, float] | None = None, batch_size: int = 1000) -> MetricResult:
    """Fraction of images that ``classifier`` assigns to their (conditioning) label, overall and per class.

    Args:
        classifier: a loaded :class:`~condgan.classifier.MnistClassifier` (its protocol is checked).
        images: (N, C, H, W) any size/range accepted by the metric image rule.
        labels: (N,) int64 labels the images were generated for (or their true labels).

    Example:
        >>> from condgan.classifier import MnistClassifier
        >>> result = label_accuracy(MnistClassifier(), torch.rand(20, 1, 32, 32), torch.arange(20) % 10)
        >>> len(result.details["per_class"]), len(result.protocol["classifier"]["sha256"]), result.protocol["samples"]
        (10, 64, 20)
    """
    _, logits = classifier_outputs(classifier, images, pixel_range=pixel_range, batch_size=batch_size)
    return accuracy_from_predictions(logits.argmax(1), labels, num_classes=classifier.num_classes,
                                     protocol={"classifier": classifier_identity(classifier), "image_rule": IMAGE_RULE})
