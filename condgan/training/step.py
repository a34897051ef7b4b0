"""Training steps of a conditional GAN, as the reference does them: G update, then D update.

Three entry points:

- :func:`train_step`: one eager step, a plain function (what a hand-written loop calls).
- :class:`FastStep` (built by :func:`make_step`): the fast path, a callable object
  ``step(real, y_real) -> losses`` with the same mathematics as :func:`train_step` (and its random
  draws, where ``train_step`` is asked to draw dropout masks the same way). On CUDA it captures the whole step (both forward and backward passes and both
  optimizer steps) as one CUDA graph; ``compile=`` runs the forward passes through ``torch.compile``.
- :func:`~condgan.training.optim.fast_optimizer_options`: the optimizer implementation measured fastest for a device, to
  pass to ``gan.optimizers(**options)``.

Example:
    >>> gan = build("mnist_mlp").to(device)
    >>> opt_g, opt_d = gan.optimizers(**fast_optimizer_options(device))
    >>> step = make_step(gan, opt_g, opt_d)
    >>> for real, y in batches:
    ...     losses = step(real, y)  # detached tensors on the device; no host sync
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
from torch import Tensor

from ..distributed import DistributedForwards, is_distributed
from ..gan import GAN
from ..layers import DROPOUT_DRAWS, batch_independent, dropout_draws as _dropout_draws
from ..losses import pair_conditions
from ..models import check_images, check_matches, check_matches_device
from .optim import fused_adam_step

#: torch.compile modes accepted by :class:`FastStep` (``compile=``).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _add(loss: Tensor, extra: Tensor | None) -> Tensor:
    return loss if extra is None else loss + extra


def _autocast(device: torch.device, dtype: torch.dtype | None, *, cache_enabled: bool = True):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype, cache_enabled=cache_enabled)


class _Forwards:
    """The two forward computations of a step (what ``compile=`` compiles).

    ``generator_pass`` runs G on (z, y_fake) and D on the result: (fake, G's loss); for a loss
    that asks for them (``needs_real_scores_for_generator``, the relativistic losses) it also runs
    D on the real batch and passes those scores to G's loss. It runs while D's parameters are
    frozen, so neither D pass records a weight gradient; the real batch needs no gradient at all.
    ``discriminator_pass`` runs D on the real batch and on the detached fakes: D's loss (and shows
    D's real scores to its augmentation, which may adapt to them); with ``joined`` (for a D that
    treats samples apart, :func:`~condgan.layers.batch_independent`) in one pass over the two
    batches joined: one matrix product of 2B rows per layer instead of two of B, and each weight
    gradient in one product instead of two and a sum. ``fakes`` runs G alone, without gradients
    (the fresh fakes of a second or later D update, ``d_steps`` > 1).
    """

    def __init__(self, gan: GAN, joined: bool = False):
        self.gan, self.joined = gan, joined
        # a classifier of real images only (projection_ac): its loss on fakes is G's alone
        self.d_classifies_fakes = getattr(getattr(gan.discriminator, "conditioner", None), "classifies_fakes", True)
        self.pairs_conditions = getattr(gan.loss, "pairs_conditions", False)  # mode seeking (a third-party loss: no)

    def generator_pass(self, z: Tensor, y_fake: Tensor, real: Tensor, y_real: Tensor) -> tuple[Tensor, Tensor]:
        gan = self.gan
        D, loss = gan.discriminator, gan.loss
        fake, g_extra = gan.generator.generate(z, y_fake)  # (B, C, H, W); the conditioner's G-only loss or None
        fake_score, fake_aux = D.judge(fake, y_fake, check=False)
        if getattr(loss, "needs_real_scores_for_generator", False):
            real_score, _ = D.judge(real, y_real, check=False)  # (B, 1); its auxiliary loss does not depend on G
            g_loss = loss.generator_loss(fake_score, real_score.detach())
        else:
            g_loss = loss.generator_loss(fake_score)
        g_loss = _add(g_loss, loss.generator_penalty(fake, z)) if self.pairs_conditions else g_loss
        return fake, _add(_add(g_loss, fake_aux), g_extra)

    def discriminator_pass(self, real: Tensor, y_real: Tensor, fake: Tensor, y_fake: Tensor) -> Tensor:
        gan = self.gan
        D, loss = gan.discriminator, gan.loss
        if self.joined:  # a batch-independent D has no augmentation and no auxiliary loss
            scores, _ = D.judge(torch.cat([real, fake]), torch.cat([y_real, y_fake]), check=False)  # (2B, 1)
            real_score, fake_score = scores.split(real.shape[0] // getattr(D, "pac", 1))  # a packing D: B / pac scores each
            d_loss = _add(loss.discriminator_loss(real_score, fake_score), loss.score_penalty(real_score, fake_score))
            return _add(d_loss, loss.penalty(D, real, fake, y_real, y_fake))
        real_score, real_aux = D.judge(real, y_real, check=False)
        fake_score, fake_aux = D.judge(fake, y_fake, check=False)
        augment = getattr(D, "augment", None)
        if augment is not None:
            augment.observe(real_score.detach())  # ADA: D's overfitting signal, on the device
        if not self.d_classifies_fakes:
            fake_aux = None
        d_loss = _add(loss.discriminator_loss(real_score, fake_score), loss.score_penalty(real_score, fake_score))
        return _add(_add(_add(d_loss, real_aux), fake_aux), loss.penalty(D, real, fake, y_real, y_fake))

    def fakes(self, z: Tensor, y_fake: Tensor) -> Tensor:
        with torch.no_grad():
            return self.gan.generator(z, y_fake, check=False)  # (B, C, H, W)


def _nonfinite(params) -> Tensor:
    """1.0 (float, on the device) when any gradient of ``params`` holds NaN or inf, else 0.0; no host sync."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads)
    return (~torch.isfinite(torch.stack(norms).sum())).float()


def _update(opt: torch.optim.Optimizer, params, skip_nonfinite: bool) -> Tensor | None:
    """``opt.step()``; with ``skip_nonfinite``, skipped when a gradient is not finite. Returns the skip flag.

    Fused optimizers skip on the device (PyTorch's ``found_inf``, as GradScaler uses it: no host
    sync, CUDA-graph safe); others read the flag back and skip in Python (one sync per update).
    """
    if not skip_nonfinite:
        if not fused_adam_step(opt):
            opt.step()
        return None
    params = list(params)
    found = _nonfinite(params).to(params[0].device)
    if all(group.get("fused") for group in opt.param_groups):
        opt.found_inf = found
        try:
            opt.step()
        finally:
            opt.found_inf = None
    elif not bool(found):
        opt.step()
    return found


def _step(gan: GAN, forwards: _Forwards, real: Tensor, y_real: Tensor, opt_g: torch.optim.Optimizer,
          opt_d: torch.optim.Optimizer, d_trainable: list[Tensor], generator: torch.Generator | None,
          clip_grad_norm: float | None, autocast, skip_nonfinite: bool = False, d_steps: int = 1) -> tuple[Tensor, ...]:
    """The step itself; every path (eager, compiled, CUDA graph) runs this code.

    One G update, then ``d_steps`` D updates: the first on the real batch and the fakes G's update
    made (detached), each further one on the same real batch and fresh fakes from the updated G.
    Random draws, in order: z, the fake labels, then whatever the networks draw (dropout masks,
    augmentations): G's pass, D on the fakes for G's update, (for a loss with
    ``needs_real_scores_for_generator``: D on the real batch for G's update), D on the real batch,
    D on the fakes for D's update; a further D update draws z, the fake labels, G's pass, D on the
    real batch, D on the fakes. Returns (g_loss, d_loss) (d_loss: the mean over the D updates),
    and with ``skip_nonfinite`` a third tensor: how many of the updates were skipped for a
    non-finite gradient.
    """
    G = gan.generator
    z = G.sample_noise(real.shape[0], real.device, generator)  # (B, latent_dim)
    y_fake = gan.spec.sample_like(y_real, generator)
    if forwards.pairs_conditions:
        y_fake = pair_conditions(y_fake)  # sample i + B // 2 shares sample i's condition (mode seeking)

    # G update. D's parameters are frozen while the graph is recorded, so G's backward computes no
    # weight gradients for D (the reference computes them and then throws them away).
    opt_g.zero_grad(set_to_none=True)
    for p in d_trainable:
        p.requires_grad_(False)
    try:
        with autocast:
            fake, g_loss = forwards.generator_pass(z, y_fake, real, y_real)
    finally:
        for p in d_trainable:
            p.requires_grad_(True)
    g_loss.backward()
    if clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(G.parameters(), clip_grad_norm)
    g_skipped = _update(opt_g, G.parameters(), skip_nonfinite)

    # D updates: the first on the real batch and the same fakes, detached; then fresh fakes
    d_losses, skipped = [], g_skipped
    for d_step in range(d_steps):
        if d_step > 0:
            z = G.sample_noise(real.shape[0], real.device, generator)
            y_fake = gan.spec.sample_like(y_real, generator)
            with autocast:
                fake = forwards.fakes(z, y_fake)
        opt_d.zero_grad(set_to_none=True)
        with autocast:
            d_loss = forwards.discriminator_pass(real, y_real, fake.detach(), y_fake)
        d_loss.backward()
        if clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(gan.discriminator.parameters(), clip_grad_norm)
        d_skipped = _update(opt_d, gan.discriminator.parameters(), skip_nonfinite)
        d_losses.append(d_loss.detach())
        if skip_nonfinite:
            skipped = skipped + d_skipped
    d_loss = d_losses[0] if d_steps == 1 else torch.stack(d_losses).mean()
    if skip_nonfinite:
        return g_loss.detach(), d_loss, skipped
    return g_loss.detach(), d_loss


def train_step(gan: GAN, real: Tensor, y_real: Tensor, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               *, generator: torch.Generator | None = None, clip_grad_norm: float | None = None,
               autocast_dtype: torch.dtype | None = None, check: bool = True, d_steps: int | None = None,
               dropout_draws: str = "bernoulli") -> dict[str, Tensor]:
    """One step on a real batch; returns the detached losses.

    Noise and fake conditions are drawn on ``real``'s device. G is updated against D's scores on
    its samples (and, for a loss with ``needs_real_scores_for_generator``, on the real batch; D's
    parameters accumulate no gradients there), then D on the real batch and the same fakes,
    detached. With ``d_steps`` = k > 1 (n_critic, as WGAN-GP's critic iterations and BigGAN's D
    steps), D is updated k - 1 more times, each on the same real batch and fresh fakes from the
    updated G; over a run this alternates one G update with k D updates. (WGAN-GP and BigGAN give
    each D update its own real batch; here a trainer step consumes one real batch, so that epochs,
    data order and resume are those of ``d_steps=1``.) ``d_steps=1`` is the reference step.
    :class:`FastStep` runs the same code, faster where the device allows.

    ``check=True`` (default) validates the batch first (shape, dtype, device, finite pixels, label
    range: ``ValueError``) and that each optimizer holds its own network's parameters (swapped
    optimizers would train nothing), which reads two values back from the device; a loop that validated its
    data once (as the Trainer does) passes ``check=False`` and then the step never syncs.

    Args:
        generator: the random generator for noise and fake labels (default: the global one).
        clip_grad_norm: clip each network's gradient norm to this value before its update.
        autocast_dtype: run the forward passes under ``torch.autocast`` with this dtype (e.g.
            ``torch.bfloat16``); losses are computed in float32.
        d_steps: D updates per G update; None: ``gan.config.d_steps``.
        dropout_draws: how dropout masks are drawn (:func:`~condgan.layers.dropout_draws`):
            ``"bernoulli"`` (PyTorch's, the reference's draws) or ``"uniform"`` (what
            :class:`FastStep` draws on the CPU).

    Shape:
        - real: (B, C, H, W) float; y_real: as ``gan.spec``; returns ``{"g_loss": (), "d_loss": ()}``
          (``d_loss``: the mean over the step's D updates).
    """
    if check:
        _check_optimizer(opt_g, gan.generator, "opt_g", "generator", other=gan.discriminator)
        _check_optimizer(opt_d, gan.discriminator, "opt_d", "discriminator", other=gan.generator)
        check_images(real, gan.discriminator.image_shape)
        check_matches(real, "images", gan.discriminator, "discriminator")
        gan.spec.check(y_real, real.shape[0])
        check_matches_device(y_real, gan.discriminator)
    d_trainable = [p for p in gan.discriminator.parameters() if p.requires_grad]
    with _dropout_draws(dropout_draws):
        g_loss, d_loss = _step(gan, _Forwards(gan), real, y_real, opt_g, opt_d, d_trainable, generator,
                               clip_grad_norm, _autocast(real.device, autocast_dtype), d_steps=_d_steps(gan, d_steps))
    return {"g_loss": g_loss, "d_loss": d_loss}


def _d_steps(gan: GAN, d_steps: int | None) -> int:
    """``d_steps``, or the model's ``config.d_steps`` for None; ValueError unless it is an int >= 1."""
    value = getattr(gan.config, "d_steps", 1) if d_steps is None else d_steps
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"d_steps must be an int >= 1 (D updates per G update), got {value!r}")
    return value


class FastStep:
    """The fast training step: ``step(real, y_real) -> {"g_loss", "d_loss"}`` (detached, on the device).

    Same mathematics as :func:`train_step` and the same random draws as
    ``train_step(..., dropout_draws=self.dropout_draws)`` (z, fake labels, then dropout masks in the
    same order), with no host sync. What it adds:

    - ``dropout_draws`` (default: ``"uniform"`` on the CPU): dropout masks from uniform draws, the
      same distribution as PyTorch's Bernoulli draws at about half the cost on the CPU
      (:func:`~condgan.layers.dropout_draws`); ``"bernoulli"`` draws what the reference draws.
    - ``joined_d_pass`` (default: on the CPU, for a D that treats samples apart,
      :func:`~condgan.layers.batch_independent`: the reference's MLP D): D's update judges the real
      and fake batches in one pass over both (larger matrix products, no sum of two weight
      gradients). With ``"uniform"`` draws it draws the masks that two passes draw; the results
      differ from two passes by float rounding only.

    - ``cuda_graph`` (default: on for CUDA): the first ``warmup_steps`` calls run eagerly on a side
      stream (real training steps), the next call captures the whole step as a CUDA graph and every
      later call with the same batch shape replays it: one launch instead of hundreds of kernels.
      Batches of another shape (a smaller last batch) run eagerly. Needs capturable optimizers
      (:func:`~condgan.training.optim.fast_optimizer_options`). Settings changed in ``param_groups`` between steps (a
      learning-rate schedule, a momentum ramp) are followed: a capturable Adam's learning rate is
      read from a device tensor, any other change makes the next call capture anew. Call
      :meth:`reset` after ``load_state_dict`` on an optimizer (it replaces the state tensors the
      graph holds) or after changing ``clip_grad_norm``; loading model weights in place needs none.
    - ``compile``: a ``torch.compile`` mode (``COMPILE_MODES``) for the two forward passes (their
      backward passes are compiled too). Compiled dropout draws its masks with inductor's RNG: the
      same distribution, not the same draws, unless ``torch._inductor.config.fallback_random`` is
      set. ``compile_backend`` picks another backend (``"aot_eager"`` for tests).

    Args:
        gan, opt_g, opt_d: the model and the optimizers of its generator and discriminator.
        generator: the random generator for noise and fake labels, on the training device.
        clip_grad_norm: clip each network's gradient norm to this value before its update.
        autocast_dtype: ``torch.autocast`` dtype for the forward passes (``torch.bfloat16``,
            ``torch.float16`` on CUDA); losses stay float32.
        cuda_graph: capture the step as a CUDA graph; None: when the model is on CUDA (and not
            distributed).
        compile: None or a torch.compile mode.
        warmup_steps: eager steps before the capture (CUDA graph only).
        skip_nonfinite: skip an update whose gradients hold NaN or inf (the step's losses then
            include ``"skipped"``: how many of its updates were skipped), instead of applying it.
        distributed: run the forward passes through DistributedDataParallel (gradients averaged
            over the processes of the initialised process group); None: when one of more than one
            process is initialised (:mod:`condgan.distributed`).
        d_steps: D updates per G update (see :func:`train_step`); None: ``gan.config.d_steps``.
        dropout_draws: ``"bernoulli"`` or ``"uniform"`` (:func:`~condgan.layers.dropout_draws`);
            None: ``"uniform"`` on the CPU, else ``"bernoulli"`` (CUDA's fused dropout is faster).
        joined_d_pass: judge the real and fake batches in one D pass in D's update; None: on the
            CPU when D is batch-independent and the step is not distributed.

    Example:
        >>> opt_g, opt_d = gan.optimizers(**fast_optimizer_options("cuda"))
        >>> step = FastStep(gan, opt_g, opt_d)
        >>> losses = step(real, y)
    """

    def __init__(self, gan: GAN, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, *,
                 generator: torch.Generator | None = None, clip_grad_norm: float | None = None,
                 autocast_dtype: torch.dtype | None = None, cuda_graph: bool | None = None,
                 compile: str | None = None, compile_backend: str = "inductor", warmup_steps: int = 3,
                 skip_nonfinite: bool = False, distributed: bool | None = None, d_steps: int | None = None,
                 dropout_draws: str | None = None, joined_d_pass: bool | None = None):
        device = next(gan.parameters()).device
        self.d_steps = _d_steps(gan, d_steps)
        _check_optimizer(opt_g, gan.generator, "opt_g", "generator")
        _check_optimizer(opt_d, gan.discriminator, "opt_d", "discriminator")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"clip_grad_norm must be > 0 or None, got {clip_grad_norm!r}")
        if autocast_dtype is not None and autocast_dtype not in (torch.bfloat16, torch.float16):
            raise ValueError(f"autocast_dtype must be torch.bfloat16, torch.float16 or None, got {autocast_dtype!r}")
        if compile is not None and compile not in COMPILE_MODES:
            raise ValueError(f"compile must be None or one of {COMPILE_MODES}, got {compile!r}")
        if distributed is None:
            distributed = is_distributed()
        if distributed:
            if not is_distributed():
                raise ValueError("distributed=True needs an initialised torch.distributed process group of more than "
                                 "one process (launch with torchrun)")
            if cuda_graph or compile is not None:
                raise ValueError("a distributed step runs eagerly: cuda_graph and compile cannot be used with it")
            cuda_graph = False
        if cuda_graph is None:
            cuda_graph = device.type == "cuda" and compile is None
        if cuda_graph:
            if device.type != "cuda":
                raise ValueError(f"cuda_graph=True needs the model on a CUDA device, it is on {device}")
            if compile is not None:
                raise ValueError("cuda_graph=True and compile= are exclusive: use compile='reduce-overhead' for "
                                 "torch.compile's own CUDA graphs, or cuda_graph alone")
            for name, opt in (("opt_g", opt_g), ("opt_d", opt_d)):
                if not all(group.get("capturable", True) for group in opt.param_groups):
                    raise ValueError(f"{name} is not capturable, which a CUDA graph needs: build the optimizers with "
                                     "gan.optimizers(**fast_optimizer_options('cuda')) (or capturable=True), or pass cuda_graph=False")
        if int(warmup_steps) < 1:
            raise ValueError(f"warmup_steps must be >= 1, got {warmup_steps!r}")
        if generator is not None and generator.device.type != device.type:
            raise ValueError(f"generator is on {generator.device}, the model on {device}: they must match")
        if dropout_draws is None:
            dropout_draws = "uniform" if device.type == "cpu" else "bernoulli"
        if dropout_draws not in DROPOUT_DRAWS:
            raise ValueError(f"dropout_draws must be None or one of {DROPOUT_DRAWS}, got {dropout_draws!r}")
        if joined_d_pass is None:
            joined_d_pass = device.type == "cpu" and not distributed and batch_independent(gan.discriminator)
        elif joined_d_pass and not batch_independent(gan.discriminator):
            raise ValueError("joined_d_pass=True needs a discriminator that treats samples apart (no batch norm, "
                             "spectral norm, augmentation or other layer that could mix them: see "
                             "condgan.layers.batch_independent); pass joined_d_pass=None or False")
        elif joined_d_pass and distributed:
            raise ValueError("joined_d_pass=True cannot be used with a distributed step")

        self.gan, self.opt_g, self.opt_d = gan, opt_g, opt_d
        self.generator, self.clip_grad_norm, self.autocast_dtype = generator, clip_grad_norm, autocast_dtype
        self.device, self.cuda_graph, self.compile, self.warmup_steps = device, bool(cuda_graph), compile, int(warmup_steps)
        self.skip_nonfinite, self.distributed = bool(skip_nonfinite), bool(distributed)
        self.dropout_draws, self.joined_d_pass = dropout_draws, bool(joined_d_pass)
        self.forwards = _Forwards(gan, joined=self.joined_d_pass)
        if compile is not None:
            self.forwards.generator_pass = torch.compile(self.forwards.generator_pass, mode=compile,
                                                         backend=compile_backend, dynamic=False)
            self.forwards.discriminator_pass = torch.compile(self.forwards.discriminator_pass, mode=compile,
                                                             backend=compile_backend, dynamic=False)
            self.forwards.fakes = torch.compile(self.forwards.fakes, mode=compile, backend=compile_backend, dynamic=False)
        if self.distributed:
            self.forwards = DistributedForwards(self.forwards, device)
        self.calls = self.recaptures = 0
        self.reset()

    def reset(self) -> None:
        """Drop the captured CUDA graph (if any); the next call captures a new one."""
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_key: tuple | None = None
        self._static: tuple[Tensor, Tensor, Tensor] | None = None  # real, y_real, losses
        self._learning_rates: list[tuple[dict, Tensor]] = []  # (param group, device tensor the graph reads its lr from)
        self._hyperparameters: list[tuple[dict, dict]] = []  # (param group, its other settings when captured)
        self._graph_grads: list[tuple[Tensor, Tensor | None]] = []  # (parameter, the gradient the graph writes)

    @property
    def captured(self) -> bool:
        """True once the step has been captured as a CUDA graph."""
        return self._graph is not None

    def __call__(self, real: Tensor, y_real: Tensor) -> dict[str, Tensor]:
        self.calls += 1
        if not self.cuda_graph:
            return self._named(self._run(real, y_real, cache_enabled=True))
        key = (tuple(real.shape), real.dtype, tuple(y_real.shape), y_real.dtype)
        if self._graph is not None and key == self._graph_key and not self._hyperparameters_changed():
            static_real, static_y, static_losses = self._static
            static_real.copy_(real)
            static_y.copy_(y_real)
            self._graph.replay()
            losses = static_losses.clone()  # the graph overwrites its outputs on the next replay
        elif (self._graph is None and self.calls > self.warmup_steps) or (self._graph is not None and key == self._graph_key):
            if self._graph is not None:  # a setting other than a tensor-held learning rate changed: capture anew
                self.recaptures += 1
                if self.recaptures == 10:
                    warnings.warn("FastStep: optimizer settings changed 10 times, and each change re-captures the CUDA "
                                  "graph; if they change every step, cuda_graph=False is faster", stacklevel=2)
            self.reset()
            losses = self._capture(real, y_real, key)
        else:
            losses = self._warmup(real, y_real)
            if self._graph is not None:
                self._keep_graph_gradients()
        return self._named(losses)

    # -- internals --------------------------------------------------------------------------------
    @staticmethod
    def _named(values) -> dict[str, Tensor]:
        return dict(zip(("g_loss", "d_loss", "skipped"), values))

    def _run(self, real: Tensor, y_real: Tensor, *, cache_enabled: bool) -> tuple[Tensor, ...]:
        d_trainable = [p for p in self.gan.discriminator.parameters() if p.requires_grad]
        with _dropout_draws(self.dropout_draws):
            return _step(self.gan, self.forwards, real, y_real, self.opt_g, self.opt_d, d_trainable, self.generator,
                         self.clip_grad_norm, _autocast(self.device, self.autocast_dtype, cache_enabled=cache_enabled),
                         self.skip_nonfinite, self.d_steps)

    def _warmup(self, real: Tensor, y_real: Tensor) -> Tensor:
        """An eager step on a side stream (PyTorch's recipe before capturing a graph)."""
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(stream), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*capturable=True.*")  # uncaptured steps are expected here
            losses = torch.stack(self._run(real, y_real, cache_enabled=False))
        torch.cuda.current_stream(self.device).wait_stream(stream)
        return losses

    def _capture(self, real: Tensor, y_real: Tensor, key: tuple) -> Tensor:
        """Capture one step on static copies of this batch, then replay it to train on the batch."""
        static_real, static_y = real.clone(), y_real.clone()
        self.opt_g.zero_grad(set_to_none=True)  # gradients are then allocated inside the graph's pool
        self.opt_d.zero_grad(set_to_none=True)
        graph = torch.cuda.CUDAGraph()
        if self.generator is not None:
            graph.register_generator_state(self.generator)
        groups = [group for opt in (self.opt_g, self.opt_d) for group in opt.param_groups]
        # Capturable optimizers (Adam, AdamW) read a float learning rate from a device tensor in the
        # graph, so that a schedule setting param_group["lr"] between steps costs one small copy;
        # a change to any other setting (SGD's lr, a momentum ramp) makes the next call capture anew.
        self._learning_rates = [(group, torch.tensor(float(group["lr"]), dtype=torch.float32, device=self.device))
                                for group in groups if group.get("capturable") and not isinstance(group["lr"], Tensor)]
        self._hyperparameters = [(group, {k: v for k, v in group.items() if k != "params"}) for group in groups]
        floats = [(group, group["lr"]) for group, _ in self._learning_rates]
        for group, lr in self._learning_rates:
            group["lr"] = lr
        try:
            with torch.cuda.graph(graph):
                static_losses = torch.stack(self._run(static_real, static_y, cache_enabled=False))  # (2,) or (3,)
        except RuntimeError as exc:
            raise RuntimeError(
                f"capturing the training step as a CUDA graph failed: {exc}. A component may read a value back "
                "to the host (.item(), bool(tensor), printing) or use data-dependent shapes; pass cuda_graph=False "
                "to train without a graph.") from exc
        finally:
            for group, value in floats:
                group["lr"] = value  # the optimizers keep plain floats (state_dict, schedules, eager steps)
        self._graph, self._graph_key, self._static = graph, key, (static_real, static_y, static_losses)
        self._graph_grads = [(p, p.grad) for p in self.gan.parameters()]
        graph.replay()  # capturing ran nothing: this replay is the step on this batch
        return static_losses.clone()

    def _keep_graph_gradients(self) -> None:
        """After an eager step (another batch shape): point ``.grad`` back at the tensors the graph writes.

        The eager step's ``zero_grad(set_to_none=True)`` replaced them; its gradients are copied over,
        so ``.grad`` shows the latest step either way.
        """
        for p, graph_grad in self._graph_grads:
            if graph_grad is not None and p.grad is not None and p.grad is not graph_grad:
                graph_grad.copy_(p.grad)
            p.grad = graph_grad

    def _hyperparameters_changed(self) -> bool:
        """Copy changed learning rates into the tensors the graph reads (no host sync); True when
        another setting changed since the capture (the graph holds the old value)."""
        held = {id(group): lr for group, lr in self._learning_rates}
        for group, captured in self._hyperparameters:
            for key, value in captured.items():
                now = group[key]
                if now is value or (not isinstance(now, Tensor) and not isinstance(value, Tensor) and now == value):
                    continue
                if key == "lr" and id(group) in held and not isinstance(now, Tensor):
                    held[id(group)].fill_(now)
                    captured["lr"] = now
                    continue
                return True
        return False


def make_step(gan: GAN, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, **options: Any) -> FastStep:
    """The fast step for ``gan``: :class:`FastStep` with its defaults (``options`` are its keyword args)."""
    return FastStep(gan, opt_g, opt_d, **options)


def _check_optimizer(opt: Any, net: torch.nn.Module, name: str, role: str, other: torch.nn.Module | None = None) -> None:
    if not isinstance(opt, torch.optim.Optimizer):
        raise ValueError(f"{name} must be a torch.optim.Optimizer, got {type(opt).__name__}")
    owned = {id(p) for p in net.parameters()}
    params = [p for group in opt.param_groups for p in group["params"]]
    if not params or any(id(p) not in owned for p in params):
        swapped = other is not None and params and all(id(p) in {id(q) for q in other.parameters()} for p in params)
        hint = ", but it holds the other network's: are opt_g and opt_d swapped?" if swapped else ""
        raise ValueError(f"{name} must optimize the {role}'s parameters (and only those){hint}; "
                         "build both with gan.optimizers() (opt_g, opt_d = gan.optimizers())")

