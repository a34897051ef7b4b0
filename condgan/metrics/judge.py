"""Judges: the networks condgan's metrics read images through, one per dataset and image size.

A judge is a small CNN that condgan trains on a labelled dataset (``condgan train-classifier
--dataset NAME``, :mod:`condgan.metrics.judge_training`) and saves with its protocol. Its kind
follows the dataset's conditions:

- ``class``: softmax over the classes (label accuracy, intra-class FID);
- ``multilabel``: one sigmoid per attribute (per-attribute accuracy and their mean);
- ``vector``: a regressor (the error between the asked and the produced condition).

**Features for FID** (issue 16). The first judge, the MNIST CNN read at 28x28 only, ranked
speckled 28x28 samples above smooth 32x32 ones: every 32x32 image was resized to 28x28 by the
metric rule, and that round trip alone costs real MNIST digits 47 FID points (1.1 -> 48.0), more
than 1% speckle does at 28x28 (28.5). A judge therefore reads images at the size it was trained
on, against reference images loaded by the dataset at that size (the samples are never resized:
another size is refused), and its FID features are several layers: each conv stage's activations
averaged over positions, and the penultimate layer, each block scaled to unit mean variance on
the training images (``feature_scale``, part of the weights and of their hash). Early stages see
local texture (isolated bright pixels) that a layer trained only for labels learns to discard.
Judges are trained without noise augmentation for the same reason.

A judge file (format ``condgan-judge``) holds the weights, their SHA-256 (verified on load and
quoted in every metric's protocol) and the protocol: dataset (name, options, split, how the
held-out images were chosen), held-out accuracy, image shape, condition kind and class names.
Files of the original MNIST classifier (format ``condgan-classifier``) load as legacy judges:
penultimate features only, images brought to 28x28 by :mod:`condgan.metrics.images`, so their
figures stay what they were.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import mnist_cnn
from .judge_resnet import JUDGE_RESNET, JudgeResNet
from .images import IMAGE_RULE, guess_pixel_range, to_metric_input
from .mnist_cnn import ClassifierError, ClassifierHashError, MnistClassifier, weights_sha256

JUDGE_FORMAT = "condgan-judge"
WEAK_CLASS_ACCURACY = 0.9  # a judge below this held-out accuracy on a class is flagged as weak there
JUDGE_VERSION = 1
JUDGE_CNN = "condgan-judge-cnn-v1"
KINDS = ("class", "multilabel", "vector")
JUDGE_RULE = ("uint8 /255; float: [-1,1] if min < -0.01 else [0,1] (or the given pixel_range), mapped to [0,1] and "
              "clamped; channels and size must be the judge's (never resized)")


class JudgeError(ClassifierError):
    """A judge file that cannot be used (missing, foreign, corrupted, of an unknown architecture)."""


class JudgeMismatchError(JudgeError):
    """Images or conditions that the judge was not made for (another size, channels, classes, dataset)."""


class JudgeCNN(nn.Module):
    """A small CNN for (C, H, W) images in [0, 1], sized to the data.

    Stages of ``conv3x3 - BN - ReLU - conv3x3 - BN - ReLU``, a 2x2 max-pool between stages, as many
    stages as the smaller side can be halved while staying >= 4 (plus one; at most four), then a
    global average pool, ``linear(feature_dim) - ReLU`` (the penultimate features), dropout and
    ``linear(out_dim)``. It normalises its input with per-channel ``mean``/``std`` buffers.

    Args:
        image_shape: (C, H, W) of the images.
        out_dim: classes, attributes or vector entries.
        widths: channels per stage; default 16, 32, 64, 128 (as many as there are stages).
        feature_dim: size of the penultimate layer.
        dropout: before the last layer (training only).

    Shape:
        - x: (B, C, H, W) in [0, 1]; ``forward``: (B, out_dim); ``taps``: each stage (B, c_i, h_i, w_i), then (B, F).

    Example:
        >>> net = JudgeCNN((3, 16, 16), 5)
        >>> net(torch.rand(2, 3, 16, 16)).shape, [tuple(t.shape[1:]) for t in net.taps(torch.rand(2, 3, 16, 16))]
        (torch.Size([2, 5]), [(16, 16, 16), (32, 8, 8), (64, 4, 4), (128,)])
    """

    def __init__(self, image_shape: Sequence[int], out_dim: int, *, widths: Sequence[int] | None = None,
                 feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        if min(c, h, w, out_dim, feature_dim) < 1 or min(h, w) < 4:
            raise ValueError(f"a judge needs images of at least 4x4 and positive sizes, got image_shape {tuple(image_shape)}, "
                             f"out_dim {out_dim}, feature_dim {feature_dim}")
        stages, side = 1, min(h, w)
        while stages < 4 and side // 2 >= 4:
            stages, side = stages + 1, side // 2
        widths = tuple(int(x) for x in (widths if widths is not None else (16, 32, 64, 128)[:stages]))
        if len(widths) != stages or min(widths) < 1:
            raise ValueError(f"images of {h}x{w} make {stages} stages, so widths needs {stages} positive entries, got {widths}")
        self.image_shape, self.out_dim, self.widths = (c, h, w), int(out_dim), widths
        self.feature_dim, self.dropout = int(feature_dim), float(dropout)
        blocks, c_in = [], c
        for width in widths:
            blocks.append(nn.Sequential(
                nn.Conv2d(c_in, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)))
            c_in = width
        self.stages = nn.ModuleList(blocks)
        self.hidden = nn.Linear(c_in, self.feature_dim)
        self.drop = nn.Dropout(self.dropout)
        self.out = nn.Linear(self.feature_dim, self.out_dim)
        self.register_buffer("mean", torch.full((c,), 0.5))
        self.register_buffer("std", torch.full((c,), 0.5))

    def taps(self, x: Tensor) -> list[Tensor]:
        """Each stage's activations (before the pooling that follows it) and the penultimate features."""
        h = (x - self.mean[:, None, None]) / self.std[:, None, None]
        out = []
        for i, stage in enumerate(self.stages):
            h = stage(F.max_pool2d(h, 2) if i else h)
            out.append(h)
        out.append(F.relu(self.hidden(h.mean((2, 3)))))
        return out

    def head(self, features: Tensor) -> Tensor:
        return self.out(self.drop(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.taps(x)[-1])

    def architecture(self) -> dict[str, Any]:
        """The constructor arguments, as recorded in the protocol."""
        return {"image_shape": list(self.image_shape), "out_dim": self.out_dim, "widths": list(self.widths),
                "feature_dim": self.feature_dim, "dropout": self.dropout}


def build_net(architecture: str, options: Mapping[str, Any]) -> nn.Module:
    """The network of a judge file: ``condgan-judge-cnn-v1``, ``condgan-judge-resnet-v1`` or ``condgan-mnist-cnn-v1``."""
    if architecture in (JUDGE_CNN, JUDGE_RESNET):
        opts = dict(options)
        cls = JudgeCNN if architecture == JUDGE_CNN else JudgeResNet
        return cls(opts.pop("image_shape"), opts.pop("out_dim"), **opts)
    if architecture == mnist_cnn.ARCHITECTURE:
        return MnistClassifier(**options)
    raise JudgeError(f"unknown judge architecture {architecture!r}; this condgan knows {JUDGE_CNN!r}, {JUDGE_RESNET!r} "
                     f"and {mnist_cnn.ARCHITECTURE!r}")


class Judge(nn.Module):
    """A network with what the metrics need to know about it: kind, image shape, classes, feature layers.

    Args:
        net: a :class:`JudgeCNN` or :class:`~condgan.metrics.mnist_cnn.MnistClassifier` (``taps`` and ``head``).
        kind: ``"class"``, ``"multilabel"`` or ``"vector"``.
        image_shape: (C, H, W) the judge reads.
        feature_layers: indices into ``net.taps`` whose (position-averaged) activations make the
            FID features; the last tap is the penultimate layer.
        protocol: the recorded protocol (dataset, split, held-out accuracy, class names, training).
        legacy: a file of the original MNIST classifier (images resized to 28x28 by the metric rule).

    Buffers ``feature_scale`` (one factor per feature layer) and, for vectors, ``target_mean`` and
    ``target_std`` (the regressor predicts standardised targets) are part of the hashed weights.
    """

    def __init__(self, net: nn.Module, *, kind: str, image_shape: Sequence[int], feature_layers: Sequence[int],
                 protocol: Mapping[str, Any] | None = None, legacy: bool = False):
        super().__init__()
        if kind not in KINDS:
            raise JudgeError(f"judge kind must be one of {KINDS}, got {kind!r}")
        self.net, self.kind, self.legacy = net, kind, bool(legacy)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.feature_layers = tuple(int(i) for i in feature_layers)
        self.out_dim = int(getattr(net, "out_dim", getattr(net, "num_classes", 0)))
        self.protocol: dict[str, Any] = dict(protocol or {})
        self.register_buffer("feature_scale", torch.ones(len(self.feature_layers)))
        if kind == "vector":
            self.register_buffer("target_mean", torch.zeros(self.out_dim))
            self.register_buffer("target_std", torch.ones(self.out_dim))

    # -- what it is ---------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int | None:
        return self.out_dim if self.kind != "vector" else None

    @property
    def class_names(self) -> tuple[str, ...] | None:
        names = self.protocol.get("class_names")
        return tuple(names) if names else None

    @property
    def dataset(self) -> str | None:
        return (self.protocol.get("dataset") or {}).get("name")

    @property
    def sha256(self) -> str:
        """SHA-256 of the weights (for a legacy file: of the network alone, as that file recorded)."""
        return weights_sha256(self.net if self.legacy else self)

    @property
    def recipe(self) -> dict[str, Any]:
        """How the judge was made: ``arch`` (``cnn``, ``resnet``, ``mnist-cnn``, ``judge-cnn``), ``augment`` and ``seed``.

        Files written before judges recorded a recipe give what their protocol says (the
        architecture's short name, ``augment`` False, the training seed or None).
        """
        recipe = self.protocol.get("recipe")
        if isinstance(recipe, Mapping):
            return dict(recipe)
        arch = {JUDGE_CNN: "judge-cnn", JUDGE_RESNET: "resnet", mnist_cnn.ARCHITECTURE: "mnist-cnn"}.get(
            self.protocol.get("architecture"), self.protocol.get("architecture"))
        return {"arch": arch, "augment": False, "seed": (self.protocol.get("training") or {}).get("seed")}

    def label(self) -> str:
        """A short name of the recipe, e.g. ``"resnet seed 1"`` or ``"cnn+augment seed 2"``."""
        r = self.recipe
        seed = r.get("seed")
        return f"{r.get('arch')}{'+augment' if r.get('augment') else ''}" + ("" if seed is None else f" seed {seed}")

    def identity(self) -> dict[str, Any]:
        """What a metric quotes about its judge (architecture, recipe, hash, dataset, held-out accuracy, features)."""
        p = self.protocol
        return {
            "architecture": p.get("architecture"), "architecture_options": p.get("architecture_options"),
            "recipe": self.recipe,
            "sha256": self.sha256, "kind": self.kind, "image_shape": list(self.image_shape),
            "dataset": p.get("dataset"), "held_out": p.get("held_out"), "class_names": p.get("class_names"),
            "input": IMAGE_RULE if self.legacy else JUDGE_RULE, "features": self.describe_features(),
        }

    def weak_classes(self, level: float | None = None) -> dict[int, float]:
        """Classes whose held-out accuracy is below ``level`` (default :data:`WEAK_CLASS_ACCURACY`): index -> accuracy.

        A sample's label accuracy on such a class says as much about the judge as about the sample.
        """
        level = WEAK_CLASS_ACCURACY if level is None else level
        per_class = (self.protocol.get("held_out") or {}).get("per_class_accuracy") or []
        return {k: float(a) for k, a in enumerate(per_class) if a is not None and a < level}

    def describe_features(self) -> str:
        if self.legacy:
            return f"penultimate, {self.net.feature_dim} dims (legacy MNIST classifier)"
        return (f"position-averaged activations of conv stages {list(self.feature_layers[:-1])} and the penultimate "
                f"layer, {self.feature_dim} dims, each block scaled to unit mean variance on training images")

    @property
    def feature_dim(self) -> int:
        with torch.no_grad():
            x = torch.zeros(1, *self.image_shape, device=self.feature_scale.device)
            was = self.training
            self.eval()
            try:
                return int(self.outputs(x)[0].shape[1])
            finally:
                self.train(was)

    # -- what it computes ---------------------------------------------------------------------------
    def outputs(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """FID features (B, F) and head output (B, out_dim) of images already in the judge's input form.

        The head output is logits (class, multilabel) or the predicted vector (vector).
        """
        taps = self.net.taps(x)
        blocks = [taps[i] for i in self.feature_layers]
        feats = torch.cat([(b.mean((2, 3)) if b.dim() == 4 else b) * s for b, s in zip(blocks, self.feature_scale)], 1)
        head = self.net.head(taps[-1])
        if self.kind == "vector":
            head = head * self.target_std + self.target_mean
        return feats, head

    def forward(self, x: Tensor) -> Tensor:
        return self.outputs(x)[1]

    def prepare(self, images: Tensor, pixel_range: tuple[float, float] | None = None) -> Tensor:
        """Images as the judge reads them: float (B, C, H, W) in [0, 1] (see :data:`JUDGE_RULE`)."""
        if self.legacy:
            return to_metric_input(images, pixel_range=pixel_range)
        return judge_input(images, self.image_shape, pixel_range=pixel_range, dataset=self.dataset)


def judge_input(images: Tensor, image_shape: Sequence[int], *, pixel_range: tuple[float, float] | None = None,
                dataset: str | None = None) -> Tensor:
    """``images`` as float (B, C, H, W) in [0, 1], refusing another shape than ``image_shape`` (one line).

    Example:
        >>> judge_input(torch.full((2, 1, 8, 8), 255, dtype=torch.uint8), (1, 8, 8)).max().item()
        1.0
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got {getattr(images, 'shape', type(images).__name__)}")
    c, h, w = (int(s) for s in image_shape)
    what = f"the judge was trained on {dataset or 'its data'} at {c}x{h}x{w} (channels x height x width)"
    if tuple(images.shape[1:]) != (c, h, w):
        n, ic, ih, iw = images.shape
        raise JudgeMismatchError(f"{what}, but the images are {ic}x{ih}x{iw}; train a judge for them "
                                 f"(condgan train-classifier --dataset NAME --image-size {ih}) or sample at {h}x{w}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 or floating point, got dtype {images.dtype}")
    x = images.float()
    finite = torch.isfinite(x).flatten(1).all(1)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"{bad} of {len(x)} images contain NaN or inf (first: index {int((~finite).nonzero()[0])}); "
                         "the generator diverged or the file is damaged")
    lo, hi = map(float, pixel_range if pixel_range is not None else guess_pixel_range(x))
    if not hi > lo:
        raise ValueError(f"pixel_range must be (low, high) with high > low, got {pixel_range}")
    return ((x - lo) / (hi - lo)).clamp_(0.0, 1.0)


@torch.no_grad()
def judge_outputs(judge: Judge, images: Tensor, *, pixel_range: tuple[float, float] | None = None,
                  batch_size: int = 1000) -> tuple[Tensor, Tensor]:
    """FID features (N, F) and head outputs (N, out_dim) of images of any range, in eval mode, on the CPU.

    The range of float images is guessed once from the whole set (so batches cannot disagree).
    """
    if not isinstance(images, Tensor) or images.dim() not in (3, 4) or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got {getattr(images, 'shape', type(images).__name__)}")
    if images.dtype.is_floating_point:
        finite = torch.isfinite(images).flatten(1).all(1)
        if not bool(finite.all()):
            raise ValueError(f"{int((~finite).sum())} of {len(images)} images contain NaN or inf (first: index "
                             f"{int((~finite).nonzero()[0])}); the generator diverged or the file is damaged")
        if pixel_range is None:
            pixel_range = guess_pixel_range(images)
    device = judge.feature_scale.device
    was_training = judge.training
    judge.eval()
    feats, heads = [], []
    try:
        for s in range(0, len(images), batch_size):
            x = judge.prepare(images[s:s + batch_size], pixel_range).to(device)
            f, h = judge.outputs(x)
            feats.append(f.float().cpu())
            heads.append(h.float().cpu())
    finally:
        judge.train(was_training)
    return torch.cat(feats), torch.cat(heads)


# -- files ----------------------------------------------------------------------------------------------
def save_judge(judge: Judge, path: str | Path) -> str:
    """Write the judge atomically with its protocol and hash; returns the hash."""
    if judge.legacy:
        raise JudgeError("a legacy MNIST classifier is saved in its own format (condgan.metrics.mnist_cnn.save_classifier)")
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in judge.state_dict().items()}
    sha = weights_sha256(state)
    protocol = {**judge.protocol, "kind": judge.kind, "image_shape": list(judge.image_shape),
                "feature_layers": list(judge.feature_layers), "sha256": sha}
    payload = {"format": JUDGE_FORMAT, "version": JUDGE_VERSION, "sha256": sha, "protocol": protocol, "state_dict": state}
    from ..checkpoint.files import atomic_write

    atomic_write(path, lambda f: torch.save(payload, f))  # temporary file, fsync, rename
    judge.protocol = protocol
    return sha


def load_judge(path: str | Path, *, expected_sha256: str | None = None, map_location: str | torch.device = "cpu") -> Judge:
    """Load a judge file (or an original MNIST classifier file) in eval mode, verifying its hash.

    The global random state is left as it was (building the network would draw its initial
    weights from it), so loading a judge during training changes nothing of the training.

    Raises:
        JudgeError: missing, unreadable or foreign file, unknown architecture.
        ClassifierHashError: weights that differ from the recorded hash, or from ``expected_sha256``.
    """
    with torch.random.fork_rng(devices=[]):
        return _load_judge(Path(path), expected_sha256, map_location)


def _load_judge(path: Path, expected_sha256: str | None, map_location: str | torch.device) -> Judge:
    if not path.is_file():
        raise JudgeError(f"judge file {str(path)!r} does not exist; train one with: "
                         f"condgan train-classifier --dataset NAME --data-root DIR --out {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise JudgeError(f"{str(path)!r} is not a readable condgan judge ({type(exc).__name__}: {exc})") from None
    fmt = payload.get("format") if isinstance(payload, dict) else None
    if fmt == mnist_cnn.FILE_FORMAT:
        return legacy_judge(mnist_cnn.load_classifier(path, expected_sha256=expected_sha256, map_location=map_location))
    if fmt != JUDGE_FORMAT:
        raise JudgeError(f"{str(path)!r} is not a condgan judge file (format {JUDGE_FORMAT!r} or {mnist_cnn.FILE_FORMAT!r} expected)")
    if payload.get("version") != JUDGE_VERSION:
        raise JudgeError(f"{str(path)!r} has judge file version {payload.get('version')!r}; this condgan reads {JUDGE_VERSION}")
    state, recorded, protocol = payload["state_dict"], payload["sha256"], payload["protocol"]
    actual = weights_sha256(state)
    if actual != recorded:
        raise ClassifierHashError(f"{str(path)!r}: the weights' SHA-256 is {actual}, but the file records {recorded}; "
                                  "the file is corrupted or was altered")
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise ClassifierHashError(f"{str(path)!r}: the weights' SHA-256 is {actual}, expected {expected_sha256}")
    missing = [k for k in ("architecture", "architecture_options", "kind", "image_shape", "feature_layers", "dataset")
               if k not in protocol]
    if missing:
        raise JudgeError(f"{str(path)!r}: the judge's protocol lacks {missing}")
    judge = Judge(build_net(protocol["architecture"], protocol["architecture_options"]), kind=protocol["kind"],
                  image_shape=protocol["image_shape"], feature_layers=protocol["feature_layers"], protocol=protocol)
    try:
        judge.load_state_dict(state)
    except RuntimeError as exc:
        raise JudgeError(f"{str(path)!r}: the weights do not fit the recorded architecture ({str(exc).splitlines()[0]})") from None
    return judge.to(map_location).eval()


def legacy_judge(model: MnistClassifier) -> Judge:
    """A judge around an original MNIST classifier: 28x28 by the metric image rule, penultimate features only."""
    protocol = dict(getattr(model, "protocol", None) or mnist_cnn.classifier_protocol(model))
    mnist_cnn.check_protocol(protocol)
    training = protocol.get("training", {})
    protocol.update({
        "architecture": mnist_cnn.ARCHITECTURE, "class_names": [str(k) for k in range(model.num_classes)],
        "dataset": {"name": "mnist", "options": {}, "split": "train", "load": {"channels": 1, "size": [28, 28]}},
        "held_out": {"split": "test", "accuracy": training.get("test_accuracy"), "images": training.get("test_images")},
    })
    judge = Judge(model, kind="class", image_shape=(1, 28, 28), feature_layers=(2,), protocol=protocol, legacy=True)
    return judge.to(next(model.parameters()).device).eval()


def as_judge(model: Judge | MnistClassifier) -> Judge:
    """A :class:`Judge` as it is, or a bare :class:`MnistClassifier` as a legacy judge."""
    if isinstance(model, Judge):
        return model
    if isinstance(model, MnistClassifier):
        return legacy_judge(model)
    raise TypeError(f"expected a condgan Judge (load_judge) or MnistClassifier, got {type(model).__name__}")
