"""Quality metrics for conditional image generators, each returned with the protocol that produced it.

Every function takes tensors and returns a :class:`MetricResult` (``.value``, ``.protocol``,
``.details``). Images of any size or range reach the classifier and the Parzen window through one
rule, :func:`to_metric_input` (28x28, [0, 1]; see :mod:`condgan.metrics.images`).

- :func:`label_accuracy`: fraction of samples the classifier assigns to their condition, overall and per class;
- :func:`fid_from_features`, :func:`intra_class_fid`, :func:`frechet_distance`: Frechet distances of classifier features;
- :func:`parzen_log_likelihood`: the Gaussian Parzen-window protocol of Goodfellow et al. (2014) / the cGAN paper;
- :func:`precision_recall`, :func:`density_coverage`: k-NN fidelity and diversity;
- :func:`evaluate_images`: all of them against MNIST (:func:`load_mnist_reference`).
"""

from .evaluate import PAPER_PARZEN, ReferenceData, evaluate_images, load_mnist_reference, load_npz, sample_generator
from .features import classifier_outputs
from .fid import feature_statistics, fid_from_features, frechet_distance, intra_class_fid
from .images import IMAGE_RULE, METRIC_IMAGE_SIZE, guess_pixel_range, to_metric_input
from .label_accuracy import accuracy_from_predictions, label_accuracy
from .parzen import GOODFELLOW_SIGMAS, parzen_log_likelihood, parzen_log_likelihoods, select_sigma
from .precision_recall import density_coverage, knn_metrics, knn_radii, precision_recall
from .result import MetricResult

__all__ = [
    "GOODFELLOW_SIGMAS", "IMAGE_RULE", "METRIC_IMAGE_SIZE", "MetricResult", "PAPER_PARZEN", "ReferenceData",
    "accuracy_from_predictions", "classifier_outputs", "density_coverage", "evaluate_images", "feature_statistics",
    "fid_from_features", "frechet_distance", "guess_pixel_range", "intra_class_fid", "knn_metrics", "knn_radii", "label_accuracy", "load_mnist_reference",
    "load_npz", "parzen_log_likelihood", "parzen_log_likelihoods", "precision_recall", "sample_generator", "select_sigma",
    "to_metric_input",
]
