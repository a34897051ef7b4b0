"""Classifier features and predictions of images brought to the classifier's input by the metric rule."""

from __future__ import annotations

import torch
from torch import Tensor

from ..classifier import MnistClassifier, classifier_identity
from .images import guess_pixel_range, to_metric_input


@torch.no_grad()
def classifier_outputs(classifier: MnistClassifier, images: Tensor, *, pixel_range: tuple[float, float] | None = None,
                       batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Penultimate features (N, F) and logits (N, K) of images, in eval mode, on the classifier's device.

    Every batch goes through :func:`~condgan.metrics.images.to_metric_input` with the same
    ``pixel_range`` (guessed once from the whole set when None, so batches cannot disagree).
    The classifier's protocol is checked first (:func:`~condgan.classifier.check_protocol`).
    """
    classifier_identity(classifier)  # refuses a classifier with a foreign protocol
    if not isinstance(images, Tensor) or images.dim() not in (3, 4) or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) or (N, H, W) tensor, got {getattr(images, 'shape', type(images).__name__)}")
    if pixel_range is None and images.dtype.is_floating_point:
        pixel_range = guess_pixel_range(images)
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    feats, logits = [], []
    try:
        for s in range(0, len(images), batch_size):
            x = to_metric_input(images[s:s + batch_size], pixel_range=pixel_range).to(device)  # (B, 1, 28, 28)
            h = classifier.features(x)
            feats.append(h.float().cpu())
            logits.append(classifier.out(h).float().cpu())
    finally:
        classifier.train(was_training)
    return torch.cat(feats), torch.cat(logits)
