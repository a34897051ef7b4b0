"""Judge features and outputs of images: :func:`classifier_outputs` for the MNIST classifier, :func:`judge_outputs` for any judge."""

from __future__ import annotations

import torch
from torch import Tensor

from .judge import as_judge, judge_outputs
from .mnist_cnn import MnistClassifier


@torch.no_grad()
def classifier_outputs(classifier: MnistClassifier, images: Tensor, *, pixel_range: tuple[float, float] | None = None,
                       batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """Penultimate features (N, F) and logits (N, K) of images, in eval mode (a legacy judge's outputs).

    Every batch goes through :func:`~condgan.metrics.images.to_metric_input` with the same
    ``pixel_range`` (guessed once from the whole set when None, so batches cannot disagree).
    The classifier's protocol is checked first (:func:`~condgan.metrics.mnist_cnn.check_protocol`).
    A :class:`~condgan.metrics.judge.Judge` is accepted too (its FID features and head outputs).
    """
    return judge_outputs(as_judge(classifier), images, pixel_range=pixel_range, batch_size=batch_size)


__all__ = ["classifier_outputs", "judge_outputs"]
