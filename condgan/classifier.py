"""Where the MNIST classifier used to live: its code is now :mod:`condgan.metrics.mnist_cnn`.

Kept so that ``from condgan.classifier import ...`` goes on working; new code imports
:mod:`condgan.metrics.mnist_cnn` (the network and its original file format) or
:mod:`condgan.metrics.judge` (judges for any labelled dataset).
"""

from .metrics.mnist_cnn import (  # noqa: F401
    ARCHITECTURE,
    EXPECTED_PROTOCOL,
    FILE_FORMAT,
    FILE_VERSION,
    MNIST_MEAN,
    MNIST_STD,
    ClassifierError,
    ClassifierHashError,
    ClassifierProtocolError,
    MnistClassifier,
    check_protocol,
    classifier_identity,
    classifier_protocol,
    fit_classifier,
    load_classifier,
    predict,
    save_classifier,
    train_classifier,
    weights_sha256,
)
