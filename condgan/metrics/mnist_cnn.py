"""The MNIST CNN: condgan's first judge, kept for MNIST and for the classifier files written before judges.

The network is also the architecture of new MNIST judges (:mod:`condgan.metrics.judge`); this module
keeps the original file format (``condgan-classifier``) loadable with its protocol checks.

The metrics of :mod:`condgan.metrics` (label accuracy, classifier-feature FID, precision/recall)
read images through this network, so a figure is only comparable to another when both used the
same classifier. A saved classifier therefore carries:

- ``sha256``: the SHA-256 of its weights (names, dtypes, shapes and bytes, in name order),
  verified on load and quoted in the protocol of every metric;
- ``protocol``: what the network expects (architecture, 28x28 input, range [0, 1], the
  normalisation it applies itself) and how it was trained. Metrics refuse a classifier whose
  protocol differs from :data:`EXPECTED_PROTOCOL` (:class:`ClassifierProtocolError`).

``train_classifier`` writes a file in this original format; ``condgan train-classifier`` now
writes judges (:mod:`condgan.metrics.judge`), which hold this network for MNIST.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ARCHITECTURE = "condgan-mnist-cnn-v1"
FILE_FORMAT = "condgan-classifier"
FILE_VERSION = 1
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

# What the metrics expect of a classifier; any difference in a loaded file is refused.
EXPECTED_PROTOCOL: dict[str, Any] = {
    "architecture": ARCHITECTURE,
    "input_size": [28, 28],
    "input_channels": 1,
    "input_range": [0.0, 1.0],
    "normalisation": {"mean": MNIST_MEAN, "std": MNIST_STD},
    "num_classes": 10,
    "features": "penultimate (ReLU of the hidden fully connected layer)",
}


class ClassifierError(ValueError):
    """A classifier file that cannot be used (missing, foreign, corrupted)."""


class ClassifierHashError(ClassifierError):
    """The weights in a classifier file do not match their recorded SHA-256 (or an expected one)."""


class ClassifierProtocolError(ClassifierError):
    """A classifier whose recorded protocol differs from what the metrics expect."""


class MnistClassifier(nn.Module):
    """A small CNN for 28x28 grey images in [0, 1]; it applies the MNIST normalisation itself.

    conv5x5(c1) - BN - ReLU - maxpool2 - conv5x5(c2) - BN - ReLU - maxpool2 - linear(feature_dim) - ReLU
    [the features] - dropout - linear(num_classes).

    Args:
        channels: output channels of the two convolutions.
        feature_dim: size of the penultimate layer (the metrics' feature space).
        num_classes: number of classes.
        dropout: dropout before the last layer (training only).

    Shape:
        - x: (B, 1, 28, 28) in [0, 1]; ``forward``: (B, num_classes) logits; ``features``: (B, feature_dim).

    Example:
        >>> net = MnistClassifier()
        >>> net(torch.rand(2, 1, 28, 28)).shape, net.features(torch.rand(2, 1, 28, 28)).shape
        (torch.Size([2, 10]), torch.Size([2, 128]))
    """

    def __init__(self, channels: Sequence[int] = (16, 32), feature_dim: int = 128, num_classes: int = 10,
                 dropout: float = 0.3, image_size: int = 28):
        super().__init__()
        c1, c2 = (int(c) for c in channels)
        if min(c1, c2, feature_dim, num_classes) < 1 or image_size < 4:
            raise ValueError(f"channels, feature_dim and num_classes must be >= 1 and image_size >= 4, got {channels}, "
                             f"{feature_dim}, {num_classes}, {image_size}")
        self.channels, self.feature_dim, self.num_classes, self.dropout = (c1, c2), int(feature_dim), int(num_classes), float(dropout)
        self.image_size = int(image_size)
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, kernel_size=5, padding=2, bias=False), nn.BatchNorm2d(c1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, c1, S/2, S/2)
            nn.Conv2d(c1, c2, kernel_size=5, padding=2, bias=False), nn.BatchNorm2d(c2), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # (B, c2, S/4, S/4)
        )
        self.hidden = nn.Linear(c2 * (self.image_size // 4) ** 2, self.feature_dim)
        self.drop = nn.Dropout(p=self.dropout)
        self.out = nn.Linear(self.feature_dim, self.num_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate features (B, feature_dim) of images (B, 1, 28, 28) in [0, 1]."""
        h = self.conv((x - MNIST_MEAN) / MNIST_STD).flatten(1)  # (B, c2 * 49)
        return F.relu(self.hidden(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.drop(self.features(x)))

    def taps(self, x: Tensor) -> list[Tensor]:
        """Each stage's activations before its pooling, (B, c1, S, S) and (B, c2, S/2, S/2), and the features (B, F)."""
        conv = self.conv
        h1 = conv[2](conv[1](conv[0]((x - MNIST_MEAN) / MNIST_STD)))
        h2 = conv[6](conv[5](conv[4](conv[3](h1))))
        return [h1, h2, F.relu(self.hidden(conv[7](h2).flatten(1)))]

    def head(self, features: Tensor) -> Tensor:
        """Logits (B, num_classes) from the features (eval mode: dropout is off)."""
        return self.out(self.drop(features))

    def architecture(self) -> dict[str, Any]:
        """The constructor arguments, as recorded in the protocol."""
        options = {"channels": list(self.channels), "feature_dim": self.feature_dim, "num_classes": self.num_classes,
                   "dropout": self.dropout}
        if self.image_size != 28:  # files of 28x28 networks stay as they were
            options["image_size"] = self.image_size
        return options


def weights_sha256(model_or_state: nn.Module | Mapping[str, Tensor]) -> str:
    """SHA-256 over the state dict: each entry's name, dtype, shape and bytes, in name order."""
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def classifier_protocol(model: MnistClassifier, training: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The protocol recorded with a classifier: what it expects, its architecture, how it was trained."""
    return {**EXPECTED_PROTOCOL, "num_classes": model.num_classes, "architecture_options": model.architecture(),
            "training": dict(training or {})}


def check_protocol(protocol: Mapping[str, Any], *, source: str = "the classifier") -> None:
    """Raise :class:`ClassifierProtocolError` unless ``protocol`` matches :data:`EXPECTED_PROTOCOL`."""
    wrong = [f"{key}: expected {want!r}, got {protocol.get(key, '<missing>')!r}"
             for key, want in EXPECTED_PROTOCOL.items() if _normalise(protocol.get(key)) != _normalise(want)]
    if wrong:
        raise ClassifierProtocolError(
            f"{source} was made for a different protocol than condgan's metrics expect ({'; '.join(wrong)}). "
            "Train a matching one with: condgan train-classifier --data-root DIR --out FILE"
        )


def _normalise(value: Any) -> Any:
    """Lists and tuples compare alike; numbers compare as floats."""
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def classifier_identity(model: MnistClassifier) -> dict[str, Any]:
    """What a metric quotes about its feature extractor: architecture, the hash of the weights used, protocol summary."""
    protocol = getattr(model, "protocol", None) or classifier_protocol(model)
    check_protocol(protocol)
    training = protocol.get("training", {})
    return {
        "architecture": ARCHITECTURE,
        "architecture_options": model.architecture(),
        "sha256": weights_sha256(model),
        "input": "(B, 1, 28, 28) in [0, 1]",
        "features": f"penultimate, {model.feature_dim} dims",
        "test_accuracy": training.get("test_accuracy"),
    }


def save_classifier(model: MnistClassifier, path: str | Path, *, training: Mapping[str, Any] | None = None) -> str:
    """Write the classifier atomically (temporary file then rename) with its protocol and hash; returns the hash."""
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    sha = weights_sha256(state)
    payload = {"format": FILE_FORMAT, "version": FILE_VERSION, "sha256": sha,
               "protocol": classifier_protocol(model, training), "state_dict": state}
    from ..checkpoint.files import atomic_write

    atomic_write(path, lambda f: torch.save(payload, f))  # temporary file, fsync, rename
    return sha


def load_classifier(path: str | Path, *, expected_sha256: str | None = None, map_location: str | torch.device = "cpu") -> MnistClassifier:
    """Load a saved classifier in eval mode, verifying its hash and protocol.

    The returned module has ``.protocol`` (the recorded protocol) and ``.sha256``.

    Raises:
        ClassifierError: the file is missing or not a condgan classifier.
        ClassifierHashError: the weights differ from the recorded hash, or from ``expected_sha256``.
        ClassifierProtocolError: the recorded protocol differs from :data:`EXPECTED_PROTOCOL`.
    """
    path = Path(path)
    if not path.is_file():
        raise ClassifierError(
            f"classifier file {str(path)!r} does not exist; train one with: "
            f"condgan train-classifier --data-root DIR --out {path}"
        )
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise ClassifierError(f"{str(path)!r} is not a readable condgan classifier ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise ClassifierError(f"{str(path)!r} is not a condgan classifier file (format {FILE_FORMAT!r} expected)")
    if payload.get("version") != FILE_VERSION:
        raise ClassifierError(f"{str(path)!r} has classifier file version {payload.get('version')!r}; this condgan reads {FILE_VERSION}")
    state, recorded, protocol = payload.get("state_dict"), payload.get("sha256"), payload.get("protocol")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in state.items()) \
            or not isinstance(recorded, str) or not isinstance(protocol, dict):
        raise ClassifierError(f"{str(path)!r} is damaged: it needs a 'state_dict' of tensors, a 'sha256' string and a "
                              "'protocol' dict")
    actual = weights_sha256(state)
    if actual != recorded:
        raise ClassifierHashError(f"{str(path)!r}: the weights' SHA-256 is {actual}, but the file records {recorded}; the file is corrupted or was altered")
    if expected_sha256 is not None and actual != expected_sha256.lower():
        raise ClassifierHashError(f"{str(path)!r}: the weights' SHA-256 is {actual}, expected {expected_sha256}")
    check_protocol(protocol, source=repr(str(path)))
    options = protocol.get("architecture_options")
    if not isinstance(options, dict) or not set(options) <= {"channels", "feature_dim", "num_classes", "dropout"}:
        raise ClassifierError(f"{str(path)!r} is damaged: its protocol's architecture_options must be a dict of "
                              f"channels, feature_dim, num_classes, dropout; got {options!r:.80}")
    from ..checkpoint.integrity import CheckpointError, check_model_size, check_state_dict

    try:
        check_model_size(lambda: MnistClassifier(**options), "classifier", repr(str(path)))  # before allocating it
        try:
            model = MnistClassifier(**options)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"{str(path)!r}: its architecture_options {options!r:.80} build no classifier ({exc})") from None
        check_state_dict(model, state, "classifier", repr(str(path)))
    except CheckpointError as exc:
        raise ClassifierError(str(exc)) from None
    model.load_state_dict(state)
    model.eval()
    model.protocol, model.sha256 = protocol, actual
    return model


def _shift(x: Tensor, max_shift: int, generator: torch.Generator | None) -> Tensor:
    """Translate each image by a random integer offset in [-max_shift, max_shift] (zero padding)."""
    b, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (B, 1, H + 2s, W + 2s)
    off = torch.randint(0, 2 * max_shift + 1, (b, 2), device=x.device, generator=generator)
    rows = off[:, :1] + torch.arange(h, device=x.device)  # (B, H)
    cols = off[:, 1:] + torch.arange(w, device=x.device)  # (B, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, 0, rows[:, :, None], cols[:, None, :]][:, None]  # (B, 1, H, W)


def fit_classifier(images: Tensor, labels: Tensor, *, epochs: float = 3.0, batch_size: int = 128, lr: float = 2e-3,
                   weight_decay: float = 1e-4, max_shift: int = 2, seed: int = 0, channels: Sequence[int] = (16, 32),
                   feature_dim: int = 128, num_classes: int = 10, dropout: float = 0.3) -> tuple[MnistClassifier, dict[str, Any]]:
    """Train a :class:`MnistClassifier` on tensors; returns it (eval mode) and the training details.

    Adam with a cosine learning-rate decay to zero over all steps, random shifts of up to
    ``max_shift`` pixels as augmentation. Images go through :func:`~condgan.metrics.images.to_metric_input`
    first. Deterministic for a given ``seed`` on the CPU (the global RNG is left untouched).

    Args:
        images: (N, C, H, W) or (N, H, W) images (any size/range the metric rule accepts).
        labels: (N,) int64 in [0, num_classes).
        epochs: passes over the data (fractions allowed).
    """
    from .images import to_metric_input

    x = to_metric_input(images)
    y = torch.as_tensor(labels).long()
    if y.shape != (len(x),):
        raise ValueError(f"labels must have shape ({len(x)},), got {tuple(y.shape)}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ValueError(f"labels must be in [0, {num_classes}), got range [{int(y.min())}, {int(y.max())}]")
    if epochs <= 0 or batch_size < 1:
        raise ValueError(f"epochs must be > 0 and batch_size >= 1, got {epochs}, {batch_size}")
    steps = max(1, math.ceil(epochs * len(x) / batch_size))
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # initialisation and dropout
        model = MnistClassifier(channels, feature_dim, num_classes, dropout)
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
        model.train()
        order, pos = torch.randperm(len(x), generator=gen), 0
        for _ in range(steps):
            if pos + batch_size > len(x):
                order, pos = torch.randperm(len(x), generator=gen), 0
            idx = order[pos:pos + batch_size]
            pos += batch_size
            xb = _shift(x[idx], max_shift, gen) if max_shift > 0 else x[idx]
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    details = {
        "optimizer": "Adam", "lr": lr, "weight_decay": weight_decay, "schedule": "cosine to 0 per step",
        "epochs": epochs, "steps": steps, "batch_size": batch_size, "augmentation": f"random shifts <= {max_shift} px",
        "seed": seed, "train_images": len(x), "final_batch_loss": float(loss.detach()),
        "train_seconds": round(time.perf_counter() - start, 1), "torch": str(torch.__version__),
    }
    return model, details


@torch.no_grad()
def predict(model: MnistClassifier, images: Tensor, *, batch_size: int = 1000) -> Tensor:
    """Predicted labels (N,) for images brought to the classifier's input by the metric rule."""
    from .images import to_metric_input

    model.eval()
    return torch.cat([model(to_metric_input(images[i:i + batch_size])).argmax(1) for i in range(0, len(images), batch_size)])


def train_classifier(data_root: str | Path, out: str | Path, *, epochs: float = 3.0, seed: int = 0, **options: Any) -> dict[str, Any]:
    """Train the metrics' classifier on the MNIST training set, test it, and save it to ``out``.

    Args:
        data_root: torchvision's MNIST layout (``data_root/MNIST/raw``); nothing is downloaded.
        out: the file to write.
        epochs, seed, **options: see :func:`fit_classifier`.

    Returns:
        The training details, including ``test_accuracy`` and ``sha256``.
    """
    from ..data import load_mnist

    train_x, train_y = load_mnist(data_root, train=True, image_size=28, download=False)
    test_x, test_y = load_mnist(data_root, train=False, image_size=28, download=False)
    model, details = fit_classifier(train_x, train_y, epochs=epochs, seed=seed, **options)
    details["data"] = "MNIST train (60,000), original 28x28"
    details["test_accuracy"] = float((predict(model, test_x) == test_y).float().mean())
    details["test_images"] = len(test_y)
    details["sha256"] = save_classifier(model, out, training=details)
    return details
