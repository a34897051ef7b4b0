"""Adversarial losses: each gives the discriminator's and the generator's loss from D's raw scores.

A loss computes numbers only; the trainer owns ``zero_grad``/``backward``/``step``. Scores are raw
(no sigmoid) and are promoted to float32, so the losses are stable under autocast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .hookspecs import hookimpl


class Loss(ABC):
    """Base class of adversarial losses.

    Subclasses set ``name`` and implement :meth:`discriminator_loss` and :meth:`generator_loss`;
    a loss that needs D itself (a gradient penalty) overrides :meth:`penalty` and adds
    ``super().penalty(...)`` so that the R1 option keeps working. Subclasses pass ``**regularizers``
    (``r1_gamma``, ``lecam_weight``, ``lecam_decay``, ``mode_seeking_weight``) on to ``super().__init__``.

    A loss whose generator term compares fake scores with real ones (the relativistic losses of
    Jolicoeur-Martineau 2019) sets ``needs_real_scores_for_generator = True``: the training step
    then runs D once more, on the real batch, in G's update (D's parameters stay frozen there, so
    it costs one forward pass and no D gradients) and calls ``generator_loss(fake_score,
    real_score)``. Every other loss is called as ``generator_loss(fake_score)`` and pays nothing.

    Args:
        r1_gamma: weight of the R1 regularizer (Mescheder et al. 2018, "Which Training Methods for
            GANs do actually Converge?"), added to D's loss with every loss:
            ``gamma / 2 * E ||grad_x D(x|y)||^2`` over the real batch. 0 (default) turns it off.
        lecam_weight: weight of the LeCam regularizer (Tseng et al. 2021, "Regularizing Generative
            Adversarial Networks under Limited Data"), added to D's loss with every loss (see
            :class:`LeCamAnchors`); 0 (default) turns it off.
        lecam_decay: decay of LeCam's moving averages of D's mean real and fake scores.
        mode_seeking_weight: weight of the mode-seeking term (Mao et al. 2019, "Mode Seeking
            Generative Adversarial Networks for Diverse Image Synthesis"), added to G's loss with
            every loss (see :meth:`generator_penalty`); 0 (default) turns it off. With it the step
            gives a batch's second half the first half's conditions.
    """

    name: ClassVar[str]
    #: True: G's loss needs D's scores on the real batch (``generator_loss(fake_score, real_score)``).
    needs_real_scores_for_generator: ClassVar[bool] = False

    def __init__(self, *, r1_gamma: float = 0.0, lecam_weight: float = 0.0, lecam_decay: float = 0.99,
                 mode_seeking_weight: float = 0.0):
        if not isinstance(r1_gamma, (int, float)) or isinstance(r1_gamma, bool) or r1_gamma < 0:
            raise ValueError(f"r1_gamma must be a number >= 0, got {r1_gamma!r}")
        if not isinstance(lecam_weight, (int, float)) or isinstance(lecam_weight, bool) or lecam_weight < 0:
            raise ValueError(f"lecam_weight must be a number >= 0, got {lecam_weight!r}")
        if not isinstance(lecam_decay, (int, float)) or isinstance(lecam_decay, bool) or not 0 <= lecam_decay < 1:
            raise ValueError(f"lecam_decay must be a number in [0, 1), got {lecam_decay!r}")
        if not isinstance(mode_seeking_weight, (int, float)) or isinstance(mode_seeking_weight, bool) \
                or not 0 <= mode_seeking_weight < float("inf"):
            raise ValueError(f"mode_seeking_weight must be a number >= 0, got {mode_seeking_weight!r}")
        self.r1_gamma = float(r1_gamma)
        self.mode_seeking_weight = float(mode_seeking_weight)
        self.lecam_weight, self.lecam_decay = float(lecam_weight), float(lecam_decay)
        self._lecam = LeCamAnchors(self.lecam_decay) if self.lecam_weight > 0 else None

    @abstractmethod
    def discriminator_loss(self, real_score: Tensor, fake_score: Tensor) -> Tensor:
        """D's loss from its scores on a real batch and on a (detached) fake batch."""

    @abstractmethod
    def generator_loss(self, fake_score: Tensor, real_score: Tensor | None = None) -> Tensor:
        """G's loss from D's scores on G's samples.

        ``real_score`` (D's scores on the real batch, no gradient) is passed only when the loss sets
        ``needs_real_scores_for_generator``; other losses may keep the one-argument signature.
        """

    def penalty(self, discriminator: nn.Module, real: Tensor, fake: Tensor, y_real: Tensor, y_fake: Tensor) -> Tensor | None:
        """An extra term of D's loss that needs D itself: here R1 when ``r1_gamma`` > 0, else None."""
        if self.r1_gamma == 0:
            return None
        return self.r1_gamma / 2 * r1_penalty(discriminator, real, y_real)

    @property
    def pairs_conditions(self) -> bool:
        """True when G's batch must come in pairs of equal conditions (:meth:`generator_penalty`)."""
        return self.mode_seeking_weight > 0

    def generator_penalty(self, fake: Tensor, z: Tensor) -> Tensor | None:
        """An extra term of G's loss from its samples: mode seeking when ``mode_seeking_weight`` > 0, else None.

        Sample ``i`` and sample ``i + B // 2`` have the same condition (:func:`pair_conditions`) and
        differ only in their noise; the term is ``weight / (mean |x_i - x_j| / mean |z_i - z_j| + 1e-5)``
        (MSGAN's), large when different noise gives the same sample: it pushes G to use its noise
        (against a collapse to one colour or stroke per class).

        Shape:
            - fake: (B, *sample shape); z: (B, latent_dim); returns a scalar
        """
        if self.mode_seeking_weight == 0:
            return None
        half = fake.shape[0] // 2
        ratio = (fake[:half] - fake[half:2 * half]).abs().mean() / (z[:half] - z[half:2 * half]).abs().mean()
        return self.mode_seeking_weight / (ratio + 1e-5)

    def score_penalty(self, real_score: Tensor, fake_score: Tensor) -> Tensor | None:
        """An extra term of D's loss from its scores on the real and the fake batch: here LeCam
        when ``lecam_weight`` > 0 (which also updates its anchors), else None."""
        if self._lecam is None:
            return None
        return self.lecam_weight * self._lecam(real_score, fake_score)

    def state_module(self) -> nn.Module | None:
        """The module holding this loss's device state (buffers), or None.

        The :class:`~condgan.gan.GAN` keeps it inside its discriminator (``discriminator.loss_state``),
        so that it moves to D's device and is saved and restored with D's weights.
        """
        return self._lecam

    def options(self) -> dict[str, object]:
        """The constructor options of this loss (for ``repr``)."""
        return {key: value for key, value in vars(self).items() if not key.startswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options().items())})"


class LeastSquaresLoss(Loss):
    """Least squares GAN loss (Mao et al. 2017), as the reference: MSE of the score against 1 / 0.

    D: ``(mse(real, 1) + mse(fake, 0)) / 2``; G: ``mse(fake, 1)``.
    """

    name = "lsgan"

    def discriminator_loss(self, real_score, fake_score):
        return (_mse_to(_scores(real_score), 1.0) + _mse_to(_scores(fake_score), 0.0)) / 2

    def generator_loss(self, fake_score):
        return _mse_to(_scores(fake_score), 1.0)


class BCELoss(Loss):
    """Binary cross-entropy on logits: the value function of the paper (Mirza & Osindero 2014).

    D: ``(bce(real, 1) + bce(fake, 0)) / 2``. G, by ``generator_objective``:

    - ``"non_saturating"`` (default): ``bce(fake, 1) = -log D(G(z|y)|y)``, the form Goodfellow et
      al. (2014) recommend and the paper's authors train with in practice: it has strong gradients
      early, when D rejects G's samples easily.
    - ``"minimax"``: ``-bce(fake, 0) = log(1 - D(G(z|y)|y))``, the value function exactly (G
      minimises what D maximises); its gradient vanishes when D is confident.

    Computed from logits with ``binary_cross_entropy_with_logits``: numerically stable and allowed
    under autocast.

    Args:
        generator_objective: ``"non_saturating"`` or ``"minimax"``.
        r1_gamma, lecam_weight, lecam_decay: see :class:`Loss`.
    """

    name = "bce"
    GENERATOR_OBJECTIVES = ("non_saturating", "minimax")

    def __init__(self, *, generator_objective: str = "non_saturating", r1_gamma: float = 0.0, **regularizers: float):
        super().__init__(r1_gamma=r1_gamma, **regularizers)
        if generator_objective not in self.GENERATOR_OBJECTIVES:
            raise ValueError(f"generator_objective must be one of {self.GENERATOR_OBJECTIVES}, got {generator_objective!r}")
        self.generator_objective = generator_objective

    def discriminator_loss(self, real_score, fake_score):
        return (_bce_to(_scores(real_score), 1.0) + _bce_to(_scores(fake_score), 0.0)) / 2

    def generator_loss(self, fake_score):
        if self.generator_objective == "minimax":
            return -_bce_to(_scores(fake_score), 0.0)
        return _bce_to(_scores(fake_score), 1.0)


class HingeLoss(Loss):
    """Hinge loss (Lim & Ye 2017; used by SNGAN, SAGAN, BigGAN): margins of 1 on D's scores.

    From "Geometric GAN" (Lim & Ye 2017); SNGAN (Miyato et al. 2018) made it the usual choice.
    D: ``E[relu(1 - real)] + E[relu(1 + fake)]`` (not halved); G: ``-E[fake]``.

    Args:
        r1_gamma, lecam_weight, lecam_decay: see :class:`Loss`.
    """

    name = "hinge"

    def discriminator_loss(self, real_score, fake_score):
        return F.relu(1.0 - _scores(real_score)).mean() + F.relu(1.0 + _scores(fake_score)).mean()

    def generator_loss(self, fake_score):
        return -_scores(fake_score).mean()


class WassersteinGPLoss(Loss):
    """Wasserstein loss with gradient penalty (WGAN-GP, Gulrajani et al. 2017).

    From "Improved Training of Wasserstein GANs" (Gulrajani et al., NeurIPS 2017).
    D (the critic): ``E[fake] - E[real] + gp_weight * E[(||grad_x D(x_hat|y)|| - 1)^2]`` where
    ``x_hat`` interpolates each real image and a fake one at a uniform random point (drawn on the
    device) and y is the real batch's condition. G: ``-E[fake]``. The paper's critic has no batch
    norm (it makes the penalty depend on the batch): use ``norm=None`` or ``"layer"`` in D.

    Args:
        gp_weight: lambda, the penalty's weight (the paper's 10).
        r1_gamma, lecam_weight, lecam_decay: see :class:`Loss`.
    """

    name = "wgan_gp"

    def __init__(self, *, gp_weight: float = 10.0, r1_gamma: float = 0.0, **regularizers: float):
        super().__init__(r1_gamma=r1_gamma, **regularizers)
        if not isinstance(gp_weight, (int, float)) or gp_weight < 0:
            raise ValueError(f"gp_weight must be a number >= 0, got {gp_weight!r}")
        self.gp_weight = float(gp_weight)

    def discriminator_loss(self, real_score, fake_score):
        return _scores(fake_score).mean() - _scores(real_score).mean()

    def generator_loss(self, fake_score):
        return -_scores(fake_score).mean()

    def penalty(self, discriminator, real, fake, y_real, y_fake):
        total = super().penalty(discriminator, real, fake, y_real, y_fake)
        if self.gp_weight > 0:
            gp = self.gp_weight * gradient_penalty(discriminator, real, fake, y_real)
            total = gp if total is None else total + gp
        return total


class _RelativisticAverage(Loss):
    """A relativistic average loss: each score is judged relative to the other batch's mean score.

    ``rel_real = real - mean(fake)`` and ``rel_fake = fake - mean(real)`` (means over the batch);
    subclasses give the per-score function ``f(x, target)`` with target +1 ("more real than the
    other batch") or -1. D: ``(E[f(rel_real, +1)] + E[f(rel_fake, -1)]) / 2``; G, the same with the
    targets swapped: ``(E[f(rel_real, -1)] + E[f(rel_fake, +1)]) / 2``. G's loss depends on the real
    scores, so the step passes them (``needs_real_scores_for_generator``): D sees the real batch once
    more in G's update, in training mode (a batch norm in D moves its running statistics once more,
    dropout draws once more), as in the author's code. Adding a constant to every score changes
    neither loss, so D's output bias gets no gradient.
    """

    needs_real_scores_for_generator = True

    @staticmethod
    @abstractmethod
    def _term(relative: Tensor, target: float) -> Tensor:
        """The mean over the batch of the per-score loss of relative scores against target +1 or -1."""

    def _pair(self, real_score: Tensor, fake_score: Tensor, real_target: float) -> Tensor:
        real, fake = _scores(real_score), _scores(fake_score)
        return (self._term(real - fake.mean(), real_target) + self._term(fake - real.mean(), -real_target)) / 2

    def discriminator_loss(self, real_score, fake_score):
        return self._pair(real_score, fake_score, 1.0)

    def generator_loss(self, fake_score, real_score=None):
        if real_score is None:
            raise ValueError(f"the {self.name} loss needs D's scores on the real batch for G's loss: "
                             "call generator_loss(fake_score, real_score)")
        return self._pair(real_score, fake_score, -1.0)


class RelativisticAverageLSGANLoss(_RelativisticAverage):
    """Relativistic average least squares loss (RaLSGAN; Jolicoeur-Martineau 2019).

    From "The relativistic discriminator: a key element missing from standard GAN" (ICLR 2019),
    as the author's code computes it (halved). With ``C_r``, ``C_f`` D's raw scores on the real
    and the fake batch:

    - D: ``(E[(C_r - E[C_f] - 1)^2] + E[(C_f - E[C_r] + 1)^2]) / 2``
    - G: ``(E[(C_r - E[C_f] + 1)^2] + E[(C_f - E[C_r] - 1)^2]) / 2``

    G's loss needs the real scores: the training step runs D on the real batch in G's update
    (one extra forward pass, no D gradients).

    Args:
        r1_gamma: see :class:`Loss`.

    Example:
        >>> gan = condgan.build("mnist_mlp", loss="ralsgan")
    """

    name = "ralsgan"

    @staticmethod
    def _term(relative, target):
        return (relative - target).pow(2).mean()


class RelativisticAverageHingeLoss(_RelativisticAverage):
    """Relativistic average hinge loss (RaHinge; Jolicoeur-Martineau 2019, the author's code).

    With ``C_r``, ``C_f`` D's raw scores on the real and the fake batch:

    - D: ``(E[relu(1 - (C_r - E[C_f]))] + E[relu(1 + (C_f - E[C_r]))]) / 2``
    - G: ``(E[relu(1 + (C_r - E[C_f]))] + E[relu(1 - (C_f - E[C_r]))]) / 2``

    G's loss needs the real scores: the training step runs D on the real batch in G's update
    (one extra forward pass, no D gradients).

    Args:
        r1_gamma: see :class:`Loss`.
    """

    name = "rahinge"

    @staticmethod
    def _term(relative, target):
        return F.relu(1.0 - target * relative).mean()


# -- penalties ------------------------------------------------------------------------------------
def pair_conditions(y: Tensor) -> Tensor:
    """``y`` whose second half repeats its first: rows ``i`` and ``i + B // 2`` equal (an odd last row kept).

    Each condition keeps its distribution; the mode-seeking term (:meth:`Loss.generator_penalty`)
    compares samples of the same condition.

    Example:
        >>> pair_conditions(torch.tensor([3, 1, 4, 1, 5]))
        tensor([3, 1, 3, 1, 5])
    """
    half = y.shape[0] // 2
    return torch.cat([y[:half], y[:half], y[2 * half:]])


class LeCamAnchors(nn.Module):
    """LeCam regularisation (Tseng et al. 2021) and its anchors: moving averages of D's mean scores.

    From "Regularizing Generative Adversarial Networks under Limited Data" (Tseng et al., CVPR
    2021). Each call first updates the anchors with this batch's mean scores,
    ``alpha_R <- decay * alpha_R + (1 - decay) * mean(D(real))`` and likewise ``alpha_F`` for the
    fakes (the first call copies the means: the averages start from D's first scores), then returns
    ``E[relu(D(real) - alpha_F)^2] + E[relu(alpha_R - D(fake))^2]``, as the authors' code does: real
    scores above the fake anchor and fake scores below the real anchor are pulled back, which keeps
    D's outputs from drifting apart when D overfits. The anchors are buffers (on D's device, no
    host sync; saved with D).

    Args:
        decay: the anchors' decay (0.99 as the authors' code).

    Shape:
        - real_score, fake_score: (B, 1) -> a scalar (float32).
    """

    def __init__(self, decay: float = 0.99):
        super().__init__()
        self.decay = float(decay)
        self.register_buffer("real_anchor", torch.tensor(0.0))
        self.register_buffer("fake_anchor", torch.tensor(0.0))
        self.register_buffer("updates", torch.tensor(0.0))

    def forward(self, real_score: Tensor, fake_score: Tensor) -> Tensor:
        real, fake = _scores(real_score), _scores(fake_score)
        with torch.no_grad():
            decay = (self.updates > 0).to(self.real_anchor.dtype) * self.decay  # the first update copies the means
            self.real_anchor.copy_(decay * self.real_anchor + (1 - decay) * real.mean())
            self.fake_anchor.copy_(decay * self.fake_anchor + (1 - decay) * fake.mean())
            self.updates += 1
        return F.relu(real - self.fake_anchor).pow(2).mean() + F.relu(self.real_anchor - fake).pow(2).mean()

    def extra_repr(self) -> str:
        return f"decay={self.decay}"


def input_gradient(discriminator: Callable[..., Tensor], x: Tensor, y: Tensor) -> Tensor:
    """grad_x of the summed scores D(x|y) at x, kept in the graph (``create_graph``) so that a penalty
    on it trains D. Shape: as x.

    The penalty's D pass is differentiated twice, which ``torch.compile`` does not support: this
    runs eagerly, also inside a compiled step (``FastStep(compile=...)``), through
    ``torch.compiler.disable`` (applied on first use: importing it costs a second).
    """
    global _eager_input_gradient
    if _eager_input_gradient is None:
        _eager_input_gradient = torch.compiler.disable(_input_gradient, recursive=True)
    return _eager_input_gradient(discriminator, x, y)


def _input_gradient(discriminator: Callable[..., Tensor], x: Tensor, y: Tensor) -> Tensor:
    x = x.detach().requires_grad_(True)
    score = discriminator(x, y, check=False)  # (B, 1)
    (grad,) = torch.autograd.grad(_at_least_float32(score).sum(), x, create_graph=True)
    return _at_least_float32(grad)


_eager_input_gradient: Callable[..., Tensor] | None = None


def r1_penalty(discriminator: Callable[..., Tensor], real: Tensor, y_real: Tensor) -> Tensor:
    """``E ||grad_x D(x|y)||^2`` over the real batch (R1 without its gamma / 2)."""
    return input_gradient(discriminator, real, y_real).flatten(1).pow(2).sum(1).mean()


def gradient_penalty(discriminator: Callable[..., Tensor], real: Tensor, fake: Tensor, y: Tensor) -> Tensor:
    """``E (||grad_x D(x_hat|y)|| - 1)^2`` at ``x_hat = a * real + (1 - a) * fake``, a ~ U[0, 1) per
    sample (drawn on real's device), without its weight.

    A discriminator that packs ``pac`` samples into one judgement (its ``pac`` attribute, PacGAN)
    gets one ``a`` per pack and the norm of each pack's gradient as a whole (as CTGAN's
    ``calc_gradient_penalty``): the penalty is on the function D computes, of the packed input.
    """
    pac = int(getattr(discriminator, "pac", getattr(getattr(discriminator, "module", None), "pac", 1)))
    b = real.shape[0]
    if b % pac:
        raise ValueError(f"a discriminator packing pac={pac} samples needs a batch that is a multiple of {pac}, got {b}")
    a = torch.rand(b // pac, *(1,) * (real.dim() - 1), device=real.device, dtype=real.dtype)  # (B / pac, 1, ...)
    a = a.repeat_interleave(pac, dim=0)  # one weight per pack: (B, 1, 1, 1)
    x_hat = torch.lerp(fake.detach().to(real.dtype), real.detach(), a)
    grad = input_gradient(discriminator, x_hat, y).reshape(b // pac, -1)  # (B / pac, pac * C*H*W)
    norm = (grad.pow(2).sum(1) + 1e-12).sqrt()  # the epsilon keeps the gradient finite at grad = 0
    return (norm - 1).pow(2).mean()


def _scores(score: Tensor) -> Tensor:
    """D's scores in float32, or ValueError for an empty batch (whose mean loss would be NaN)."""
    if score.numel() == 0:
        raise ValueError(f"a loss needs a non-empty batch, got scores of shape {tuple(score.shape)}")
    return score.float()


def _at_least_float32(t: Tensor) -> Tensor:
    """t in float32, or in its own dtype when that is wider (float64)."""
    return t if t.dtype == torch.float64 else t.float()


def _mse_to(score: Tensor, target: float) -> Tensor:
    return F.mse_loss(score, score.new_full(score.shape, target))


def _bce_to(score: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(score, score.new_full(score.shape, target))


@hookimpl
def register_losses():
    return [LeastSquaresLoss, BCELoss, HingeLoss, WassersteinGPLoss, RelativisticAverageLSGANLoss, RelativisticAverageHingeLoss]
