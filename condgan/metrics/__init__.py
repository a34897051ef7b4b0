"""Quality metrics for conditional image generators, each returned with the protocol that produced it.

Every function takes tensors and returns a :class:`MetricResult` (``.value``, ``.protocol``,
``.details``). Images reach the metrics through a judge (:mod:`condgan.metrics.judge`): a small
network trained per dataset and image size, which reads images at its own size; the original
MNIST classifier brings any size to 28x28 by :func:`to_metric_input` (:mod:`condgan.metrics.images`).

- :func:`label_accuracy`, :func:`attribute_accuracy`, :func:`condition_error`: do samples follow their conditions;
- :func:`fid_from_features`, :func:`intra_class_fid`, :func:`frechet_distance`: Frechet distances of judge features;
- :func:`parzen_log_likelihood`: the Gaussian Parzen-window protocol of Goodfellow et al. (2014) / the cGAN paper;
- :func:`precision_recall`, :func:`density_coverage`: k-NN fidelity and diversity;
- :func:`evaluate_images`: all of them against a judge's reference set (:func:`load_reference`);
- :mod:`condgan.metrics.inception`: FID, Inception Score and KID from Inception-v3 (torch-fidelity, local weights).
"""

from .evaluate import (
    PAPER_PARZEN,
    ReferenceData,
    check_conditions,
    check_fid_samples,
    evaluate_images,
    load_mnist_reference,
    load_npz,
    load_reference,
    sample_generator,
)
from .features import classifier_outputs
from .fid import feature_statistics, fid_from_features, frechet_distance, intra_class_fid
from .images import IMAGE_RULE, METRIC_IMAGE_SIZE, guess_pixel_range, to_metric_input
from .judge import Judge, JudgeCNN, JudgeError, JudgeMismatchError, judge_outputs, load_judge, save_judge
from .judge_training import fit_judge, train_judge
from .label_accuracy import accuracy_from_predictions, attribute_accuracy, condition_error, label_accuracy
from .parzen import GOODFELLOW_SIGMAS, parzen_log_likelihood, parzen_log_likelihoods, select_sigma
from .precision_recall import density_coverage, knn_metrics, knn_radii, precision_recall
from .result import MetricResult

__all__ = [
    "GOODFELLOW_SIGMAS", "IMAGE_RULE", "METRIC_IMAGE_SIZE", "Judge", "JudgeCNN", "JudgeError", "JudgeMismatchError",
    "MetricResult", "PAPER_PARZEN", "ReferenceData", "accuracy_from_predictions", "attribute_accuracy",
    "check_conditions", "check_fid_samples", "classifier_outputs", "condition_error", "density_coverage",
    "evaluate_images", "feature_statistics", "fid_from_features", "fit_judge", "frechet_distance", "guess_pixel_range",
    "intra_class_fid", "judge_outputs", "knn_metrics", "knn_radii", "label_accuracy", "load_judge", "load_mnist_reference",
    "load_npz", "load_reference", "parzen_log_likelihood", "parzen_log_likelihoods", "precision_recall",
    "sample_generator", "save_judge", "select_sigma", "to_metric_input", "train_judge",
]
