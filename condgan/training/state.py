"""A trainer's checkpoint state: what :meth:`Trainer.state_dict` writes and :meth:`Trainer.load_state_dict`
restores (weights, optimizers, EMA, position, every RNG state), each tensor checked before anything
changes; the writing of checkpoints and ``generator.pt`` (never anything non-finite, always with
the run directory held), and the rebuilding of a trainer from a checkpoint file (:func:`from_checkpoint`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any, ContextManager, Mapping

import torch
from torch import Tensor

from .. import distributed
from ..checkpoint import configs as ckpt_configs
from ..checkpoint import files as ckpt
from ..checkpoint import integrity as checks
from ..checkpoint.generator import generator_file
from ..config import DataConfig, TrainerConfig
from ..errors import UnknownComponentError
from ..gan import GAN
from . import guards, rundir
from .optim import load_optimizer_state
from .setup import seed_everything


def start_position(trainer) -> None:
    """Step 0 of epoch 0, nothing written or sampled yet (a checkpoint's state replaces it)."""
    trainer.step = trainer.epoch = trainer.batch_in_epoch = 0
    trainer.elapsed_s = 0.0
    trainer._epoch_rng = trainer.data_generator.get_state()  # data-order state at the start of this epoch
    trainer._iterator = None
    trainer.stop_reason = None
    trainer.stop_signal = None
    trainer._stop_request = None
    trainer.last_checkpoint = None
    trainer._saved_step = None
    trainer._sampled_step = None


def trainer_state(trainer) -> dict[str, Any]:
    """Everything a checkpoint holds (see :mod:`condgan.checkpoint.files`); a collective under
    torch.distributed (it gathers each process's RNG state)."""
    rng = ckpt.capture_rng_state()
    own = getattr(trainer, "step_rng", None)  # a stacked group's run draws from its own generator
    if own is not None and own.device.type == "cpu":
        rng["torch"] = own.get_state()
    elif own is not None and "cuda" in rng:
        rng["cuda"][own.device.index or 0] = own.get_state()
    state = {
        "format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION,
        "gan_config": ckpt_configs.config_to_plain(trainer.gan.config), "output": trainer.gan.output.to_dict(),
        "trainer_config": trainer.config.to_dict(),
        "data_config": ckpt_configs.data_config_to_plain(trainer.data_config),
        "generator": trainer.gan.generator.state_dict(), "discriminator": trainer.gan.discriminator.state_dict(),
        "ema": trainer.ema.module.state_dict() if trainer.ema is not None else None,
        "opt_g": trainer.opt_g.state_dict(), "opt_d": trainer.opt_d.state_dict(),
        "step": trainer.step, "epoch": trainer.epoch, "batch_in_epoch": trainer.batch_in_epoch,
        "dataset_size": trainer.dataset_size, "data_rng": trainer._epoch_rng.clone(), "device_type": trainer.device.type,
        "elapsed_s": trainer.elapsed_s, "rng": rng,
        "world_size": trainer.process.world_size, "batch_size": trainer.config.batch_size,
        **({"data": trainer.data_fingerprint} if trainer.data_fingerprint else {}),
    }
    if trainer.process.world_size > 1:
        rank_rng: list[Any] = [None] * trainer.process.world_size
        torch.distributed.all_gather_object(rank_rng, rng)
        state["rank_rng"] = rank_rng
    return state


def check_state(trainer, state: Mapping[str, Any], source: str | Path) -> None:
    """Raise CheckpointError naming ``source`` unless every part of ``state`` fits ``trainer``."""
    checks.check_fields(state, ckpt.CHECKPOINT_FIELDS, source)
    check_rng_states(state, trainer.device, source)
    if state["dataset_size"] != trainer.dataset_size:
        raise ckpt.CheckpointError(f"{source} was trained on {state['dataset_size']} images but this dataset has "
                                   f"{trainer.dataset_size}; resuming needs the same data")
    gan = trainer.gan
    checks.check_state_dict(gan.generator, state["generator"], "generator", source)
    checks.check_state_dict(gan.discriminator, state["discriminator"], "discriminator", source)
    checks.check_optimizer_state(trainer.opt_g, state["opt_g"], "generator optimizer (opt_g)", source, gan.generator)
    checks.check_optimizer_state(trainer.opt_d, state["opt_d"], "discriminator optimizer (opt_d)", source,
                                 gan.discriminator)
    if trainer.ema is not None and state.get("ema") is not None:
        checks.check_state_dict(trainer.ema.module, state["ema"], "EMA generator", source)


def load_trainer_state(trainer, state: Mapping[str, Any], source: str | Path) -> None:
    """Restore ``state`` into ``trainer``: everything is checked (:func:`check_state`) before anything changes."""
    check_state(trainer, state, source)
    trainer.gan.generator.load_state_dict(state["generator"])
    trainer.gan.discriminator.load_state_dict(state["discriminator"])
    load_optimizer_state(trainer.opt_g, state["opt_g"])
    load_optimizer_state(trainer.opt_d, state["opt_d"])
    if trainer.ema is not None:
        # EMA turned on at resume: it starts from the current weights
        trainer.ema.module.load_state_dict(state["ema"] if state["ema"] is not None else state["generator"])
    trainer.step, trainer.epoch = int(state["step"]), int(state["epoch"])
    trainer.elapsed_s = float(state["elapsed_s"])
    trainer.batch_in_epoch, moved = ckpt.resume_batch(state, trainer.process.world_size, trainer.config.batch_size,
                                                      trainer.batches_per_epoch)
    if moved and trainer.process.is_main:
        warnings.warn(f"{source} {moved}", RuntimeWarning, stacklevel=3)
    _restore_data_order(trainer, state, source)
    if hasattr(trainer.step_fn, "reset"):
        trainer.step_fn.reset()  # a captured CUDA graph holds the replaced optimizer state tensors
    trainer._saved_step = trainer.step
    _restore_rng(trainer, state)


def _restore_data_order(trainer, state: Mapping[str, Any], source: str | Path) -> None:
    saved_type = state.get("device_type", trainer.device.type)
    if saved_type == trainer.device.type:
        trainer._epoch_rng = state["data_rng"].clone()
    else:  # a CPU and a CUDA generator have different states: this epoch's order is drawn afresh
        warnings.warn(f"{source} was trained on {saved_type}, this run is on {trainer.device.type}: the run continues "
                      "from its weights, optimizers and position, but not bit-identically (the data order of "
                      "the current epoch is drawn afresh)", RuntimeWarning, stacklevel=4)
        trainer._epoch_rng = torch.Generator(device=trainer.device).manual_seed(trainer.config.seed + trainer.epoch).get_state()
    trainer._iterator = None


def _restore_rng(trainer, state: Mapping[str, Any]) -> None:
    rank, world_size = trainer.process.rank, trainer.process.world_size
    rank_rng = state.get("rank_rng")
    if rank_rng is not None and len(rank_rng) == world_size:
        ckpt.restore_rng_state(rank_rng[rank])
    else:
        ckpt.restore_rng_state(state["rng"])  # process 0's stream
        if rank > 0:
            seed_everything(distributed.rank_seed(trainer.config.seed + trainer.step, rank))


def check_rng_states(state: Mapping[str, Any], device: torch.device, source: str | Path) -> None:
    """Try every stored RNG state on the spot (then put the current ones back): a state of the wrong
    size or kind fails here, with the file named, rather than halfway through loading."""
    current = ckpt.capture_rng_state()
    stored = [state["rng"]] + [s for s in (state.get("rank_rng") or [])]
    try:
        for rng in stored:
            ckpt.restore_rng_state(rng)
        if state.get("device_type", device.type) == device.type:
            torch.Generator(device=device).set_state(state["data_rng"])
    except Exception as exc:  # noqa: BLE001 - RuntimeError, TypeError, KeyError, ValueError from the RNG setters
        raise ckpt.CheckpointError(f"{source} is damaged: its stored random states cannot be restored "
                                   f"({type(exc).__name__}: {checks.first_line(exc, 120)})") from None
    finally:
        ckpt.restore_rng_state(current)


def read_run(path: str | Path, data: Any, data_root: str | None, changes: dict[str, Any]):
    """(checkpoint path, its state, its GANConfig, the TrainerConfig with ``changes``, the data) of a saved run."""
    path = ckpt.resolve_checkpoint(path)
    state = ckpt.read_file(path, formats=(ckpt.CHECKPOINT_FORMAT,))
    gan_config = ckpt_configs.gan_config_from_plain(state["gan_config"], path)
    saved = ckpt.dataclass_from_dict(TrainerConfig, state["trainer_config"], path)
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(TrainerConfig)})
    if unknown:
        raise ValueError(f"unknown TrainerConfig fields {unknown}")
    if "out_dir" not in changes:  # never the out_dir stored in the file: a file does not choose where we write
        if path.parent.name != ckpt.CHECKPOINT_DIR:
            raise ValueError(f"{path} is not in a run directory's {ckpt.CHECKPOINT_DIR}/ folder, so the trainer has "
                             "no run directory: give out_dir=DIR (where it writes) or out_dir=None (write nothing)")
        changes["out_dir"] = str(path.parent.parent)  # the run directory, wherever it is now
    if data is None:
        if state.get("data_config") is None:
            raise ValueError(f"{path} was trained on data given in Python (no data section): pass the same data= again")
        data = ckpt.dataclass_from_dict(DataConfig, state["data_config"], path)
        if data_root is not None:
            data = dataclasses.replace(data, root=str(data_root))
    return path, state, gan_config, dataclasses.replace(saved, **changes), data


def from_checkpoint(cls: type, path: str | Path, data: Any, data_root: str | None, changes: dict[str, Any]):
    """The ``cls`` trainer of a saved run at the saved position (see :meth:`Trainer.from_checkpoint`)."""
    path, state, gan_config, config, data = read_run(path, data, data_root, changes)
    try:
        checks.check_model_size(lambda: GAN(gan_config), "model", path)  # before allocating it
        try:
            gan = GAN(gan_config)  # its weights, like every RNG state, are replaced by the checkpoint's
        except (ValueError, TypeError) as exc:
            raise ckpt.CheckpointError(f"{path}: its model config builds no model: {checks.first_line(exc)}") from None
        trainer = cls.__new__(cls)
        trainer._resuming = True
        trainer.__init__(gan, config, data=data)
    except UnknownComponentError as exc:
        raise UnknownComponentError(f"cannot rebuild the model saved in {path}: {exc}. "
                                    "Install or register the plugin that provides it.") from None
    trainer.load_state_dict(state, source=path)
    trainer.last_checkpoint = path
    if trainer.out_dir is not None and os.path.realpath(path.parent) == os.path.realpath(trainer.out_dir / ckpt.CHECKPOINT_DIR):
        trainer._expected_latest = path  # continuing this run: its `latest` must still be this file when it trains
    return trainer


# -- writing ----------------------------------------------------------------------------------------
def save_checkpoint(trainer) -> Path | None:
    """:meth:`Trainer.save_checkpoint`: the weights checked finite, the state written atomically,
    ``on_checkpoint`` fired; a step already saved is not written again."""
    if trainer.out_dir is None:
        raise ValueError("this trainer has no out_dir to save checkpoints in")
    if trainer._saved_step == trainer.step and (trainer.last_checkpoint is not None and trainer.last_checkpoint.is_file()
                                                or not trainer.process.is_main):
        return trainer.last_checkpoint
    with holding_run_directory(trainer):
        check_finite(trainer)  # nothing non-finite is ever written
        saved = trainer.state_dict()
        if not trainer.process.is_main:
            trainer._saved_step = trainer.step
            return None
        path = ckpt.save_checkpoint(saved, trainer.out_dir, keep_last=trainer.config.keep_last)
        trainer._saved_step, trainer.last_checkpoint, trainer._expected_latest = trainer.step, path, path
    trainer.registry.hook.on_checkpoint(trainer=trainer, path=path)
    return path


def export_generator(trainer, path: str | Path | None = None) -> Path | None:
    """:meth:`Trainer.export_generator`: the sampling generator checked finite and written alone."""
    if not trainer.process.is_main:
        return None
    if path is None and trainer.out_dir is None:
        raise ValueError("give a path: this trainer has no out_dir")
    path = Path(path) if path is not None else trainer.out_dir / ckpt.GENERATOR_FILE
    check_finite(trainer, include_training_state=False)
    content = generator_file(trainer.gan.config, trainer.sampling_generator.state_dict(),
                             from_ema=trainer.ema is not None, step=trainer.step, data=trainer.data_fingerprint)
    inside = trainer.out_dir is not None and os.path.realpath(path.parent) == os.path.realpath(trainer.out_dir)
    with holding_run_directory(trainer, agree=False) if inside else contextlib.nullcontext():
        return ckpt.save_file(content, path)


def check_finite(trainer, include_training_state: bool = True) -> None:
    """Raise NonFiniteWeightsError if a weight (or an optimizer state) holds NaN or inf: one host
    sync per save; under torch.distributed every process agrees (``include_training_state``)."""
    named = [(f"generator {k}", v) for k, v in trainer.sampling_generator.state_dict().items()]
    if include_training_state:
        if trainer.ema is not None:
            named += [(f"generator {k}", v) for k, v in trainer.gan.generator.state_dict().items()]
        named += [(f"discriminator {k}", v) for k, v in trainer.gan.discriminator.state_dict().items()]
        named += [(f"{label} state {key}", v) for label, opt in (("opt_g", trainer.opt_g), ("opt_d", trainer.opt_d))
                  for slots in opt.state.values() for key, v in slots.items() if isinstance(v, Tensor)]
    bad = checks.nonfinite_names(named)
    if distributed.agree_any([bool(bad)], trainer.device)[0] if include_training_state else bool(bad):
        raise guards.weights_diverged(bad, trainer.step, last_good(trainer))


def last_good(trainer) -> str:
    """Where the run can continue from, for the message of a diverged run."""
    if trainer.last_checkpoint is None:
        return "no checkpoint was written yet"
    return f"the last good checkpoint is {trainer.last_checkpoint}"  # loaded or written: its weights were checked finite


def generator_behind(trainer) -> bool:
    """True (process 0) when ``out_dir/generator.pt`` is missing, unreadable or of another step
    than the trainer, whose budget is reached: the run was stopped after its last checkpoint."""
    if trainer.out_dir is None or not trainer.process.is_main or trainer.last_checkpoint is None:
        return False
    try:
        return ckpt.read_file(trainer.out_dir / ckpt.GENERATOR_FILE, formats=(ckpt.GENERATOR_FORMAT,)).get("step") != trainer.step
    except ckpt.CheckpointError:
        return True


def latest_or_none(run_dir: Path | None) -> Path | None:
    """The run's newest checkpoint, or None (none yet, no run directory, or an unreadable ``latest``)."""
    try:
        return ckpt.latest_checkpoint(run_dir) if run_dir is not None else None
    except ckpt.CheckpointError:
        return None


@contextlib.contextmanager
def _held(trainer, agree: bool):
    lock = rundir.claim(trainer.out_dir, trainer._expected_latest, trainer.process, trainer.device, agree=agree)
    trainer._claimed = True
    try:
        yield
    finally:
        trainer._claimed = False
        if lock is not None:
            lock.release()


def holding_run_directory(trainer, *, agree: bool = True) -> ContextManager[None]:
    """The trainer's run directory locked and checked (:func:`rundir.claim`) for a ``with`` block;
    nothing to do when it is held already (inside ``train()``) or there is none."""
    if trainer._claimed or trainer.out_dir is None:
        return contextlib.nullcontext()
    return _held(trainer, agree)
