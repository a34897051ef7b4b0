"""Backbones: the networks that take the conditioned input.

A :class:`Backbone` maps an input of ``in_shape`` to an output of ``out_shape`` in two parts:
:meth:`Backbone.features` (the trunk, up to the last hidden features ``h`` of width
``feature_dim``) and :meth:`Backbone.head` (``h`` to the output). The model uses the split to let a
conditioner act on ``h`` (projection, auxiliary classifier). A backbone asks its conditioner for
norm layers (:meth:`~condgan.conditioners.Conditioner.make_norm`) and passes y to the
:class:`~condgan.conditioners.ConditionalLayer`s it gets back.
"""

from __future__ import annotations

import math
import numbers
from abc import abstractmethod
from typing import Callable, ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conditioners import ConditionalLayer, ConditionalNorm, Conditioner
from .hookspecs import hookimpl
from .layers import (Dropout, MinibatchStd, apply_spectral_norm, check_int, check_number, current_dropout_draws, dense,
                     init_normal_, linear_some_input_grad, make_activation, own_layers)

NORMS: dict[str, Callable[..., nn.Module]] = {
    "batch": lambda n, eps, momentum: nn.BatchNorm1d(n, eps=eps, momentum=momentum),
    "layer": lambda n, eps, momentum: nn.LayerNorm(n, eps=eps),
}


def per_layer(value, n: int, what: str) -> list:
    """Broadcast a single setting to n layers, or check that a sequence has n entries."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{what} has {len(value)} entries but the network has {n} hidden layers")
        return list(value)
    return [value] * n


class Backbone(nn.Module):
    """Base class of backbones.

    Args:
        in_shape: input shape without the batch dimension (after the conditioner's join).
        out_shape: output shape without the batch dimension.
        conditioner: the network's conditioner, asked for norm layers.
    """

    name: ClassVar[str]
    #: True: the backbone takes flat (B, F) inputs, and the model flattens images before the
    #: conditioner joins y; False: it takes (B, C, H, W) and y is joined as extra channels.
    flat_input: ClassVar[bool] = True
    #: True: ``features`` takes ``input_grad_columns=`` (the columns of x that need a gradient)
    partial_input_grad: ClassVar[bool] = False
    #: why :mod:`condgan.export` must refuse this backbone (None: it traces to TorchScript and ONNX).
    not_exportable: ClassVar[str | None] = None
    #: the output kinds (:mod:`condgan.outputs`) it makes as a generator and reads as a
    #: discriminator; a model of another kind refuses it at build time, in one line.
    outputs: ClassVar[tuple[str, ...]] = ("image",)
    feature_dim: int

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], *, conditioner: Conditioner | None = None):
        super().__init__()
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)

    @abstractmethod
    def features(self, x: Tensor, y: Tensor) -> Tensor:
        """The last hidden features h, shape (B, feature_dim)."""

    @abstractmethod
    def head(self, h: Tensor) -> Tensor:
        """The output from h, shape (B, *out_shape)."""

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.head(self.features(x, y))


class MLP(Backbone):
    """A multilayer perceptron; each hidden block is Linear -> norm -> dropout -> activation.

    A block with ``pieces`` > 1 is a maxout layer instead of Linear + activation (the paper's D).

    Args:
        in_shape, out_shape, conditioner: as :class:`Backbone`; the input is flattened and the
            output reshaped.
        widths: hidden layer widths.
        norm: ``None``, ``"batch"`` or ``"layer"``, for all hidden layers or one per layer.
        norm_eps, norm_momentum: passed by keyword to the norm layers.
        dropout: dropout probability, for all hidden layers or one per layer.
        activation: hidden activation: a name in ``layers.ACTIVATIONS``, a module class or a factory.
        pieces: maxout pieces, for all hidden layers or one per layer (1: a plain Linear layer).
        output_activation: ``None``, ``"tanh"``, ``"sigmoid"``, ... applied after the last Linear.
        spectral_norm: spectral normalisation (Miyato et al. 2018) of every Linear layer, the output
            layer included (not of a conditioner's norm layers); for a discriminator.
        pac: PacGAN packing (Lin et al. 2018; CTGAN's ``pac=10``), for a discriminator: each group
            of ``pac`` consecutive rows is judged as one, their (conditioned) inputs concatenated;
            the batch must be a multiple of ``pac`` and the output has B / pac rows (a WGAN-GP
            penalty groups its gradients the same way, :func:`condgan.losses.gradient_penalty`).

    Shape:
        - x: (B, *in_shape) -> (B, *out_shape), or (B / pac, *out_shape) when packing

    Example:
        >>> MLP((5,), (1,), widths=(8,), pac=4)(torch.randn(8, 5), None).shape
        torch.Size([2, 1])
        >>> g = MLP((110,), (1, 32, 32), widths=(128, 256, 512, 1024),
        ...         norm=(None, "batch", "batch", "batch"), norm_eps=0.8, output_activation="tanh")
    """

    treats_samples_apart = True  # layers.batch_independent: no batch statistics of its own (its norm layers are checked apart)

    name = "mlp"
    partial_input_grad = True
    outputs = ("image", "vector", "table")

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        *,
        conditioner: Conditioner | None = None,
        widths: Sequence[int] = (512, 512),
        norm: str | None | Sequence[str | None] = None,
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        dropout: float | Sequence[float] = 0.0,
        activation: str | type[nn.Module] | Callable[[], nn.Module] = "leaky_relu",
        output_activation: str | type[nn.Module] | Callable[[], nn.Module] | None = None,
        pieces: int | Sequence[int] = 1,
        spectral_norm: bool = False,
        pac: int = 1,
    ):
        super().__init__(in_shape, out_shape, conditioner=conditioner)
        self.pac = check_int(pac, "mlp pac")
        if self.pac > 1:
            self.partial_input_grad = False  # packed rows share the first layer: no per-column shortcut
        if (not isinstance(widths, (list, tuple)) or not widths
                or not all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in widths)):
            raise ValueError(f"widths must be a non-empty sequence of positive ints, got {widths!r}")
        n = len(widths)
        norms, dropouts, all_pieces = per_layer(norm, n, "norm"), per_layer(dropout, n, "dropout"), per_layer(pieces, n, "pieces")
        check_number(norm_eps, "norm_eps")
        check_number(norm_momentum, "norm_momentum", 0.0, 1.0)
        layers: list[nn.Module] = []
        width_in = math.prod(self.in_shape) * self.pac
        for width, norm_name, p, k in zip(widths, norms, dropouts, all_pieces):
            k = check_int(k, "pieces")
            if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p < 1.0:
                raise ValueError(f"dropout must lie in [0, 1), got {p!r}")
            layers.append(dense(width_in, width, k))
            if norm_name not in (None, "none"):
                layers.append(self._norm(conditioner, width, norm_name, norm_eps, norm_momentum))
            if p > 0:
                layers.append(Dropout(p))
            if k == 1:  # a maxout unit is its own nonlinearity
                layers.append(make_activation(activation))
            width_in = width
        self.layers = nn.ModuleList(layers)
        self.out = nn.Linear(width_in, math.prod(self.out_shape))
        self.out_activation = make_activation(output_activation)
        self.feature_dim = width_in
        self._dropout_width = sum(layer_width for layer_width, p in zip(widths, dropouts) if p > 0)
        # batch norm of (B, F) features in training mode needs B >= 2 (checked in features)
        self._batch_norm = any(isinstance(m, nn.BatchNorm1d) or (isinstance(m, ConditionalNorm) and m.norm == "batch")
                               for m in self.layers)
        if spectral_norm:
            apply_spectral_norm(own_layers([self.layers, self.out], skip=(ConditionalLayer,)))

    @staticmethod
    def _norm(conditioner, width, norm_name, eps, momentum) -> nn.Module:
        if not isinstance(norm_name, str) or norm_name not in NORMS:
            raise ValueError(f"unknown norm {norm_name!r}; available: None, {', '.join(sorted(NORMS))}")
        layer = conditioner.make_norm(width, norm_name, eps=eps, momentum=momentum) if conditioner else None
        return layer if layer is not None else NORMS[norm_name](width, eps, momentum)

    def features(self, x: Tensor, y: Tensor, *, input_grad_columns: slice | None = None) -> Tensor:
        """The last hidden features; ``input_grad_columns``: the columns of x that need a gradient
        (None: all of them), which lets the first layer skip the rest's input gradient."""
        if self._batch_norm and self.training and x.shape[0] == 1:
            raise ValueError("batch norm in training mode needs a batch of at least 2, got a batch of 1: "
                             "use a larger batch, or call .eval() to normalise with the running statistics")
        h = x.flatten(1)  # (B, prod(in_shape))
        if self.pac > 1:
            if h.shape[0] % self.pac:
                raise ValueError(f"a discriminator packing pac={self.pac} samples judges batches that are a multiple "
                                 f"of {self.pac}, got a batch of {h.shape[0]}")
            h = h.reshape(h.shape[0] // self.pac, -1)  # (B / pac, pac * prod(in_shape)): a pack's rows side by side
        noise, start = None, 0
        if self.training and self._dropout_width and current_dropout_draws() == "uniform":
            # the masks of the whole pass in one draw, a row per sample (see layers.dropout_draws)
            noise = torch.rand(h.shape[0], self._dropout_width, device=h.device)  # (B, sum of dropout widths)
        for i, layer in enumerate(self.layers):
            if i == 0 and input_grad_columns is not None and type(layer) is nn.Linear and h.requires_grad \
                    and not torch.is_autocast_enabled(h.device.type):
                h = linear_some_input_grad(layer, h, input_grad_columns)
            elif isinstance(layer, ConditionalLayer):
                h = layer(h, y)
            elif noise is not None and isinstance(layer, Dropout):
                h, start = layer(h, noise[:, start:start + h.shape[1]]), start + h.shape[1]
            else:
                h = layer(h)
        return h  # (B, feature_dim)

    def head(self, h: Tensor) -> Tensor:
        return self.out_activation(self.out(h)).unflatten(1, self.out_shape)  # no batch size in the graph (export)


CONV_NORMS: dict[str, Callable[..., nn.Module]] = {
    "batch": lambda n, eps, momentum: nn.BatchNorm2d(n, eps=eps, momentum=momentum),
    "layer": lambda n, eps, momentum: nn.GroupNorm(num_groups=1, num_channels=n, eps=eps),  # over (C, H, W)
}


def upsamplings(height: int, width: int, backbone: str = "dcgan") -> tuple[int, int, int]:
    """(n, h0, w0): the image is (h0 * 2^n, w0 * 2^n), halved n >= 1 times down to a 4..7 pixel side.

    Example: 32x32 -> (3, 4, 4); 64x64 -> (4, 4, 4); 28x28 -> (2, 7, 7); 16x16 -> (2, 4, 4).
    """
    n, h, w = 0, int(height), int(width)
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
        n, h, w = n + 1, h // 2, w // 2
    if n == 0:
        raise ValueError(f"backbone {backbone!r} needs an even height and width of at least 8 (e.g. 16, 28, 32, 64), "
                         f"got {height}x{width}")
    return n, h, w


class ClassMinibatchStd(ConditionalLayer):
    """:class:`~condgan.layers.MinibatchStd` within each class: how varied the batch's samples of a sample's class are.

    For every class of the batch, the standard deviation of each feature over the class's samples,
    averaged over channels and positions, is appended to each of those samples as a constant
    channel (0 for a class with fewer than two samples). A discriminator with it sees a generator
    that gives a class one colour however the classes are mixed in a batch (groups of random
    classes hide that: the classes differ from each other). Tensor operations only: no host sync.

    Args:
        num_classes: the number of classes of y.

    Shape:
        - h: (B, C, H, W); y: (B,) class indices; output: (B, C + 1, H, W)

    Example:
        >>> ClassMinibatchStd(10)(torch.randn(8, 16, 4, 4), torch.randint(0, 10, (8,))).shape
        torch.Size([8, 17, 4, 4])
    """

    def __init__(self, num_classes: int):
        super().__init__()
        self.num_classes = check_int(num_classes, "class minibatch_std num_classes")

    def forward(self, h: Tensor, y: Tensor) -> Tensor:
        b, _, height, width = h.shape
        f = h.flatten(1)  # (B, F)
        onehot = F.one_hot(y, self.num_classes).to(f.dtype)  # (B, K)
        counts = onehot.sum(0)  # (K,)
        mean = onehot.t() @ f / counts.clamp(min=1)[:, None]  # (K, F)
        var = onehot.t() @ (f - mean[y]).square() / counts.clamp(min=1)[:, None]  # (K, F), two passes: stable
        std = (var + 1e-8).sqrt().mean(1) * (counts > 1)  # (K,)
        return torch.cat([h, std[y].view(b, 1, 1, 1).expand(b, 1, height, width)], dim=1)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"


def _class_spec(conditioner: Conditioner | None, option: str):
    """The conditioner's ConditionSpec; ValueError (one line) unless it is a class condition."""
    spec = getattr(conditioner, "spec", None)
    if spec is None or spec.kind != "class":
        raise ValueError(f"dcgan {option} needs a class condition, got "
                         f"{'no conditioner' if spec is None else repr(spec.kind) + ' conditions'}")
    return spec


class DCGAN(Backbone):
    """Convolutional G or D (DCGAN, Radford et al. 2016) for 32x32, 64x64 (or 16, 28, ...) images.

    From "Unsupervised Representation Learning with Deep Convolutional GANs" (Radford et al., ICLR
    2016). ``out_shape`` says which network it is:

    - Generator (``out_shape`` is (C, H, W); flat input, e.g. z joined with a code):
      Linear to (width * 2^(n-1), h0, w0) -> norm -> activation, then n - 1 blocks of
      ConvTranspose2d (kernel 4, stride 2: doubles the size, halves the channels) -> norm ->
      activation, ending at (width, H/2, W/2) = h; the head is a last ConvTranspose2d to (C, H, W)
      and ``output_activation`` (default tanh).
    - Discriminator (any other ``out_shape``, e.g. (1,); input (C + k, H, W), the condition joined
      as channels): n blocks of Conv2d (kernel 4, stride 2: halves the size, doubles the channels)
      -> norm (not on the first block) -> activation, down to (width * 2^(n-1), h0, w0), flattened
      to h; the head is a Linear layer (default: no output activation, a raw score).

    The image side is h0 * 2^n with h0 in 4..7 (:func:`upsamplings`): 32 and 64 (h0 = 4), 28 (7),
    16, ... Norm layers are asked from the conditioner, so conditional batch norm ("cbn") works.

    Args:
        in_shape, out_shape, conditioner: as :class:`Backbone`.
        width: channels of the widest-resolution hidden layer (DCGAN's 64); they double at each
            halving of the resolution.
        norm: ``"batch"``, ``"layer"`` or ``None``.
        norm_eps, norm_momentum: passed by keyword to the norm layers.
        activation: hidden activation; default ``"relu"`` in G, ``"leaky_relu"`` (0.2) in D, as DCGAN.
        output_activation: default ``"tanh"`` in G, none in D; ``None`` for none.
        spectral_norm: spectral normalisation (Miyato et al. 2018) of every conv and Linear layer.
        init_std: DCGAN's N(0, init_std) initialisation of those layers; ``None``: PyTorch's default.
        minibatch_std: discriminator only: the group size of a :class:`~condgan.layers.MinibatchStd`
            channel after the last block (StyleGAN's 4), which lets D see how varied a batch is;
            ``"class"``: a :class:`ClassMinibatchStd` channel (the spread within each class, for a
            class condition: against a G that gives a class one colour); 0 (default): none.
        pac: discriminator only, for a class condition: PacGAN packing (Lin et al. 2018), each
            group of ``pac`` consecutive samples judged as one, their channels side by side (the
            first conv sees ``pac * (C + k)`` channels). :class:`~condgan.models.ConditionalDiscriminator`
            orders each batch by class first (``packs_by_class``), so that a pack holds one class
            and D sees whether two samples of a class differ (against a G that gives a class one
            colour); a pack's condition is its first sample's. 1 (default): none.

    Shape:
        - generator: (B, F) -> (B, C, H, W); discriminator: (B, C + k, H, W) -> (B / pac, *out_shape).

    Example:
        >>> DCGAN((110,), (3, 64, 64))(torch.randn(2, 110), None).shape
        torch.Size([2, 3, 64, 64])
        >>> DCGAN((3, 32, 32), (1,), norm=None, spectral_norm=True)(torch.randn(2, 3, 32, 32), None).shape
        torch.Size([2, 1])
    """

    name = "dcgan"
    flat_input = False
    outputs = ("image",)
    packs_by_class = True  # with pac > 1: ConditionalDiscriminator orders the batch by class first

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        *,
        conditioner: Conditioner | None = None,
        width: int = 64,
        norm: str | None = "batch",
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        activation: str | type[nn.Module] | Callable[[], nn.Module] | None = None,
        output_activation: str | type[nn.Module] | Callable[[], nn.Module] | None = "auto",
        spectral_norm: bool = False,
        init_std: float | None = 0.02,
        minibatch_std: int | str = 0,
        pac: int = 1,
    ):
        super().__init__(in_shape, out_shape, conditioner=conditioner)
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"dcgan width must be an int >= 1, got {width!r}")
        self.pac = check_int(pac, "dcgan pac")
        if self.pac > 1:
            if len(self.out_shape) == 3:
                raise ValueError(f"dcgan pac is a discriminator option (a generator's samples must not depend on "
                                 f"each other), got pac={pac!r} for a generator")
            _class_spec(conditioner, "pac > 1 packs samples of one class and")
        if minibatch_std == "class":
            self.minibatch_std, self._num_classes = "class", _class_spec(conditioner, "minibatch_std='class'").num_classes
        elif isinstance(minibatch_std, numbers.Integral) and not isinstance(minibatch_std, bool) and minibatch_std >= 0:
            self.minibatch_std = int(minibatch_std)
        else:
            raise ValueError(f"dcgan minibatch_std must be a group size (an int >= 0) or 'class', got {minibatch_std!r}")
        if not (norm is None or isinstance(norm, str)) or norm not in (None, "none", *CONV_NORMS):
            raise ValueError(f"unknown norm {norm!r}; available: None, {', '.join(sorted(CONV_NORMS))}")
        self.generates = len(self.out_shape) == 3
        if self.generates and self.minibatch_std:
            raise ValueError(f"dcgan minibatch_std is a discriminator option (a generator's samples must not "
                             f"depend on each other), got minibatch_std={minibatch_std!r} for a generator")
        if activation is None:
            activation = "relu" if self.generates else "leaky_relu"
        if output_activation == "auto":
            output_activation = "tanh" if self.generates else None
        norm = None if norm == "none" else norm
        check_number(norm_eps, "norm_eps")
        check_number(norm_momentum, "norm_momentum", 0.0, 1.0)

        def make_norm(channels: int) -> list[nn.Module]:
            """[the norm layer for ``channels``] (the conditioner's, else the plain one), or []."""
            if norm is None:
                return []
            layer = conditioner.make_norm(channels, norm, eps=norm_eps, momentum=norm_momentum) if conditioner else None
            return [layer if layer is not None else CONV_NORMS[norm](channels, norm_eps, norm_momentum)]

        build = self._build_generator if self.generates else self._build_discriminator
        build(width, make_norm, activation, bias=norm is None)
        self.out_activation = make_activation(output_activation)
        layers = list(own_layers([self.layers, self.out], skip=(ConditionalLayer,)))
        if init_std is not None:
            init_normal_(layers, init_std)
        if spectral_norm:
            apply_spectral_norm(layers)

    def _build_generator(self, width: int, make_norm: Callable[[int], list[nn.Module]], activation, *, bias: bool) -> None:
        if len(self.in_shape) != 1:
            raise ValueError(f"a dcgan generator takes a flat input (B, F), got input shape {self.in_shape}")
        channels, height, wide = self.out_shape
        n, h0, w0 = upsamplings(height, wide)
        c = width * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.Linear(self.in_shape[0], c * h0 * w0, bias=bias),  # no bias before a norm layer
            nn.Unflatten(1, (c, h0, w0)),  # (B, c, h0, w0)
            *make_norm(c),
            make_activation(activation),
        ]
        for _ in range(n - 1):  # (B, c, s, s) -> (B, c / 2, 2s, 2s)
            layers += [nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=bias), *make_norm(c // 2),
                       make_activation(activation)]
            c //= 2
        self.layers = nn.ModuleList(layers)
        self._hidden_shape = (c, height // 2, wide // 2)
        self.feature_dim = math.prod(self._hidden_shape)
        self.out = nn.ConvTranspose2d(c, channels, 4, stride=2, padding=1)

    def _build_discriminator(self, width: int, make_norm: Callable[[int], list[nn.Module]], activation, *, bias: bool) -> None:
        if len(self.in_shape) != 3:
            raise ValueError(f"a dcgan discriminator takes images (B, C, H, W), got input shape {self.in_shape}")
        channels, height, wide = self.in_shape
        n, h0, w0 = upsamplings(height, wide)
        layers: list[nn.Module] = [nn.Conv2d(channels * self.pac, width, 4, stride=2, padding=1),
                                   make_activation(activation)]
        c = width
        for _ in range(n - 1):  # (B, c, s, s) -> (B, 2c, s / 2, s / 2)
            layers += [nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=bias), *make_norm(2 * c), make_activation(activation)]
            c *= 2
        if self.minibatch_std:  # (B, c + 1, h0, w0)
            layers.append(ClassMinibatchStd(self._num_classes) if self.minibatch_std == "class"
                          else MinibatchStd(self.minibatch_std))
            c += 1
        self.layers = nn.ModuleList(layers)
        self.feature_dim = c * h0 * w0
        self.out = nn.Linear(self.feature_dim, math.prod(self.out_shape))

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        h = x
        if self.pac > 1:
            if x.shape[0] % self.pac:
                raise ValueError(f"a discriminator packing pac={self.pac} samples judges batches that are a multiple "
                                 f"of {self.pac}, got a batch of {x.shape[0]}")
            h = x.flatten(0, 1).unflatten(0, (-1, self.pac * x.shape[1]))  # (B / pac, pac * C, H, W)
            y = y[::self.pac] if y is not None else None  # a pack's condition: its first sample's
        for layer in self.layers:
            h = layer(h, y) if isinstance(layer, ConditionalLayer) else layer(h)
        return h.flatten(1)  # (B / pac, feature_dim)

    def head(self, h: Tensor) -> Tensor:
        if self.generates:
            h = h.unflatten(1, self._hidden_shape)  # (B, width, H/2, W/2); no batch size in the graph (export)
        return self.out_activation(self.out(h)).flatten(1).unflatten(1, self.out_shape)


class ResMLP(Backbone):
    """A residual MLP: Linear to ``width``, then ``blocks`` pre-activation residual blocks
    (norm -> activation -> Linear -> norm -> activation -> Linear, plus the identity), a last norm
    and activation (h), and a Linear head (``output_activation`` after it).

    For vectors and other flat outputs where a deeper network than :class:`MLP` helps (a
    many-to-many map with several modes per condition); the blocks keep the width, so depth costs
    no extra input features.

    Args:
        in_shape, out_shape, conditioner: as :class:`Backbone`; the input is flattened and the
            output reshaped.
        width: the width of every block.
        blocks: the number of residual blocks.
        norm: ``None``, ``"batch"`` or ``"layer"`` (asked from the conditioner, so ``cbn`` works).
        activation: hidden activation (never in place: a block's input is also its shortcut's).
        output_activation: ``None`` (default: a raw vector), ``"tanh"``, ...
        spectral_norm: spectral normalisation of every Linear layer (for a discriminator).

    Shape:
        - x: (B, *in_shape) -> (B, *out_shape)

    Example:
        >>> ResMLP((18,), (2,), width=32, blocks=2)(torch.randn(4, 18), None).shape
        torch.Size([4, 2])
    """

    name = "resmlp"
    outputs = ("image", "vector", "table")

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        *,
        conditioner: Conditioner | None = None,
        width: int = 256,
        blocks: int = 2,
        norm: str | None = "layer",
        activation: str | type[nn.Module] | Callable[[], nn.Module] = "leaky_relu",
        output_activation: str | type[nn.Module] | Callable[[], nn.Module] | None = None,
        spectral_norm: bool = False,
    ):
        super().__init__(in_shape, out_shape, conditioner=conditioner)
        width, blocks = check_int(width, "resmlp width"), check_int(blocks, "resmlp blocks")
        norm = None if norm == "none" else norm
        if norm is not None and (not isinstance(norm, str) or norm not in NORMS):
            raise ValueError(f"unknown norm {norm!r}; available: None, {', '.join(sorted(NORMS))}")

        def make_norm() -> nn.Module:
            if norm is None:
                return nn.Identity()
            return MLP._norm(conditioner, width, norm, 1e-5, 0.1)

        self.stem = nn.Linear(math.prod(self.in_shape), width)
        self.blocks = nn.ModuleList(
            nn.ModuleList([make_norm(), _preactivation(activation), nn.Linear(width, width),
                           make_norm(), _preactivation(activation), nn.Linear(width, width)])
            for _ in range(blocks))
        self.out_norm, self.out_act = make_norm(), _preactivation(activation)
        self.out = nn.Linear(width, math.prod(self.out_shape))
        self.out_activation = make_activation(output_activation)
        self.feature_dim = width
        if spectral_norm:
            apply_spectral_norm(own_layers([self.stem, self.blocks, self.out], skip=(ConditionalLayer,)))

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.stem(x.flatten(1))  # (B, width)
        for block in self.blocks:
            r = h
            for layer in block:
                r = _call(layer, r, y)
            h = h + r
        return self.out_act(_call(self.out_norm, h, y))  # (B, width)

    def head(self, h: Tensor) -> Tensor:
        return self.out_activation(self.out(h)).unflatten(1, self.out_shape)


# -- ResNet (SNGAN / BigGAN) ----------------------------------------------------------------------
INITS = ("xavier", "orthogonal", None)
POOLS = ("sum", "flatten")


def _preactivation(activation) -> nn.Module:
    """An activation that never works in place: a residual block's input is also its shortcut's."""
    module = make_activation(activation)
    if hasattr(module, "inplace"):
        module.inplace = False
    return module


def _call(layer: nn.Module, h: Tensor, y: Tensor) -> Tensor:
    return layer(h, y) if isinstance(layer, ConditionalLayer) else layer(h)


class ResBlock(nn.Module):
    """A pre-activation residual block (SNGAN, BigGAN): norm -> act -> [2x nearest up] -> conv3x3 ->
    norm -> act -> conv3x3 -> [2x2 average pool], plus a shortcut ([up] -> conv1x1 -> [pool]) that
    is the identity when the channels and size stay.

    ``first=True`` is SNGAN's "optimized" first block of D: conv3x3 -> norm -> act -> conv3x3 ->
    pool, with the shortcut pool -> conv1x1 (no activation on the raw image).

    Args:
        in_channels, out_channels: channels in and out.
        resample: ``"up"``, ``"down"`` or None.
        make_norm: ``make_norm(channels)`` -> a norm layer (called with y when a ConditionalLayer) or None.
        activation: the hidden activation (never in place).
        first: D's first block.

    Shape:
        - h: (B, in_channels, S, S) -> (B, out_channels, 2S, 2S) (up), (S/2, S/2) (down) or (S, S).
    """

    def __init__(self, in_channels: int, out_channels: int, *, resample: str | None, make_norm: Callable[[int], nn.Module | None],
                 activation, first: bool = False):
        super().__init__()
        if resample not in ("up", "down", None):
            raise ValueError(f"resample must be 'up', 'down' or None, got {resample!r}")
        self.resample, self.first = resample, first
        self.norm1 = make_norm(out_channels if first else in_channels) or nn.Identity()
        self.norm2 = (None if first else make_norm(out_channels)) or nn.Identity()
        self.act1, self.act2 = _preactivation(activation), _preactivation(activation)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels or resample else None

    def _resample(self, h: Tensor, direction: str) -> Tensor:
        if self.resample != direction:
            return h
        if direction == "up":
            return F.interpolate(h, scale_factor=2.0, mode="nearest")
        return F.avg_pool2d(h, 2)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if self.first:
            h = self.act1(_call(self.norm1, self.conv1(x), y))
        else:
            h = self.conv1(self._resample(self.act1(_call(self.norm1, x, y)), "up"))
            h = self.act2(_call(self.norm2, h, y))
        h = self._resample(self.conv2(h), "down")
        if self.shortcut is None:
            return h + x
        # a 1x1 conv commutes with nearest upsampling and average pooling: run it at the smaller size
        if self.resample == "up":
            return h + self._resample(self.shortcut(x), "up")
        return h + self.shortcut(self._resample(x, "down"))


class ResNet(Backbone):
    """Residual G or D in the SNGAN / BigGAN style, any channel count, image sides h0 * 2^n with h0 in 4..7.

    From "Spectral Normalization for GANs" and "cGANs with Projection Discriminator" (Miyato et al.
    2018, Miyato & Koyama 2018: SNGAN's ResNets) and "Large Scale GAN Training" (Brock et al. 2019:
    BigGAN's channel plan). ``out_shape`` says which network it is:

    - Generator (``out_shape`` (C, H, W); flat input such as z or [code, z]): Linear to
      (c(n), h0, w0), then n up-blocks (:class:`ResBlock`: norm -> ReLU -> 2x nearest upsampling ->
      conv3x3 -> norm -> ReLU -> conv3x3, plus a 1x1 shortcut), ending at (width, H, W) = h; the head
      is a plain norm -> ReLU -> conv3x3 to C -> ``output_activation`` (tanh). Its norm layers are
      asked from the conditioner, so ``cbn`` makes them conditional batch norm (the head's norm
      stays plain, as in SNGAN and BigGAN).
    - Discriminator (any other ``out_shape``; input (C + k, H, W)): SNGAN's first block (conv3x3 ->
      ReLU -> conv3x3 -> 2x2 average pool), n - 1 down-blocks (ReLU -> conv3x3 -> ReLU -> conv3x3 ->
      pool), one more block at the smallest size, then ReLU and a sum over the pixels: h of width
      c(n) (``pool="flatten"``: the last map flattened, c(n) * h0 * w0 features); the head is a
      Linear layer (a raw score), and a ``projection`` conditioner adds <embed(y), h> to it.

    Channels: c(j) = min(width * 2^j, max_width) at j halvings from the full size in G (width at
    the full size), and min(width * 2^(j - 1), max_width) in D (width after the first block).
    ``max_width`` = ``width`` gives SNGAN's and BigGAN's constant-width 32 px networks;
    width = ch and max_width = 16 ch BigGAN's 64 and 128 px ones.

    Args:
        in_shape, out_shape, conditioner: as :class:`Backbone`.
        width: channels at the full size (G) or after D's first block.
        max_width: the most channels a layer has; None: no cap.
        norm: ``"batch"``, ``"layer"`` or None; ``"auto"``: batch norm in G, none in D (SNGAN).
        norm_eps, norm_momentum: passed by keyword to the norm layers.
        activation: hidden activation (default ``"relu"``; never in place).
        output_activation: default ``"tanh"`` in G, none in D.
        spectral_norm: spectral normalisation of every conv and Linear layer (not of a
            conditioner's layers): SNGAN's D; BigGAN normalises G too.
        init: ``"xavier"`` (Glorot uniform, gain sqrt(2) on the residual convs and 1 elsewhere, as
            SNGAN's PyTorch ports), ``"orthogonal"`` (BigGAN) or None (PyTorch's default); biases zero.
        pool: D's pooling of its last map: ``"sum"`` over the pixels (SNGAN, BigGAN: h does not
            say where a feature is) or ``"flatten"`` (as the ``dcgan`` D: h keeps positions, which
            conditions that are places in the image need; see the README).

    Shape:
        - generator: (B, F) -> (B, C, H, W); discriminator: (B, C + k, H, W) -> (B, *out_shape).

    Example:
        >>> ResNet((128,), (3, 64, 64), width=16, max_width=128)(torch.randn(2, 128), None).shape
        torch.Size([2, 3, 64, 64])
        >>> ResNet((3, 32, 32), (1,), width=32, spectral_norm=True)(torch.randn(2, 3, 32, 32), None).shape
        torch.Size([2, 1])
    """

    name = "resnet"
    flat_input = False
    outputs = ("image",)

    def __init__(
        self,
        in_shape: Sequence[int],
        out_shape: Sequence[int],
        *,
        conditioner: Conditioner | None = None,
        width: int = 64,
        max_width: int | None = None,
        norm: str | None = "auto",
        norm_eps: float = 1e-5,
        norm_momentum: float = 0.1,
        activation: str | type[nn.Module] | Callable[[], nn.Module] = "relu",
        output_activation: str | type[nn.Module] | Callable[[], nn.Module] | None = "auto",
        spectral_norm: bool = False,
        init: str | None = "xavier",
        pool: str = "sum",
    ):
        super().__init__(in_shape, out_shape, conditioner=conditioner)
        width = check_int(width, "resnet width")
        if max_width is not None:
            max_width = check_int(max_width, "resnet max_width")
        self.generates = len(self.out_shape) == 3
        if norm == "auto":
            norm = "batch" if self.generates else None
        norm = None if norm == "none" else norm
        if not (norm is None or isinstance(norm, str)) or norm not in (None, *CONV_NORMS):
            raise ValueError(f"unknown norm {norm!r}; available: None, auto, {', '.join(sorted(CONV_NORMS))}")
        if pool not in POOLS:
            raise ValueError(f"resnet pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        if init not in INITS:
            raise ValueError(f"resnet init must be one of {INITS}, got {init!r}")
        if output_activation == "auto":
            output_activation = "tanh" if self.generates else None
        check_number(norm_eps, "norm_eps")
        check_number(norm_momentum, "norm_momentum", 0.0, 1.0)
        self.norm = norm

        def channels(j: int) -> int:
            c = width * 2 ** j if self.generates else max(1, width * 2 ** (j - 1))
            return min(c, max_width) if max_width is not None else c

        def make_norm(c: int) -> nn.Module | None:
            if norm is None:
                return None
            layer = conditioner.make_norm(c, norm, eps=norm_eps, momentum=norm_momentum) if conditioner else None
            return layer if layer is not None else CONV_NORMS[norm](c, norm_eps, norm_momentum)

        if self.generates:
            self._build_generator(channels, make_norm, activation, norm_eps, norm_momentum)
        else:
            self._build_discriminator(channels, make_norm, activation)
        self.out_activation = make_activation(output_activation)
        layers = list(own_layers([self.blocks, self.stem, self.out, self.out_norm], skip=(ConditionalLayer,)))
        if init is not None:
            self._initialise(layers, init)
        if spectral_norm:
            apply_spectral_norm(layers)

    def _build_generator(self, channels, make_norm, activation, norm_eps, norm_momentum) -> None:
        if len(self.in_shape) != 1:
            raise ValueError(f"a resnet generator takes a flat input (B, F), got input shape {self.in_shape}")
        out_channels, height, wide = self.out_shape
        n, h0, w0 = upsamplings(height, wide, "resnet")
        self.stem = nn.Sequential(nn.Linear(self.in_shape[0], channels(n) * h0 * w0),
                                  nn.Unflatten(1, (channels(n), h0, w0)))  # (B, c(n), h0, w0)
        self.blocks = nn.ModuleList(ResBlock(channels(j), channels(j - 1), resample="up", make_norm=make_norm, activation=activation)
                                    for j in range(n, 0, -1))  # (B, c(j), s, s) -> (B, c(j-1), 2s, 2s)
        c = channels(0)
        self._hidden_shape = (c, height, wide)
        self.feature_dim = c * height * wide
        # the head's norm is plain (SNGAN, BigGAN): y enters through the blocks' norms
        self.out_norm = CONV_NORMS[self.norm](c, norm_eps, norm_momentum) if self.norm else nn.Identity()
        self.out_act = _preactivation(activation)
        self.out = nn.Conv2d(c, out_channels, 3, padding=1)

    def _build_discriminator(self, channels, make_norm, activation) -> None:
        if len(self.in_shape) != 3:
            raise ValueError(f"a resnet discriminator takes images (B, C, H, W), got input shape {self.in_shape}")
        in_channels, height, wide = self.in_shape
        n, h0, w0 = upsamplings(height, wide, "resnet")
        self.stem = nn.Identity()
        blocks = [ResBlock(in_channels, channels(1), resample="down", make_norm=make_norm, activation=activation, first=True)]
        blocks += [ResBlock(channels(j), channels(j + 1), resample="down", make_norm=make_norm, activation=activation)
                   for j in range(1, n)]  # (B, c(j), s, s) -> (B, c(j+1), s/2, s/2)
        blocks.append(ResBlock(channels(n), channels(n), resample=None, make_norm=make_norm, activation=activation))
        self.blocks = nn.ModuleList(blocks)
        self.out_norm = nn.Identity()
        self.out_act = _preactivation(activation)
        self.feature_dim = channels(n) * (h0 * w0 if self.pool == "flatten" else 1)
        self.out = nn.Linear(self.feature_dim, math.prod(self.out_shape))

    @staticmethod
    def _initialise(layers: list[nn.Module], init: str) -> None:
        for layer in layers:
            residual = isinstance(layer, nn.Conv2d) and layer.kernel_size == (3, 3)
            if init == "xavier":
                nn.init.xavier_uniform_(layer.weight, math.sqrt(2) if residual else 1.0)
            else:
                nn.init.orthogonal_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h, y)
        if self.generates:
            return h.flatten(1)  # (B, width * H * W)
        if self.pool == "flatten":
            return self.out_act(h).flatten(1)  # (B, c(n) * h0 * w0)
        return self.out_act(h).sum(dim=(2, 3))  # (B, c(n)): SNGAN's sum over the pixels

    def head(self, h: Tensor) -> Tensor:
        if self.generates:
            h = h.unflatten(1, self._hidden_shape)  # (B, width, H, W); unflatten keeps the batch free for export
            return self.out_activation(self.out(self.out_act(self.out_norm(h))))
        return self.out_activation(self.out(h)).unflatten(1, self.out_shape)


@hookimpl
def register_backbones():
    return [MLP, ResMLP, DCGAN, ResNet]
