"""Evaluation of a set of generated (or real) images against a judge's dataset: every metric, with its protocol.

The protocol (:func:`load_reference` and :func:`evaluate_images`):

- judge: a :class:`~condgan.metrics.judge.Judge` (architecture, SHA-256, dataset, image shape and
  held-out accuracy are in every protocol); images are read at the judge's size, never resized
  (the original MNIST classifier: the 28x28 metric image rule of :mod:`condgan.metrics.images`);
- reference set: the judge's held-out images (the dataset's test split, the seeded stratified part
  of a flat image folder recorded in the judge file, or the seeded part of its training images the
  judge was not trained on), at most 10,000 (a seeded subset beyond that),
  loaded by the dataset at the judge's size (the way the training data of a model of that size is);
- real reference row: up to 10,000 other training images with their true conditions, evaluated
  exactly like generated images; for MNIST 1,000 training images (indices ``randperm(60000,
  seed)[:1000]``) choose the Parzen window's sigma and the row uses ``[1000:11000]``;
- per kind: class: label accuracy, FID, intra-class FID, precision/recall, density/coverage and
  (MNIST) the Parzen log-likelihood of the cGAN paper; multilabel: per-attribute accuracy, FID and
  k-NN metrics; vector: the error between asked and produced conditions, FID and k-NN metrics.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .fid import fid_from_features, intra_class_fid
from .judge import Judge, JudgeMismatchError, as_judge, judge_outputs
from .label_accuracy import accuracy_from_predictions, attribute_accuracy, condition_error
from .mnist_cnn import MnistClassifier
from .parzen import GOODFELLOW_SIGMAS, parzen_log_likelihood
from .precision_recall import knn_metrics
from .result import MetricResult

PAPER_PARZEN = {"cGAN (Mirza & Osindero 2014)": (132.0, 1.8), "GAN (Goodfellow et al. 2014)": (225.0, 2.0)}
REFERENCE_MAX = 10000


@dataclass
class ReferenceData:
    """The real images the metrics compare against (uint8 (N, C, H, W) and their conditions).

    Attributes:
        test_images, test_labels: the reference set (the judge's held-out images).
        validation_images: chooses the Parzen window's sigma (MNIST; None elsewhere).
        train_images, train_labels: the real reference row.
        description: how each set was drawn (goes into protocols).
        parzen_test: the Parzen protocol's 28x28 test images when they differ from ``test_images``.
    """

    test_images: Tensor
    test_labels: Tensor
    validation_images: Tensor | None
    train_images: Tensor
    train_labels: Tensor
    description: dict[str, str]
    parzen_test: Tensor | None = None
    _test_features: dict[str, Tensor] = field(default_factory=dict, repr=False)

    def test_features(self, judge: Judge | MnistClassifier) -> Tensor:
        """Judge features of the reference set, computed once per judge (keyed by its hash)."""
        judge = as_judge(judge)
        key = judge.sha256
        if key not in self._test_features:
            self._test_features[key] = judge_outputs(judge, self.test_images)[0]
        return self._test_features[key]


def load_mnist_reference(data_root: str | Path, *, seed: int = 0, validation: int = 1000, train_reference: int = 10000) -> ReferenceData:
    """MNIST test set, 1,000 held-out training images and 10,000 reference training images, all 28x28 (see module doc)."""
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


def load_reference(judge: Judge, data_root: str | Path | None, *, seed: int = 0, validation: int = 1000,
                   real_row: int = 10000) -> ReferenceData:
    """The reference images of a judge's protocol, loaded by its dataset at its size (see module doc)."""
    from .judge_training import held_out_indices, load_for_judge

    judge = as_judge(judge)
    if judge.legacy:
        return load_mnist_reference(data_root, seed=seed, validation=validation, train_reference=real_row)
    data, held = judge.protocol["dataset"], judge.protocol["held_out"]
    name, options, load = data["name"], data.get("options") or {}, data.get("load") or {}
    _, train = load_for_judge(name, data_root, "train", options=options, channels=load.get("channels"), size=load.get("size"))
    if held["split"] == "train":
        test_idx, pool = held_out_indices(held, len(train))
        test_x, test_y, what = train.images[test_idx], train.conditions[test_idx], f"{len(test_idx)} held-out training images ({held['rule']})"
    else:
        test_source, test = load_for_judge(name, data_root, held["split"], options=options, channels=load.get("channels"),
                                           size=load.get("size"))
        recorded, found = held.get("files_sha256"), getattr(test_source, "files_sha256", None)
        if recorded and found and recorded != found:
            raise JudgeMismatchError(f"the held-out files of {name!r} under {data_root} are not those the judge was measured "
                                     f"on ({held.get('images')} images, {held.get('rule', held['split'])}): the folder "
                                     "changed since; train the judge again on it")
        test_x, test_y, pool = test.images, test.conditions, torch.arange(len(train))
        what = f"{name} {held['split']} split" + (f": {held['rule']}" if held.get("rule") else "")
    gen = torch.Generator().manual_seed(seed)
    if len(test_x) > REFERENCE_MAX:
        keep = torch.randperm(len(test_x), generator=gen)[:REFERENCE_MAX]
        test_x, test_y, what = test_x[keep], test_y[keep], f"{what}, randperm(seed={seed})[:{REFERENCE_MAX}]"
    if tuple(test_x.shape[1:]) != judge.image_shape:
        raise JudgeMismatchError(f"dataset {name!r} now loads {tuple(test_x.shape[1:])} images but the judge was trained "
                                 f"on {judge.image_shape}")
    mnist = name == "mnist"
    n_val = validation if mnist else 0
    order = pool[torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed))]
    val_idx, row_idx = order[:n_val], order[n_val:n_val + real_row]
    description = {"reference": f"{what} ({len(test_x)} images, true conditions), loaded at {'x'.join(map(str, judge.image_shape))}",
                   "real_row": f"{len(row_idx)} {name} training images, randperm(seed={seed})[{n_val}:{n_val + len(row_idx)}] of those not held out"}
    parzen_test = validation_images = None
    if mnist:
        from ..data import load_mnist

        train28, _ = load_mnist(data_root, train=True, image_size=28, download=False)
        parzen_test = load_mnist(data_root, train=False, image_size=28, download=False)[0]
        validation_images = train28[val_idx]
        description["validation"] = f"{n_val} MNIST training images (28x28), randperm(60000, seed={seed})[:{n_val}]"
    return ReferenceData(test_x, test_y, validation_images, train.images[row_idx], train.conditions[row_idx], description,
                         parzen_test=parzen_test)


def check_conditions(judge: Judge, conditions: Tensor) -> Tensor:
    """Conditions that fit the judge, or one clear line saying what is wrong."""
    n_names = judge.class_names
    if judge.kind == "class":
        labels = torch.as_tensor(conditions)
        if labels.dim() != 1 or labels.dtype.is_floating_point:
            raise JudgeMismatchError(f"the judge reads class labels (N,) integers, got {labels.dtype} {tuple(labels.shape)}")
        labels = labels.long()
        bad = (labels < 0) | (labels >= judge.num_classes)
        if bool(bad.any()):
            names = f" ({', '.join(n_names)})" if n_names else ""
            raise JudgeMismatchError(f"{int(bad.sum())} sample labels (e.g. {int(labels[bad][0])}) are outside the judge's "
                                     f"{judge.num_classes} classes 0..{judge.num_classes - 1}{names}, trained on {judge.dataset}")
        return labels
    y = torch.as_tensor(conditions)
    if y.dim() != 2 or y.shape[1] != judge.out_dim:
        raise JudgeMismatchError(f"the judge reads {judge.kind} conditions of {judge.out_dim} entries (N, {judge.out_dim}), "
                                 f"got {tuple(y.shape)}; it was trained on {judge.dataset}")
    return y.float()


def check_fid_samples(n: int, dim: int, what: str = "FID") -> None:
    """FID estimates a (dim x dim) covariance: it needs more samples than feature dimensions."""
    if n <= dim:
        raise ValueError(f"{what} needs more samples than the judge's {dim} feature dimensions to estimate a covariance, "
                         f"got {n}: give at least {dim + 1} samples (e.g. --per-class {-(-(dim + 1) // 10)} for 10 classes)")


def evaluate_images(images: Tensor, labels: Tensor, classifier: Judge | MnistClassifier, reference: ReferenceData, *,
                    pixel_range: tuple[float, float] | None = None, source: str = "images", parzen: bool = True,
                    knn: bool = True, parzen_sigmas: tuple[float, ...] = GOODFELLOW_SIGMAS) -> dict[str, MetricResult]:
    """Every metric of the judge's kind for images and the conditions they were generated for.

    Args:
        images: (N, C, H, W) generated (or real) images at the judge's size (MNIST classifier: any size).
        labels: (N,) labels, or (N, K) tags / vectors: the conditions they were generated for.
        classifier: a :class:`~condgan.metrics.judge.Judge` (or an MNIST classifier).
        reference: :func:`load_reference` (or :func:`load_mnist_reference`).
        source: a description of the images for the protocol (e.g. the checkpoint path).
        parzen, knn: compute the (slower) Parzen (MNIST only) and k-NN metrics.

    Returns:
        name -> :class:`MetricResult`, each with its full protocol.
    """
    judge = as_judge(classifier)
    if len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(labels)}")
    conditions = check_conditions(judge, labels)
    ident = judge.identity()
    base = {"source": source, "samples": len(images), "image_rule": ident["input"], "classifier": ident,
            "reference": reference.description["reference"]}
    if judge.kind == "class":
        base["per_class_counts"] = torch.bincount(conditions, minlength=judge.num_classes).tolist()
    feats, head = judge_outputs(judge, images, pixel_range=pixel_range)
    check_fid_samples(len(feats), feats.shape[1])
    ref_feats = reference.test_features(judge)
    fid_protocol = {**base, "features": ident["features"]}
    results: dict[str, MetricResult] = {}
    if judge.kind == "class":
        results["label_accuracy"] = accuracy_from_predictions(head.argmax(1), conditions, num_classes=judge.num_classes,
                                                              protocol={**base, "reference": "the images' own labels"})
    elif judge.kind == "multilabel":
        results["attribute_accuracy"] = attribute_accuracy(head, conditions, names=judge.class_names,
                                                           protocol={**base, "reference": "the images' own tags"})
    else:
        results["condition_rmse"] = condition_error(head, conditions, protocol={**base, "reference": "the asked vectors"})
    results["fid"] = fid_from_features(feats, ref_feats, protocol=fid_protocol)
    if judge.kind == "class":
        ref_labels = reference.test_labels.long()
        counts = [min(int((conditions == c).sum()), int((ref_labels == c).sum())) for c in range(judge.num_classes)]
        if min(counts) > feats.shape[1]:
            results["intra_class_fid"] = intra_class_fid(
                feats, conditions, ref_feats, ref_labels, num_classes=judge.num_classes,
                protocol={**fid_protocol, "grouping": "images by their conditioning label, reference by true label"})
    if knn:
        results["precision_recall"], results["density_coverage"] = knn_metrics(ref_feats, feats, protocol=dict(base))
    if parzen and judge.dataset == "mnist" and judge.kind == "class" and reference.validation_images is not None:
        test = reference.parzen_test if reference.parzen_test is not None else reference.test_images
        p_base = {k: v for k, v in base.items() if k != "classifier"}
        results["parzen_log_likelihood"] = parzen_log_likelihood(
            images, test, reference.validation_images, sigmas=parzen_sigmas, pixel_range=pixel_range,
            protocol={**p_base, "validation": reference.description["validation"],
                      "paper (Table 1, same protocol)": {k: f"{v} +/- {s}" for k, (v, s) in PAPER_PARZEN.items()}})
    return results


def load_npz(path: str | Path) -> tuple[Tensor, Tensor]:
    """An NPZ of ``images`` (N, C, H, W) float32 in [0, 1] and ``labels`` (N,) int64 (or (N, K) float conditions), validated."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        missing = {"images", "labels"} - set(data.files)
        if missing:
            raise ValueError(f"{str(path)!r} lacks {sorted(missing)}; an NPZ for condgan eval holds 'images' (N, C, H, W) float32 in [0, 1] and 'labels' (N,) int64 (it has {data.files})")
        images, labels = torch.from_numpy(data["images"]), torch.from_numpy(data["labels"])
    if images.dim() != 4 or not images.dtype.is_floating_point:
        raise ValueError(f"{str(path)!r}: 'images' must be float (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
    if len(labels) != len(images) or (labels.dim() == 1 and labels.dtype.is_floating_point) or labels.dim() > 2:
        raise ValueError(f"{str(path)!r}: 'labels' must be integers of shape ({len(images)},) or conditions ({len(images)}, K), "
                         f"got {labels.dtype} {tuple(labels.shape)}")
    finite = torch.isfinite(images).flatten(1).all(1)
    if not bool(finite.all()):
        raise ValueError(f"{str(path)!r}: {int((~finite).sum())} of {len(images)} images contain NaN or inf (first: index "
                         f"{int((~finite).nonzero()[0])})")
    lo, hi = float(images.min()), float(images.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{str(path)!r}: 'images' must be in [0, 1], got values in [{lo:.3g}, {hi:.3g}]")
    return images.float(), (labels.long() if labels.dim() == 1 else labels.float())


def _generator_pixel_range(generator: Any) -> tuple[float, float] | None:
    for owner in (generator, getattr(generator, "config", None)):
        value = getattr(owner, "pixel_range", None)
        if value is not None:
            return tuple(float(v) for v in value)
    return None


@torch.no_grad()
def sample_generator(generator: Any, *, per_class: int = 1000, num_classes: int = 10, seed: int = 0,
                     batch_size: int = 1000, conditions: Tensor | None = None) -> tuple[Tensor, Tensor, tuple[float, float] | None]:
    """Images from ``generator.sample(y)``: ``per_class`` for each label 0..num_classes-1 in label order, or one per row of ``conditions``.

    Randomness comes from a ``torch.Generator`` seeded with ``seed`` when ``sample`` accepts
    ``generator=``, else from the global RNG forked and seeded with ``seed``.

    Returns:
        images (N, C, H, W) on the CPU, the conditions (N,) or (N, K), and the generator's pixel range if it states one.
    """
    if conditions is None:
        if per_class < 1:
            raise ValueError(f"per_class must be >= 1, got {per_class}")
        labels = torch.arange(num_classes).repeat_interleave(per_class)
    else:
        labels = conditions
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
