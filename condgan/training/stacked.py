"""K runs of one architecture trained side by side: their weights stacked, each step computed for all K at once.

:class:`StackedStep` holds the weights of K trainers' GANs (the same architecture, e.g. the seeds or
the learning rates of a group) as tensors of shape (K, ...): each run's own parameters and batch-norm
running statistics become views of the stacked ones, so each run's trainer, optimizer, EMA,
checkpoints and samples work on them unchanged. One call trains the runs given one step each: every
Linear of G and D is one batched product (``torch.baddbmm``, (K, B, in) x (K, in, out)), every batch
norm one ``F.batch_norm`` over K x F channels (statistics and running statistics per run), each run's
loss its own; each run's noise, fake labels and dropout masks come from its own generator, in the
order :func:`condgan.training.step._step` draws them, and each run's Adam (its trainer's own
optimizer, the same fused kernel) updates its views.

Bitwise on the CPU: a batched product (or batch norm, activation, ...) is used for a layer only where
a probe on random data of the layer's shapes finds it equal, bit for bit, to the solo computation,
forward and backward (for ``mnist_mlp``: 24 of its 26 layer shapes; D's last layer, whose single
output column takes another matmul path alone, runs once per run); bias gradients are summed run by
run always (a batched sum takes another order, which random data in a probe may not show but the
cancelling gradient of a bias before a batch norm does). So run k equals its seed trained alone
(``tests/test_stacked.py``: weights, running statistics and Adam's moments, across an epoch's short
batch and a resume). The probe is evidence for the shapes it tried, not a proof for all data. On CUDA the step runs eagerly (no CUDA graph), draws
dropout masks from uniform draws (a solo CUDA run draws Bernoulli masks) and is untested.

:func:`refusal` says in one line what keeps a set of trainers from being stacked (the stackable set:
MLP backbones of Linear, batch norm, dropout and activations; the embedding conditioner; a loss
without penalties; no compile, autocast, gradient clipping, skipping or extra D steps).

Example:
    >>> if refusal(trainers) is None:
    ...     step = StackedStep(trainers)
    ...     losses = step([0, 1, 2], [t._next_batch() for t in trainers])
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..backbones import MLP
from ..conditioners import EmbeddingConditioner
from ..layers import Dropout, linear_some_input_grad
from ..models import ConditionalDiscriminator, ConditionalGenerator
from .optim import fused_adam_step

#: activation modules applied to stacked activations as they are (elementwise)
ELEMENTWISE = (nn.LeakyReLU, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Identity, nn.GELU, nn.SiLU)


# -- what can be stacked ----------------------------------------------------------------------------
def refusal(trainers: Sequence) -> str | None:
    """None when the trainers' runs can be stacked, else one line naming the part that cannot."""
    first = trainers[0]
    for t in trainers:
        why = _network_refusal(t.gan.generator, "generator") or _network_refusal(t.gan.discriminator, "discriminator") \
            or _training_refusal(t)
        if why:
            return why
    for t in trainers[1:]:
        for what, a, b in (("generator", first.gan.generator, t.gan.generator),
                           ("discriminator", first.gan.discriminator, t.gan.discriminator),
                           ("loss", first.gan.loss, t.gan.loss)):
            if repr(a) != repr(b):
                return f"the runs' {what}s differ (stacking needs one architecture; only seeds and optimizer settings may vary)"
        for what in ("batch_size", "d_steps"):
            if getattr(t.config, what, None) != getattr(first.config, what, None):
                return f"the runs' {what} differ"
        if t.dataset_size != first.dataset_size or t.device != first.device:
            return "the runs' datasets or devices differ"
    return None


def _network_refusal(net: nn.Module, role: str) -> str | None:
    if type(net) not in (ConditionalGenerator, ConditionalDiscriminator):
        return f"the {role} is a {type(net).__name__}, not condgan's conditional network"
    if getattr(net, "output_head", None) is not None:
        return f"the {role}'s output head ({type(net.output_head).__name__}, e.g. a table's) is not stacked"
    if getattr(net, "augment", None) is not None:
        return f"the {role}'s augmentation is not stacked"
    cond = net.conditioner
    if type(cond) is not EmbeddingConditioner:
        return f"the {role}'s conditioner {getattr(cond, 'name', type(cond).__name__)!r} is not stacked (only 'embedding')"
    if type(cond) is EmbeddingConditioner and cond.spec.kind != "class":
        return f"the {role}'s embedding of {cond.spec.kind!r} conditions is not stacked (class labels only)"
    bb = net.backbone
    if type(bb) is not MLP:
        return f"the {role}'s backbone {getattr(bb, 'name', type(bb).__name__)!r} is not stacked (only 'mlp')"
    if bb.pac != 1:
        return f"the {role}'s packing (pac={bb.pac}) is not stacked"
    for m in list(bb.layers) + [bb.out, bb.out_activation]:
        if nn.utils.parametrize.is_parametrized(m):
            return f"the {role}'s spectral norm (a parametrization of its Linear layers) is not stacked"
        if type(m) is nn.Linear:
            continue
        if type(m) is nn.BatchNorm1d and m.affine and m.track_running_stats and m.momentum is not None:
            continue
        if type(m) is Dropout or isinstance(m, ELEMENTWISE):
            continue
        return f"the {role}'s layer {type(m).__name__} is not stacked (MLP layers: Linear, BatchNorm1d, Dropout, activations)"
    return None


def _training_refusal(t) -> str | None:
    loss, cfg = t.gan.loss, t.config
    if getattr(loss, "r1_gamma", 0) or getattr(loss, "gp_weight", 0):
        return f"the loss's gradient penalty ({type(loss).__name__}: R1 or GP) is not stacked"
    if getattr(loss, "_lecam", None) is not None or getattr(loss, "needs_real_scores_for_generator", False) \
            or (hasattr(loss, "state_module") and loss.state_module() is not None):
        return f"the loss {type(loss).__name__} (LeCam, relativistic or stateful) is not stacked"
    if getattr(loss, "mode_seeking_weight", 0):
        return f"the loss's mode-seeking term ({type(loss).__name__}: mode_seeking_weight) is not stacked"
    for field, bad in (("compile", cfg.compile), ("autocast", cfg.autocast), ("clip_grad_norm", cfg.clip_grad_norm),
                       ("nonfinite='skip'", cfg.nonfinite == "skip")):
        if bad:
            return f"training with {field} is not stacked"
    if getattr(t.gan.config, "d_steps", 1) != 1:
        return "d_steps > 1 is not stacked"
    if t.process.world_size > 1:
        return "a distributed run is not stacked"
    return None


# -- layers: batched where bitwise equal to the solo computation, else once per run -----------------
def _loop(solo: Callable) -> Callable:
    """The layer computed once per run (bitwise the solo computation by construction): ``solo`` takes
    one run's slices, the stacked ones are unbound along the run dimension and the outputs stacked."""
    def run(h: Tensor, *params: Tensor | None, **extra) -> Tensor:
        hs = h.unbind(0)
        ps = [p.unbind(0) if p is not None else [None] * len(hs) for p in params]
        return torch.stack([solo(hk, *(p[k] for p in ps), **extra) for k, hk in enumerate(hs)])
    return run


def _linear_solo(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return F.linear(h, w, b)


class _StackedLinear(torch.autograd.Function):
    """``F.linear`` of each run, batched: (K, B, in) x (K, out, in) + (K, out) -> (K, B, out).

    The backward's products are batched too; the bias gradient is summed run by run, as the solo
    backward sums it (one batched sum over the rows takes another order: the bias of a layer before
    a batch norm has a gradient of cancelling terms, where the order shows). With ``columns``
    (:func:`~condgan.layers.linear_some_input_grad`), h's gradient in those columns only.
    """

    @staticmethod
    def forward(ctx, h, w, b, columns):
        ctx.save_for_backward(h, w)
        ctx.columns = columns
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        h, w = ctx.saved_tensors
        grad_h = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            if ctx.columns is None:
                grad_h = torch.bmm(grad, w)
            else:
                grad_h = torch.zeros_like(h)
                grad_h[:, :, ctx.columns] = torch.bmm(grad, w[:, :, ctx.columns])
        if ctx.needs_input_grad[1]:
            grad_w = torch.bmm(grad.transpose(1, 2), h)
        if ctx.needs_input_grad[2]:
            grad_b = torch.stack([g.sum(0) for g in grad.unbind(0)])
        return grad_h, grad_w, grad_b, None


def _linear_batched(h: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return _StackedLinear.apply(h, w, b, None)


def _columns_solo(h, w, b, *, columns):
    layer = _Bare(w, b)
    return linear_some_input_grad(layer, h, columns)


class _Bare:
    """What :func:`linear_some_input_grad` reads of a layer: its weight and bias."""

    def __init__(self, weight, bias):
        self.weight, self.bias = weight, bias


def _columns_batched(h, w, b, *, columns):
    return _StackedLinear.apply(h, w, b, columns)


def _norm_solo(h, w, b, rm, rv, *, momentum, eps):
    return F.batch_norm(h, rm, rv, w, b, True, momentum, eps)


def _norm_batched(h, w, b, rm, rv, *, momentum, eps):
    k, rows, f = h.shape
    flat = h.transpose(0, 1).reshape(rows, k * f)  # (B, K * F): a channel per (run, feature)
    out = F.batch_norm(flat, rm.view(-1), rv.view(-1), w.reshape(-1), b.reshape(-1), True, momentum, eps)
    return out.view(rows, k, f).transpose(0, 1).contiguous()


def _dropout_solo(h, noise, *, p):
    keep = 1.0 - p
    return h * (noise < keep).to(h.dtype).div_(keep)


def _embedding_solo(y, table):
    return F.embedding(y, table)


def _embedding_batched(y, table):
    k, n, e = table.shape
    offsets = torch.arange(k, device=y.device).mul_(n).unsqueeze(1)  # run k's rows of the flat table
    return F.embedding((y + offsets).reshape(-1), table.reshape(k * n, e)).view(k, -1, e)


def _elementwise_solo(h, *, module):
    return module(h.clone())  # an in-place activation may not write into one of unbind's views


LAYERS: dict[str, tuple[Callable, Callable]] = {
    "linear": (_linear_solo, _linear_batched),
    "columns": (_columns_solo, _columns_batched),
    "norm": (_norm_solo, _norm_batched),
    "dropout": (_dropout_solo, _dropout_solo),
    "embedding": (_embedding_solo, _embedding_batched),
    "elementwise": (_elementwise_solo, _elementwise_solo),
}


def _probe_inputs(kind: str, k: int, rows: int, shape: tuple, requires: tuple[bool, ...], device: str) -> list[Tensor]:
    gen = torch.Generator().manual_seed(1234)

    def rnd(*size):
        return torch.randn(*size, generator=gen)

    if kind in ("linear", "columns"):
        fin, fout = shape
        tensors = [rnd(k, rows, fin), rnd(k, fout, fin) / fin ** 0.5, rnd(k, fout)]
    elif kind == "norm":
        (f,) = shape
        tensors = [rnd(k, rows, f), rnd(k, f).abs() + 0.5, rnd(k, f), rnd(k, f), rnd(k, f).abs() + 0.5]
    elif kind == "dropout":
        (f,) = shape
        tensors = [rnd(k, rows, f), torch.rand(k, rows, f, generator=gen)]
    elif kind == "embedding":
        n, e = shape
        tensors = [torch.randint(0, n, (k, rows), generator=gen), rnd(k, n, e)]
    else:  # an elementwise module
        (f,) = shape
        tensors = [rnd(k, rows, f)]
    return [t.to(device).requires_grad_(bool(r)) for t, r in zip(tensors, list(requires) + [False] * len(tensors))]


@functools.lru_cache(maxsize=None)
def batched_matches(kind: str, k: int, rows: int, shape: tuple, requires: tuple[bool, ...], device: str,
                    options: tuple = ()) -> bool:
    """Whether the batched form of layer ``kind`` gives, on random data of these shapes, bitwise what
    the solo form gives run by run: the output, the gradients of the inputs that ``requires`` marks
    and (batch norm) the running statistics. ``options``: the layer's keyword options as pairs."""
    solo, batched = LAYERS[kind]
    opts = {n: (slice(*v) if n == "columns" else v) for n, v in options}
    results = []
    for fn in (_loop(solo), batched):
        tensors = _probe_inputs(kind, k, rows, shape, requires, device)
        with torch.random.fork_rng(devices=[]):
            out = fn(tensors[0].clone(), *tensors[1:], **opts)  # a non-leaf input, as in a network
        wanted = [t for t in tensors if t.requires_grad]
        grads = torch.autograd.grad(out, wanted, out.detach().sin() + 0.5) if wanted else ()
        results.append([out.detach(), *grads, *[t.detach() for t in tensors[3:5] if kind == "norm"]])
    return all(torch.equal(a, b) for a, b in zip(*results))


def _apply(kind: str, h: Tensor, params: Sequence[Tensor], shape: tuple, bitwise: bool, **options) -> Tensor:
    """Layer ``kind`` on stacked ``h`` (K, rows, ...): batched where the probe allows, else once per run."""
    solo, batched = LAYERS[kind]
    if bitwise:
        requires = tuple(t.requires_grad for t in (h, *params))
        pairs = tuple((n, (v.start, v.stop) if isinstance(v, slice) else v) for n, v in sorted(options.items()))
        if not batched_matches(kind, h.shape[0], h.shape[1], shape, requires, str(h.device), pairs):
            return _loop(solo)(h, *params, **options)
    return batched(h, *params, **options)


def global_generator(device: torch.device) -> torch.Generator:
    """A generator holding the global RNG's state now: where a run just built or resumed would draw next."""
    gen = torch.Generator(device=device)
    gen.set_state(torch.get_rng_state() if device.type == "cpu" else torch.cuda.get_rng_state(device))
    return gen


# -- the step ----------------------------------------------------------------------------------------
class StackedStep:
    """One training step of K runs at once; see the module's docstring.

    Args:
        trainers: K trainers whose runs :func:`refusal` accepts; their GANs' parameters and
            batch-norm running statistics are made views of stacked tensors (the values kept).
        generators: each run's random generator (noise, fake labels, dropout masks); None: each a
            new generator holding the global RNG's state now.
        bitwise: use a batched layer only where it equals the solo computation bit for bit (CPU;
            on other devices the batched layers are used throughout).

    Shape:
        - ``step(members, batches)``: members: indices of the runs taking a step; batches: for each,
          (real (B, *shape), y (B,)); returns for each ``{"g_loss": (), "d_loss": ()}``.
    """

    def __init__(self, trainers: Sequence, generators: Sequence[torch.Generator] | None = None, *, bitwise: bool = True):
        why = refusal(trainers)
        if why:
            raise ValueError(f"these runs cannot be stacked: {why}")
        self.trainers = list(trainers)
        self.k = len(self.trainers)
        self.device = trainers[0].device
        self.bitwise = bitwise and self.device.type == "cpu"
        self.generators = list(generators) if generators is not None else [global_generator(self.device) for _ in trainers]
        self.stacked: dict[str, Tensor] = {}
        self.counters: dict[str, list[list[Tensor]]] = {"G.": [], "D.": []}  # batch norms' num_batches_tracked, per run
        for prefix, nets in (("G.", [t.gan.generator for t in trainers]), ("D.", [t.gan.discriminator for t in trainers])):
            self._stack(prefix, nets)
        self.params = {prefix: [v for n, v in self.stacked.items() if n.startswith(prefix) and v.requires_grad]
                       for prefix in ("G.", "D.")}
        self.template = trainers[0].gan

    def _stack(self, prefix: str, nets: Sequence[nn.Module]) -> None:
        for name, first in nets[0].named_parameters():
            owned = [dict(n.named_parameters())[name] for n in nets]
            stacked = torch.stack([p.detach() for p in owned]).requires_grad_(first.requires_grad)
            for k, p in enumerate(owned):
                p.data = stacked.data[k]  # the run's parameter is now a view of the stacked one
            self.stacked[prefix + name] = stacked
        for name, _ in nets[0].named_buffers():
            owner, leaf = name.rsplit(".", 1) if "." in name else ("", name)
            modules = [n.get_submodule(owner) for n in nets]
            if leaf == "num_batches_tracked":
                self.counters[prefix].append([m.num_batches_tracked for m in modules])
                continue
            stacked = torch.stack([getattr(m, leaf) for m in modules])
            for k, m in enumerate(modules):
                m._buffers[leaf] = stacked[k]
            self.stacked[prefix + name] = stacked

    # -- the networks, stacked ---------------------------------------------------------------------
    def _p(self, name: str, idx: Tensor | None) -> Tensor:
        t = self.stacked[name]
        return t if idx is None else t.index_select(0, idx)

    def _network(self, prefix: str, net: nn.Module, x: Tensor, y: Tensor, idx: Tensor | None,
                 members: Sequence[int], written: list) -> Tensor:
        """``net``'s forward for the stacked runs: x (K, rows, *shape) and y (K, rows) -> (K, rows, *out_shape)."""
        bb, cond = net.backbone, net.conditioner
        h = x.flatten(2)
        columns = None
        if type(cond) is EmbeddingConditioner:
            table = self._p(prefix + "conditioner.embedding.weight", idx)
            code = _apply("embedding", y.long(), (table,), tuple(table.shape[1:]), self.bitwise).to(h.dtype)
            if prefix == "D." and code.requires_grad and not h.requires_grad:
                columns = cond.code_columns(h[0])  # D's update: only the code's columns need a gradient
            h = torch.cat((code, h) if cond.position == "first" else (h, code), dim=2)
        noise = None
        if bb.training and bb._dropout_width:  # one draw per run and pass, a row per sample, as MLP.features
            noise = torch.stack([torch.rand(h.shape[1], bb._dropout_width, device=self.device, generator=self.generators[k])
                                 for k in members])
        start = 0
        for i, layer in enumerate(bb.layers):
            name = f"{prefix}backbone.layers.{i}."
            if type(layer) is nn.Linear:
                w, b = self._p(name + "weight", idx), self._p(name + "bias", idx)
                shape = (layer.in_features, layer.out_features)
                if i == 0 and columns is not None and h.requires_grad:
                    h = _apply("columns", h, (w, b), shape, self.bitwise, columns=columns)
                else:
                    h = _apply("linear", h, (w, b), shape, self.bitwise)
            elif type(layer) is nn.BatchNorm1d:
                rm, rv = self._p(name + "running_mean", idx), self._p(name + "running_var", idx)
                h = _apply("norm", h, (self._p(name + "weight", idx), self._p(name + "bias", idx), rm, rv),
                           (layer.num_features,), self.bitwise, momentum=layer.momentum, eps=layer.eps)
                if idx is not None:
                    written.append((name, rm, rv))
            elif type(layer) is Dropout:
                if layer.p > 0 and bb.training:
                    width = h.shape[2]
                    h = _apply("dropout", h, (noise[:, :, start:start + width],), (width,), self.bitwise, p=layer.p)
                    start += width
            else:
                h = _apply("elementwise", h, (), (h.shape[2],), self.bitwise, module=layer)
        name = f"{prefix}backbone.out."
        h = _apply("linear", h, (self._p(name + "weight", idx), self._p(name + "bias", idx)),
                   (bb.out.in_features, bb.out.out_features), self.bitwise)
        h = _apply("elementwise", h, (), (h.shape[2],), self.bitwise, module=bb.out_activation)
        if bb.training:
            with torch.no_grad():
                for counters in self.counters[prefix]:  # what a training forward of a batch norm counts
                    for k in members:
                        counters[k].add_(1)
        return h.unflatten(2, bb.out_shape)

    # -- one step -----------------------------------------------------------------------------------
    def __call__(self, members: Sequence[int], batches: Sequence[tuple[Tensor, Tensor]]) -> list[dict[str, Tensor]]:
        members = list(members)
        idx = None if members == list(range(self.k)) else torch.tensor(members, device=self.device)
        trainers = [self.trainers[k] for k in members]
        G, D, loss = self.template.generator, self.template.discriminator, self.template.loss
        real = torch.stack([b[0] for b in batches])  # (K, B, *shape)
        y_real = torch.stack([b[1] for b in batches])  # (K, B)
        rows = real.shape[1]
        z, y_fake = [], []
        for k, t, (_, y) in zip(members, trainers, batches):  # each run's draws, in its solo order
            z.append(t.gan.generator.sample_noise(rows, self.device, self.generators[k]))
            y_fake.append(t.gan.spec.sample_like(y, self.generators[k]))
        z, y_fake = torch.stack(z), torch.stack(y_fake)
        written: list = []

        for p in self.params["D."]:  # G's update: D frozen, as the solo step
            p.requires_grad_(False)
        try:
            fake = self._network("G.", G, z, y_fake, idx, members, written)
            fake_score = self._network("D.", D, fake, y_fake, idx, members, written)
        finally:
            for p in self.params["D."]:
                p.requires_grad_(True)
        g_losses = [loss.generator_loss(fake_score[i]) for i in range(len(members))]
        self._backward(g_losses, self.params["G."])
        self._update("G.", members)

        # D's update: the real batches and the same fakes, detached, judged in one pass
        scores = self._network("D.", D, torch.cat([real, fake.detach()], dim=1), torch.cat([y_real, y_fake], dim=1),
                               idx, members, written)
        d_losses = [loss.discriminator_loss(*scores[i].split(rows)) for i in range(len(members))]
        self._backward(d_losses, self.params["D."])
        self._update("D.", members)
        if idx is not None:  # a subset's running statistics were gathered: write them back
            with torch.no_grad():
                for name, rm, rv in written:
                    self.stacked[name + "running_mean"].index_copy_(0, idx, rm)
                    self.stacked[name + "running_var"].index_copy_(0, idx, rv)
        return [{"g_loss": g.detach(), "d_loss": d.detach()} for g, d in zip(g_losses, d_losses)]

    @staticmethod
    def _backward(losses: list[Tensor], params: list[Tensor]) -> None:
        for p in params:
            p.grad = None
        torch.stack(losses).sum().backward()  # each run's loss has gradient 1: exactly its own backward

    def _update(self, prefix: str, members: Sequence[int]) -> None:
        """Each run's own optimizer (its trainer's) on its views, with its slice of the stacked gradients."""
        for k in members:
            t = self.trainers[k]
            net, opt = (t.gan.generator, t.opt_g) if prefix == "G." else (t.gan.discriminator, t.opt_d)
            owned = list(net.named_parameters())
            for name, p in owned:
                grad = self.stacked[prefix + name].grad
                p.grad = None if grad is None else grad[k]
            if not fused_adam_step(opt):
                opt.step()
            for _, p in owned:
                p.grad = None
