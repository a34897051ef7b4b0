"""Using a trained generator: the conditions a user means, truncated noise, and interpolation.

The conditions come as the user says them and become the condition tensor y the generator takes
(:func:`make_conditions`): class indices or class names (``GANConfig.class_names``), lists of tags
by attribute name (multi-hot), or float vectors from a ``.npy``, ``.txt`` or ``.csv`` file. Each
condition carries a label text for file names and grid strips.

Noise can be truncated (:func:`truncated_normal`, BigGAN's trick: z from a standard normal
restricted to [-t, t]; a smaller t gives more typical, less diverse samples). :func:`interpolate_z`
moves z along a line at a fixed condition; :func:`interpolate_conditions` moves the condition from
one to another at a fixed z, for the conditioners where a condition in between means something
(``Conditioner.soft_conditions``):

============  ==================================================================
conditioner   a condition between classes a and b (weight t) is
============  ==================================================================
embedding     the embedding ``(1 - t) e(a) + t e(b)``
onehot        the mixed one-hot vector ``(1 - t) onehot(a) + t onehot(b)``
branches      the mixed one-hot vector, through the y branch
cbn           each norm layer's gains and biases mixed the same way
vector        the vector ``(1 - t) y_a + t y_b`` (tags: mixed multi-hot vectors)
projection,   not applicable: they condition discriminators only, never a generator
acgan
============  ==================================================================

A plugin conditioner without ``soft_conditions`` is refused (with one line naming it) for class
and tag interpolation; between two float vectors is a vector, so vector conditions interpolate
with every conditioner. Every error here is a :class:`SamplingError` (a ``ValueError``) of one line
that says what was wrong and what is allowed.

Example:
    >>> G = condgan.load_generator("runs/a")
    >>> cond = make_conditions(G, classes="3,7")
    >>> samples = generate(G, cond, per_condition=8, seed=0, truncation=0.5)
    >>> samples.images.shape  # (16, C, H, W) in [0, 1], labels ('3', '3', ..., '7')
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from .conditions import ConditionSpec
from .data import to_unit

VECTOR_SUFFIXES = (".npy", ".txt", ".csv")


class SamplingError(ValueError):
    """A condition, noise setting or interpolation that does not fit the generator (one line)."""


# -- conditions ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Conditions:
    """Conditions for a generator with a label text each.

    Args:
        y: (K,) int64 class indices, or (K, width) float32 tags / vectors.
        labels: one text per condition (class name or index, tag names joined by ``+``, ``v<row>``).
    """

    y: Tensor
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def class_names_of(model: Any) -> tuple[str, ...] | None:
    """The class (or tag) names saved with a generator's config, or None."""
    names = getattr(getattr(model, "config", None), "class_names", None)
    return tuple(str(n) for n in names) if names else None


def _check_names(names: Sequence[str] | None, spec: ConditionSpec) -> tuple[str, ...] | None:
    if names is None:
        return None
    names = tuple(str(n) for n in names)
    if spec.kind == "vector" or len(names) != spec.num_classes:
        raise SamplingError(f"{len(names)} class names for a {spec.kind!r} condition of {spec.width} entries")
    return names


def _tokens(value: str | int | Sequence[str | int], what: str) -> list[str | int]:
    """"3,7" or [3, "cat"] -> [3, "cat"] (strings split at commas, blanks dropped)."""
    items = value.split(",") if isinstance(value, str) else [value] if isinstance(value, numbers.Integral) else list(value)
    out: list[str | int] = []
    for item in items:
        if isinstance(item, str):
            item = item.strip()
            if item:
                out.append(item)
        elif isinstance(item, numbers.Integral) and not isinstance(item, bool):
            out.append(int(item))
        else:
            raise SamplingError(f"{what} are names or integer indices, got {item!r}")
    return out


def _index(token: str | int, count: int, names: tuple[str, ...] | None, what: str) -> int:
    """A class or tag index from a name or an index, or one clear line."""
    plural = {"class": "classes", "tag": "tags"}[what]
    if isinstance(token, str):
        if names is not None and token in names:
            return names.index(token)
        try:
            token = int(token)
        except ValueError:
            if names is None:
                raise SamplingError(f"unknown {what} {token!r}: this model has no {what} names; "
                                    f"give indices 0..{count - 1}") from None
            raise SamplingError(f"unknown {what} {token!r}; valid {plural}: {', '.join(names)}") from None
    if not 0 <= token < count:
        raise SamplingError(f"{what} index {token} is out of range: this model has {count} {plural} (0..{count - 1})")
    return token


def class_conditions(spec: ConditionSpec, classes: str | int | Sequence[str | int] | None = None,
                     class_names: Sequence[str] | None = None) -> Conditions:
    """Class conditions from indices or names (``"3,7"``, ``["cat", 7]``); None: every class in order."""
    if spec.kind != "class":
        raise SamplingError(f"this model's condition is {spec.kind!r}, not a class label: "
                            f"give {'tags' if spec.kind == 'multilabel' else 'vectors'} instead of classes")
    names = _check_names(class_names, spec)
    if classes is None:
        indices = list(range(spec.num_classes))
    else:
        indices = [_index(t, spec.num_classes, names, "class") for t in _tokens(classes, "classes")]
        if not indices:
            raise SamplingError("no classes given: name at least one class (e.g. 3,7)")
    labels = tuple(names[k] if names else str(k) for k in indices)
    return Conditions(torch.tensor(indices, dtype=torch.int64), labels)


def tag_conditions(spec: ConditionSpec, tags: Sequence[str | Sequence[str | int]] | None = None,
                   class_names: Sequence[str] | None = None) -> Conditions:
    """Multi-hot tag conditions, one per entry of ``tags``: ``"smiling,blond"`` or ``["smiling", 3]``
    (an empty entry: no tag). None: each tag alone."""
    if spec.kind != "multilabel":
        raise SamplingError(f"this model's condition is {spec.kind!r}, not tags: give "
                            f"{'classes' if spec.kind == 'class' else 'vectors'} instead of tags")
    names = _check_names(class_names, spec)
    if tags is None:
        tags = [[k] for k in range(spec.num_classes)]
    elif isinstance(tags, str):
        tags = [tags]
    rows, labels = [], []
    for entry in tags:
        row = torch.zeros(spec.num_classes)
        picked = sorted({_index(t, spec.num_classes, names, "tag") for t in _tokens(entry, "tags")})
        row[picked] = 1.0
        rows.append(row)
        labels.append("+".join(names[k] if names else str(k) for k in picked) or "none")
    if not rows:
        raise SamplingError("no tag lists given: give at least one (e.g. smiling,blond)")
    return Conditions(torch.stack(rows), tuple(labels))


def load_vectors(source: str | Path | np.ndarray | Tensor, dim: int) -> Tensor:
    """Float vectors (K, dim) from a ``.npy`` file (no pickles), a ``.txt`` (whitespace or commas) or
    ``.csv`` file (one vector per line), or an array. A single row of ``dim`` values is one vector."""
    where = "vectors"
    if isinstance(source, (str, Path)):
        path, where = Path(source), f"vectors in {source}"
        if path.suffix not in VECTOR_SUFFIXES:
            raise SamplingError(f"vector file {str(path)!r} must be {', '.join(VECTOR_SUFFIXES)}")
        if not path.is_file():
            raise SamplingError(f"vector file {str(path)!r} does not exist")
        try:
            if path.suffix == ".npy":
                array = np.load(path, allow_pickle=False)
            else:
                text = path.read_text()
                array = np.loadtxt(text.splitlines(), delimiter="," if "," in text else None, ndmin=2, dtype=np.float64)
        except (ValueError, OSError) as exc:
            raise SamplingError(f"cannot read vector file {str(path)!r}: {str(exc).splitlines()[0][:200]}") from None
    else:
        array = source.detach().cpu().numpy() if isinstance(source, Tensor) else np.asarray(source)
    if not np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_:
        raise SamplingError(f"{where} must be numbers, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise SamplingError(f"{where} must be a (K, {dim}) table of K >= 1 vectors, got shape {array.shape}")
    if array.shape[1] != dim:
        raise SamplingError(f"{where} have length {array.shape[1]}, but this model's condition is a vector of {dim}")
    if not np.isfinite(array).all():
        raise SamplingError(f"{where} contain NaN or inf")
    return torch.from_numpy(array.astype(np.float32))


def vector_conditions(spec: ConditionSpec, vectors: str | Path | np.ndarray | Tensor) -> Conditions:
    """Vector conditions (labels ``v0``, ``v1``, ...: the row of each) from :func:`load_vectors`'s sources."""
    if spec.kind != "vector":
        raise SamplingError(f"this model's condition is {spec.kind!r}, not a vector: give "
                            f"{'classes' if spec.kind == 'class' else 'tags'} instead of vectors")
    y = load_vectors(vectors, spec.dim)
    return Conditions(y, tuple(f"v{i}" for i in range(len(y))))


def make_conditions(model: Any, *, classes=None, tags=None, vectors=None, class_names: Sequence[str] | None = None) -> Conditions:
    """The conditions a user means for ``model`` (a generator, or a :class:`ConditionSpec`).

    Give at most one of ``classes`` (indices or names), ``tags`` (lists of tag names or indices)
    and ``vectors`` (a file or an array), the one that fits the model's condition kind. With none,
    a class model gets every class in order and a tag model each tag alone; a vector model needs
    ``vectors``. Names come from ``class_names``, else from the model's config.

    Example:
        >>> make_conditions(G, classes=["cat", 7]).y
        tensor([3, 7])
    """
    spec = model if isinstance(model, ConditionSpec) else model.spec
    if class_names is None and not isinstance(model, ConditionSpec):
        class_names = class_names_of(model)
    given = [name for name, value in (("classes", classes), ("tags", tags), ("vectors", vectors)) if value is not None]
    if len(given) > 1:
        raise SamplingError(f"give one kind of condition, got {' and '.join(given)}")
    if spec.kind == "class" and tags is None and vectors is None:
        return class_conditions(spec, classes, class_names)
    if spec.kind == "multilabel" and classes is None and vectors is None:
        return tag_conditions(spec, tags, class_names)
    if spec.kind == "vector" and classes is None and tags is None:
        if vectors is None:
            raise SamplingError("this model's condition is a float vector: give vectors (a .npy, .txt or .csv file of rows)")
        return vector_conditions(spec, vectors)
    wanted = {"class": "classes", "multilabel": "tags", "vector": "vectors"}[spec.kind]
    raise SamplingError(f"this model's condition is {spec.kind!r}: give {wanted}, not {given[0]}")


# -- noise ----------------------------------------------------------------------------------------------
def check_truncation(threshold: Any) -> float:
    """``threshold`` as a float, or a :class:`SamplingError` unless it is a finite number > 0."""
    if (not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or not math.isfinite(threshold)
            or not threshold > 0):
        raise SamplingError(f"truncation must be a number > 0 (z is drawn from a normal cut at +/- that value), got {threshold!r}")
    return float(threshold)


def truncated_normal(shape: Sequence[int], threshold: float, *, device: torch.device | str | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """A standard normal truncated to [-threshold, threshold], drawn on ``device``.

    BigGAN redraws the values beyond the threshold until none is left; this draws from the same
    distribution in one pass and without a data-dependent loop: ``|z| = -ndtri(u)`` for ``u`` uniform
    in (Phi(-t), 1/2] (the lower half of the normal, computed where float32 is precise) and a random
    sign. Every value lies in [-t, t].

    Shape:
        - output: ``shape``.

    Example:
        >>> truncated_normal((4, 100), 0.5).abs().max() <= 0.5
        tensor(True)
    """
    t = check_truncation(threshold)
    low = torch.special.ndtr(torch.tensor(-t, dtype=torch.float64)).item()  # Phi(-t), in float64 on the host
    u = torch.rand(*shape, device=device, generator=generator)  # [0, 1)
    u = low + (0.5 - low) * (1.0 - u)  # (low, 0.5]
    magnitude = (-torch.special.ndtri(u)).clamp_(0.0, t)
    sign = torch.randint(0, 2, tuple(shape), device=device, generator=generator).mul_(2).sub_(1)
    return magnitude * sign


def sample_noise(model: Any, n: int, *, truncation: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """z (n, latent_dim) for ``model`` on its device: its own noise, or a truncated normal at ``truncation``."""
    device = next(model.parameters()).device
    if truncation is None:
        return model.sample_noise(n, device, generator)
    t = check_truncation(truncation)
    if model.noise != "normal":
        raise SamplingError(f"truncation cuts a normal z, but this model draws {model.noise!r} noise")
    return truncated_normal((n, model.latent_dim), t, device=device, generator=generator)


def _rng(model: Any, seed: int) -> torch.Generator:
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise SamplingError(f"seed must be an int >= 0, got {seed!r}")
    return torch.Generator(device=next(model.parameters()).device).manual_seed(int(seed))


def _count(value: Any, what: str, low: int = 1) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        raise SamplingError(f"{what} must be an int >= {low}, got {value!r}")
    return int(value)


def _pixel_range(model: Any) -> tuple[float, float]:
    return tuple(getattr(getattr(model, "config", None), "pixel_range", (-1.0, 1.0)))


def is_image_model(model: Any) -> bool:
    """True unless the model says it makes another output kind (``model.output``: vectors, ...)."""
    output = getattr(model, "output", None)
    return output is None or output.name == "image"


def _finish(model: Any, samples: Tensor) -> Tensor:
    """Samples as the user gets them, on the CPU: images mapped to [0, 1], other outputs as made."""
    if is_image_model(model):
        return to_unit(samples.float(), _pixel_range(model)).cpu()
    return samples.float().cpu()


# -- samples --------------------------------------------------------------------------------------------
@dataclass
class Samples:
    """Generated images (or vectors, ...) with their conditions.

    Args:
        images: (N, C, H, W) float32 in [0, 1], on the CPU, grouped by condition; for a model of
            another output kind, its outputs (N, *shape) as the generator makes them.
        y: (N,) or (N, width): each image's condition.
        labels: each image's label text.
        columns: how many conditions there were (image i is condition ``i // per_condition``).
    """

    images: Tensor
    y: Tensor
    labels: tuple[str, ...]
    columns: int


@torch.no_grad()
def generate(model: Any, conditions: Conditions, per_condition: int = 1, *, seed: int = 0, truncation: float | None = None,
             batch_size: int = 1000) -> Samples:
    """``per_condition`` images of each condition, from a seeded generator on the model's device.

    Without truncation, z is the model's own noise, so the images equal ``model.sample(y)`` with
    ``generator=torch.Generator(device).manual_seed(seed)``.
    """
    per_condition, batch_size = _count(per_condition, "per_condition"), _count(batch_size, "batch_size")
    if truncation is not None:
        check_truncation(truncation)
    y = conditions.y.repeat_interleave(per_condition, dim=0)  # (N, ...) grouped by condition
    labels = tuple(label for label in conditions.labels for _ in range(per_condition))
    rng = _rng(model, seed)
    chunks = []
    device = rng.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if not is_image_model(model):  # a head may draw noise of its own (a table's Gumbel-softmax): seeded too
            torch.manual_seed(seed)
        for start in range(0, len(y), batch_size):
            part = y[start:start + batch_size]
            z = sample_noise(model, len(part), truncation=truncation, generator=rng)
            chunks.append(_finish(model, model.sample(part, z=z)))
    return Samples(torch.cat(chunks), y, labels, len(conditions))


@dataclass
class Interpolation:
    """A grid of interpolated images.

    Args:
        images: (R, S, C, H, W) float32 in [0, 1] on the CPU: row r, step s.
        row_labels: R texts; column_labels: S texts.
        weights: the S interpolation weights t in [0, 1] (the first column is t = 0).
    """

    images: Tensor
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    weights: Tensor


def _weights(steps: int) -> Tensor:
    steps = _count(steps, "steps", 2)
    return torch.linspace(0.0, 1.0, steps)  # exact 0 and 1 at the ends


def _mix(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """(1 - t) a + t b for each t: a, b (R, D), t (S,) -> (R, S, D); a and b exactly at t = 0 and 1."""
    t = t.to(a.device, a.dtype)[None, :, None]
    return (1 - t) * a[:, None] + t * b[:, None]


@torch.no_grad()
def _forward(model: Any, z: Tensor, y: Tensor) -> Tensor:
    """G(z, y) in eval mode, without the boundary checks (y may be a soft condition)."""
    was_training = model.training
    model.eval()
    try:
        return model(z, y, check=False)
    finally:
        model.train(was_training)


@torch.no_grad()
def interpolate_z(model: Any, conditions: Conditions, steps: int, *, per_condition: int = 1, seed: int = 0,
                  truncation: float | None = None) -> Interpolation:
    """Images along the line from z0 to z1 at each fixed condition.

    ``per_condition`` pairs (z0, z1) are drawn (pair k is the same for every condition), so row
    ``c * per_condition + k`` shows condition c along pair k. The first and last columns are the
    samples at z0 and z1 exactly.
    """
    per_condition = _count(per_condition, "per_condition")
    t = _weights(steps)
    rng = _rng(model, seed)
    z0 = sample_noise(model, per_condition, truncation=truncation, generator=rng)
    z1 = sample_noise(model, per_condition, truncation=truncation, generator=rng)
    path = _mix(z0, z1, t)  # (P, S, latent)
    device = z0.device
    rows, labels = [], []
    for y, label in zip(conditions.y, conditions.labels):
        ys = y[None].expand(per_condition * len(t), *y.shape).to(device)
        images = model.sample(ys, z=path.reshape(-1, path.shape[-1]))
        rows.append(images.view(per_condition, len(t), *images.shape[1:]))
        labels += [label] * per_condition
    images = _finish(model, torch.cat(rows))
    return Interpolation(images, tuple(labels), tuple(f"t={w:.2f}" for w in t.tolist()), t)


def soft_conditioners() -> list[str]:
    """Registered generator conditioners that define class interpolation (``soft_conditions``)."""
    from .plugins import list_components

    return [info.name for info in list_components("conditioner")
            if getattr(info.obj, "soft_conditions", False) and "generator" in getattr(info.obj, "roles", ())]


def check_soft_conditions(model: Any) -> None:
    """A :class:`SamplingError` unless conditions between two conditions mean something for ``model``."""
    if model.spec.kind == "vector":
        return  # between two float vectors is a vector: every conditioner takes it
    conditioner = model.conditioner
    if not getattr(conditioner, "soft_conditions", False):
        name = getattr(conditioner, "name", type(conditioner).__name__)
        raise SamplingError(f"interpolation between {'classes' if model.spec.kind == 'class' else 'tag sets'} is not defined "
                            f"for the conditioner {name!r} (it does not set soft_conditions); conditioners that define it: "
                            f"{', '.join(soft_conditioners())}. Interpolate z instead")


@torch.no_grad()
def interpolate_conditions(model: Any, conditions: Conditions, steps: int, *, per_condition: int = 1, seed: int = 0,
                           truncation: float | None = None) -> Interpolation:
    """Images from the first of two conditions to the second, each row at a fixed z.

    The condition at weight t is ``(1 - t) a + t b`` of the dense conditions (mixed one-hot
    vectors for classes, which each conditioner maps as the same mixture of its class codes: see
    the module docstring). ``per_condition`` rows, each its own z. The first and last columns are
    the samples of the two conditions exactly.

    Raises:
        SamplingError: not exactly two conditions, or a conditioner without ``soft_conditions``.
    """
    if len(conditions) != 2:
        raise SamplingError(f"condition interpolation goes from one condition to another: give exactly two, got {len(conditions)}")
    check_soft_conditions(model)
    per_condition = _count(per_condition, "per_condition")
    t = _weights(steps)
    rng = _rng(model, seed)
    z = sample_noise(model, per_condition, truncation=truncation, generator=rng)  # (R, latent)
    dense = model.spec.to_dense(conditions.y.to(z.device), z.dtype)  # (2, width)
    ys = _mix(dense[:1], dense[1:], t)[0]  # (S, width)
    zs = z[:, None].expand(-1, len(t), -1).reshape(-1, z.shape[1])  # (R * S, latent): row r is z[r]
    ys = ys[None].expand(per_condition, -1, -1).reshape(-1, ys.shape[-1])  # (R * S, width)
    images = _forward(model, zs, ys)
    images = _finish(model, images.view(per_condition, len(t), *images.shape[1:]))
    a, b = conditions.labels
    columns = tuple(a if i == 0 else b if i == len(t) - 1 else f"{w:.2f}" for i, w in enumerate(t.tolist()))
    return Interpolation(images, tuple(f"z{r}" for r in range(per_condition)), columns, t)
