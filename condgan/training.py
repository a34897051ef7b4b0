"""One training step of a conditional GAN, as the reference does it: G update, then D update."""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from .gan import GAN


def _add(loss: Tensor, extra: Tensor | None) -> Tensor:
    return loss if extra is None else loss + extra


def train_step(gan: GAN, real: Tensor, y_real: Tensor, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
               *, generator: torch.Generator | None = None, clip_grad_norm: float | None = None,
               autocast_dtype: torch.dtype | None = None) -> dict[str, Tensor]:
    """One step on a real batch; returns the detached losses (no host sync).

    Noise and fake conditions are drawn on ``real``'s device. G is updated against D's scores on
    its samples (D's parameters accumulate no gradients there), then D on the real batch and the
    same fakes, detached. Inputs are not validated here: validate data once, before the loop.

    Args:
        clip_grad_norm: clip each network's gradient norm to this value before its update.
        autocast_dtype: run the forward passes under ``torch.autocast`` with this dtype (e.g.
            ``torch.bfloat16``); losses are computed in float32.
    """
    G, D, loss = gan.generator, gan.discriminator, gan.loss
    autocast = (torch.autocast(real.device.type, dtype=autocast_dtype) if autocast_dtype is not None
                else contextlib.nullcontext())
    z = G.sample_noise(real.shape[0], real.device, generator)
    y_fake = gan.spec.sample_like(y_real, generator)

    # G update
    opt_g.zero_grad(set_to_none=True)
    D.requires_grad_(False)
    with autocast:
        fake = G(z, y_fake, check=False)
        fake_score, fake_aux = D.judge(fake, y_fake, check=False)
        g_loss = _add(loss.generator_loss(fake_score), fake_aux)
    g_loss.backward()
    D.requires_grad_(True)
    if clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(G.parameters(), clip_grad_norm)
    opt_g.step()

    # D update
    opt_d.zero_grad(set_to_none=True)
    fake = fake.detach()
    with autocast:
        real_score, real_aux = D.judge(real, y_real, check=False)
        fake_score, fake_aux = D.judge(fake, y_fake, check=False)
        d_loss = loss.discriminator_loss(real_score, fake_score)
        d_loss = _add(_add(_add(d_loss, real_aux), fake_aux), loss.penalty(D, real, fake, y_real, y_fake))
    d_loss.backward()
    if clip_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(D.parameters(), clip_grad_norm)
    opt_d.step()
    return {"g_loss": g_loss.detach(), "d_loss": d_loss.detach()}
