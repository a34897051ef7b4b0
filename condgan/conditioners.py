"""Conditioners: how the condition y enters a network.

The contract
------------
A :class:`Conditioner` is an ``nn.Module`` owned by one network (generator or discriminator). The
model composes it with a backbone and calls it at four points; every hook has a neutral default,
so a conditioner overrides only the points where it acts:

1. **Input** (:meth:`Conditioner.join`, :attr:`Conditioner.input_features`): receives the network
   input ``x`` and ``y``; returns the input the backbone sees. A flat ``(B, F)`` input becomes
   ``(B, F + input_features)``; a conv input ``(B, C, H, W)`` becomes ``(B, C + input_features, H, W)``
   with the code broadcast over H and W (:meth:`Conditioner.concat` does both). Concatenation
   (embedding, one-hot, vector) lives here; FiLM-style input modulation too (``input_features = 0``;
   :meth:`Conditioner.setup_input` tells it the input's shape before the backbone is built).
2. **Inside layers** (:meth:`Conditioner.make_norm`): a backbone asks its conditioner for each
   normalisation layer; returning a :class:`ConditionalLayer` (called as ``layer(h, y)``) puts y
   inside the network: conditional batch norm. ``None`` keeps the backbone's plain norm.
3. **Output** (:meth:`Conditioner.setup`, :meth:`Conditioner.output`): after the backbone is built
   the model calls ``setup(feature_dim)`` with the width of the backbone's last hidden features
   ``h`` ``(B, feature_dim)``; ``output(h, out, y)`` may then change the network output: a
   projection discriminator adds ``<embed(y), h>`` to the score.
4. **Auxiliary loss** (:meth:`Conditioner.auxiliary_loss`): a term added to the network's
   adversarial loss for real and fake batches alike: the auxiliary classifier (ACGAN) head.

The condition itself is described by a :class:`~condgan.conditions.ConditionSpec` (class index,
multilabel tags, or a float vector); a conditioner lists the kinds it accepts in ``kinds`` and the
networks it can condition in ``roles``.
"""

from __future__ import annotations

from abc import ABC
from typing import ClassVar

import torch
from torch import Tensor, nn

from .conditions import ConditionSpec
from .hookspecs import hookimpl
from .layers import dense, make_activation

ROLES = ("generator", "discriminator")


class ConditionalLayer(nn.Module):
    """A layer whose forward takes the condition too: ``forward(h, y)``. Backbones pass y to it."""

    def forward(self, h: Tensor, y: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Conditioner(nn.Module, ABC):
    """Base class of all conditioners (see the module docstring for the contract).

    Args:
        spec: what y is (kind and size).
        role: ``"generator"`` or ``"discriminator"``: the network this instance conditions.

    Subclasses set ``name`` (the registry key), and may set ``kinds`` and ``roles``.
    """

    name: ClassVar[str]
    kinds: ClassVar[tuple[str, ...]] = ("class",)
    roles: ClassVar[tuple[str, ...]] = ROLES
    #: features (flat input) or channels (conv input) that :meth:`join` adds.
    input_features: int = 0

    def __init__(self, spec: ConditionSpec, role: str):
        super().__init__()
        if not isinstance(spec, ConditionSpec):
            raise TypeError(f"spec must be a ConditionSpec, got {type(spec).__name__}")
        if spec.kind not in self.kinds:
            raise ValueError(f"conditioner {self.name!r} accepts conditions of kind {self.kinds}, got {spec.kind!r}")
        if role not in self.roles:
            raise ValueError(f"conditioner {self.name!r} can condition {' or '.join(self.roles)}, not {role!r}")
        self.spec = spec
        self.role = role

    # 1. input ---------------------------------------------------------------------------------
    def setup_input(self, shape: tuple[int, ...]) -> None:
        """Called once before the backbone is built, with the shape (without batch) of the x that
        :meth:`join` will receive: ``(F,)`` for a flat backbone, ``(C, H, W)`` for a conv one."""

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        """The backbone's input from the network input x and the condition y."""
        return x

    def joined_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape (without batch) of :meth:`join`'s output for an input of ``shape``."""
        return (shape[0] + self.input_features, *shape[1:])

    @staticmethod
    def concat(x: Tensor, code: Tensor, *, first: bool = False) -> Tensor:
        """Concatenate a (B, K) code to a flat (B, F) or conv (B, C, H, W) input along dim 1.

        A conv input gets the code broadcast over H and W as K extra channels. ``first`` puts the
        code before x instead of after it.
        """
        code = code.to(x.dtype)
        if x.dim() == 4:
            b, _, h, w = x.shape
            code = code[:, :, None, None].expand(b, -1, h, w)  # (B, K, H, W)
        elif x.dim() != 2:
            raise ValueError(f"conditioners join a (B, F) or (B, C, H, W) input, got shape {tuple(x.shape)}")
        return torch.cat((code, x) if first else (x, code), dim=1)  # (B, F + K) or (B, C + K, H, W)

    # 2. inside layers -------------------------------------------------------------------------
    def make_norm(self, num_features: int, norm: str, **options) -> ConditionalLayer | None:
        """A conditional replacement for the backbone's norm layer, or None to keep the plain one."""
        return None

    # 3. output --------------------------------------------------------------------------------
    def setup(self, feature_dim: int) -> None:
        """Called once after the backbone is built, with the width of its last hidden features."""

    def output(self, h: Tensor, out: Tensor, y: Tensor) -> Tensor:
        """The network output given the backbone's last features h (B, feature_dim) and its output."""
        return out

    # 4. auxiliary loss ------------------------------------------------------------------------
    def auxiliary_loss(self, h: Tensor, y: Tensor) -> Tensor | None:
        """An extra loss term from the features h and the condition y, or None."""
        return None

    def extra_repr(self) -> str:
        return f"role={self.role!r}, spec={self.spec}"


class EmbeddingConditioner(Conditioner):
    """Learned class embedding concatenated to the input (the reference model's conditioning).

    Args:
        spec: a ``class`` condition.
        role: the network conditioned.
        embedding_dim: size of the embedding; default ``num_classes`` as in the reference.
        position: ``"first"`` puts the code before x, ``"last"`` after it; default as the
            reference: first in G ([emb, z]), last in D ([image, emb]).

    Shape:
        - x: (B, F) or (B, C, H, W); y: (B,) int64; output: (B, F + embedding_dim) or
          (B, C + embedding_dim, H, W).
    """

    name = "embedding"

    def __init__(self, spec: ConditionSpec, role: str, *, embedding_dim: int | None = None, position: str | None = None):
        super().__init__(spec, role)
        self.embedding = nn.Embedding(spec.num_classes, embedding_dim or spec.num_classes)
        self.input_features = self.embedding.embedding_dim
        self.position = _position(position, role)

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        return self.concat(x, self.embedding(y.long()), first=self.position == "first")  # any integer dtype


class OneHotConditioner(Conditioner):
    """One-hot label (or multi-hot tag vector) concatenated to the input (the paper's conditioning).

    Shape:
        - x: (B, F) or (B, C, H, W); y: (B,) int64 or (B, num_classes) 0/1 float;
          output: (B, F + num_classes) or (B, C + num_classes, H, W).
    """

    name = "onehot"
    kinds = ("class", "multilabel")

    def __init__(self, spec: ConditionSpec, role: str, *, position: str | None = None):
        super().__init__(spec, role)
        self.input_features = spec.num_classes
        self.position = _position(position, role)

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        return self.concat(x, self.spec.to_dense(y, x.dtype), first=self.position == "first")


class BranchConditioner(Conditioner):
    """x and y each through a hidden layer of their own, then joined (the paper's MNIST networks).

    Mirza & Osindero's G maps z to 200 ReLU units and one-hot y to 1,000 before a joint layer;
    their D maps x and y through maxout layers (240 and 50 units, 5 pieces) first. The backbone
    then holds the joint layers.

    Args:
        spec: any condition kind; y enters in its dense form (one-hot for class labels).
        role: the network conditioned.
        x_width, y_width: units of the x and y branches.
        pieces: maxout pieces of both branch layers (1: Linear + ``activation``).
        activation: branch activation when ``pieces`` is 1.
        input_dropout: dropout on x before its branch (the paper's dropout on D's input).
        dropout: dropout on both branches' outputs.

    Shape:
        - x: (B, F) (a flat backbone); y: as ``spec``; output: (B, x_width + y_width).
    """

    name = "branches"
    kinds = ("class", "multilabel", "vector")

    def __init__(self, spec: ConditionSpec, role: str, *, x_width: int = 200, y_width: int = 1000, pieces: int = 1,
                 activation: str = "relu", input_dropout: float = 0.0, dropout: float = 0.0):
        super().__init__(spec, role)
        self.x_width, self.y_width = int(x_width), int(y_width)
        self._branch_options = dict(pieces=int(pieces), activation=activation, dropout=float(dropout))
        self.input_dropout = nn.Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        self.y_branch = _branch(spec.width, self.y_width, **self._branch_options)
        self.x_branch: nn.Module | None = None  # built by setup_input, once x's width is known

    def setup_input(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 1:
            raise ValueError(f"conditioner 'branches' needs a flat input (an MLP backbone), got input shape {shape}")
        self.x_branch = _branch(shape[0], self.x_width, **self._branch_options)

    def joined_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.x_width + self.y_width,)

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        hx = self.x_branch(self.input_dropout(x))  # (B, x_width)
        hy = self.y_branch(self.spec.to_dense(y, x.dtype))  # (B, y_width)
        return torch.cat((hx, hy), dim=1)


def _branch(in_features: int, width: int, *, pieces: int, activation: str, dropout: float) -> nn.Sequential:
    layers = [dense(in_features, width, pieces)]
    if pieces == 1:
        layers.append(make_activation(activation))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def _position(position: str | None, role: str) -> str:
    """Where a concatenated code goes: the reference puts it first in G ([code, z]), last in D."""
    position = position or ("first" if role == "generator" else "last")
    if position not in ("first", "last"):
        raise ValueError(f"position must be 'first' or 'last', got {position!r}")
    return position


@hookimpl
def register_conditioners():
    return [EmbeddingConditioner, OneHotConditioner, BranchConditioner]
