"""An exponential moving average of a network's weights (sampled from instead of G when on)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """An exponential moving average of a module's parameters; buffers are copied as they are.

    ``update(step)`` does ``ema = decay * ema + (1 - decay) * param`` with foreach ops on the device
    (no host sync). BigGAN's warm-up (Brock et al. 2019, ``--ema_start``): while ``step < start`` the
    average copies the parameters instead (decay 0), so that it does not carry the untrained
    weights of the first steps; from step ``start`` on it averages.

    Args:
        model: the module followed (its parameters are read at each update).
        decay: weight of the old average, in (0, 1).
        start: the first step that averages (0: every step averages).

    Example:
        >>> ema = EMA(gan.generator, 0.999, start=1000)
        >>> ema.update(step)  # after each optimizer step; step counts from 0
        >>> ema.module.sample(torch.arange(10))
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0):
        self.decay, self.start = float(decay), int(start)
        self.module = copy.deepcopy(model).requires_grad_(False)
        self._src_params = list(model.parameters())
        self._dst_params = list(self.module.parameters())
        self._src_buffers = list(model.buffers())
        self._dst_buffers = list(self.module.buffers())

    @torch.no_grad()
    def update(self, step: int | None = None) -> None:
        """Average in the current parameters after step ``step`` (None: a step past the warm-up)."""
        if step is not None and step < self.start:
            torch._foreach_copy_(self._dst_params, self._src_params)
        else:
            torch._foreach_lerp_(self._dst_params, self._src_params, 1.0 - self.decay)
        if self._dst_buffers:
            torch._foreach_copy_(self._dst_buffers, self._src_buffers)
