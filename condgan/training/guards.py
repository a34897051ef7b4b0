"""Non-finite guards: losses summed on the device and checked at each sync point, and weights
checked before anything is written, so that nothing NaN or inf ever reaches a file.

``nonfinite="stop"`` stops at the first sync point that sees a non-finite loss; ``"skip"`` lets the
step skip such updates and stops only after ``max_skipped_intervals`` sync intervals in a row
whose every update was skipped.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping

import torch
from torch import Tensor

class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf (or every update was skipped for it); training stopped before saving
    anything non-finite."""


class NonFiniteWeightsError(NonFiniteLossError):
    """Weights or optimizer states became NaN or inf (checked before each checkpoint and generator
    file is written); nothing was saved."""


class RunningMeans:
    """Sums of each step's losses, kept on the device (no host sync) until :meth:`read`.

    ``skip=True`` (``nonfinite="skip"``): non-finite losses of skipped updates are left out of the
    means, and ``skipped`` (updates skipped) is summed rather than averaged.
    """

    def __init__(self, skip: bool):
        self.skip = skip
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, Tensor | int] = {}
        self.count = 0

    def add(self, losses: Mapping[str, Tensor]) -> None:
        for key, value in losses.items():
            n: Tensor | int = 1
            if self.skip and key != "skipped":
                ok = torch.isfinite(value)
                value, n = torch.where(ok, value, torch.zeros_like(value)), ok.float()
            self.sums[key] = self.sums.get(key, 0) + value  # `0 + v` never aliases v
            self.counts[key] = self.counts.get(key, 0) + n
        self.count += 1

    def read(self) -> dict[str, float]:
        """The means since the last read, as host floats (a host sync); the sums start again."""
        out = {}
        for key, total in self.sums.items():
            if key == "skipped":
                out[key] = float(total)
            else:
                n = float(self.counts[key])
                out[key] = float(total) / n if n else float("nan")
        self.sums, self.counts, self.count = {}, {}, 0
        return out


class LossGuard:
    """The policy on non-finite losses, applied to the means read at each sync point.

    Args:
        policy: ``"stop"`` or ``"skip"`` (``TrainerConfig.nonfinite``).
        max_skipped_intervals: ``"skip"`` stops after this many all-skipped intervals in a row.
    """

    def __init__(self, policy: str, max_skipped_intervals: int):
        self.policy, self.limit = policy, max_skipped_intervals
        self.skipped_updates = 0
        self._skipped_intervals = 0  # intervals in a row whose every update was skipped

    def bad_losses(self, metrics: Mapping[str, float], first: int, step: int, *, warn: bool,
                   last_good: str) -> dict[str, float]:
        """The non-finite means (``"stop"``); under ``"skip"``, count skipped updates and raise
        :class:`NonFiniteLossError` when too many intervals in a row skipped everything."""
        self.skipped_updates += int(metrics.get("skipped", 0))
        if self.policy == "skip":
            self._check_skipped(metrics.get("skipped", 0), 2 * (step - first + 1), first, step, warn, last_good)
            return {}
        return {k: v for k, v in metrics.items() if not math.isfinite(v)}

    def _check_skipped(self, skipped: float, updates: int, first: int, step: int, warn: bool, last_good: str) -> None:
        if updates == 0 or skipped < updates:
            self._skipped_intervals = 0
            return
        self._skipped_intervals += 1
        if self._skipped_intervals >= self.limit:
            raise NonFiniteLossError(
                f"training diverged: every update of the last {self.limit} interval(s) (up to step {step}) was skipped "
                f"for non-finite gradients, so the run no longer trains; stopped without saving ({last_good}). "
                "Lower the learning rates or set clip_grad_norm (max_skipped_intervals sets how many such intervals stop a run).")
        if warn:
            warnings.warn(f"every update of steps {first}-{step} was skipped for non-finite gradients; training "
                          f"stops after {self.limit} such intervals in a row (max_skipped_intervals)", RuntimeWarning,
                          stacklevel=3)


def diverged(bad: Mapping[str, float], first: int, step: int, last_good: str) -> NonFiniteLossError:
    """The error of non-finite losses over steps ``first``-``step`` (``bad`` empty: another process's)."""
    what = ", ".join(f"{k} = {v}" for k, v in bad.items()) or "a loss on another process"
    return NonFiniteLossError(
        f"training diverged: {what} over steps {first}-{step}; stopped without saving ({last_good}). "
        "Lower the learning rates, set clip_grad_norm, or use nonfinite='skip' to skip such updates.")


def weights_diverged(bad: list[str], step: int, last_good: str) -> NonFiniteWeightsError:
    """The error of non-finite weights (``bad`` empty: another process's)."""
    what = ", ".join(dict.fromkeys(bad[:3])) + (" ..." if len(bad) > 3 else "") if bad else "weights on another process"
    return NonFiniteWeightsError(
        f"training diverged: weights hold NaN or inf at step {step} ({what}); stopped without saving "
        f"({last_good}). Lower the learning rates or set clip_grad_norm.")
