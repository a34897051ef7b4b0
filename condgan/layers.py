"""Small building blocks shared by backbones and conditioners."""

from __future__ import annotations

import contextlib
import numbers
from typing import Any, Callable, Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "relu": lambda: nn.ReLU(inplace=True),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}


def check_int(value: Any, what: str, minimum: int = 1) -> int:
    """``value`` as an int, or ValueError naming ``what`` unless it is an integer >= ``minimum``
    (a float with an integral value, e.g. 64.0, counts as one; a bool does not)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = int(value)
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    else:
        result = None
    if result is None or result < minimum:
        raise ValueError(f"{what} must be an int >= {minimum}, got {value!r}")
    return result


def check_number(value: Any, what: str, low: float = 0.0, high: float | None = None, *, closed_high: bool = True) -> float:
    """``value`` as a float, or ValueError naming ``what`` unless it is a real number in [low, high]
    (``closed_high=False``: [low, high))."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high if closed_high else value < high
    if not ok:
        interval = f">= {low}" if high is None else f"in [{low}, {high}{']' if closed_high else ')'}"
        raise ValueError(f"{what} must be a number {interval}, got {value!r}")
    return float(value)


def make_activation(activation: str | type[nn.Module] | Callable[[], nn.Module] | None) -> nn.Module:
    """An activation module from a name in ``ACTIVATIONS``, a module class or a factory."""
    if activation is None:
        return nn.Identity()
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; available: {', '.join(sorted(ACTIVATIONS))}")
        return ACTIVATIONS[activation]()
    if not callable(activation):
        raise ValueError(f"activation must be a name ({', '.join(sorted(ACTIVATIONS))}), a module class or a factory, got {activation!r}")
    return activation()


#: how :class:`Dropout` layers draw their masks; set with :func:`dropout_draws`
DROPOUT_DRAWS = ("bernoulli", "uniform")
_draws = "bernoulli"


@contextlib.contextmanager
def dropout_draws(draws: str):
    """Within the block, :class:`Dropout` layers draw their masks as ``draws`` says.

    ``"bernoulli"`` (the default): ``torch.nn.functional.dropout``, PyTorch's own draws, one
    Bernoulli variable per element (the reference model's draws). ``"uniform"``: keep an element
    where a uniform draw in [0, 1) is below 1 - p: the same distribution from a cheaper generator
    (on the CPU ``bernoulli_`` draws a 64-bit number per element, ``rand`` a 32-bit one). A network
    that draws its masks itself (:class:`~condgan.backbones.MLP`) draws the masks of one forward
    pass in one ``rand`` call, a row per sample, so that a sample's masks depend on its position in
    the batch only: D on the real and fake batches joined draws what D on each batch draws, in turn.

    Example:
        >>> with dropout_draws("uniform"):
        ...     out = nn.Sequential(Dropout(0.4)).train()(torch.ones(2, 3))
    """
    global _draws
    if draws not in DROPOUT_DRAWS:
        raise ValueError(f"dropout draws must be one of {DROPOUT_DRAWS}, got {draws!r}")
    before, _draws = _draws, draws
    try:
        yield
    finally:
        _draws = before


def current_dropout_draws() -> str:
    """How :class:`Dropout` layers draw their masks now (see :func:`dropout_draws`)."""
    return _draws


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose masks follow :func:`dropout_draws` (or come from the caller).

    ``forward(x, noise)``: with ``noise`` (uniform draws in [0, 1) of ``x``'s shape), an element is
    kept where its draw is below 1 - p; without, the layer draws as :func:`dropout_draws` says.
    Kept elements are scaled by 1 / (1 - p), as ``nn.Dropout`` does. The identity in eval mode.

    Shape:
        - x: any; noise: as x; output: as x
    """

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if not self.training or self.p == 0:
            return x
        if noise is None:
            if _draws == "bernoulli":
                return F.dropout(x, self.p, True, self.inplace)
            noise = torch.rand(x.shape, device=x.device)
        keep = 1.0 - self.p
        return x * (noise < keep).to(x.dtype).div_(keep)


class _LinearSomeInputGrad(torch.autograd.Function):
    """``F.linear(x, weight, bias)`` whose backward computes x's gradient in some columns only (zeros elsewhere)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None, columns: slice) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.columns, ctx.has_bias = columns, bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.zeros_like(x)
            grad_x[:, ctx.columns] = grad @ weight[:, ctx.columns]
        if ctx.needs_input_grad[1]:
            grad_weight = grad.t() @ x
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum(0)
        return grad_x, grad_weight, grad_bias, None


def linear_some_input_grad(layer: nn.Linear, x: Tensor, columns: slice) -> Tensor:
    """``layer(x)``, where only ``x[:, columns]`` needs a gradient (an image joined to a learned code).

    The same forward product as ``layer(x)``; the backward skips the product that the input
    gradient of the other columns would cost (for the reference D's first layer, x's 1,024 image
    columns: 2 * B * 512 * 1024 multiply-adds per update). Other columns get a zero gradient.

    Shape:
        - x: (B, in_features); output: (B, out_features)
    """
    return _LinearSomeInputGrad.apply(x, layer.weight, layer.bias, columns)


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


class MinibatchStd(nn.Module):
    """Minibatch standard deviation (Karras et al. 2018, ProGAN; StyleGAN2's form): one more channel.

    The batch is split into groups of ``group_size`` samples (samples ``i`` and ``i + B / g`` share
    a group); within each group the standard deviation of every feature over the group's samples is
    averaged over channels and positions, and that one value per group is appended to each of its
    samples as a constant channel. A discriminator with it sees how varied a batch is, so a
    generator that gives every sample of a class the same colour or stroke is told apart from the
    data. The group is the largest divisor of the batch size not above ``group_size``, read from
    the tensor's shape (no host sync); a batch of one gets a zero channel. Its output for a sample
    depends on the rest of its group: :func:`batch_independent` is False for a network with it.

    Args:
        group_size: samples per group (StyleGAN's 4); ``B`` itself when ``B`` is smaller.

    Shape:
        - input: (B, C, H, W); output: (B, C + 1, H, W)

    Example:
        >>> MinibatchStd(4)(torch.randn(8, 16, 4, 4)).shape
        torch.Size([8, 17, 4, 4])
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = check_int(group_size, "minibatch_std group size")

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        g = next(k for k in range(min(self.group_size, b), 0, -1) if b % k == 0)
        y = x.reshape(g, -1, c, h, w)  # (g, B / g, C, H, W): group j holds samples j, j + B / g, ...
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (B / g, C, H, W)
        s = std.mean(dim=(1, 2, 3)) if g > 1 else torch.zeros_like(std[:, 0, 0, 0])  # (B / g,)
        return torch.cat([x, s.repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


def dense(in_features: int, out_features: int, pieces: int = 1) -> nn.Module:
    """A Linear layer, or a :class:`Maxout` layer when ``pieces`` > 1."""
    return Maxout(in_features, out_features, pieces) if pieces > 1 else nn.Linear(in_features, out_features)


#: the layer types that :func:`apply_spectral_norm` and :func:`init_normal_` act on
WEIGHTED_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def own_layers(modules: Iterable[nn.Module], skip: tuple[type, ...] = ()) -> Iterator[nn.Module]:
    """The Linear and conv layers inside ``modules``, not descending into instances of ``skip``.

    Backbones pass ``skip=(ConditionalLayer,)``: a conditional norm belongs to the conditioner, and
    backbone options (spectral norm, initialisation) must not reach into it.
    """
    for module in modules:
        if skip and isinstance(module, skip):
            continue
        if isinstance(module, WEIGHTED_LAYERS):
            yield module
        else:
            yield from own_layers(module.children(), skip)


def apply_spectral_norm(layers: Iterable[nn.Module]) -> None:
    """Spectral normalisation (Miyato et al. 2018, "Spectral Normalization for GANs") of each layer.

    Each weight W is divided by an estimate of its largest singular value, kept by one power
    iteration per training-mode forward (``torch.nn.utils.parametrizations.spectral_norm``), so each
    layer is about 1-Lipschitz. Conv weights are reshaped to (out, in * kh * kw) for the estimate
    (dim 1 for transposed convs), as in the paper.
    """
    for layer in layers:
        if not parametrize.is_parametrized(layer, "weight"):
            spectral_norm(layer)


def init_normal_(layers: Iterable[nn.Module], std: float) -> None:
    """DCGAN initialisation (Radford et al. 2016): weights from N(0, std), biases zero."""
    if not isinstance(std, numbers.Real) or isinstance(std, bool) or not std > 0:
        raise ValueError(f"init_std must be > 0 (or None for PyTorch's default initialisation), got {std!r}")
    for layer in layers:
        nn.init.normal_(layer.weight, 0.0, std)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


SAMPLE_WISE_LAYERS = (nn.Linear, nn.Embedding, nn.Identity, nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU,
                      nn.Flatten, nn.ModuleList, nn.Sequential, nn.Dropout, Dropout, Maxout)


def batch_independent(module: nn.Module) -> bool:
    """True when ``module``'s output for a sample cannot depend on the other samples of its batch.

    Checked against a list of layer types known to treat samples apart (linear layers, embeddings,
    activations, dropout) and the classes that declare ``treats_samples_apart = True`` in their own
    body (condgan's MLP, concatenating conditioners, the discriminator wrapper); any other layer
    (batch norm, a spectral-norm parametrization, whose power iteration runs once per forward, an
    augmentation, a third-party layer) makes it False. What holds for such a network: one pass over
    two batches joined computes what two passes compute.
    """
    return all(type(m) in SAMPLE_WISE_LAYERS or type(m).__dict__.get("treats_samples_apart", False)
               for m in module.modules())  # declared by the exact type: a subclass may add batch statistics
