"""CTGAN's generator network as a backbone: ``ctgan_residual``, residual layers that concatenate.

From "Modeling Tabular Data using Conditional GAN" (Xu et al., NeurIPS 2019) and ctgan 0.12's
``Generator``: each layer is Linear -> BatchNorm1d -> ReLU, and its output is *concatenated* to its
input (``torch.cat([out, input])``), so the width grows by each layer's width; the head is a Linear
layer from the last (widest) features to the encoded row. Unlike :class:`~condgan.backbones.ResMLP`
(additive pre-activation blocks of one width) it keeps every earlier layer's features, z included,
next to the head. Its discriminator is condgan's ``mlp`` with ``pac`` (PacGAN packing).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from ..backbones import MLP, Backbone, _call
from ..conditioners import Conditioner
from ..hookspecs import hookimpl
from ..layers import check_int, make_activation


class ConcatResidualMLP(Backbone):
    """CTGAN's residual generator: ``h_{k+1} = [act(norm(Linear(h_k))), h_k]``, then a Linear head.

    Args:
        in_shape, out_shape, conditioner: as :class:`~condgan.backbones.Backbone`; the input is
            flattened and the output reshaped.
        widths: each residual layer's width (CTGAN's ``generator_dim``, default (256, 256)).
        norm: ``"batch"`` (CTGAN's), ``"layer"`` or None; asked from the conditioner (``cbn`` works).
        activation: the layers' activation (CTGAN's ReLU).
        output_activation: after the head (None: raw values, for a table's head to activate).

    Shape:
        - x: (B, *in_shape) -> (B, *out_shape); ``feature_dim`` = prod(in_shape) + sum(widths).

    Example:
        >>> ConcatResidualMLP((138,), (20,))(torch.randn(4, 138), None).shape
        torch.Size([4, 20])
    """

    name = "ctgan_residual"
    outputs = ("vector", "table")

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int], *, conditioner: Conditioner | None = None,
                 widths: Sequence[int] = (256, 256), norm: str | None = "batch",
                 activation: str | type[nn.Module] | Callable[[], nn.Module] = "relu",
                 output_activation: str | type[nn.Module] | Callable[[], nn.Module] | None = None):
        super().__init__(in_shape, out_shape, conditioner=conditioner)
        if not isinstance(widths, (list, tuple)) or not widths:
            raise ValueError(f"ctgan_residual widths must be a non-empty sequence of positive ints, got {widths!r}")
        widths = [check_int(w, "ctgan_residual width") for w in widths]
        norm = None if norm == "none" else norm
        dim = math.prod(self.in_shape)
        self.layers = nn.ModuleList()
        for width in widths:
            self.layers.append(nn.ModuleList([
                nn.Linear(dim, width),
                MLP._norm(conditioner, width, norm, 1e-5, 0.1) if norm is not None else nn.Identity(),
                make_activation(activation),
            ]))
            dim += width
        self.feature_dim = dim
        self.out = nn.Linear(dim, math.prod(self.out_shape))
        self.out_activation = make_activation(output_activation)

    def features(self, x: Tensor, y: Tensor) -> Tensor:
        h = x.flatten(1)  # (B, prod(in_shape))
        if self.training and h.shape[0] == 1 and any(not isinstance(layer[1], nn.Identity) for layer in self.layers):
            raise ValueError("batch norm in training mode needs a batch of at least 2, got a batch of 1")
        for linear, norm, act in self.layers:
            h = torch.cat([act(_call(norm, linear(h), y)), h], dim=1)  # (B, dim + width): CTGAN's order
        return h  # (B, feature_dim)

    def head(self, h: Tensor) -> Tensor:
        return self.out_activation(self.out(h)).unflatten(1, self.out_shape)


@hookimpl
def register_backbones():
    return [ConcatResidualMLP]
