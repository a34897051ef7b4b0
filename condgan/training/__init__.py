"""Training: the loop and its events (:mod:`.trainer`, :mod:`.events`), the step (:mod:`.step`),
optimizers and schedules (:mod:`.optim`), the EMA (:mod:`.ema`), and the concerns the loop calls
(:mod:`.budget`, :mod:`.rundir`, :mod:`.guards`, :mod:`.state`, :mod:`.grids`, :mod:`.evaluation`).

The names below load on first use, so that importing one submodule (``condgan.training.step``)
does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(('FastStep', 'make_step', 'train_step'), '.step'),
    **dict.fromkeys(('EMA',), '.ema'),
    **dict.fromkeys(('Trainer',), '.trainer'),
    **dict.fromkeys(('NonFiniteLossError', 'NonFiniteWeightsError'), '.guards'),
    **dict.fromkeys(('RunDirectoryError',), '.rundir'),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
