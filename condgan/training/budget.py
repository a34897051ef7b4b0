"""The budget that stops a run: steps, epochs and training minutes, whichever comes first."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """A run's stopping rule; every figure counts the whole run (a resumed run continues it).

    Args:
        steps: stop after this many steps. epochs: after this many passes over the data.
        minutes: after this much training time (``Trainer.elapsed_s``; start-up not counted).

    Example:
        >>> Budget(steps=100, epochs=2).target_steps(batches_per_epoch=30)
        60
    """

    steps: int | None = None
    epochs: int | None = None
    minutes: float | None = None

    @classmethod
    def of(cls, config) -> Budget:
        """The budget of a :class:`~condgan.config.TrainerConfig`."""
        return cls(config.steps, config.epochs, config.minutes)

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.steps, self.epochs, self.minutes))

    def text(self) -> str:
        """``"steps=1000, minutes=5"``: the parts that are set."""
        return ", ".join(f"{k}={v}" for k, v in (("steps", self.steps), ("epochs", self.epochs), ("minutes", self.minutes))
                         if v is not None)

    def target_steps(self, batches_per_epoch: int) -> int | None:
        """The step the run stops at by steps or epochs (None for a time budget alone)."""
        targets = [t for t in (self.steps, self.epochs * batches_per_epoch if self.epochs is not None else None)
                   if t is not None]
        return min(targets) if targets else None

    def seconds_left(self, step: int, elapsed_s: float, steps_per_s: float, batches_per_epoch: int) -> float | None:
        """Estimated time to the end of the budget at ``steps_per_s``."""
        left = []
        target = self.target_steps(batches_per_epoch)
        if target is not None and steps_per_s > 0:
            left.append((target - step) / steps_per_s)
        if self.minutes is not None:
            left.append(self.minutes * 60 - elapsed_s)
        return max(0.0, min(left)) if left else None

    def time_up(self, elapsed_s: float) -> bool:
        return self.minutes is not None and elapsed_s >= self.minutes * 60

    def reached(self, step: int, epoch: int, elapsed_s: float, *, clock: bool = True) -> str | None:
        """``"steps"``, ``"epochs"`` or ``"minutes"`` when that part is reached (``clock=False``: not minutes)."""
        if self.steps is not None and step >= self.steps:
            return "steps"
        if self.epochs is not None and epoch >= self.epochs:
            return "epochs"
        if clock and self.time_up(elapsed_s):
            return "minutes"
        return None
