"""Per-step schedules as plain data (``OptimizerConfig.schedule``): their keys, their check, and
their values at a step (:mod:`condgan.training.optim` applies them to an optimizer).

- ``lr_decay``: divide the learning rate by this factor every step (the paper: 1.00004);
- ``min_lr``: the floor of the decayed learning rate (the paper: 1e-6);
- ``momentum_start``, ``momentum_end``, ``momentum_steps``: momentum rises linearly from start to
  end over that many steps, then stays (the paper: 0.5 to 0.7; the length is not given).
"""

from __future__ import annotations

from typing import Any, Mapping

KEYS = ("lr_decay", "min_lr", "momentum_start", "momentum_end", "momentum_steps")


def check_schedule(schedule: Mapping[str, Any]) -> None:
    """Raise ValueError for an unknown key or an inconsistent momentum ramp."""
    unknown = sorted(set(schedule) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown schedule key(s) {unknown}; allowed: {', '.join(KEYS)}")
    ramp = [k for k in ("momentum_start", "momentum_end", "momentum_steps") if k in schedule]
    if ramp and len(ramp) != 3:
        raise ValueError("a momentum ramp needs momentum_start, momentum_end and momentum_steps together")
    if schedule.get("lr_decay", 1.0) <= 0 or schedule.get("momentum_steps", 1) < 1:
        raise ValueError(f"lr_decay must be > 0 and momentum_steps >= 1, got {dict(schedule)}")


def scheduled(lr: float, schedule: Mapping[str, Any], step: int) -> dict[str, float]:
    """The hyperparameters at ``step`` (0-based): ``lr`` always, ``momentum`` when ramped.

    Example:
        >>> scheduled(0.1, {"lr_decay": 1.00004, "min_lr": 1e-6}, 0)
        {'lr': 0.1}
    """
    values = {"lr": max(lr / schedule.get("lr_decay", 1.0) ** step, schedule.get("min_lr", 0.0))}
    if "momentum_steps" in schedule:
        frac = min(step / schedule["momentum_steps"], 1.0)
        values["momentum"] = schedule["momentum_start"] + (schedule["momentum_end"] - schedule["momentum_start"]) * frac
    return values
