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
from abc import abstractmethod
from typing import Callable, ClassVar, Sequence

from torch import Tensor, nn

from .conditioners import ConditionalLayer, Conditioner
from .hookspecs import hookimpl
from .layers import dense, make_activation

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

    Shape:
        - x: (B, *in_shape) -> (B, *out_shape)

    Example:
        >>> g = MLP((110,), (1, 32, 32), widths=(128, 256, 512, 1024),
        ...         norm=(None, "batch", "batch", "batch"), norm_eps=0.8, output_activation="tanh")
    """

    name = "mlp"

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
    ):
        super().__init__(in_shape, out_shape, conditioner=conditioner)
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty sequence of positive ints, got {widths!r}")
        n = len(widths)
        norms, dropouts, all_pieces = per_layer(norm, n, "norm"), per_layer(dropout, n, "dropout"), per_layer(pieces, n, "pieces")
        layers: list[nn.Module] = []
        width_in = math.prod(self.in_shape)
        for width, norm_name, p, k in zip(widths, norms, dropouts, all_pieces):
            layers.append(dense(width_in, width, k))
            if norm_name not in (None, "none"):
                layers.append(self._norm(conditioner, width, norm_name, norm_eps, norm_momentum))
            if not 0.0 <= p < 1.0:
                raise ValueError(f"dropout must lie in [0, 1), got {p}")
            if p > 0:
                layers.append(nn.Dropout(p))
            if k == 1:  # a maxout unit is its own nonlinearity
                layers.append(make_activation(activation))
            width_in = width
        self.layers = nn.ModuleList(layers)
        self.out = nn.Linear(width_in, math.prod(self.out_shape))
        self.out_activation = make_activation(output_activation)
        self.feature_dim = width_in

    @staticmethod
    def _norm(conditioner, width, norm_name, eps, momentum) -> nn.Module:
        if norm_name not in NORMS:
            raise ValueError(f"unknown norm {norm_name!r}; available: None, {', '.join(sorted(NORMS))}")
        layer = conditioner.make_norm(width, norm_name, eps=eps, momentum=momentum) if conditioner else None
        return layer if layer is not None else NORMS[norm_name](width, eps, momentum)

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        h = x.flatten(1)  # (B, prod(in_shape))
        for layer in self.layers:
            h = layer(h, y) if isinstance(layer, ConditionalLayer) else layer(h)
        return h  # (B, feature_dim)

    def head(self, h: Tensor) -> Tensor:
        return self.out_activation(self.out(h)).view(h.shape[0], *self.out_shape)


@hookimpl
def register_backbones():
    return [MLP]
