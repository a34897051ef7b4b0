"""Training a judge on any registered dataset, and the held-out images that measure it.

``train_judge("mnist", root, "judge.pt")`` (``condgan train-classifier --dataset mnist``) loads the
dataset through the registry (``get_component("dataset", name)(root, split="train").load(...)``),
holds out its test split (or, for a dataset without one, a seeded part of its training images),
trains a judge of the data's kind and shape (:func:`fit_judge`), measures it on the held-out
images and saves it with its protocol. MNIST gets condgan's MNIST CNN; other data a
:class:`~condgan.metrics.judge.JudgeCNN` sized to its channels and size.

Augmentation is random translation only (and horizontal flips on request). No noise or speckle:
a judge that learned to ignore them could not see them in samples (issue 16).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ..conditions import ConditionSpec
from .judge import JUDGE_CNN, Judge, JudgeCNN, judge_outputs, save_judge
from .mnist_cnn import ARCHITECTURE as MNIST_CNN
from .mnist_cnn import MnistClassifier

HELD_OUT_MAX = 10000
CALIBRATION_IMAGES = 5000


def _shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by a random integer offset in [-max_shift, max_shift] (zero padding), all channels alike."""
    b, c, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (B, C, H + 2s, W + 2s)
    off = torch.randint(0, 2 * max_shift + 1, (b, 2), generator=generator)
    rows = (off[:, :1] + torch.arange(h))[:, None, :, None].expand(b, c, h, w)  # (B, C, H, W)
    cols = (off[:, 1:] + torch.arange(w))[:, None, None, :].expand(b, c, h, w)
    flat = padded.flatten(2)  # (B, C, (H + 2s) * (W + 2s))
    return flat.gather(2, (rows * (w + 2 * max_shift) + cols).flatten(2)).view(b, c, h, w)


def _unit(images: Tensor) -> Tensor:
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


def make_judge(arch: str, image_shape: Sequence[int], spec: ConditionSpec, *, widths: Sequence[int] | None = None,
               feature_dim: int = 128, dropout: float = 0.3) -> Judge:
    """An untrained judge of architecture ``arch`` (``"judge-cnn"`` or ``"mnist-cnn"``) for the data."""
    c, h, w = (int(s) for s in image_shape)
    out_dim = spec.width
    if arch == "mnist-cnn":
        if c != 1 or h != w:
            raise ValueError(f"the MNIST CNN reads square 1-channel images, got {c}x{h}x{w}; use arch='judge-cnn'")
        net = MnistClassifier(tuple(widths) if widths else (16, 32), feature_dim, out_dim, dropout, image_size=h)
        name, layers = MNIST_CNN, (0, 1, 2)
    elif arch == "judge-cnn":
        net = JudgeCNN((c, h, w), out_dim, widths=widths, feature_dim=feature_dim, dropout=dropout)
        name, layers = JUDGE_CNN, tuple(range(len(net.widths) + 1))
    else:
        raise ValueError(f"arch must be 'judge-cnn' or 'mnist-cnn', got {arch!r}")
    protocol = {"architecture": name, "architecture_options": net.architecture()}
    return Judge(net, kind=spec.kind, image_shape=(c, h, w), feature_layers=layers, protocol=protocol)


def _loss(judge: Judge, out: Tensor, target: Tensor) -> Tensor:
    if judge.kind == "class":
        return F.cross_entropy(out, target)
    if judge.kind == "multilabel":
        return F.binary_cross_entropy_with_logits(out, target)
    return F.mse_loss(out, (target - judge.target_mean) / judge.target_std)


def fit_judge(images: Tensor, conditions: Tensor, spec: ConditionSpec, *, arch: str = "judge-cnn", epochs: float = 3.0,
              batch_size: int = 128, lr: float = 2e-3, weight_decay: float = 1e-4, max_shift: int | None = None,
              hflip: bool = False, seed: int = 0, widths: Sequence[int] | None = None, feature_dim: int = 128,
              dropout: float = 0.3) -> tuple[Judge, dict[str, Any]]:
    """Train a judge on images (N, C, H, W) (uint8, or float in [0, 1]) and their conditions; returns it and the details.

    Adam with a cosine decay to zero, random shifts of up to ``max_shift`` pixels (default
    ``max(1, round(min(H, W) / 14))``), optional horizontal flips. Then ``feature_scale`` is set
    so that each FID feature block has unit mean variance on (up to 5,000 of) the training images.
    Deterministic for a ``seed`` on the CPU; the global RNG is left untouched.

    Shape:
        - images: (N, C, H, W); conditions: (N,) int64 (class) or (N, K) float (multilabel, vector).
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got {getattr(images, 'shape', type(images).__name__)}")
    if len(conditions) != len(images):
        raise ValueError(f"{len(images)} images but {len(conditions)} conditions")
    spec.check(conditions)
    if epochs <= 0 or batch_size < 1:
        raise ValueError(f"epochs must be > 0 and batch_size >= 1, got {epochs}, {batch_size}")
    n, (c, h, w) = len(images), images.shape[1:]
    shift = max(1, round(min(h, w) / 14)) if max_shift is None else int(max_shift)
    target = conditions.long() if spec.kind == "class" else conditions.float()
    steps = max(1, math.ceil(epochs * n / batch_size))
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = make_judge(arch, (c, h, w), spec, widths=widths, feature_dim=feature_dim, dropout=dropout)
        net = judge.net
        if isinstance(net, JudgeCNN):
            sample = _unit(images[torch.randperm(n, generator=gen)[:CALIBRATION_IMAGES]])
            net.mean.copy_(sample.mean((0, 2, 3)))
            net.std.copy_(sample.std((0, 2, 3)).clamp(min=1e-3))
        if spec.kind == "vector":
            judge.target_mean.copy_(target.mean(0))
            judge.target_std.copy_(target.std(0).clamp(min=1e-6) if n > 1 else torch.ones(spec.width))
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
        judge.train()
        order, pos = torch.randperm(n, generator=gen), 0
        for _ in range(steps):
            if pos + batch_size > n:
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos:pos + batch_size]
            pos += batch_size
            xb = _unit(images[idx])
            if shift > 0:
                xb = _shift(xb, shift, gen)
            if hflip:
                flip = torch.rand(len(xb), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = _loss(judge, net.head(net.taps(xb)[-1]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        judge.eval()
        calibrate(judge, images[torch.randperm(n, generator=gen)[:CALIBRATION_IMAGES]])
    details = {
        "optimizer": "Adam", "lr": lr, "weight_decay": weight_decay, "schedule": "cosine to 0 per step", "epochs": epochs,
        "steps": steps, "batch_size": batch_size, "seed": seed, "train_images": n,
        "augmentation": f"random shifts <= {shift} px" + (", horizontal flips" if hflip else "") + "; no noise (issue 16)",
        "final_batch_loss": float(loss.detach()), "train_seconds": round(time.perf_counter() - start, 1),
        "torch": str(torch.__version__),
    }
    judge.protocol["training"] = details
    return judge, details


@torch.no_grad()
def calibrate(judge: Judge, images: Tensor) -> None:
    """Set ``feature_scale`` so that each feature block has unit mean variance on ``images``."""
    judge.feature_scale.fill_(1.0)
    feats, _ = judge_outputs(judge, images)
    sizes = [int(b.shape[1]) for b in _blocks(judge, images[:2])]
    scales, start = [], 0
    for size in sizes:
        var = feats[:, start:start + size].var(0).mean() if len(feats) > 1 else torch.tensor(1.0)
        scales.append(float(var.clamp(min=1e-12).rsqrt()))
        start += size
    judge.feature_scale.copy_(torch.tensor(scales))


def _blocks(judge: Judge, images: Tensor) -> list[Tensor]:
    x = judge.prepare(images).to(judge.feature_scale.device)
    taps = judge.net.taps(x)
    return [taps[i].mean((2, 3)) if taps[i].dim() == 4 else taps[i] for i in judge.feature_layers]


@torch.no_grad()
def held_out_scores(judge: Judge, images: Tensor, conditions: Tensor) -> dict[str, Any]:
    """Accuracy (class), per-attribute and mean accuracy (multilabel) or RMSE and R^2 (vector) on held-out data."""
    _, head = judge_outputs(judge, images)
    if judge.kind == "class":
        return {"accuracy": float((head.argmax(1) == conditions.long()).float().mean())}
    if judge.kind == "multilabel":
        per = ((head > 0).float() == conditions.float()).float().mean(0)
        return {"accuracy": float(per.mean()), "per_attribute_accuracy": [round(float(a), 4) for a in per]}
    err = head - conditions.float()
    var = conditions.float().var(0).clamp(min=1e-12)
    return {"rmse": float(err.square().mean().sqrt()), "r2": float((1 - err.square().mean(0) / var).mean())}


def held_out_split(dataset_cls: type, n_train: int, seed: int) -> dict[str, Any]:
    """How the held-out images are chosen: the dataset's test (or valid) split, else a seeded part of train."""
    splits = tuple(getattr(dataset_cls, "splits", ()))
    for split in ("test", "valid"):
        if split in splits:
            return {"split": split}
    n = max(1, min(HELD_OUT_MAX, n_train // 10))
    if n_train - n < 2:
        raise ValueError(f"the dataset has {n_train} images: too few to hold out any and still train a judge")
    return {"split": "train", "rule": f"randperm({n_train}, seed={seed})[:{n}]", "seed": seed, "images": n}


def held_out_indices(rule: Mapping[str, Any], n_train: int) -> tuple[Tensor, Tensor]:
    """(held-out, remaining) indices of the training split for a ``held_out_split`` of ``split="train"``."""
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(int(rule["seed"])))
    return order[:int(rule["images"])], order[int(rule["images"]):]


def load_for_judge(name: str, root: str | Path | None, split: str, *, options: Mapping[str, Any] | None = None,
                   channels: int | None = None, size: Sequence[int] | None = None):
    """The :class:`~condgan.data.ImageSet` of registered dataset ``name`` (never downloads)."""
    from ..plugins import get_component  # layer: a judge is trained on a dataset named in the registry

    cls = get_component("dataset", name)
    size = tuple(int(s) for s in size) if size is not None else None
    return cls, cls(root, split=split, download=False, **dict(options or {})).load(channels=channels, size=size)


def train_judge(dataset: str, data_root: str | Path | None, out: str | Path, *, image_size: int | None = None,
                channels: int | None = None, options: Mapping[str, Any] | None = None, arch: str | None = None,
                epochs: float = 3.0, seed: int = 0, **fit_options: Any) -> dict[str, Any]:
    """Train a judge on the registered dataset ``dataset``, measure it on held-out images, save it to ``out``.

    Args:
        dataset: a registered dataset name (``condgan list dataset``).
        data_root: where its files are (nothing is downloaded).
        image_size: bring images to ``image_size`` x ``image_size`` (the dataset's own size when None).
        channels: convert to this many channels (the dataset's own when None).
        options: the dataset's options (as ``data.options`` in a config).
        arch: ``"mnist-cnn"`` (default for MNIST) or ``"judge-cnn"`` (default otherwise).
        epochs, seed, **fit_options: see :func:`fit_judge`.

    Returns:
        The training details with ``held_out`` (scores) and ``sha256``.
    """
    options = dict(options or {})
    size = (image_size, image_size) if image_size is not None else None
    cls, data = load_for_judge(dataset, data_root, "train", options=options, channels=channels, size=size)
    load = {"channels": int(data.images.shape[1]), "size": list(data.images.shape[2:])}
    held = held_out_split(cls, len(data), seed)
    if held["split"] == "train":
        test_idx, train_idx = held_out_indices(held, len(data))
        test_x, test_y = data.images[test_idx], data.conditions[test_idx]
        train_x, train_y = data.images[train_idx], data.conditions[train_idx]
    else:
        _, test = load_for_judge(dataset, data_root, held["split"], options=options, channels=load["channels"], size=load["size"])
        test_x, test_y, train_x, train_y = test.images, test.conditions, data.images, data.conditions
    if arch is None:
        c, h, w = data.image_shape
        arch = "mnist-cnn" if dataset == "mnist" and c == 1 and h == w else "judge-cnn"
    judge, details = fit_judge(train_x, train_y, data.spec, arch=arch, epochs=epochs, seed=seed, **fit_options)
    scores = held_out_scores(judge, test_x, test_y)
    held.update({"images": len(test_x), **scores})
    judge.protocol.update({
        "dataset": {"name": dataset, "options": options, "split": "train", "load": load},
        "held_out": held, "class_names": list(data.class_names) if data.class_names else None,
        "condition": {"kind": data.spec.kind, "num_classes": data.spec.num_classes, "dim": data.spec.dim},
    })
    details["sha256"] = save_judge(judge, out)
    details["held_out"] = held
    return details
