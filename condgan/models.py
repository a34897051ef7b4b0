"""The conditional generator and discriminator: a conditioner composed with a backbone."""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .augment import check_augment_class
from .conditioners import Conditioner
from .conditions import ConditionSpec
from .config.values import construct
from .layers import check_int
from .outputs import OutputSpec, as_output
from .plugins import get_component, get_registry

NOISES: dict[str, Callable[..., Tensor]] = {
    "normal": torch.randn,  # N(0, 1), the reference
    "uniform": torch.rand,  # U[0, 1), the paper's unit hypercube
}


def check_backbone_output(backbone_cls: type, output: OutputSpec, role: str) -> None:
    """ValueError (one line) unless the backbone class lists ``output``'s kind in its ``outputs``:
    the kinds it makes as a generator and reads as a discriminator."""
    kinds = tuple(getattr(backbone_cls, "outputs", ("image",)))
    if output.name in kinds:
        return
    able = sorted(info.name for info in get_registry().tables()["backbone"].values()
                  if output.name in getattr(info.obj, "outputs", ("image",)))
    name = getattr(backbone_cls, "name", backbone_cls.__name__)
    verb = "makes" if role == "generator" else "reads"
    raise ValueError(f"the {role}'s backbone {name!r} {verb} {', '.join(kinds)} outputs only, and this model's output is "
                     f"{output.describe()}: choose a backbone for {output.name}s ({', '.join(able) or 'none is registered'})")


def _compose(role, spec, in_shape, out_shape, conditioner, conditioner_options, backbone, backbone_options, output=None):
    """Build the conditioner, then the backbone on the joined input, then the conditioner's output part."""
    cond_cls = get_component("conditioner", conditioner)
    if not (isinstance(cond_cls, type) and issubclass(cond_cls, Conditioner)):
        raise TypeError(f"conditioner must be a registered name or a Conditioner subclass, got {conditioner!r}")
    extra = {"output": output} if getattr(cond_cls, "takes_output", False) else {}
    cond = construct(cond_cls, spec, role, **extra, **options(conditioner_options, "conditioner_options"))
    backbone_cls = get_component("backbone", backbone)
    if not (isinstance(backbone_cls, type) and issubclass(backbone_cls, nn.Module) and hasattr(backbone_cls, "flat_input")):
        raise TypeError(f"backbone must be a registered name or a Backbone subclass, got {backbone!r}")
    if output is not None:
        check_backbone_output(backbone_cls, output, role)
    backbone_options = options(backbone_options, "backbone_options")
    if backbone_cls.flat_input:
        in_shape = (math.prod(in_shape),)
    cond.setup_input(tuple(in_shape))
    net = construct(backbone_cls, cond.joined_shape(tuple(in_shape)), tuple(out_shape), conditioner=cond, **backbone_options)
    cond.setup(net.feature_dim)
    return cond, net


def options(value: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    """A component's keyword options as a dict (None: none), or ValueError naming ``what``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{what} must be a dict of keyword options (or None), got {value!r}")
    return dict(value)


def check_image_shape(image_shape: Any) -> tuple[int, ...]:
    """``image_shape`` as a tuple of ints, or ValueError unless it is a sequence of ints >= 1, e.g. (C, H, W)."""
    if (not isinstance(image_shape, Sequence) or isinstance(image_shape, str) or not image_shape
            or not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in image_shape)):
        raise ValueError(f"image_shape must be a sequence of ints >= 1, e.g. (C, H, W), got {image_shape!r}")
    return tuple(int(s) for s in image_shape)


def _output(value: Any) -> OutputSpec:
    """The output spec of a network: a spec as is, a shape checked and read as an image or a vector."""
    return value if isinstance(value, OutputSpec) else as_output(check_image_shape(value))


def check_tensor(value: Any, what: str) -> None:
    """ValueError unless ``value`` is a tensor (a list or a NumPy array is not: convert it with torch.as_tensor)."""
    if not isinstance(value, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(value).__name__}")


def check_matches(x: Tensor, what: str, module: nn.Module, role: str) -> None:
    """ValueError unless the float tensor x has ``module``'s dtype and device (under autocast any float dtype
    is accepted: autocast casts the inputs of each op)."""
    param = next(module.parameters(), None)
    if param is None:
        return
    if x.device != param.device:
        raise ValueError(f"{what} is on {x.device}, the {role} on {param.device}: they must match")
    if x.dtype != param.dtype and not torch.is_autocast_enabled(x.device.type):
        raise ValueError(f"{what} must have the {role}'s dtype {param.dtype}, got dtype {x.dtype}")


def check_matches_device(y: Tensor, module: nn.Module) -> None:
    """ValueError unless the condition y is on ``module``'s device."""
    param = next(module.parameters(), None)
    if param is not None and y.device != param.device:
        raise ValueError(f"condition y is on {y.device}, the model on {param.device}: they must match")


def check_images(x: Tensor, image_shape: Sequence[int], *, values: bool = True) -> None:
    """Raise ValueError unless x is a float (B, *image_shape) batch (and finite, with ``values``)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(x).__name__}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"images must be a float tensor, got dtype {x.dtype}")
    if x.dim() != 1 + len(image_shape) or tuple(x.shape[1:]) != tuple(image_shape):
        raise ValueError(f"images must have shape (B, {', '.join(map(str, image_shape))}), got {tuple(x.shape)}")
    if values and x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError("images contain NaN or inf")


class ConditionalGenerator(nn.Module):
    """G(z | y): noise and a condition to an output (an image, a vector, ...).

    Args:
        spec: the condition.
        image_shape: what G makes: an :class:`~condgan.outputs.OutputSpec`, or a shape: (C, H, W)
            an image, (D,) a vector. ``self.output`` is the spec, ``self.image_shape`` its shape.
        latent_dim: size of z.
        conditioner, backbone: registered names or classes; ``*_options`` are their keyword args.
        noise: ``"normal"`` or ``"uniform"`` (see ``NOISES``).

    Shape:
        - z: (B, latent_dim); y: as ``spec``; output: (B, *image_shape), e.g. (B, C, H, W) or (B, D).

    Example:
        >>> G = ConditionalGenerator(ConditionSpec("class", 10), (1, 28, 28), 64)
        >>> G.sample(torch.arange(10)).shape
        torch.Size([10, 1, 28, 28])
    """

    def __init__(
        self,
        spec: ConditionSpec,
        image_shape: OutputSpec | Sequence[int],
        latent_dim: int,
        *,
        conditioner: Any = "embedding",
        conditioner_options: Mapping[str, Any] | None = None,
        backbone: Any = "mlp",
        backbone_options: Mapping[str, Any] | None = None,
        noise: str = "normal",
    ):
        super().__init__()
        if not isinstance(noise, str) or noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}; available: {', '.join(NOISES)}")
        if not isinstance(spec, ConditionSpec):
            raise TypeError(f"spec must be a ConditionSpec, got {type(spec).__name__}")
        latent_dim = check_int(latent_dim, "latent_dim")
        self.output = _output(image_shape)
        self.spec, self.image_shape, self.latent_dim, self.noise = spec, self.output.shape, latent_dim, noise
        self.conditioner, self.backbone = _compose(
            "generator", spec, (self.latent_dim,), self.image_shape, conditioner, conditioner_options, backbone, backbone_options,
            self.output,
        )
        self.output_head = self.output.make_head()  # None for images and vectors: nothing added to their forward

    def forward(self, z: Tensor, y: Tensor, *, check: bool = True) -> Tensor:
        if check:
            check_tensor(z, "noise z")
            if z.dim() != 2 or z.shape[1] != self.latent_dim or not z.dtype.is_floating_point:
                raise ValueError(f"noise z must be a float tensor of shape (B, {self.latent_dim}), got {tuple(z.shape)} {z.dtype}")
            check_matches(z, "noise z", self, "generator")
            if not bool(torch.isfinite(z).all()):
                raise ValueError("noise z contains NaN or inf")
            self.spec.check(y, z.shape[0])
            check_matches_device(y, self)
        return self.generate(z, y)[0]

    def generate(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor | None]:
        """The output for (z, y), unchecked, and the conditioner's generator loss on the raw output
        (None for most conditioners; the training step adds it to G's loss)."""
        x = self.conditioner.join(z, y)  # (B, latent_dim + input_features)
        h = self.backbone.features(x, y)  # (B, feature_dim)
        out = self.conditioner.output(h, self.backbone.head(h), y)  # (B, *output.shape)
        extra = self.conditioner.generator_loss(out, y)
        return (out if self.output_head is None else self.output_head(out)), extra

    def sample_noise(self, n: int, device: torch.device | str | None = None, generator: torch.Generator | None = None) -> Tensor:
        """z of shape (n, latent_dim) from this generator's noise distribution, drawn on ``device``."""
        device = device if device is not None else next(self.parameters()).device
        return NOISES[self.noise](n, self.latent_dim, device=device, generator=generator)

    @torch.no_grad()
    def sample(self, y: Tensor, *, z: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """Images for the conditions y, in eval mode (BatchNorm running stats, no dropout).

        y is moved to the generator's device; z is drawn there unless given.
        """
        device = next(self.parameters()).device
        check_tensor(y, "condition y")
        y = y.to(device)
        self.spec.check(y)
        if z is not None:
            check_tensor(z, "noise z")
        z = self.sample_noise(y.shape[0], device, generator) if z is None else z.to(device)
        was_training = self.training
        self.eval()
        try:
            return self(z, y)
        finally:
            self.train(was_training)


class ConditionalDiscriminator(nn.Module):
    """D(x | y): an image (or vector, ...) and a condition to a raw score (no sigmoid; losses take logits).

    Args:
        spec: the condition.
        image_shape: what D judges: an :class:`~condgan.outputs.OutputSpec` or a shape, as in
            :class:`ConditionalGenerator`.
        conditioner, backbone: registered names or classes; ``*_options`` are their keyword args.
        augment: None, or a registered augmentation (name or :class:`~condgan.augment.Augment`
            subclass) built with ``augment_options``: in training mode every image D judges (real
            or fake, in D's update and in G's) passes through it first; in eval mode it does not.

    Shape:
        - x: (B, *image_shape); y: as ``spec``; output: (B, 1), or (B / pac, 1) for a backbone that
          packs ``pac`` samples into one judgement (PacGAN; a backbone with ``packs_by_class``
          judges the batch ordered by class, a pack's condition its first sample's).
    """

    treats_samples_apart = True  # layers.batch_independent: no batch statistics of its own

    def __init__(
        self,
        spec: ConditionSpec,
        image_shape: OutputSpec | Sequence[int],
        *,
        conditioner: Any = "embedding",
        conditioner_options: Mapping[str, Any] | None = None,
        backbone: Any = "mlp",
        backbone_options: Mapping[str, Any] | None = None,
        augment: Any = None,
        augment_options: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        if not isinstance(spec, ConditionSpec):
            raise TypeError(f"spec must be a ConditionSpec, got {type(spec).__name__}")
        self.output = _output(image_shape)
        self.spec, self.image_shape = spec, self.output.shape
        self.conditioner, self.backbone = _compose(
            "discriminator", spec, self.image_shape, (1,), conditioner, conditioner_options, backbone, backbone_options, self.output
        )
        self.augment: nn.Module | None = None
        if augment is not None:
            augment_cls = get_component("augment", augment)
            check_augment_class(augment_cls)
            if len(self.image_shape) != 3:
                raise ValueError(f"augment needs images (C, H, W), got image_shape {self.image_shape}")
            self.augment = construct(augment_cls, **options(augment_options, "augment_options"))
        elif augment_options:
            raise ValueError(f"augment_options {dict(augment_options)} were given without an augment: set augment "
                             "(e.g. 'diffaugment') or drop them")

    @property
    def pac(self) -> int:
        """How many samples the backbone packs into one judgement (PacGAN; 1: none): D's batches
        must be a multiple of it and it returns B / pac scores."""
        return int(getattr(self.backbone, "pac", 1))

    def judge(self, x: Tensor, y: Tensor, *, check: bool = True) -> tuple[Tensor, Tensor | None]:
        """The score (B, 1) and the conditioner's auxiliary loss (or None)."""
        if check:
            check_images(x, self.image_shape, values=False)
            check_matches(x, "images", self, "discriminator")
            check_images(x, self.image_shape)  # values: finite
            self.spec.check(y, x.shape[0])
            check_matches_device(y, self)
        if self.augment is not None:
            x = self.augment(x)  # the identity in eval mode
        pac = self.pac
        if pac > 1 and getattr(self.backbone, "packs_by_class", False):
            order = y.argsort(stable=True)  # packs of one class (but where two classes meet): no host sync
            x, y = x[order], y[order]
        if self.backbone.flat_input:
            x = x.flatten(1)  # (B, C*H*W)
        joined = self.conditioner.join(x, y)
        columns = None
        if self.backbone.partial_input_grad and joined.requires_grad and not x.requires_grad:
            columns = self.conditioner.code_columns(x)  # D's update: only the learned code needs a gradient
        if columns is None:
            h = self.backbone.features(joined, y)  # (B, feature_dim)
        else:
            h = self.backbone.features(joined, y, input_grad_columns=columns)
        y = y if pac == 1 else y[::pac]  # a pack's condition: its first sample's
        score = self.conditioner.output(h, self.backbone.head(h), y)  # (B / pac, 1)
        return score, self.conditioner.auxiliary_loss(h, y)

    def forward(self, x: Tensor, y: Tensor, *, check: bool = True) -> Tensor:
        return self.judge(x, y, check=check)[0]
