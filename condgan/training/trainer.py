"""The Trainer: an iteration-based loop around ``train_step`` with EMA, checkpoints that resume
exactly, and training events fired to plugins (loggers).

The loop keeps the device busy: batches come from a device-resident dataset shuffled on the device,
noise is drawn there, and losses are summed on the device and read back only every ``log_every``
steps. Position (step, epoch, batch within the epoch), the data-order generator's state at the
start of the epoch and every global RNG state go into each checkpoint, so a resumed run continues
bit-identically (on the CPU, with deterministic kernels).
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import math
import os
import random
import shutil
import signal
import tempfile
import threading
import warnings
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from .. import checkpoint as ckpt
from ..checkpoint import integrity as checks
from .. import distributed
from . import rundir
from ..config import AUTOCAST_NAMES, DataConfig, GANConfig, RunConfig, TrainerConfig
from ..data import ImageSet, TensorBatches, to_unit
from ..data.fitting import FileSet, check_dataset, fit_to_data
from ..resolve import load_data, run_config
from ..data.stream import StreamBatches
from .ema import EMA
from ..gan import GAN
from .rundir import RunDirectoryError
from ..plugins import Registry, UnknownComponentError, get_registry
from .optim import apply_schedule, load_optimizer_state, make_optimizers, use_cuda_graph
from .step import FastStep

AUTOCAST_DTYPES = {name: getattr(torch, name) for name in AUTOCAST_NAMES}  # "bfloat16" -> torch.bfloat16
GRID_ROWS = 10
GRID_MAX_COLUMNS = 32


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf (or every update was skipped for it); training stopped before saving
    anything non-finite."""


class NonFiniteWeightsError(NonFiniteLossError):
    """Weights or optimizer states became NaN or inf (checked before each checkpoint and generator
    file is written); nothing was saved."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``, checked."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available here; use --device cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


class Trainer:
    """Trains a conditional GAN: the reference's step (G update, then D update), iteration based.

    Args:
        gan: a built :class:`GAN`; a :class:`GANConfig` to build (seeded with ``config.seed`` first,
            so the weights are reproducible; fields left to the data are filled in from it); or a
            :class:`RunConfig` / preset name, whose training and data sections are used unless
            ``config`` / ``data`` are given.
        config: the :class:`TrainerConfig` (the training section).
        data: a :class:`DataConfig` (loaded, in memory or streamed), an :class:`ImageSet`, or
            ``(images, labels)`` tensors: images uint8 (N, C, H, W) in [0, 255] or float32 in
            ``pixel_range``; labels as the condition spec.

    Attributes:
        step, epoch, batch_in_epoch: the position (``batch_in_epoch`` batches of ``epoch`` done).
        stop_reason: why the last :meth:`train` stopped.
        last_checkpoint: path of the newest checkpoint written or loaded.

    Example:
        >>> trainer = Trainer(run_config("mnist_mlp", {"steps": 1000, "out_dir": "runs/a", "data.root": "data"}))
        >>> trainer.train()
        >>> trainer = Trainer.from_checkpoint("runs/a", steps=2000)  # continue the same run
        >>> trainer.train()
    """

    def __init__(self, gan: GAN | GANConfig | RunConfig | str, config: TrainerConfig | None = None, *,
                 data: DataConfig | ImageSet | tuple[Tensor, Tensor] | None = None):
        run = gan if isinstance(gan, RunConfig) else run_config(gan) if isinstance(gan, str) else None
        if run is not None:
            gan, config = run.model, config if config is not None else run.training
            data = data if data is not None else run.data
        self.config = config = config if config is not None else TrainerConfig()
        if not isinstance(config, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
        if not isinstance(gan, (GAN, GANConfig)):
            raise TypeError(f"gan must be a GAN, a GANConfig, a RunConfig or a preset name, got {type(gan).__name__}")
        self.data_config = data if isinstance(data, DataConfig) else DataConfig() if data is None else None
        self.device = distributed.process_device(resolve_device(config.device))
        self.process = distributed.init_from_env(self.device, timeout=config.process_group_timeout)
        self.registry: Registry = get_registry()
        for name in config.loggers:
            self.registry.get("logger", name)  # unknown logger names fail now
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None
        resuming = self.__dict__.pop("_resuming", False)  # set by from_checkpoint
        self._expected_latest: Path | None = None  # the checkpoint out_dir's `latest` must name when this trainer writes
        self._claimed = False  # True while train() holds the run directory
        if self.out_dir is not None and self.process.is_main:
            self._check_out_dir_writable()  # before the data: a bad --out fails in a second
            rundir.check_not_locked(self.out_dir)
            if not resuming:
                rundir.check_run_continues(self.out_dir, None)  # a directory holding another run, too

        images, labels, fitted = self._load(data, gan.config if isinstance(gan, GAN) else gan)
        if isinstance(gan, GAN):
            gan.config = fitted  # a built GAN has its shape and condition; the data may add class names
        else:
            seed_everything(config.seed)
            gan = GAN(fitted)
        gcfg = gan.config
        if self.out_dir is not None:
            ckpt.config_to_plain(gcfg)  # a config that a checkpoint cannot hold fails now, not at the first save
        self.gan = gan.to(self.device)
        if config.sync_batchnorm:
            self._convert_sync_batchnorm()
        self.autocast_dtype = AUTOCAST_DTYPES[config.autocast] if config.autocast else None
        if self.out_dir is not None and self.process.is_main:
            self._check_out_dir_space()

        self.data_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        order = dict(device=self.device, pixel_range=gcfg.pixel_range, generator=self.data_generator,
                     rank=self.process.rank, world_size=self.process.world_size)
        if isinstance(images, FileSet):  # streamed: decoded batch by batch by DataLoader workers
            gan.spec.check(labels)
            c, h, w = images.image_shape
            self.batches = StreamBatches(images.paths, labels, config.batch_size, channels=c, size=(h, w), fit=images.fit,
                                         num_workers=getattr(self.data_config, "workers", None), **order)
        else:
            check_dataset(gan, images, labels)  # validated once, before the loop
            self.batches = TensorBatches(images, labels, config.batch_size, **order)
        self._check_batch_sizes(labels)
        self.dataset_size = len(labels)
        self.batches_per_epoch = len(self.batches)

        self.opt_g, self.opt_d = self._optimizers()
        self.ema = EMA(gan.generator, config.ema_decay, config.ema_start) if config.ema_decay is not None else None
        self.step_fn = self._build_step()
        if self.process.rank > 0:  # one random stream per process; process 0 keeps the single-process stream
            seed_everything(distributed.rank_seed(config.seed, self.process.rank))
        self.skipped_updates = 0
        self._skipped_intervals = 0  # intervals in a row whose every update was skipped
        opt_cfgs = (gcfg.g_optimizer, gcfg.d_optimizer)
        self._schedules = [(opt, c.lr, c.schedule) for opt, c in zip((self.opt_g, self.opt_d), opt_cfgs) if c.schedule]

        self.step = self.epoch = self.batch_in_epoch = 0
        self.elapsed_s = 0.0
        self._epoch_rng = self.data_generator.get_state()  # data-order state at the start of this epoch
        self._iterator = None
        self.stop_reason: str | None = None
        self.stop_signal: int | None = None
        self.last_checkpoint: Path | None = None
        self._saved_step: int | None = None
        self._sampled_step: int | None = None
        self._grid_labels, self.grid_columns = self._grid_conditions(labels)
        noise_gen = torch.Generator().manual_seed(config.seed)  # the grid's fixed noise, apart from the training RNG
        self._grid_z = gan.generator.sample_noise(len(self._grid_labels), "cpu", noise_gen).to(self.device)

    def _load(self, data: Any, model: GANConfig) -> tuple[Tensor, Tensor, GANConfig]:
        """(images, conditions, the model config fitted to them): a model that leaves its image
        shape or condition to the data takes them from it (raw tensors must fit the model as is)."""
        if isinstance(data, tuple) and len(data) == 2:
            return data[0], data[1], model
        source = "the given ImageSet"
        if isinstance(data, DataConfig):
            shape = tuple(model.image_shape) if model.image_shape is not None else None
            source = f"dataset {data.name!r}"
            data = load_data(data, shape)
        if isinstance(data, FileSet):  # streamed: the images are decoded batch by batch
            return data, data.conditions, fit_to_data(model, data, source)
        if not isinstance(data, ImageSet):
            raise TypeError(f"data must be a DataConfig, an ImageSet or (images, labels), got {type(data).__name__}")
        return data.images, data.conditions, fit_to_data(model, data, source)

    # -- construction from a checkpoint ------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, *, data: DataConfig | ImageSet | tuple[Tensor, Tensor] | None = None,
                        data_root: str | None = None, **changes: Any) -> Trainer:
        """The trainer of a saved run, at the saved position; ``changes`` set TrainerConfig fields.

        ``path`` is a checkpoint file or a run directory (its ``latest``). Give new budgets as
        changes, e.g. ``steps=2000``: budgets count the whole run. ``out_dir`` defaults to the
        saved run's directory. The data is the saved data section (``data_root`` where its files
        moved), unless ``data`` is given.

        Raises:
            CheckpointError: unreadable or foreign file, or a dataset of another size.
            UnknownComponentError: the model needs a component no installed plugin provides.
        """
        path = ckpt.resolve_checkpoint(path)
        state = ckpt.read_file(path, formats=(ckpt.CHECKPOINT_FORMAT,))
        gan_config = ckpt.gan_config_from_plain(state["gan_config"], path)
        saved = ckpt.dataclass_from_dict(TrainerConfig, state["trainer_config"], path)
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(TrainerConfig)})
        if unknown:
            raise ValueError(f"unknown TrainerConfig fields {unknown}")
        if "out_dir" not in changes:  # never the out_dir stored in the file: a file does not choose where we write
            if path.parent.name != ckpt.CHECKPOINT_DIR:
                raise ValueError(f"{path} is not in a run directory's {ckpt.CHECKPOINT_DIR}/ folder, so the trainer has "
                                 "no run directory: give out_dir=DIR (where it writes) or out_dir=None (write nothing)")
            changes["out_dir"] = str(path.parent.parent)  # the run directory, wherever it is now
        config = dataclasses.replace(saved, **changes)
        if data is None:
            if state.get("data_config") is None:
                raise ValueError(f"{path} was trained on data given in Python (no data section): pass the same data= again")
            data = ckpt.dataclass_from_dict(DataConfig, state["data_config"], path)
            if data_root is not None:
                data = dataclasses.replace(data, root=str(data_root))
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

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds (see :mod:`condgan.checkpoint`).

        Under torch.distributed every process must call it (it gathers each process's RNG state).
        """
        rng = ckpt.capture_rng_state()
        state = {
            "format": ckpt.CHECKPOINT_FORMAT, "version": ckpt.FORMAT_VERSION,
            "gan_config": ckpt.config_to_plain(self.gan.config), "trainer_config": self.config.to_dict(),
            "data_config": ckpt.data_config_to_plain(self.data_config),
            "generator": self.gan.generator.state_dict(), "discriminator": self.gan.discriminator.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "dataset_size": self.dataset_size, "data_rng": self._epoch_rng.clone(), "device_type": self.device.type,
            "elapsed_s": self.elapsed_s, "rng": rng,
            "world_size": self.process.world_size, "batch_size": self.config.batch_size,
        }
        if self.process.world_size > 1:
            rank_rng: list[Any] = [None] * self.process.world_size
            torch.distributed.all_gather_object(rank_rng, rng)
            state["rank_rng"] = rank_rng
        return state

    def load_state_dict(self, state: Mapping[str, Any], *, source: str | Path = "checkpoint") -> None:
        """Restore weights, optimizers, EMA, position and every RNG state from :meth:`state_dict` output.

        Everything is checked before anything changes (CheckpointError naming ``source``)."""
        checks.check_fields(state, ckpt.CHECKPOINT_FIELDS, source)
        self._check_rng_states(state, source)
        if state["dataset_size"] != self.dataset_size:
            raise ckpt.CheckpointError(f"{source} was trained on {state['dataset_size']} images but this dataset has "
                                       f"{self.dataset_size}; resuming needs the same data")
        # every tensor is checked against what it is loaded into before anything is changed
        checks.check_state_dict(self.gan.generator, state["generator"], "generator", source)
        checks.check_state_dict(self.gan.discriminator, state["discriminator"], "discriminator", source)
        checks.check_optimizer_state(self.opt_g, state["opt_g"], "generator optimizer (opt_g)", source,
                                     self.gan.generator)
        checks.check_optimizer_state(self.opt_d, state["opt_d"], "discriminator optimizer (opt_d)", source,
                                     self.gan.discriminator)
        if self.ema is not None and state.get("ema") is not None:
            checks.check_state_dict(self.ema.module, state["ema"], "EMA generator", source)
        self.gan.generator.load_state_dict(state["generator"])
        self.gan.discriminator.load_state_dict(state["discriminator"])
        load_optimizer_state(self.opt_g, state["opt_g"])
        load_optimizer_state(self.opt_d, state["opt_d"])
        if self.ema is not None:
            # EMA turned on at resume: it starts from the current weights
            self.ema.module.load_state_dict(state["ema"] if state["ema"] is not None else state["generator"])
        self.step, self.epoch, self.batch_in_epoch = int(state["step"]), int(state["epoch"]), int(state["batch_in_epoch"])
        self.elapsed_s = float(state["elapsed_s"])
        self.batch_in_epoch, moved = ckpt.resume_batch(state, self.process.world_size, self.config.batch_size,
                                                       self.batches_per_epoch)
        if moved and self.process.is_main:
            warnings.warn(f"{source} {moved}", RuntimeWarning, stacklevel=2)
        saved_type = state.get("device_type", self.device.type)
        if saved_type == self.device.type:
            self._epoch_rng = state["data_rng"].clone()
        else:  # a CPU and a CUDA generator have different states: this epoch's order is drawn afresh
            warnings.warn(f"{source} was trained on {saved_type}, this run is on {self.device.type}: the run continues "
                          "from its weights, optimizers and position, but not bit-identically (the data order of "
                          "the current epoch is drawn afresh)", RuntimeWarning, stacklevel=2)
            self._epoch_rng = torch.Generator(device=self.device).manual_seed(self.config.seed + self.epoch).get_state()
        self._iterator = None
        if hasattr(self.step_fn, "reset"):
            self.step_fn.reset()  # a captured CUDA graph holds the replaced optimizer state tensors
        self._saved_step = self.step
        rank = self.process.rank
        rank_rng = state.get("rank_rng")
        if rank_rng is not None and len(rank_rng) == self.process.world_size:
            ckpt.restore_rng_state(rank_rng[rank])
        else:
            ckpt.restore_rng_state(state["rng"])  # process 0's stream
            if rank > 0:
                seed_everything(distributed.rank_seed(self.config.seed + self.step, rank))

    def _check_rng_states(self, state: Mapping[str, Any], source: str | Path) -> None:
        """Try every stored RNG state on the spot (then put the current ones back): a state of the wrong
        size or kind fails here, with the file named, rather than halfway through loading."""
        current = ckpt.capture_rng_state()
        stored = [state["rng"]] + [s for s in (state.get("rank_rng") or [])]
        try:
            for rng in stored:
                ckpt.restore_rng_state(rng)
            if state.get("device_type", self.device.type) == self.device.type:
                torch.Generator(device=self.device).set_state(state["data_rng"])
        except Exception as exc:  # noqa: BLE001 - RuntimeError, TypeError, KeyError, ValueError from the RNG setters
            raise ckpt.CheckpointError(f"{source} is damaged: its stored random states cannot be restored "
                                       f"({type(exc).__name__}: {checks.first_line(exc, 120)})") from None
        finally:
            ckpt.restore_rng_state(current)

    # -- budget ----------------------------------------------------------------------------------
    def _budget(self) -> dict[str, float]:
        cfg = self.config
        budget = {k: v for k, v in (("steps", cfg.steps), ("epochs", cfg.epochs), ("minutes", cfg.minutes)) if v is not None}
        return budget

    def budget_text(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self._budget().items())

    @property
    def target_steps(self) -> int | None:
        """The step the run stops at by its step/epoch budget (None for a time budget alone)."""
        budget = self._budget()
        targets = [budget["steps"]] if "steps" in budget else []
        if "epochs" in budget:
            targets.append(budget["epochs"] * self.batches_per_epoch)
        return min(targets) if targets else None

    def seconds_left(self, steps_per_s: float) -> float | None:
        """Estimated time to the end of the budget at ``steps_per_s``."""
        left = []
        if self.target_steps is not None and steps_per_s > 0:
            left.append((self.target_steps - self.step) / steps_per_s)
        if "minutes" in self._budget():
            left.append(self._budget()["minutes"] * 60 - self.elapsed_s)
        return max(0.0, min(left)) if left else None

    def _reached(self, clock: bool = True) -> str | None:
        """The budget reached, if any (``clock=False``: steps and epochs only)."""
        budget = self._budget()
        if "steps" in budget and self.step >= budget["steps"]:
            return "steps"
        if "epochs" in budget and self.epoch >= budget["epochs"]:
            return "epochs"
        if clock and "minutes" in budget and self.elapsed_s >= budget["minutes"] * 60:
            return "minutes"
        return None

    # -- the loop --------------------------------------------------------------------------------
    @property
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples: the EMA copy when EMA is on, else G."""
        return self.ema.module if self.ema is not None else self.gan.generator

    def train(self) -> str:
        """Train until the budget is reached or SIGINT/SIGTERM arrives; returns :attr:`stop_reason`.

        At the end (also after a signal) it makes a last sample grid and, with ``out_dir``, a
        checkpoint and ``generator.pt``. A signal stops the loop between steps (under
        torch.distributed, at the next log step, where the processes agree to stop). Only
        process 0 runs loggers and writes files.

        A run whose budget is already reached but whose ``generator.pt`` is missing or older than
        its last checkpoint (a process stopped between the two writes) writes ``generator.pt`` and
        returns.

        Raises:
            ValueError: the budget is already reached (nothing to train).
            NonFiniteLossError: a loss became NaN or inf (``nonfinite="stop"``); nothing
                non-finite was saved.
        """
        if not self._budget():
            raise ValueError("the training config has no budget: set steps, epochs or minutes (condgan train: "
                             "--steps, --epochs or --minutes)")
        reached = self._reached()
        if reached and distributed.agree_any([self._generator_behind()], self.device)[0]:
            # a run killed between its last checkpoint and generator.pt: finish its output, nothing to train
            lock = self._claim()
            try:
                self.export_generator()
            finally:
                self._claimed = False
                if lock is not None:
                    lock.release()
            self.stop_reason = reached
            return reached
        if reached:
            raise ValueError(f"nothing to train: the run is at step {self.step}, epoch {self.epoch} and its budget "
                             f"({self.budget_text()}) is reached; give a larger budget")
        lock = None
        try:
            lock = self._claim()
            return self._train()
        except RuntimeError as exc:
            if self.process.world_size > 1 and distributed.is_peer_failure(exc):
                raise self._peer_failure(exc) from None
            raise
        finally:
            self._claimed = False
            if lock is not None:
                lock.release()

    def _peer_failure(self, exc: BaseException) -> distributed.DistributedError:
        """The one-line error of a collective that another process never joined."""
        try:
            latest = ckpt.latest_checkpoint(self.out_dir) if self.out_dir is not None else None
        except ckpt.CheckpointError:
            latest = None
        where = (f"the run's latest checkpoint {latest} is intact: continue with condgan train --resume" if latest is not None
                 else "no checkpoint was written yet")
        return distributed.DistributedError(
            f"process {self.process.rank} of {self.process.world_size} stopped at step {self.step}: another process "
            f"stalled or died, and this one waited up to {self.config.process_group_timeout:g} s "
            f"(process_group_timeout) for it ({checks.first_line(exc, 120)}); {where} (the other processes' output "
            "says what happened to them)")

    def _train(self) -> str:
        main = self.process.is_main
        loggers = [self.registry.get("logger", name)() for name in self.config.loggers] if main else []
        for logger in loggers:
            self.registry.register(logger)
        previous_handlers = self._install_signal_handlers()
        self.stop_reason, self.stop_signal = None, None
        hook = self.registry.hook
        try:
            if main and self.out_dir is not None:
                ckpt.save_run_config(self.out_dir, self.gan.config, self.data_config, self.config)
            if main:
                hook.on_train_start(trainer=self)
            try:
                self._loop()
                self._sample()
                if self.out_dir is not None:
                    self.save_checkpoint()
                    self.export_generator()
            except BaseException:
                self.stop_reason = "error"
                raise
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            try:
                if main:
                    hook.on_train_end(trainer=self)
            finally:
                for logger in loggers:
                    self.registry.unregister(logger)
        return self.stop_reason

    def _generator_behind(self) -> bool:
        """True (process 0) when ``out_dir/generator.pt`` is missing, unreadable or of another step
        than this trainer, whose budget is reached: the run was stopped after its last checkpoint."""
        if self.out_dir is None or not self.process.is_main or self.last_checkpoint is None:
            return False
        path = self.out_dir / ckpt.GENERATOR_FILE
        try:
            return ckpt.read_file(path, formats=(ckpt.GENERATOR_FORMAT,)).get("step") != self.step
        except ckpt.CheckpointError:
            return True

    def _claim(self, *, agree: bool = True) -> rundir.RunLock | None:
        """Lock ``out_dir`` for this process (process 0 under torch.distributed) and check that it
        still holds this trainer's run (:func:`rundir.check_run_continues`): one rule for the API and
        the CLI. With ``agree``, every process learns whether process 0 succeeded."""
        if self.out_dir is None:
            return None
        lock, error = None, None
        if self.process.is_main:
            try:
                lock = rundir.lock_run_directory(self.out_dir)
                rundir.check_run_continues(self.out_dir, self._expected_latest)
                rundir.remove_orphans(self.out_dir)  # writes killed midway by a dead process
            except RunDirectoryError as exc:
                if lock is not None:
                    lock.release()
                lock, error = None, exc
        if (distributed.agree_any([error is not None], self.device)[0] if agree else error is not None):
            raise error if error is not None else RunDirectoryError(
                f"process 0 could not take the run directory {self.out_dir} (see its message)")
        self._claimed = True
        return lock

    def _loop(self) -> None:
        cfg, hook = self.config, self.registry.hook
        sample_every = cfg.sample_every
        checkpoint_every = cfg.checkpoint_every if self.out_dir is not None else None
        several = self.process.world_size > 1  # time and signals are then agreed at sync points only
        means = _RunningMeans(skip=cfg.nonfinite == "skip")
        started, elapsed_before = time.monotonic(), self.elapsed_s
        while True:
            reason = self._reached(clock=not several)
            if reason is None and self.stop_signal is not None and not several:
                reason = "interrupted"
            if reason:
                if means.count:
                    self._sync_point(means)  # nothing non-finite may reach the final checkpoint
                self.stop_reason = reason
                return
            real, y = self._next_batch()
            for optimizer, lr, schedule in self._schedules:  # Python floats: no sync
                apply_schedule(optimizer, lr, schedule, self.step)
            losses = self.step_fn(real, y)
            if self.ema is not None:
                self.ema.update(self.step)  # the step just taken, counted from 0
            self._advance()
            means.add(losses)
            self.elapsed_s = elapsed_before + time.monotonic() - started
            at_log = self.step % cfg.log_every == 0
            at_checkpoint = bool(checkpoint_every) and self.step % checkpoint_every == 0
            if at_log or at_checkpoint:
                metrics, agreed_stop = self._sync_point(means)  # the loop's only host sync
                if at_log and self.process.is_main:
                    hook.on_step_end(trainer=self, step=self.step, metrics=metrics)
                if agreed_stop:
                    self.stop_reason = agreed_stop
                    return
            if sample_every and self.step % sample_every == 0:
                self._sample()
            if at_checkpoint:
                self.save_checkpoint()

    def _sync_point(self, means: _RunningMeans) -> tuple[dict[str, float], str | None]:
        """Read the running means back (a host sync); stop on a non-finite loss; under
        torch.distributed, agree with the other processes on stopping (signal, time budget)."""
        first, updates = self.step - means.count + 1, 2 * means.count
        metrics = means.read()
        self.skipped_updates += int(metrics.get("skipped", 0))
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)} if self.config.nonfinite == "stop" else {}
        if self.config.nonfinite == "skip":
            self._check_skipped(metrics.get("skipped", 0), updates, first)
        budget = self._budget()
        time_up = "minutes" in budget and self.elapsed_s >= budget["minutes"] * 60
        bad_any, signalled, time_up = distributed.agree_any([bool(bad), self.stop_signal is not None, time_up], self.device)
        if bad_any:
            what = ", ".join(f"{k} = {v}" for k, v in bad.items()) or "a loss on another process"
            raise NonFiniteLossError(
                f"training diverged: {what} over steps {first}-{self.step}; stopped without saving ({self._last_good()}). "
                "Lower the learning rates, set clip_grad_norm, or use nonfinite='skip' to skip such updates.")
        return metrics, ("interrupted" if signalled else "minutes" if time_up else None)

    def _last_good(self) -> str:
        if self.last_checkpoint is None:
            return "no checkpoint was written yet"
        return f"the last good checkpoint is {self.last_checkpoint}"  # loaded or written: its weights were checked finite

    def _check_skipped(self, skipped: float, updates: int, first: int) -> None:
        """nonfinite="skip": warn when every update of an interval was skipped; stop after
        ``max_skipped_intervals`` such intervals in a row."""
        if updates == 0 or skipped < updates:
            self._skipped_intervals = 0
            return
        self._skipped_intervals += 1
        limit = self.config.max_skipped_intervals
        if self._skipped_intervals >= limit:
            raise NonFiniteLossError(
                f"training diverged: every update of the last {limit} interval(s) (up to step {self.step}) was skipped "
                f"for non-finite gradients, so the run no longer trains; stopped without saving ({self._last_good()}). "
                "Lower the learning rates or set clip_grad_norm (max_skipped_intervals sets how many such intervals stop a run).")
        if self.process.is_main:
            warnings.warn(f"every update of steps {first}-{self.step} was skipped for non-finite gradients; training "
                          f"stops after {limit} such intervals in a row (max_skipped_intervals)", RuntimeWarning, stacklevel=2)

    def _check_finite(self, include_training_state: bool = True) -> None:
        """Raise NonFiniteWeightsError if a weight (or an optimizer state) holds NaN or inf: called
        before anything is written (one host sync per save; under torch.distributed every process
        agrees)."""
        named = [(f"generator {k}", v) for k, v in self.sampling_generator.state_dict().items()]
        if include_training_state:
            if self.ema is not None:
                named += [(f"generator {k}", v) for k, v in self.gan.generator.state_dict().items()]
            named += [(f"discriminator {k}", v) for k, v in self.gan.discriminator.state_dict().items()]
            for label, opt in (("opt_g", self.opt_g), ("opt_d", self.opt_d)):
                named += [(f"{label} state {key}", v) for slots in opt.state.values() for key, v in slots.items()
                          if isinstance(v, Tensor)]
            bad = checks.nonfinite_names(named)
            bad_any = distributed.agree_any([bool(bad)], self.device)[0]
        else:
            bad = checks.nonfinite_names(named)
            bad_any = bool(bad)
        if bad_any:
            what = ", ".join(dict.fromkeys(bad[:3])) + (" ..." if len(bad) > 3 else "") if bad else "weights on another process"
            raise NonFiniteWeightsError(
                f"training diverged: weights hold NaN or inf at step {self.step} ({what}); stopped without saving "
                f"({self._last_good()}). Lower the learning rates or set clip_grad_norm.")

    def _use_cuda_graph(self) -> bool:
        cfg = self.config
        return use_cuda_graph(cfg.cuda_graph, self.gan.config, self.device, compile=cfg.compile,
                              world_size=self.process.world_size)

    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        return make_optimizers(self.gan, self.device, cuda_graph=self._use_cuda_graph())

    def _build_step(self) -> Callable[[Tensor, Tensor], dict[str, Tensor]]:
        """``step(real, y) -> losses``: one G update then one D update (``training.FastStep``: the
        reference's step, optionally compiled or captured as a CUDA graph)."""
        cfg = self.config
        return FastStep(self.gan, self.opt_g, self.opt_d, clip_grad_norm=cfg.clip_grad_norm,
                        autocast_dtype=self.autocast_dtype, cuda_graph=self._use_cuda_graph(),
                        skip_nonfinite=cfg.nonfinite == "skip",
                        compile="default" if cfg.compile is True else (cfg.compile or None))

    def _next_batch(self) -> tuple[Tensor, Tensor]:
        if self._iterator is None:
            # replay this epoch's data order from its start; skip the batches already trained on
            self.data_generator.set_state(self._epoch_rng)
            self._iterator = self.batches.iterate(self.batch_in_epoch)
        return next(self._iterator)

    def _advance(self) -> None:
        self.step += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch == self.batches_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0
            self._iterator = None
            self._epoch_rng = self.data_generator.get_state()

    # -- checks before training ----------------------------------------------------------------------
    def _convert_sync_batchnorm(self) -> None:
        if self.device.type != "cuda":
            raise ValueError("sync_batchnorm=True needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only); "
                             f"this run is on {self.device}: leave sync_batchnorm off")
        self.gan.generator = nn.SyncBatchNorm.convert_sync_batchnorm(self.gan.generator)
        self.gan.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(self.gan.discriminator)

    def _check_batch_sizes(self, labels: Tensor) -> None:
        """A batch of one in training mode breaks batch norm: find out now, not at the epoch's last batch."""
        b, n = self.config.batch_size, len(labels)
        sizes = {b} if self.process.world_size > 1 or n % b == 0 else {b, n % b}
        if 1 not in sizes:
            return
        probe = copy.deepcopy(self.gan).train()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            try:
                y = labels[:1].to(self.device)
                probe.discriminator(probe.generator(probe.generator.sample_noise(1, self.device), y, check=False), y, check=False)
            except ValueError as exc:  # batch norm (condgan's MLP, or PyTorch's own check in other backbones)
                where = "batch_size is 1" if b == 1 else f"the last batch of each epoch holds 1 image ({n} images, batch {b})"
                raise ValueError(f"{where}, and this model cannot train on a batch of one ({exc}): use a batch_size "
                                 f"from 2 up that leaves a last batch of at least 2 (n % batch_size != 1)") from None

    def _check_out_dir_writable(self) -> None:
        """The run directory can be written: fail now, not after an hour."""
        out = self.out_dir
        existing = next(p for p in (out, *out.parents) if p.exists() or p == p.parent)  # nothing is created here
        try:
            if not existing.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            with tempfile.TemporaryFile(dir=existing) as f:  # a write probe, gone when closed
                f.write(b"0" * 4096)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise RunDirectoryError(f"cannot write to the run directory {out}: {exc.strerror or exc}; choose another "
                                    "--out / out_dir or fix its permissions") from None

    def _check_out_dir_space(self) -> None:
        """The run directory has room for the checkpoints (estimated from the built networks)."""
        out = self.out_dir
        existing = next(p for p in (out, *out.parents) if p.exists() or p == p.parent)
        nbytes = lambda m: sum(t.numel() * t.element_size() for t in m.state_dict().values())  # noqa: E731
        g, d = nbytes(self.gan.generator), nbytes(self.gan.discriminator)
        one = 3 * (g + d) + (g if self.config.ema_decay is not None else 0)  # weights + two Adam moments
        need = one * (self.config.keep_last + 1) + g  # kept checkpoints, one being written, generator.pt
        orphans = sum(p.stat().st_size for p in rundir.orphaned_temporary_files(out)) if out.is_dir() else 0
        free = shutil.disk_usage(existing).free + orphans  # orphaned temporary files are removed when the run starts
        if free < need:
            counted = f" (counting {orphans / 1e6:.1f} MB of orphaned temporary files, removed at the start)" if orphans else ""
            raise RunDirectoryError(f"the run directory {out} has {free / 1e6:.1f} MB free{counted} but its checkpoints need about "
                                    f"{need / 1e6:.1f} MB (keep_last={self.config.keep_last} of {one / 1e6:.1f} MB, one "
                                    "being written, generator.pt): free some space, lower keep_last or choose another --out")

    # -- samples, checkpoints, signals ---------------------------------------------------------------
    def _grid_conditions(self, labels: Tensor) -> tuple[Tensor, int]:
        spec = self.gan.spec
        if spec.kind == "class":
            columns = min(spec.num_classes, GRID_MAX_COLUMNS)
            return torch.arange(columns, device=self.device).repeat(GRID_ROWS), columns  # column k: label k
        n = min(len(labels), GRID_ROWS * 10)
        return labels[:n].to(self.device), 10  # other conditions: the first ones of the dataset

    def sample_grid(self) -> tuple[Tensor, Tensor]:
        """Images (N, C, H, W) in [0, 1] on the CPU from fixed noise, and their conditions (row-major grid)."""
        images = self.sampling_generator.sample(self._grid_labels, z=self._grid_z)
        return to_unit(images.float(), self.gan.config.pixel_range).cpu(), self._grid_labels.cpu()

    def _sample(self) -> None:
        if self._sampled_step == self.step or not self.process.is_main:
            return
        images, labels = self.sample_grid()
        self._sampled_step = self.step
        self.registry.hook.on_sample(trainer=self, step=self.step, images=images, labels=labels, columns=self.grid_columns)

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step into ``out_dir`` (atomically) and fire ``on_checkpoint``.

        Under torch.distributed every process calls it and process 0 writes (others return None).
        """
        if self.out_dir is None:
            raise ValueError("this trainer has no out_dir to save checkpoints in")
        if self._saved_step == self.step and (self.last_checkpoint is not None and self.last_checkpoint.is_file()
                                              or not self.process.is_main):
            return self.last_checkpoint
        lock = None if self._claimed else self._claim()  # called outside train(): take the run directory for the write
        try:
            self._check_finite()  # nothing non-finite is ever written
            state = self.state_dict()
            if not self.process.is_main:
                self._saved_step = self.step
                return None
            path = ckpt.save_checkpoint(state, self.out_dir, keep_last=self.config.keep_last)
            self._saved_step, self.last_checkpoint, self._expected_latest = self.step, path, path
        finally:
            if lock is not None:
                self._claimed = False
                lock.release()
        self.registry.hook.on_checkpoint(trainer=self, path=path)
        return path

    def export_generator(self, path: str | Path | None = None) -> Path | None:
        """Write the sampling generator alone (EMA weights when on) for :func:`condgan.load_generator`
        (process 0 only under torch.distributed; others return None)."""
        if not self.process.is_main:
            return None
        if path is None:
            if self.out_dir is None:
                raise ValueError("give a path: this trainer has no out_dir")
            path = self.out_dir / ckpt.GENERATOR_FILE
        self._check_finite(include_training_state=False)
        content = ckpt.generator_file(self.gan.config, self.sampling_generator.state_dict(),
                                      from_ema=self.ema is not None, step=self.step)
        inside = self.out_dir is not None and os.path.realpath(Path(path).parent) == os.path.realpath(self.out_dir)
        lock = self._claim(agree=False) if inside and not self._claimed else None
        try:
            return ckpt.save_file(content, path)
        finally:
            if lock is not None:
                self._claimed = False
                lock.release()

    def _install_signal_handlers(self) -> dict[int, Any]:
        """SIGINT/SIGTERM set a flag that the loop checks between steps (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}

        def request_stop(signum, frame):
            self.stop_signal = signum
            for sig, handler in previous.items():  # a second signal acts at once (checkpoint writes are atomic)
                signal.signal(sig, handler)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, request_stop)
        return previous


class _RunningMeans:
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
        out = {}
        for key, total in self.sums.items():
            if key == "skipped":
                out[key] = float(total)
            else:
                n = float(self.counts[key])
                out[key] = float(total) / n if n else float("nan")
        self.sums, self.counts, self.count = {}, {}, 0
        return out
