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
   (embedding, one-hot, vector) lives here; FiLM-style input modulation too (``input_features = 0``).
   :meth:`Conditioner.setup_input` tells the conditioner x's shape before the backbone is built
   (it may refuse a shape with a ``ValueError``); a conditioner that reshapes x itself (the paper's
   separate x and y branches) overrides :meth:`Conditioner.joined_shape` to say what it returns.
2. **Inside layers** (:meth:`Conditioner.make_norm`): a backbone asks its conditioner for each
   normalisation layer; returning a :class:`ConditionalLayer` (called as ``layer(h, y)``) puts y
   inside the network: conditional batch norm. ``None`` keeps the backbone's plain norm.
3. **Output** (:meth:`Conditioner.setup`, :meth:`Conditioner.output`): after the backbone is built
   the model calls ``setup(feature_dim)`` with the width of the backbone's last hidden features
   ``h`` ``(B, feature_dim)``; ``output(h, out, y)`` may then change the network output: a
   projection discriminator adds ``<embed(y), h>`` to the score.
4. **Auxiliary loss** (:meth:`Conditioner.auxiliary_loss`): a term added to the network's
   adversarial loss for real and fake batches alike: the auxiliary classifier (ACGAN) head. A
   conditioner with :attr:`Conditioner.classifies_fakes` False adds it to D's loss for real batches
   only (G's loss still takes it on the fakes).
5. **Generator loss** (:meth:`Conditioner.generator_loss`, a generator's conditioner): a term
   added to G's loss only, from G's raw output (before the output kind's head) and y: CTGAN's
   cross-entropy that makes G produce the category its conditional vector asks for.

A conditioner that needs to know what the network makes (a table's columns) sets
:attr:`Conditioner.takes_output`; it is then built with ``output=`` the
:class:`~condgan.outputs.OutputSpec`.

A conditioner with :attr:`Conditioner.soft_conditions` also accepts conditions between two
conditions (class interpolation in :mod:`condgan.sampling`): for a class condition, a float
``(B, num_classes)`` y of mixing weights, which it treats as the same mixture of its per-class
codes (the embedding, one-hot vector, or norm gains and biases, all linear in the one-hot y); for
tags and vectors, the float y itself.

The condition itself is described by a :class:`~condgan.conditions.ConditionSpec` (class index,
multilabel tags, or a float vector); a conditioner lists the kinds it accepts in ``kinds`` and the
networks it can condition in ``roles``.
"""

from __future__ import annotations

import math
from abc import ABC
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .conditions import ConditionSpec
from .hookspecs import hookimpl
from .layers import Dropout, apply_spectral_norm, check_int, check_number, dense, make_activation

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
    #: True: y may be a soft condition (float (B, num_classes) mixing weights for a class
    #: condition), meaning the mixture of the classes' codes; class interpolation needs it.
    soft_conditions: ClassVar[bool] = False
    #: why :mod:`condgan.export` must refuse this conditioner (None: it traces to TorchScript and ONNX).
    not_exportable: ClassVar[str | None] = None
    #: True: built with ``output=`` the network's :class:`~condgan.outputs.OutputSpec` (what G makes, D judges).
    takes_output: ClassVar[bool] = False
    #: a discriminator's auxiliary loss also counts on fakes in D's own update (ACGAN); False: real batches only
    classifies_fakes: ClassVar[bool] = True

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

    def code_columns(self, x: Tensor) -> slice | None:
        """Where :meth:`join` puts the code among the columns of a flat x's joined input; None:
        not known (the default; the backbone then computes the whole input gradient)."""
        return None

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

    # 5. generator loss ------------------------------------------------------------------------
    def generator_loss(self, out: Tensor, y: Tensor) -> Tensor | None:
        """An extra term of G's loss from G's raw output ``out`` (before the output head) and y, or None."""
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

    treats_samples_apart = True  # layers.batch_independent: no batch statistics of its own

    name = "embedding"
    soft_conditions = True  # mixing weights mix the embedding vectors

    def __init__(self, spec: ConditionSpec, role: str, *, embedding_dim: int | None = None, position: str | None = None):
        super().__init__(spec, role)
        if embedding_dim is not None:
            embedding_dim = check_int(embedding_dim, "embedding_dim")
        self.embedding = nn.Embedding(spec.num_classes, embedding_dim or spec.num_classes)
        self.input_features = self.embedding.embedding_dim
        self.position = _position(position, role)

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        return self.concat(x, class_code(self.embedding, y), first=self.position == "first")

    def code_columns(self, x: Tensor) -> slice | None:
        if x.dim() != 2:
            return None
        k = self.input_features
        return slice(0, k) if self.position == "first" else slice(x.shape[1], x.shape[1] + k)


class OneHotConditioner(Conditioner):
    """One-hot label (or multi-hot tag vector) concatenated to the input (the paper's conditioning).

    Shape:
        - x: (B, F) or (B, C, H, W); y: (B,) int64 or (B, num_classes) 0/1 float;
          output: (B, F + num_classes) or (B, C + num_classes, H, W).
    """

    treats_samples_apart = True  # layers.batch_independent: no batch statistics of its own

    name = "onehot"
    kinds = ("class", "multilabel")
    soft_conditions = True  # mixing weights are the mixed one-hot vector

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
    soft_conditions = True  # y enters dense: mixing weights are the mixed one-hot vector

    def __init__(self, spec: ConditionSpec, role: str, *, x_width: int = 200, y_width: int = 1000, pieces: int = 1,
                 activation: str = "relu", input_dropout: float = 0.0, dropout: float = 0.0):
        super().__init__(spec, role)
        self.x_width, self.y_width = check_int(x_width, "x_width"), check_int(y_width, "y_width")
        check_number(input_dropout, "input_dropout", 0.0, 1.0, closed_high=False)
        check_number(dropout, "dropout", 0.0, 1.0, closed_high=False)
        self._branch_options = dict(pieces=check_int(pieces, "pieces"), activation=activation, dropout=float(dropout))
        self.input_dropout = Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
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
        layers.append(Dropout(dropout))
    return nn.Sequential(*layers)


def _position(position: str | None, role: str) -> str:
    """Where a concatenated code goes: the reference puts it first in G ([code, z]), last in D."""
    position = position or ("first" if role == "generator" else "last")
    if not isinstance(position, str) or position not in ("first", "last"):
        raise ValueError(f"position must be 'first' or 'last', got {position!r}")
    return position


# -- modern conditioning methods ------------------------------------------------------------------
def _condition_map(spec: ConditionSpec, features: int) -> nn.Module:
    """A learned map from y to ``features`` values: an embedding table for class labels, a bias-free
    Linear map of the dense vector otherwise (which, for a multi-hot y, sums the tags' rows)."""
    if spec.kind == "class":
        return nn.Embedding(spec.num_classes, features)
    return nn.Linear(spec.width, features, bias=False)


def class_code(table: nn.Embedding, y: Tensor) -> Tensor:
    """``table(y)`` for integer labels y (B,) (any integer dtype); for float mixing weights y
    (B, num_classes), the same mixture of the table's rows (a soft condition)."""
    if y.dtype.is_floating_point:
        return y.to(table.weight.dtype) @ table.weight  # (B, K) @ (K, E)
    return table(y.long())


def _apply_map(spec: ConditionSpec, table: nn.Module, y: Tensor, dtype: torch.dtype) -> Tensor:
    if spec.kind == "class":
        return class_code(table, y)
    return table(y.to(dtype))


class ConditionalNorm(ConditionalLayer):
    """Normalisation without affine parameters, then a gain and a bias chosen by the condition.

    ``norm="batch"``: batch norm over every dimension but the channels (dim 1), with running
    statistics, for (B, F) and (B, C, H, W) alike; ``norm="layer"``: layer norm over all but the
    batch dimension. Then ``out = gain(y) * norm(h) + bias(y)``, broadcast over H and W.

    - ``embedding_dim=None``: de Vries et al.'s parameterisation: for class labels, a table of one
      gain and one bias per class and channel; for tags or vectors, ``gain = 1 + A y``, ``bias = B y``.
    - ``embedding_dim=E``: y is first embedded in E dimensions (a table for class labels, a Linear
      map otherwise; PyTorch's default initialisation), then ``gain = 1 + A e(y)``, ``bias = B e(y)``
      (as BigGAN's layers map a class embedding to each layer's gains and biases). A change of A
      moves a class's gain along its whole embedding, so short trainings learn the condition much
      faster than with tables, which Adam moves by about one learning rate per step.

    Either way training starts at gain 1, bias 0 for every condition (tables, A and B start at one
    and zeros): the plain normalisation.

    Args:
        num_features: channels (or features) C.
        spec: the condition.
        norm: ``"batch"`` or ``"layer"``.
        eps, momentum: as ``nn.BatchNorm2d`` (momentum for the running statistics).
        embedding_dim: E, or None for per-class tables.

    Shape:
        - h: (B, C) or (B, C, H, W); y: as ``spec``; output: as h.
    """

    NORMS = ("batch", "layer")

    def __init__(self, num_features: int, spec: ConditionSpec, *, norm: str = "batch", eps: float = 1e-5,
                 momentum: float = 0.1, embedding_dim: int | None = None):
        super().__init__()
        if not isinstance(norm, str) or norm not in self.NORMS:
            raise ValueError(f"conditional norm {norm!r} is not supported; available: {', '.join(self.NORMS)}")
        check_number(eps, "norm_eps")
        if not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"norm momentum must be a float in [0, 1], got {momentum!r}")
        if embedding_dim is not None and (not isinstance(embedding_dim, int) or embedding_dim < 1):
            raise ValueError(f"cbn embedding_dim must be None or an int >= 1, got {embedding_dim!r}")
        self.num_features, self.spec, self.norm, self.eps, self.momentum = int(num_features), spec, norm, float(eps), float(momentum)
        self.tables = embedding_dim is None and spec.kind == "class"
        if embedding_dim is None:
            self.embed = None  # y itself (dense) is the code
            self.gain, self.bias = _condition_map(spec, self.num_features), _condition_map(spec, self.num_features)
        else:
            self.embed = _condition_map(spec, embedding_dim)
            self.gain = nn.Linear(embedding_dim, self.num_features, bias=False)
            self.bias = nn.Linear(embedding_dim, self.num_features, bias=False)
        if self.tables:
            nn.init.ones_(self.gain.weight)
        else:  # gain = 1 + A code: the 1 is added in forward, so that A starts at zero
            nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        if norm == "batch":
            self.register_buffer("running_mean", torch.zeros(self.num_features))
            self.register_buffer("running_var", torch.ones(self.num_features))

    def gain_and_bias(self, y: Tensor, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        """The gain and bias for each condition: two (B, C) tensors."""
        if self.tables:
            return class_code(self.gain, y), class_code(self.bias, y)
        code = _apply_map(self.spec, self.embed, y, dtype) if self.embed is not None else self.spec.to_dense(y, dtype)
        return 1 + self.gain(code), self.bias(code)

    def forward(self, h: Tensor, y: Tensor) -> Tensor:
        if h.dim() not in (2, 4) or h.shape[1] != self.num_features:
            raise ValueError(f"conditional norm of {self.num_features} features takes (B, {self.num_features}) or "
                             f"(B, {self.num_features}, H, W), got {tuple(h.shape)}")
        if self.norm == "batch":
            h = F.batch_norm(h, self.running_mean, self.running_var, None, None, self.training, self.momentum, self.eps)
        else:
            h = F.layer_norm(h, h.shape[1:], eps=self.eps)
        gain, bias = self.gain_and_bias(y, self.gain.weight.dtype)  # (B, C) each
        if h.dim() == 4:
            gain, bias = gain[:, :, None, None], bias[:, :, None, None]  # (B, C, 1, 1)
        return h * gain + bias

    def extra_repr(self) -> str:
        return f"{self.num_features}, norm={self.norm!r}, eps={self.eps}, momentum={self.momentum}"


class ConditionalBatchNormConditioner(Conditioner):
    """Conditional batch norm (de Vries et al. 2017): y sets the gains and biases of G's norm layers.

    From "Modulating early visual processing by language" (de Vries et al. 2017); the generators
    of SNGAN (Miyato & Koyama 2018) and BigGAN (Brock et al. 2019) are conditioned this way.
    Every norm layer that the backbone asks for becomes a :class:`ConditionalNorm`: batch (or
    layer) norm without affine parameters, then a gain and bias chosen by y. y enters nowhere
    else (``input_features = 0``), so the backbone must have norm layers: building fails loudly
    when it asked for none (e.g. an MLP without ``norm``).

    Args:
        spec: any condition kind (class labels use embedding tables, tags and vectors Linear maps).
        role: ``"generator"``.
        embedding_dim: None (default): one gain and bias per class and channel (de Vries et al.,
            SNGAN); an int E: each layer maps an E-dimensional embedding of y to its gains and
            biases (BigGAN-style), which learns the condition faster (see :class:`ConditionalNorm`).

    Shape:
        - x passes through unchanged; each norm layer maps (B, C[, H, W]) to the same shape.

    Example:
        >>> G = ConditionalGenerator(ConditionSpec("class", 10), (1, 32, 32), 100, conditioner="cbn",
        ...                          backbone="dcgan")
    """

    name = "cbn"
    kinds = ("class", "multilabel", "vector")
    roles = ("generator",)
    soft_conditions = True  # mixing weights mix each layer's per-class gains and biases

    def __init__(self, spec: ConditionSpec, role: str, *, embedding_dim: int | None = None):
        super().__init__(spec, role)
        if embedding_dim is not None and (not isinstance(embedding_dim, int) or embedding_dim < 1):
            raise ValueError(f"cbn embedding_dim must be None or an int >= 1, got {embedding_dim!r}")
        self.embedding_dim = embedding_dim
        self.norm_layers = 0

    def make_norm(self, num_features: int, norm: str, **options) -> ConditionalLayer:
        layer = ConditionalNorm(num_features, self.spec, norm=norm, eps=options.get("eps", 1e-5),
                                momentum=options.get("momentum", 0.1), embedding_dim=self.embedding_dim)
        self.norm_layers += 1
        return layer

    def setup(self, feature_dim: int) -> None:
        if self.norm_layers == 0:
            raise ValueError("conditioner 'cbn' conditions the backbone's norm layers, but the backbone has none: "
                             "give it norm layers (e.g. backbone_options norm='batch')")

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, embedding_dim={self.embedding_dim}, norm_layers={self.norm_layers}"


class ProjectionConditioner(Conditioner):
    """Projection discriminator (Miyato & Koyama 2018): D's score gains ``<embed(y), h>``.

    From "cGANs with Projection Discriminator" (Miyato & Koyama, ICLR 2018).
    D's score becomes ``head(h) + <embed(y), h>``: the inner product of a learned embedding of y
    with D's last hidden features h. y enters nowhere else (no input concatenation). For tag or
    vector conditions the embedding is a Linear map of y (a multi-hot y sums its tags' rows).

    Args:
        spec: any condition kind.
        role: ``"discriminator"``.
        spectral_norm: spectrally normalise the embedding too (as SNGAN does).

    Shape:
        - h: (B, feature_dim); out: (B, 1); output: (B, 1).
    """

    name = "projection"
    kinds = ("class", "multilabel", "vector")
    roles = ("discriminator",)

    def __init__(self, spec: ConditionSpec, role: str, *, spectral_norm: bool = False):
        super().__init__(spec, role)
        self.spectral_norm = bool(spectral_norm)
        self.embed: nn.Module | None = None  # built by setup, once feature_dim is known

    def setup(self, feature_dim: int) -> None:
        self.embed = _condition_map(self.spec, feature_dim)
        bound = 1.0 / math.sqrt(feature_dim)  # as a Linear(feature_dim, 1) head: the two terms start alike
        nn.init.uniform_(self.embed.weight, -bound, bound)
        if self.spectral_norm:
            apply_spectral_norm([self.embed])

    def projection(self, h: Tensor, y: Tensor) -> Tensor:
        """``<embed(y), h>`` for each sample: (B, 1)."""
        return (_apply_map(self.spec, self.embed, y, h.dtype) * h).sum(dim=1, keepdim=True)

    def output(self, h: Tensor, out: Tensor, y: Tensor) -> Tensor:
        if out.shape[1:] != (1,):
            raise ValueError(f"the projection conditioner adds to a (B, 1) score, got output shape {tuple(out.shape)}")
        return out + self.projection(h, y)


class AuxiliaryClassifierConditioner(Conditioner):
    """Auxiliary classifier (ACGAN, Odena et al. 2017): D also predicts y, and learns and teaches it.

    From "Conditional Image Synthesis with Auxiliary Classifier GANs" (Odena et al., ICML 2017).
    D's score does not see y; a Linear head on D's last features h predicts it instead, and its
    classification loss is the auxiliary loss: D minimises it on real and fake batches, G on its
    fakes (so G learns to make images of the class asked for). Class labels use cross-entropy; tags
    (multilabel) a binary cross-entropy per tag.

    Args:
        spec: ``class`` or ``multilabel``.
        role: ``"discriminator"``.
        weight: the classification loss's weight in each network's loss.

    Shape:
        - h: (B, feature_dim); :meth:`logits`: (B, num_classes); auxiliary loss: a scalar.
    """

    name = "acgan"
    kinds = ("class", "multilabel")
    roles = ("discriminator",)

    def __init__(self, spec: ConditionSpec, role: str, *, weight: float = 1.0):
        super().__init__(spec, role)
        if not isinstance(weight, (int, float)) or not weight > 0:
            raise ValueError(f"acgan weight must be a number > 0, got {weight!r}")
        self.weight = float(weight)
        self.classifier: nn.Linear | None = None  # built by setup

    def setup(self, feature_dim: int) -> None:
        self.classifier = nn.Linear(feature_dim, self.spec.num_classes)

    def logits(self, h: Tensor) -> Tensor:
        """The classifier's logits (B, num_classes), float32."""
        return self.classifier(h).float()

    def auxiliary_loss(self, h: Tensor, y: Tensor) -> Tensor:
        logits = self.logits(h)
        if self.spec.kind == "class":
            loss = F.cross_entropy(logits, y.long())
        else:
            loss = F.binary_cross_entropy_with_logits(logits, y.float())
        return self.weight * loss

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight={self.weight}"


class ProjectionClassifierConditioner(ProjectionConditioner):
    """A projection discriminator with an auxiliary classifier that learns on real images only.

    D's score is the projection head's (:class:`ProjectionConditioner`: ``head(h) + <embed(y), h>``),
    and a Linear head on the same features h also predicts y, as ACGAN's does (Odena et al. 2017),
    with one difference: D fits that classifier to the real batches only, so it never learns to
    name a malformed fake by the label it was asked for, and G's loss gains the classifier's loss
    on its fakes (G is taught to make images that a classifier of real images recognises). Class
    labels use cross-entropy, tags a binary cross-entropy per tag.

    Args:
        spec: ``class`` or ``multilabel``.
        role: ``"discriminator"``.
        weight: the classification loss's weight in D's loss (real batches) and G's (fakes).
        spectral_norm: spectrally normalise the embedding and the classifier too (as SNGAN does).

    Shape:
        - h: (B, feature_dim); out, output: (B, 1); :meth:`logits`: (B, num_classes); auxiliary loss: a scalar.

    Example:
        >>> D = ConditionalDiscriminator(ConditionSpec("class", 10), (1, 32, 32), conditioner="projection_ac",
        ...                              backbone="dcgan", conditioner_options={"weight": 0.1})
    """

    name = "projection_ac"
    kinds = ("class", "multilabel")
    classifies_fakes = False  # the step leaves this conditioner's loss on fakes out of D's loss

    def __init__(self, spec: ConditionSpec, role: str, *, weight: float = 0.1, spectral_norm: bool = False):
        super().__init__(spec, role, spectral_norm=spectral_norm)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not weight > 0:
            raise ValueError(f"projection_ac weight must be a number > 0, got {weight!r}")
        self.weight = float(weight)
        self.classifier: nn.Linear | None = None  # built by setup

    def setup(self, feature_dim: int) -> None:
        super().setup(feature_dim)
        self.classifier = nn.Linear(feature_dim, self.spec.num_classes)
        if self.spectral_norm:
            apply_spectral_norm([self.classifier])

    logits = AuxiliaryClassifierConditioner.logits  # the same head and loss as ACGAN's
    auxiliary_loss = AuxiliaryClassifierConditioner.auxiliary_loss

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, weight={self.weight}, spectral_norm={self.spectral_norm}"


class VectorConditioner(Conditioner):
    """A float vector condition, projected by a learned layer and concatenated.

    For conditions such as attributes or an embedding of an image or a text: Mirza & Osindero's
    second experiment conditioned on image features. y -> Linear -> activation -> a code of
    ``features`` values, joined like the embedding conditioner (broadcast as channels for a conv input).

    Args:
        spec: ``vector`` (or ``multilabel``: a 0/1 vector).
        role: the network conditioned.
        features: size of the code.
        activation: after the Linear map (``None``: linear).
        position: ``"first"`` or ``"last"``; default first in G, last in D.

    Shape:
        - x: (B, F) or (B, C, H, W); y: (B, dim) float; output: (B, F + features) or (B, C + features, H, W).
    """

    name = "vector"
    kinds = ("vector", "multilabel")
    soft_conditions = True  # y enters through a Linear map: between two vectors is a vector

    def __init__(self, spec: ConditionSpec, role: str, *, features: int = 32, activation: str | None = "leaky_relu",
                 position: str | None = None):
        super().__init__(spec, role)
        if not isinstance(features, int) or features < 1:
            raise ValueError(f"vector conditioner features must be an int >= 1, got {features!r}")
        self.project = nn.Sequential(nn.Linear(spec.width, features), make_activation(activation))
        self.input_features = features
        self.position = _position(position, role)

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        code = self.project(y.to(self.project[0].weight.dtype))  # (B, features)
        return self.concat(x, code, first=self.position == "first")


@hookimpl
def register_conditioners():
    return [EmbeddingConditioner, OneHotConditioner, BranchConditioner, ConditionalBatchNormConditioner,
            ProjectionConditioner, ProjectionClassifierConditioner, AuxiliaryClassifierConditioner, VectorConditioner]
