"""How well samples follow their conditions, read by a judge: label accuracy, attribute accuracy, vector error."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .judge import Judge, as_judge, judge_outputs
from .mnist_cnn import MnistClassifier
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


def attribute_accuracy(logits: Tensor, targets: Tensor, *, names: tuple[str, ...] | None = None,
                       protocol: dict[str, Any] | None = None) -> MetricResult:
    """Per-attribute accuracy of a multi-label judge's logits (N, K) (positive = logit > 0) against 0/1 targets (N, K).

    ``value`` is the mean over attributes; ``details["per_attribute"]`` maps each attribute to its accuracy.

    Example:
        >>> attribute_accuracy(torch.tensor([[2.0, -1.0]]), torch.tensor([[1.0, 1.0]])).value
        0.5
    """
    if logits.shape != targets.shape or logits.dim() != 2:
        raise ValueError(f"logits and targets must both be (N, K), got {tuple(logits.shape)} and {tuple(targets.shape)}")
    per = ((logits > 0).float() == targets.float()).double().mean(0)
    keys = names or tuple(str(k) for k in range(per.numel()))
    return MetricResult("attribute_accuracy", float(per.mean()),
                        {**(protocol or {}), "samples": len(targets), "attributes": per.numel(),
                         "average": "unweighted mean over attributes"},
                        {"per_attribute": {k: float(a) for k, a in zip(keys, per)}})


def condition_error(predicted: Tensor, asked: Tensor, *, protocol: dict[str, Any] | None = None) -> MetricResult:
    """Error of a regressor judge between the asked (N, D) and the produced (predicted) conditions (N, D).

    ``value`` is the root-mean-square error over all entries; ``details`` has the mean absolute
    error and the RMSE per entry.

    Example:
        >>> condition_error(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]])).details["mae"]
        1.0
    """
    if predicted.shape != asked.shape or predicted.dim() != 2:
        raise ValueError(f"predicted and asked conditions must both be (N, D), got {tuple(predicted.shape)} and {tuple(asked.shape)}")
    err = (predicted.double() - asked.double())
    return MetricResult("condition_rmse", float(err.square().mean().sqrt()),
                        {**(protocol or {}), "samples": len(asked), "dim": asked.shape[1]},
                        {"mae": float(err.abs().mean()), "per_entry_rmse": [float(v) for v in err.square().mean(0).sqrt()]})


def label_accuracy(classifier: Judge | MnistClassifier, images: Tensor, labels: Tensor, *,
                   pixel_range: tuple[float, float] | None = None, batch_size: int = 1000) -> MetricResult:
    """Fraction of images that the judge assigns to their (conditioning) label, overall and per class.

    Args:
        classifier: a class :class:`~condgan.metrics.judge.Judge` or an MNIST classifier (its protocol is checked).
        images: (N, C, H, W) images the judge reads (an MNIST classifier: any size/range of the metric image rule).
        labels: (N,) int64 labels the images were generated for (or their true labels).

    Example:
        >>> from condgan.metrics.mnist_cnn import MnistClassifier
        >>> result = label_accuracy(MnistClassifier(), torch.rand(20, 1, 32, 32), torch.arange(20) % 10)
        >>> len(result.details["per_class"]), len(result.protocol["classifier"]["sha256"]), result.protocol["samples"]
        (10, 64, 20)
    """
    judge = as_judge(classifier)
    _, logits = judge_outputs(judge, images, pixel_range=pixel_range, batch_size=batch_size)
    ident = judge.identity()
    return accuracy_from_predictions(logits.argmax(1), labels, num_classes=judge.num_classes,
                                     protocol={"classifier": ident, "image_rule": ident["input"]})
