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
from .judge_augment import AUGMENT_DEGREES, augment_settings, augment_shift, random_affine
from .judge_resnet import JUDGE_RESNET, JudgeResNet
from .mnist_cnn import ARCHITECTURE as MNIST_CNN
from .mnist_cnn import MnistClassifier

HELD_OUT_MAX = 10000
CALIBRATION_IMAGES = 5000
HOLDOUT = 0.1  # the part of each class of a flat image folder held out (condgan train-classifier --holdout)
#: the seed of that held-out draw: fixed, not the judge's --seed, so that judges trained with different
#: seeds are measured on (and give FID against) the same images (condgan train-classifier --holdout-seed)
HOLDOUT_SEED = 0
MAX_EPOCHS = 30  # the cap of training until the held-out score stops improving
PATIENCE = 3  # reads of the held-out score without improvement before it stops
MIN_ROUND_STEPS = 20  # a small set is read every 20 steps, not every epoch of one step
MIN_CAP_STEPS = 600  # and may train this many steps whatever max_epochs says
#: judge architectures by their short name (``condgan train-classifier --arch``); ``cnn`` is the data's CNN
ARCHS = ("cnn", "resnet", "mnist-cnn", "judge-cnn")


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


def check_arch(arch: str) -> str:
    """``arch`` if it is one of :data:`ARCHS`, else one line naming them."""
    if arch not in ARCHS:
        raise ValueError(f"unknown judge arch {arch!r}; choose one of {', '.join(ARCHS)}")
    return arch


def default_cnn(dataset: str | None, image_shape: Sequence[int]) -> str:
    """What ``cnn`` means for the data: the MNIST CNN for square grey MNIST, a :class:`JudgeCNN` otherwise."""
    c, h, w = (int(s) for s in image_shape)
    return "mnist-cnn" if dataset == "mnist" and c == 1 and h == w else "judge-cnn"


def make_judge(arch: str, image_shape: Sequence[int], spec: ConditionSpec, *, widths: Sequence[int] | None = None,
               feature_dim: int = 128, dropout: float = 0.3, blocks: int = 1) -> Judge:
    """An untrained judge of architecture ``arch`` (``"judge-cnn"``, ``"mnist-cnn"`` or ``"resnet"``) for the data.

    ``blocks`` is the residual blocks per stage of a ``resnet``.
    """
    c, h, w = (int(s) for s in image_shape)
    out_dim = spec.width
    check_arch(arch)
    if arch == "cnn":
        raise ValueError("arch 'cnn' means the data's CNN: resolve it with default_cnn(dataset, image_shape) first")
    if arch == "resnet":
        net = JudgeResNet((c, h, w), out_dim, widths=widths, blocks=blocks, feature_dim=feature_dim, dropout=dropout)
        name, layers = JUDGE_RESNET, tuple(range(len(net.widths) + 1))
    elif arch == "mnist-cnn":
        if c != 1 or h != w:
            raise ValueError(f"the MNIST CNN reads square 1-channel images, got {c}x{h}x{w}; use arch='judge-cnn'")
        net = MnistClassifier(tuple(widths) if widths else (16, 32), feature_dim, out_dim, dropout, image_size=h)
        name, layers = MNIST_CNN, (0, 1, 2)
    else:
        net = JudgeCNN((c, h, w), out_dim, widths=widths, feature_dim=feature_dim, dropout=dropout)
        name, layers = JUDGE_CNN, tuple(range(len(net.widths) + 1))
    protocol = {"architecture": name, "architecture_options": net.architecture()}
    return Judge(net, kind=spec.kind, image_shape=(c, h, w), feature_layers=layers, protocol=protocol)


def _loss(judge: Judge, out: Tensor, target: Tensor) -> Tensor:
    if judge.kind == "class":
        return F.cross_entropy(out, target)
    if judge.kind == "multilabel":
        return F.binary_cross_entropy_with_logits(out, target)
    return F.mse_loss(out, (target - judge.target_mean) / judge.target_std)


def fit_judge(images: Tensor, conditions: Tensor, spec: ConditionSpec, *, arch: str = "judge-cnn",
              epochs: float | None = 3.0, batch_size: int = 128, lr: float = 2e-3, weight_decay: float = 1e-4,
              max_shift: int | None = None, hflip: bool = False, augment: bool = False, seed: int = 0,
              widths: Sequence[int] | None = None, feature_dim: int = 128, dropout: float = 0.3, blocks: int = 1,
              monitor: tuple[Tensor, Tensor] | None = None, max_epochs: int = MAX_EPOCHS,
              patience: int = PATIENCE) -> tuple[Judge, dict[str, Any]]:
    """Train a judge on images (N, C, H, W) (uint8, or float in [0, 1]) and their conditions; returns it and the details.

    Adam with a cosine decay to zero, random shifts of up to ``max_shift`` pixels (default
    ``max(1, round(min(H, W) / 14))``), optional horizontal flips; with ``augment`` random rotations
    of up to 10 degrees and shifts of up to a tenth of the side instead of the plain shifts
    (:mod:`condgan.metrics.judge_augment`). ``arch`` is ``"judge-cnn"``, ``"mnist-cnn"`` or
    ``"resnet"`` (``blocks`` residual blocks per stage). Then ``feature_scale`` is set
    so that each FID feature block has unit mean variance on (up to 5,000 of) the training images.
    Deterministic for a ``seed`` on the CPU; the global RNG is left untouched.

    With ``epochs=None`` it trains until the score on ``monitor`` (the held-out images and their
    conditions: accuracy, or minus the RMSE), read every epoch (at least every
    :data:`MIN_ROUND_STEPS` steps), has not improved for ``patience`` reads, at most ``max_epochs``
    (at least :data:`MIN_CAP_STEPS` steps; the cosine decay spans the cap), and keeps the best weights.

    Shape:
        - images: (N, C, H, W); conditions: (N,) int64 (class) or (N, K) float (multilabel, vector).
    """
    if not isinstance(images, Tensor) or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) tensor, got {getattr(images, 'shape', type(images).__name__)}")
    if len(conditions) != len(images):
        raise ValueError(f"{len(images)} images but {len(conditions)} conditions")
    spec.check(conditions)
    auto = epochs is None
    if auto and monitor is None:
        raise ValueError("epochs=None trains until the held-out score stops improving: give monitor=(images, conditions)")
    if (not auto and not epochs > 0) or batch_size < 1 or max_epochs < 1 or patience < 1:
        raise ValueError(f"epochs must be > 0 (or None), batch_size, max_epochs and patience >= 1, got {epochs}, "
                         f"{batch_size}, {max_epochs}, {patience}")
    n, (c, h, w) = len(images), images.shape[1:]
    if augment:
        shift = augment_shift(h, w) if max_shift is None else int(max_shift)
    else:
        shift = max(1, round(min(h, w) / 14)) if max_shift is None else int(max_shift)
    target = conditions.long() if spec.kind == "class" else conditions.float()
    per_epoch = max(1, math.ceil(n / batch_size))
    round_steps = max(per_epoch, MIN_ROUND_STEPS)  # how often the held-out score is read
    steps = (max(math.ceil(max_epochs * n / batch_size), MIN_CAP_STEPS) if auto
             else max(1, math.ceil(epochs * n / batch_size)))
    history: list[float] = []
    best_score, best_state, best_epoch, stale = None, None, 0, 0
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        judge = make_judge(arch, (c, h, w), spec, widths=widths, feature_dim=feature_dim, dropout=dropout, blocks=blocks)
        net = judge.net
        if isinstance(net, (JudgeCNN, JudgeResNet)):
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
        for step in range(steps):
            if pos + batch_size > n:
                order, pos = torch.randperm(n, generator=gen), 0
            idx = order[pos:pos + batch_size]
            pos += batch_size
            xb = _unit(images[idx])
            if augment:
                xb = random_affine(xb, shift, AUGMENT_DEGREES, gen)
            elif shift > 0:
                xb = _shift(xb, shift, gen)
            if hflip:
                flip = torch.rand(len(xb), generator=gen) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = _loss(judge, net.head(net.taps(xb)[-1]), target[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if auto and ((step + 1) % round_steps == 0 or step + 1 == steps):
                score = _monitor_score(judge, *monitor)
                history.append(round(score, 4))
                if best_score is None or score > best_score:
                    best_score, best_epoch, stale = score, round((step + 1) / per_epoch, 2), 0
                    best_state = {k: v.detach().clone() for k, v in judge.state_dict().items()}
                else:
                    stale += 1
                if stale >= patience:
                    break
        if best_state is not None:
            judge.load_state_dict(best_state)
        judge.eval()
        calibrate(judge, images[torch.randperm(n, generator=gen)[:CALIBRATION_IMAGES]])
    details = {
        "optimizer": "Adam", "lr": lr, "weight_decay": weight_decay, "schedule": "cosine to 0 per step",
        "epochs": epochs if not auto else best_epoch, "steps": steps if not auto else step + 1, "batch_size": batch_size,
        "seed": seed, "train_images": n,
        "augmentation": ((f"random rotations <= {AUGMENT_DEGREES:g} degrees and shifts <= {shift} px (bilinear)" if augment
                          else f"random shifts <= {shift} px") + (", horizontal flips" if hflip else "") + "; no noise (issue 16)"),
        "augment": {**augment_settings(h, w), "max_shift_px": shift} if augment else None,
        "final_batch_loss": float(loss.detach()), "train_seconds": round(time.perf_counter() - start, 1),
        "torch": str(torch.__version__),
    }
    if auto:
        details["stopping"] = (f"until the held-out score stopped improving: best after {best_epoch:g} epochs of "
                               f"{(step + 1) / per_epoch:.4g}, read every {round_steps} steps, patience {patience} reads, "
                               f"at most {steps} steps (cosine over them); chosen on the held-out images")
        details["held_out_history"] = history
    judge.protocol["training"] = details
    return judge, details


def _monitor_score(judge: Judge, images: Tensor, conditions: Tensor) -> float:
    """Higher is better: held-out accuracy (class, multilabel) or minus the RMSE (vector)."""
    scores = held_out_scores(judge, images, conditions)
    judge.train()
    return scores["accuracy"] if "accuracy" in scores else -scores["rmse"]


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
        right = (head.argmax(1) == conditions.long()).float()
        per_class = [round(float(right[conditions.long() == k].mean()), 4) if bool((conditions.long() == k).any()) else None
                     for k in range(judge.out_dim)]
        return {"accuracy": float(right.mean()), "per_class_accuracy": per_class}
    if judge.kind == "multilabel":
        per = ((head > 0).float() == conditions.float()).float().mean(0)
        return {"accuracy": float(per.mean()), "per_attribute_accuracy": [round(float(a), 4) for a in per]}
    err = head - conditions.float()
    var = conditions.float().var(0).clamp(min=1e-12)
    return {"rmse": float(err.square().mean().sqrt()), "r2": float((1 - err.square().mean(0) / var).mean())}


def held_out_split(dataset: Any, n_train: int, seed: int) -> dict[str, Any]:
    """How the held-out images are chosen: the dataset's test (or valid) split, else a seeded part of train.

    ``dataset`` is a dataset (whose ``has_split`` says what its files offer) or a Dataset class.
    """
    has_split = getattr(dataset, "has_split", None) if not isinstance(dataset, type) else None
    splits = tuple(getattr(dataset, "splits", ()))
    for split in ("test", "valid"):
        if (has_split(split) if has_split is not None else split in splits):
            return {"split": split}
    n = max(1, min(HELD_OUT_MAX, n_train // 10))
    if n_train - n < 2:
        raise ValueError(f"the dataset has {n_train} images: too few to hold out any and still train a judge")
    return {"split": "train", "rule": f"randperm({n_train}, seed={seed})[:{n}]", "seed": seed, "images": n}


def held_out_indices(rule: Mapping[str, Any], n_train: int) -> tuple[Tensor, Tensor]:
    """(held-out, remaining) indices of the training split for a ``held_out_split`` of ``split="train"``."""
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(int(rule["seed"])))
    return order[:int(rule["images"])], order[int(rule["images"]):]


def open_dataset(name: str, root: str | Path | None, split: str, options: Mapping[str, Any] | None = None):
    """The registered dataset ``name`` made with ``split`` and its options (never downloads).

    Raises:
        ValueError: ``options`` hold ``split``, ``download`` or ``root``, which are not options of a dataset.
    """
    from ..plugins import get_component  # layer: a judge is trained on a dataset named in the registry

    options = dict(options or {})
    reserved = sorted({"split", "download", "root"} & set(options))
    if reserved:
        raise ValueError(f"--options {reserved[0]}=... is not a dataset option here: a judge trains on the 'train' split "
                         "and is measured on the dataset's test split or on a held-out part (--holdout); "
                         "--data-root gives the folder")
    cls = get_component("dataset", name)
    return cls(root, split=split, download=False, **options)


def load_for_judge(name: str, root: str | Path | None, split: str, *, options: Mapping[str, Any] | None = None,
                   channels: int | None = None, size: Sequence[int] | None = None):
    """``(dataset, ImageSet)`` of registered dataset ``name``'s ``split`` (never downloads)."""
    from ..data.base import DatasetError, ImageSet

    dataset = open_dataset(name, root, split, options)
    size = tuple(int(s) for s in size) if size is not None else None
    data = dataset.load(channels=channels, size=size)
    if not isinstance(data, ImageSet):
        raise DatasetError(f"dataset {name!r} holds {data.output.describe()} outputs, and a judge is trained on images: "
                           "judge table and vector models with condgan eval RUN (--reference FILE), no judge needed")
    return dataset, data


def _training_options(dataset: str, data_root: str | Path | None, options: Mapping[str, Any], holdout: float,
                      holdout_seed: int) -> dict[str, Any]:
    """The dataset options the judge trains with: a flat image folder (no test split) gets a held-out part."""
    options = dict(options)
    split = options.pop("split", "train")
    if split != "train":
        raise ValueError(f"--options split={split!r}: a judge trains on the 'train' split and is measured on the "
                         "dataset's test split or on a held-out part of a flat folder (--holdout FRACTION); leave split out")
    probe = open_dataset(dataset, data_root, "train", options)
    has_split = getattr(probe, "has_split", None)
    if (has_split is not None and not has_split("test") and not has_split("valid")
            and getattr(probe, "is_flat", lambda: False)() and options.get("holdout") is None):
        options.update(holdout=holdout, holdout_seed=holdout_seed)
    return options


def train_judge(dataset: str, data_root: str | Path | None, out: str | Path, *, image_size: int | None = None,
                channels: int | None = None, options: Mapping[str, Any] | None = None, arch: str | None = None,
                epochs: float | None = None, seed: int = 0, holdout: float = HOLDOUT, holdout_seed: int = HOLDOUT_SEED,
                **fit_options: Any) -> dict[str, Any]:
    """Train a judge on the registered dataset ``dataset``, measure it on held-out images, save it to ``out``.

    The held-out images are the dataset's test split; a flat image folder (class folders, no
    test folder) holds out a stratified ``holdout`` fraction of each class drawn with ``holdout_seed`` (its options
    ``holdout`` and ``holdout_seed``, recorded in the judge file: ``condgan eval`` uses the same
    images as its reference, and ``data.options.exclude_judge=FILE`` leaves them out of training).

    Args:
        dataset: a registered dataset name (``condgan list dataset``).
        data_root: where its files are (nothing is downloaded).
        image_size: bring images to ``image_size`` x ``image_size`` (the dataset's own size when None).
        channels: convert to this many channels (the dataset's own when None).
        options: the dataset's options (as ``data.options`` in a config); ``split="train"`` is accepted.
        arch: ``"cnn"`` (default: the MNIST CNN for MNIST, ``"judge-cnn"`` otherwise), ``"resnet"``
            (:class:`~condgan.metrics.judge_resnet.JudgeResNet`), ``"mnist-cnn"`` or ``"judge-cnn"``.
        epochs: passes over the training images; None: until the held-out score stops improving
            (at most ``max_epochs``, see :func:`fit_judge`).
        seed: the seed of the weights and the batches.
        holdout: the fraction of each class held out of a flat image folder.
        holdout_seed: the seed of that held-out draw (and of the part of a dataset with neither a test split
            nor a flat folder's holdout); fixed by default, so that judges of different seeds share their held-out images.
        **fit_options: see :func:`fit_judge` (``augment=True``: random rotations and shifts).

    The file records the recipe (``protocol["recipe"]``: ``arch`` as asked, the network it
    became, ``augment`` and ``seed``), so that judges trained differently can be told apart.

    Returns:
        The training details with ``held_out`` (scores, per-class accuracy) and ``sha256``.
    """
    from ..data.fingerprint import dataset_fingerprint

    asked = check_arch(arch or "cnn")
    options = _training_options(dataset, data_root, dict(options or {}), holdout, holdout_seed)
    size = (image_size, image_size) if image_size is not None else None
    source, data = load_for_judge(dataset, data_root, "train", options=options, channels=channels, size=size)
    load = {"channels": int(data.images.shape[1]), "size": list(data.images.shape[2:])}
    held = held_out_split(source, len(data), holdout_seed)
    if held["split"] == "train":
        test_idx, train_idx = held_out_indices(held, len(data))
        test_x, test_y = data.images[test_idx], data.conditions[test_idx]
        train_x, train_y = data.images[train_idx], data.conditions[train_idx]
    else:
        test_source, test = load_for_judge(dataset, data_root, held["split"], options=options, channels=load["channels"],
                                           size=load["size"])
        test_x, test_y, train_x, train_y = test.images, test.conditions, data.images, data.conditions
        if options.get("holdout") is not None:
            held["rule"] = (f"a stratified {options['holdout']:g} of each class, seed {options.get('holdout_seed', 0)} "
                            f"(options holdout={options['holdout']:g}, holdout_seed={options.get('holdout_seed', 0)})")
        if getattr(test_source, "files_sha256", None):
            held["files_sha256"] = test_source.files_sha256
    arch = default_cnn(dataset, data.image_shape) if asked == "cnn" else asked
    if epochs is None:
        fit_options["monitor"] = (test_x, test_y)
    judge, details = fit_judge(train_x, train_y, data.spec, arch=arch, epochs=epochs, seed=seed, **fit_options)
    scores = held_out_scores(judge, test_x, test_y)
    held.update({"images": len(test_x), **scores})
    judge.protocol.update({
        "dataset": {"name": dataset, "options": options, "split": "train", "load": load,
                    "fingerprint": dataset_fingerprint(data, dataset)},
        "held_out": held, "class_names": list(data.class_names) if data.class_names else None,
        "condition": {"kind": data.spec.kind, "num_classes": data.spec.num_classes, "dim": data.spec.dim},
        "recipe": {"arch": asked, "network": arch, "augment": bool(fit_options.get("augment", False)), "seed": seed},
    })
    details["sha256"] = save_judge(judge, out)
    details["held_out"] = held
    details["class_names"] = judge.protocol["class_names"]
    details["network"] = arch
    return details
