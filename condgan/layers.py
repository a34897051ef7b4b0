"""Small building blocks shared by backbones and conditioners."""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "relu": lambda: nn.ReLU(inplace=True),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def make_activation(activation: str | type[nn.Module] | Callable[[], nn.Module] | None) -> nn.Module:
    """An activation module from a name in ``ACTIVATIONS``, a module class or a factory."""
    if activation is None:
        return nn.Identity()
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; available: {', '.join(sorted(ACTIVATIONS))}")
        return ACTIVATIONS[activation]()
    return activation()


class Maxout(nn.Module):
    """A maxout layer (Goodfellow et al. 2013): ``out_features`` units, each the max of ``pieces`` linear pieces.

    Shape:
        - input: (B, in_features); output: (B, out_features)

    Example:
        >>> Maxout(784, 240, pieces=5)(torch.randn(2, 784)).shape
        torch.Size([2, 240])
    """

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        if pieces < 2:
            raise ValueError(f"a maxout layer needs pieces >= 2, got {pieces}")
        self.out_features, self.pieces = out_features, pieces
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        # unit u's pieces are the contiguous outputs [u * pieces, (u + 1) * pieces)
        return self.linear(x).view(x.shape[0], self.out_features, self.pieces).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"out_features={self.out_features}, pieces={self.pieces}"


def dense(in_features: int, out_features: int, pieces: int = 1) -> nn.Module:
    """A Linear layer, or a :class:`Maxout` layer when ``pieces`` > 1."""
    return Maxout(in_features, out_features, pieces) if pieces > 1 else nn.Linear(in_features, out_features)
