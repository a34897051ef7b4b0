"""Adversarial losses: each gives the discriminator's and the generator's loss from D's raw scores.

A loss computes numbers only; the trainer owns ``zero_grad``/``backward``/``step``. Scores are raw
(no sigmoid) and are promoted to float32, so the losses are stable under autocast.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

import torch.nn.functional as F
from torch import Tensor

from .hookspecs import hookimpl

if TYPE_CHECKING:  # pragma: no cover
    from .models import ConditionalDiscriminator


class Loss(ABC):
    """Base class of adversarial losses.

    Subclasses set ``name`` and implement :meth:`discriminator_loss` and :meth:`generator_loss`;
    a loss that needs D itself (a gradient penalty, R1) overrides :meth:`penalty`.
    """

    name: ClassVar[str]

    @abstractmethod
    def discriminator_loss(self, real_score: Tensor, fake_score: Tensor) -> Tensor:
        """D's loss from its scores on a real batch and on a (detached) fake batch."""

    @abstractmethod
    def generator_loss(self, fake_score: Tensor) -> Tensor:
        """G's loss from D's scores on G's samples."""

    def penalty(self, discriminator: ConditionalDiscriminator, real: Tensor, fake: Tensor, y_real: Tensor, y_fake: Tensor) -> Tensor | None:
        """An extra term of D's loss that needs D itself (gradient penalty, R1), or None."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LeastSquaresLoss(Loss):
    """Least squares GAN loss (Mao et al. 2017), as the reference: MSE of the score against 1 / 0.

    D: ``(mse(real, 1) + mse(fake, 0)) / 2``; G: ``mse(fake, 1)``.
    """

    name = "lsgan"

    def discriminator_loss(self, real_score, fake_score):
        return (_mse_to(real_score.float(), 1.0) + _mse_to(fake_score.float(), 0.0)) / 2

    def generator_loss(self, fake_score):
        return _mse_to(fake_score.float(), 1.0)


class BCELoss(Loss):
    """Binary cross-entropy on logits: the value function of the paper (Mirza & Osindero 2014).

    D: ``(bce(real, 1) + bce(fake, 0)) / 2``; G: ``bce(fake, 1)``, the non-saturating form
    (``-log D(G(z|y)|y)``) that the paper's authors train with in practice. Computed from logits
    with ``binary_cross_entropy_with_logits``: numerically stable and allowed under autocast.
    """

    name = "bce"

    def discriminator_loss(self, real_score, fake_score):
        return (_bce_to(real_score.float(), 1.0) + _bce_to(fake_score.float(), 0.0)) / 2

    def generator_loss(self, fake_score):
        return _bce_to(fake_score.float(), 1.0)


def _mse_to(score: Tensor, target: float) -> Tensor:
    return F.mse_loss(score, score.new_full(score.shape, target))


def _bce_to(score: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(score, score.new_full(score.shape, target))


@hookimpl
def register_losses():
    return [LeastSquaresLoss, BCELoss]
