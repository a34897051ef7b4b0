"""Evaluation of a set of labelled images (generated or real) against MNIST: every metric, with its protocol.

The protocol (``load_mnist_reference`` and ``evaluate_images``):

- reference set: the MNIST test set (10,000 images with their labels) for FID, intra-class FID,
  precision/recall, density/coverage and the Parzen test log-likelihood;
- validation set (Parzen sigma only): 1,000 training images, indices ``randperm(60000, seed)[:1000]``;
- real reference row: 10,000 training images, indices ``randperm(60000, seed)[1000:11000]``, with
  their true labels, evaluated exactly like generated images;
- generated images: 1,000 per class (10,000), labels in order 0..9, from a checkpoint or an NPZ;
- features: the penultimate layer of condgan's MNIST classifier (its SHA-256 is in each protocol);
- images: the metric image rule (:mod:`condgan.metrics.images`) to 28x28 in [0, 1].
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..classifier import MnistClassifier, classifier_identity
from .features import classifier_outputs
from .fid import fid_from_features, intra_class_fid
from .images import IMAGE_RULE
from .label_accuracy import accuracy_from_predictions
from .parzen import GOODFELLOW_SIGMAS, parzen_log_likelihood
from .precision_recall import knn_metrics
from .result import MetricResult

PAPER_PARZEN = {"cGAN (Mirza & Osindero 2014)": (132.0, 1.8), "GAN (Goodfellow et al. 2014)": (225.0, 2.0)}


@dataclass
class ReferenceData:
    """The real images the metrics compare against (all uint8 (N, 1, 28, 28) and int64 labels).

    Attributes:
        test_images, test_labels: the reference set (MNIST test).
        validation_images: chooses the Parzen window's sigma.
        train_images, train_labels: the real reference row.
        description: how each set was drawn (goes into protocols).
    """

    test_images: Tensor
    test_labels: Tensor
    validation_images: Tensor
    train_images: Tensor
    train_labels: Tensor
    description: dict[str, str]
    _test_features: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def test_features(self, classifier: MnistClassifier) -> Tensor:
        """Classifier features of the test set, computed once per classifier (keyed by its hash)."""
        key = classifier_identity(classifier)["sha256"]
        if key not in self._test_features:
            self._test_features[key] = classifier_outputs(classifier, self.test_images)[0]
        return self._test_features[key]


def load_mnist_reference(data_root: str | Path, *, seed: int = 0, validation: int = 1000, train_reference: int = 10000) -> ReferenceData:
    """MNIST test set, 1,000 held-out training images and 10,000 reference training images (see module doc)."""
    from ..data import load_mnist

    train_x, train_y = load_mnist(data_root, train=True, image_size=28, download=False)
    test_x, test_y = load_mnist(data_root, train=False, image_size=28, download=False)
    if validation + train_reference > len(train_x):
        raise ValueError(f"validation ({validation}) + train_reference ({train_reference}) exceed the {len(train_x)} training images")
    order = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(seed))
    val_idx, ref_idx = order[:validation], order[validation:validation + train_reference]
    return ReferenceData(
        test_x, test_y, train_x[val_idx], train_x[ref_idx], train_y[ref_idx],
        {"reference": f"MNIST test set ({len(test_x)} images, true labels)",
         "validation": f"{validation} MNIST training images, randperm(60000, seed={seed})[:{validation}]",
         "real_row": f"{train_reference} MNIST training images, randperm(60000, seed={seed})[{validation}:{validation + train_reference}]"},
    )


def evaluate_images(images: Tensor, labels: Tensor, classifier: MnistClassifier, reference: ReferenceData, *,
                    pixel_range: tuple[float, float] | None = None, source: str = "images", parzen: bool = True,
                    knn: bool = True, parzen_sigmas: tuple[float, ...] = GOODFELLOW_SIGMAS) -> dict[str, MetricResult]:
    """Every metric for labelled images: label accuracy, FID, intra-class FID, Parzen LL, precision/recall, density/coverage.

    Args:
        images: (N, C, H, W) generated (or real) images, any size/range the image rule accepts.
        labels: (N,) the labels they were generated for (or their true labels).
        classifier: a loaded classifier (protocol checked, hash quoted).
        reference: :func:`load_mnist_reference`.
        source: a description of the images for the protocol (e.g. the checkpoint path).
        parzen, knn: compute the (slower) Parzen and k-NN metrics.

    Returns:
        name -> :class:`MetricResult`, each with its full protocol.
    """
    labels = torch.as_tensor(labels).long()
    if labels.shape != (len(images),):
        raise ValueError(f"labels must have shape ({len(images)},), got {tuple(labels.shape)}")
    ident = classifier_identity(classifier)
    counts = torch.bincount(labels, minlength=classifier.num_classes).tolist()
    base = {"source": source, "samples": len(images), "per_class_counts": counts, "image_rule": IMAGE_RULE,
            "classifier": ident, "reference": reference.description["reference"]}
    feats, logits = classifier_outputs(classifier, images, pixel_range=pixel_range)
    ref_feats = reference.test_features(classifier)
    results = {
        "label_accuracy": accuracy_from_predictions(logits.argmax(1), labels, num_classes=classifier.num_classes,
                                                    protocol={**base, "reference": "the images' own labels"}),
        "fid": fid_from_features(feats, ref_feats, protocol={**base, "features": ident["features"]}),
        "intra_class_fid": intra_class_fid(feats, labels, ref_feats, reference.test_labels,
                                           num_classes=classifier.num_classes,
                                           protocol={**base, "features": ident["features"],
                                                     "grouping": "images by their conditioning label, reference by true label"}),
    }
    if knn:
        results["precision_recall"], results["density_coverage"] = knn_metrics(ref_feats, feats, protocol=dict(base))
    if parzen:
        p_base = {k: v for k, v in base.items() if k != "classifier"}
        results["parzen_log_likelihood"] = parzen_log_likelihood(
            images, reference.test_images, reference.validation_images, sigmas=parzen_sigmas, pixel_range=pixel_range,
            protocol={**p_base, "validation": reference.description["validation"],
                      "paper (Table 1, same protocol)": {k: f"{v} +/- {s}" for k, (v, s) in PAPER_PARZEN.items()}})
    return results


def load_npz(path: str | Path) -> tuple[Tensor, Tensor]:
    """An NPZ of ``images`` (N, C, H, W) float32 in [0, 1] and ``labels`` (N,) int64, validated."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        missing = {"images", "labels"} - set(data.files)
        if missing:
            raise ValueError(f"{str(path)!r} lacks {sorted(missing)}; an NPZ for condgan eval holds 'images' (N, C, H, W) float32 in [0, 1] and 'labels' (N,) int64 (it has {data.files})")
        images, labels = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])
    if images.dim() != 4 or not images.dtype.is_floating_point:
        raise ValueError(f"{str(path)!r}: 'images' must be float (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if labels.shape != (len(images),) or labels.dtype.is_floating_point:
        raise ValueError(f"{str(path)!r}: 'labels' must be integers of shape ({len(images)},), got {labels.dtype} {tuple(labels.shape)}")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{str(path)!r}: 'images' must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return images.float(), labels.long()


def _generator_pixel_range(generator: Any) -> tuple[float, float] | None:
    for owner in (generator, getattr(generator, "config", None)):
        value = getattr(owner, "pixel_range", None)
        if value is not None:
            return tuple(float(v) for v in value)
    return None


@torch.no_grad()
def sample_generator(generator: Any, *, per_class: int = 1000, num_classes: int = 10, seed: int = 0,
                     batch_size: int = 1000) -> tuple[Tensor, Tensor, tuple[float, float] | None]:
    """``per_class`` images for each label 0..num_classes-1 (in label order) from ``generator.sample(labels)``.

    Randomness comes from a ``torch.Generator`` seeded with ``seed`` when ``sample`` accepts
    ``generator=``, else from the global RNG forked and seeded with ``seed``.

    Returns:
        images (N, C, H, W) on the CPU, labels (N,), and the generator's pixel range if it states one.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    try:
        device = next(generator.parameters()).device
    except (AttributeError, StopIteration):
        device = torch.device("cpu")
    takes_generator = "generator" in inspect.signature(generator.sample).parameters
    rng = torch.Generator(device=device).manual_seed(seed)
    chunks = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for s in range(0, len(labels), batch_size):
            y = labels[s:s + batch_size].to(device)
            out = generator.sample(y, generator=rng) if takes_generator else generator.sample(y)
            chunks.append(out.detach().float().cpu())
    return torch.cat(chunks), labels, _generator_pixel_range(generator)
