"""Training: the loop and its events (:mod:`.trainer`, :mod:`.events`), the step (:mod:`.step`),
optimizers and schedules (:mod:`.optim`), the EMA (:mod:`.ema`), and the concerns the loop calls
(:mod:`.budget`, :mod:`.rundir`, :mod:`.guards`, :mod:`.state`, :mod:`.grids`, :mod:`.evaluation`).

The names below load on first use, so that importing one submodule (``condgan.training.step``)
does not import the others.
"""

from ..faces import lazy_face

__getattr__, __dir__, __all__ = lazy_face(__name__, {
    ".step": ["FastStep", "make_step", "train_step"],
    ".ema": ["EMA"],
    ".trainer": ["Trainer"],
    ".guards": ["NonFiniteLossError", "NonFiniteWeightsError"],
    ".rundir": ["RunDirectoryError"],
})
