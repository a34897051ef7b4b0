"""One training step of a conditional GAN, as the reference does it: G update, then D update."""

from __future__ import annotations

import torch
from torch import Tensor

from .gan import GAN


def _add(loss: Tensor, extra: Tensor | None) -> Tensor:
    return loss if extra is None else loss + extra


def train_step(gan: GAN, real: Tensor, y_real: Tensor, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One step on a real batch; returns the detached losses (no host sync).

    Noise and fake conditions are drawn on ``real``'s device. G is updated against D's scores on
    its samples (D's parameters accumulate no gradients there), then D on the real batch and the
    same fakes, detached. Inputs are not validated here: validate data once, before the loop.
    """
    G, D, loss = gan.generator, gan.discriminator, gan.loss
    z = G.sample_noise(real.shape[0], real.device, generator)
    y_fake = gan.spec.sample_like(y_real, generator)

    # G update
    opt_g.zero_grad(set_to_none=True)
    fake = G(z, y_fake, check=False)
    D.requires_grad_(False)
    fake_score, fake_aux = D.judge(fake, y_fake, check=False)
    g_loss = _add(loss.generator_loss(fake_score), fake_aux)
    g_loss.backward()
    D.requires_grad_(True)
    opt_g.step()

    # D update
    opt_d.zero_grad(set_to_none=True)
    fake = fake.detach()
    real_score, real_aux = D.judge(real, y_real, check=False)
    fake_score, fake_aux = D.judge(fake, y_fake, check=False)
    d_loss = loss.discriminator_loss(real_score, fake_score)
    d_loss = _add(_add(_add(d_loss, real_aux), fake_aux), loss.penalty(D, real, fake, y_real, y_fake))
    d_loss.backward()
    opt_d.step()
    return {"g_loss": g_loss.detach(), "d_loss": d_loss.detach()}
