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
import inspect
import math
import os
import random
import shutil
import signal
import tempfile
import threading
import warnings
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from . import checkpoint as ckpt
from . import distributed
from .config import GANConfig
from .data import TensorBatches, to_unit
from .data import load_dataset
from .gan import GAN, build, make_optimizer
from .plugins import Registry, UnknownComponentError, get_registry
from .schedules import apply_schedule
from .training import COMPILE_MODES, FastStep, fast_optimizer_options

AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
NONFINITE_POLICIES = ("stop", "skip")
BEST_METRICS = ("fid", "label_accuracy", "attribute_accuracy", "condition_rmse")
GRID_ROWS = 10
GRID_MAX_COLUMNS = 32


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or inf; training stopped before saving anything non-finite."""


@dataclass
class TrainerConfig:
    """How to train: budget, logging, checkpoints and optional extras. Model settings live in GANConfig.

    Budgets count the whole run (a resumed run continues towards them); training stops at the
    first one reached. With none set, the run trains ``GANConfig.epochs`` epochs.

    Args:
        steps: stop after this many steps (G + D updates).
        epochs: stop after this many passes over the dataset.
        minutes: stop after this much training time (the loop's wall-clock time, summed over resumes).
        log_every: steps between ``on_step_end`` events (the loop's only host sync).
        sample_every: steps between sample grids (``on_sample``); None: ``GANConfig.sample_every``;
            0: only at the end.
        checkpoint_every: steps between checkpoints; None: only at the end (and on SIGINT/SIGTERM).
        keep_last: how many periodic checkpoints to keep.
        ema_decay: keep an exponential moving average of G's weights with this decay (e.g. 0.999)
            and sample from it; None: off (as the reference).
        clip_grad_norm: clip each network's gradient norm to this value; None: off.
        autocast: ``"bfloat16"`` or ``"float16"`` autocast for the forward passes; None: off.
        compile: ``torch.compile`` the step's forward and backward passes: True (mode
            ``"default"``) or a mode name (``training.COMPILE_MODES``); False: eager.
        cuda_graph: capture the whole step as one CUDA graph (CUDA only; see
            ``training.FastStep``); None: on CUDA unless ``compile`` is set, an optimizer cannot be
            captured or a schedule changes what a graph cannot follow (anything but a capturable
            optimizer's learning rate: :func:`graph_follows_schedule`).
        seed: seeds the weights (when the trainer builds the GAN), noise, dropout and data order.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        out_dir: the run directory (checkpoints, samples, TensorBoard); None: write nothing.
        data_root: where the dataset's files are (``GANConfig.dataset`` names the dataset).
        download: download the dataset into ``data_root`` when it is missing (where supported).
        loggers: names of registered loggers to run (``condgan list`` shows them).
        nonfinite: what a NaN or inf loss does: ``"stop"`` (default) stops training with
            :class:`NonFiniteLossError` at the next log or checkpoint step, before anything
            non-finite is saved (the last checkpoint stays the last good one); ``"skip"`` skips
            every update whose gradients are not finite and counts them (``skipped`` in the logged
            metrics).
        sync_batchnorm: under torch.distributed, convert the networks' ``nn.BatchNorm*`` layers to
            ``nn.SyncBatchNorm`` (CUDA only) so that their statistics span all processes' batches.
        eval_every: every this many steps (a multiple of ``log_every``) and at the end, compute FID
            and label accuracy of ``eval_samples`` samples with the ``judge`` (the ``metrics``
            logger, added when this is set: :mod:`condgan.metrics.training_eval`); None: off.
        eval_samples: samples per evaluation (fixed noise; more than the judge's feature dimensions).
        judge: path of a judge file (``condgan train-classifier``) for ``eval_every``.
        best_metric: the metric that picks ``best.pt`` in the run directory: ``"fid"`` (lowest),
            ``"label_accuracy"`` or ``"attribute_accuracy"`` (highest), ``"condition_rmse"`` (lowest).
    """

    steps: int | None = None
    epochs: int | None = None
    minutes: float | None = None
    log_every: int = 100
    sample_every: int | None = None
    checkpoint_every: int | None = 2000
    keep_last: int = 3
    ema_decay: float | None = None
    clip_grad_norm: float | None = None
    autocast: str | None = None
    compile: bool | str = False
    cuda_graph: bool | None = None
    seed: int = 0
    device: str = "auto"
    out_dir: str | None = None
    data_root: str = "./data"
    download: bool = True
    loggers: tuple[str, ...] = ("console", "grid", "tensorboard")
    nonfinite: str = "stop"
    sync_batchnorm: bool = False
    eval_every: int | None = None
    eval_samples: int = 1000
    judge: str | None = None
    best_metric: str = "fid"

    def __post_init__(self):
        for name in ("steps", "epochs", "sample_every", "checkpoint_every"):
            value = getattr(self, name)
            low = 0 if name == "sample_every" else 1
            if value is not None and (not _is_int(value) or value < low):
                raise ValueError(f"{name} must be None or an int >= {low}, got {value!r}")
        for name in ("log_every", "keep_last", "seed"):
            value = getattr(self, name)
            if not _is_int(value) or value < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be an int >= {0 if name == 'seed' else 1}, got {value!r}")
        if self.minutes is not None and (not _is_number(self.minutes) or not self.minutes > 0):
            raise ValueError(f"minutes must be None or a number > 0, got {self.minutes!r}")
        if self.ema_decay is not None and (not _is_number(self.ema_decay) or not 0.0 < self.ema_decay < 1.0):
            raise ValueError(f"ema_decay must be None (off) or a number in (0, 1), e.g. 0.999; got {self.ema_decay!r}")
        if self.clip_grad_norm is not None and (not _is_number(self.clip_grad_norm) or not self.clip_grad_norm > 0):
            raise ValueError(f"clip_grad_norm must be None (off) or a number > 0, got {self.clip_grad_norm!r}")
        if self.autocast is not None and self.autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be None or one of {', '.join(AUTOCAST_DTYPES)}, got {self.autocast!r}")
        if self.compile not in (False, True, *COMPILE_MODES):
            raise ValueError(f"compile must be True, False or one of {', '.join(COMPILE_MODES)}, got {self.compile!r}")
        if self.nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {', '.join(NONFINITE_POLICIES)}, got {self.nonfinite!r}")
        if self.sync_batchnorm not in (True, False):
            raise ValueError(f"sync_batchnorm must be True or False, got {self.sync_batchnorm!r}")
        if self.cuda_graph not in (None, True, False):
            raise ValueError(f"cuda_graph must be None (automatic), True or False, got {self.cuda_graph!r}")
        if isinstance(self.loggers, str):
            self.loggers = (self.loggers,)
        self.loggers = tuple(self.loggers)
        self._check_eval()
        if self.out_dir is not None:
            self.out_dir = str(self.out_dir)
        self.data_root = str(self.data_root)

    def _check_eval(self) -> None:
        if self.eval_every is not None:
            if not _is_int(self.eval_every) or self.eval_every < 1 or self.eval_every % self.log_every:
                raise ValueError(f"eval_every must be None or a multiple of log_every ({self.log_every}), got {self.eval_every!r}")
            if not isinstance(self.judge, (str, os.PathLike)):
                raise ValueError("eval_every needs judge=PATH, a judge file (condgan train-classifier --dataset NAME --out PATH)")
            if "metrics" not in self.loggers:
                self.loggers = (*self.loggers, "metrics")
        if not _is_int(self.eval_samples) or self.eval_samples < 2:
            raise ValueError(f"eval_samples must be an int >= 2, got {self.eval_samples!r}")
        if self.judge is not None:
            self.judge = str(self.judge)
        if self.best_metric not in BEST_METRICS:
            raise ValueError(f"best_metric must be one of {', '.join(BEST_METRICS)}, got {self.best_metric!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


class EMA:
    """An exponential moving average of a module's parameters; buffers are copied as they are.

    ``update()`` does ``ema = decay * ema + (1 - decay) * param`` with foreach ops on the device
    (no host sync).

    Args:
        model: the module followed (its parameters are read at each update).
        decay: weight of the old average, in (0, 1).

    Example:
        >>> ema = EMA(gan.generator, 0.999)
        >>> ema.update()  # after each optimizer step
        >>> ema.module.sample(torch.arange(10))
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).requires_grad_(False)
        self._src_params = list(model.parameters())
        self._dst_params = list(self.module.parameters())
        self._src_buffers = list(model.buffers())
        self._dst_buffers = list(self.module.buffers())

    @torch.no_grad()
    def update(self) -> None:
        torch._foreach_lerp_(self._dst_params, self._src_params, 1.0 - self.decay)
        if self._dst_buffers:
            torch._foreach_copy_(self._dst_buffers, self._src_buffers)


class Trainer:
    """Trains a conditional GAN: the reference's step (G update, then D update), iteration based.

    Args:
        gan: a built :class:`GAN`, or a :class:`GANConfig` / preset name to build (seeded with
            ``config.seed`` first, so the weights are reproducible).
        config: the :class:`TrainerConfig`.
        data: ``(images, labels)`` to train on instead of loading ``gan.config.dataset``: images
            uint8 (N, C, H, W) in [0, 255] or float in ``pixel_range``; labels as the condition spec.

    Attributes:
        step, epoch, batch_in_epoch: the position (``batch_in_epoch`` batches of ``epoch`` done).
        stop_reason: why the last :meth:`train` stopped.
        last_checkpoint: path of the newest checkpoint written or loaded.

    Example:
        >>> trainer = Trainer("mnist_mlp", TrainerConfig(steps=1000, out_dir="runs/a", data_root="data"))
        >>> trainer.train()
        >>> trainer = Trainer.from_checkpoint("runs/a", steps=2000)  # continue the same run
        >>> trainer.train()
    """

    def __init__(self, gan: GAN | GANConfig | str, config: TrainerConfig | None = None, *,
                 data: tuple[Tensor, Tensor] | None = None):
        self.config = config = config if config is not None else TrainerConfig()
        if not isinstance(config, TrainerConfig):
            raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
        self.device = distributed.process_device(resolve_device(config.device))
        self.process = distributed.init_from_env(self.device)
        self.registry: Registry = get_registry()
        seed_everything(config.seed)
        if not isinstance(gan, GAN):
            gan = build(gan) if isinstance(gan, (str, GANConfig)) else _raise_type(gan)
        gcfg = gan.config
        if not _is_int(gcfg.batch_size) or gcfg.batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {gcfg.batch_size!r}")
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None
        if self.out_dir is not None:
            ckpt.config_to_plain(gcfg)  # a config that a checkpoint cannot hold fails now, not at the first save
        for name in config.loggers:
            self.registry.get("logger", name)  # unknown logger names fail now
        self.gan = gan.to(self.device)
        if config.sync_batchnorm:
            self._convert_sync_batchnorm()
        self.autocast_dtype = AUTOCAST_DTYPES[config.autocast] if config.autocast else None
        if self.out_dir is not None and self.process.is_main:
            self._check_out_dir()  # before the data: a bad --out fails in a second

        images, labels = data if data is not None else load_dataset(
            gcfg.dataset, config.data_root, image_shape=gcfg.image_shape, num_classes=gcfg.num_classes, download=config.download)
        check_dataset(gan, images, labels)  # validated once, before the loop
        self.data_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        self.batches = TensorBatches(images, labels, gcfg.batch_size, device=self.device, pixel_range=gcfg.pixel_range,
                                     generator=self.data_generator, rank=self.process.rank, world_size=self.process.world_size)
        self._check_batch_sizes(labels)
        self.dataset_size = len(images)
        self.batches_per_epoch = len(self.batches)

        self.opt_g, self.opt_d = self._optimizers()
        self.ema = EMA(gan.generator, config.ema_decay) if config.ema_decay is not None else None
        self.step_fn = self._build_step()
        if self.process.rank > 0:  # one random stream per process; process 0 keeps the single-process stream
            seed_everything(distributed.rank_seed(config.seed, self.process.rank))
        self.skipped_updates = 0
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

    # -- construction from a checkpoint ------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, *, data: tuple[Tensor, Tensor] | None = None, **changes: Any) -> Trainer:
        """The trainer of a saved run, at the saved position; ``changes`` set TrainerConfig fields.

        ``path`` is a checkpoint file or a run directory (its ``latest``). Give new budgets as
        changes, e.g. ``steps=2000``: budgets count the whole run. ``out_dir`` defaults to the
        saved run's directory.

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
        if "out_dir" not in changes and path.parent.name == ckpt.CHECKPOINT_DIR:
            changes["out_dir"] = str(path.parent.parent)  # the run directory, wherever it is now
        config = dataclasses.replace(saved, **changes)
        try:
            trainer = cls(gan_config, config, data=data)
        except UnknownComponentError as exc:
            raise UnknownComponentError(f"cannot rebuild the model saved in {path}: {exc}. "
                                        "Install or register the plugin that provides it.") from None
        trainer.load_state_dict(state, source=path)
        trainer.last_checkpoint = path
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
            "generator": self.gan.generator.state_dict(), "discriminator": self.gan.discriminator.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
            "dataset_size": self.dataset_size, "data_rng": self._epoch_rng.clone(), "device_type": self.device.type,
            "elapsed_s": self.elapsed_s, "rng": rng,
            "world_size": self.process.world_size, "batch_size": self.gan.config.batch_size,
        }
        if self.process.world_size > 1:
            rank_rng: list[Any] = [None] * self.process.world_size
            torch.distributed.all_gather_object(rank_rng, rng)
            state["rank_rng"] = rank_rng
        return state

    def load_state_dict(self, state: Mapping[str, Any], *, source: str | Path = "checkpoint") -> None:
        """Restore weights, optimizers, EMA, position and every RNG state from :meth:`state_dict` output."""
        if state["dataset_size"] != self.dataset_size:
            raise ckpt.CheckpointError(f"{source} was trained on {state['dataset_size']} images but this dataset has "
                                       f"{self.dataset_size}; resuming needs the same data")
        try:
            self.gan.generator.load_state_dict(state["generator"])
            self.gan.discriminator.load_state_dict(state["discriminator"])
            _load_optimizer(self.opt_g, state["opt_g"])
            _load_optimizer(self.opt_d, state["opt_d"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ckpt.CheckpointError(f"{source} does not fit the model its config builds: {str(exc).splitlines()[0]}") from None
        if self.ema is not None:
            # EMA turned on at resume: it starts from the current weights
            self.ema.module.load_state_dict(state["ema"] if state["ema"] is not None else state["generator"])
        self.step, self.epoch, self.batch_in_epoch = int(state["step"]), int(state["epoch"]), int(state["batch_in_epoch"])
        self.elapsed_s = float(state["elapsed_s"])
        saved_layout = (int(state.get("world_size", 1)), int(state.get("batch_size", self.gan.config.batch_size)))
        layout = (self.process.world_size, self.gan.config.batch_size)
        if saved_layout != layout:  # N processes -> M: keep the epoch's order, continue at the same image
            seen = self.batch_in_epoch * saved_layout[0] * saved_layout[1]
            self.batch_in_epoch = min(seen // (layout[0] * layout[1]), self.batches_per_epoch - 1)
            if self.process.is_main:
                warnings.warn(f"{source} was written by {saved_layout[0]} process(es) with batch {saved_layout[1]}, this "
                              f"run has {layout[0]} x {layout[1]}: it continues from image {seen} of the epoch's order "
                              "(the same weights, optimizers and data order; not bit-identical)", RuntimeWarning, stacklevel=2)
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

    # -- budget ----------------------------------------------------------------------------------
    def _budget(self) -> dict[str, float]:
        cfg = self.config
        budget = {k: v for k, v in (("steps", cfg.steps), ("epochs", cfg.epochs), ("minutes", cfg.minutes)) if v is not None}
        return budget or {"epochs": self.gan.config.epochs}

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

        Raises:
            ValueError: the budget is already reached (nothing to train).
            NonFiniteLossError: a loss became NaN or inf (``nonfinite="stop"``); nothing
                non-finite was saved.
        """
        reached = self._reached()
        if reached:
            raise ValueError(f"nothing to train: the run is at step {self.step}, epoch {self.epoch} and its budget "
                             f"({self.budget_text()}) is reached; give a larger budget")
        main = self.process.is_main
        loggers = [self.registry.get("logger", name)() for name in self.config.loggers] if main else []
        for logger in loggers:
            self.registry.register(logger)
        previous_handlers = self._install_signal_handlers()
        self.stop_reason, self.stop_signal = None, None
        hook = self.registry.hook
        try:
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

    def _loop(self) -> None:
        cfg, hook = self.config, self.registry.hook
        sample_every = self.gan.config.sample_every if cfg.sample_every is None else cfg.sample_every
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
                self.ema.update()
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
        first = self.step - means.count + 1
        metrics = means.read()
        self.skipped_updates += int(metrics.get("skipped", 0))
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)} if self.config.nonfinite == "stop" else {}
        budget = self._budget()
        time_up = "minutes" in budget and self.elapsed_s >= budget["minutes"] * 60
        bad_any, signalled, time_up = distributed.agree_any([bool(bad), self.stop_signal is not None, time_up], self.device)
        if bad_any:
            what = ", ".join(f"{k} = {v}" for k, v in bad.items()) or "a loss on another process"
            last = (f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint is not None
                    else "no checkpoint was written yet")
            raise NonFiniteLossError(
                f"training diverged: {what} over steps {first}-{self.step}; stopped without saving ({last}). "
                "Lower the learning rates, set clip_grad_norm, or use nonfinite='skip' to skip such updates.")
        return metrics, ("interrupted" if signalled else "minutes" if time_up else None)

    def _use_cuda_graph(self) -> bool:
        cfg, gcfg = self.config, self.gan.config
        if self.process.world_size > 1:
            if cfg.cuda_graph:
                raise ValueError("cuda_graph=True cannot be used with several processes: the distributed step runs "
                                 "eagerly under DistributedDataParallel; leave cuda_graph unset")
            return False
        follows = all(graph_follows_schedule(c) for c in (gcfg.g_optimizer, gcfg.d_optimizer))
        if cfg.cuda_graph is not None:
            if cfg.cuda_graph and not follows:
                raise ValueError("cuda_graph=True cannot follow this optimizer schedule: a graph reads a changing "
                                 "learning rate only from a capturable optimizer (Adam, AdamW), and no other changing "
                                 "setting (a momentum ramp); set cuda_graph=False or change the schedule")
            return cfg.cuda_graph
        capturable = all("capturable" in _accepted_options(c) for c in (gcfg.g_optimizer, gcfg.d_optimizer))
        return self.device.type == "cuda" and not cfg.compile and capturable and follows

    def _optimizers(self) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """G's and D's optimizers from the config, with the fastest implementation that each accepts
        (``training.fast_optimizer_options``: fused kernels; capturable for a CUDA graph)."""
        fast = fast_optimizer_options(self.device, cuda_graph=self._use_cuda_graph())
        made = []
        for params, opt_config in ((self.gan.generator.parameters(), self.gan.config.g_optimizer),
                                   (self.gan.discriminator.parameters(), self.gan.config.d_optimizer)):
            accepted, given = _accepted_options(opt_config), opt_config.options
            extra = {k: v for k, v in fast.items() if k in accepted and k not in given
                     and not (k == "fused" and given.get("foreach"))}
            made.append(make_optimizer(params, opt_config, **extra))
        return made[0], made[1]

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
            self._iterator = iter(self.batches)
            for _ in range(self.batch_in_epoch):
                next(self._iterator)
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
        b, n = self.gan.config.batch_size, len(labels)
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

    def _check_out_dir(self) -> None:
        """The run directory is writable and has room for the checkpoints: fail now, not after an hour."""
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
        nbytes = lambda m: sum(t.numel() * t.element_size() for t in m.state_dict().values())  # noqa: E731
        g, d = nbytes(self.gan.generator), nbytes(self.gan.discriminator)
        one = 3 * (g + d) + (g if self.config.ema_decay is not None else 0)  # weights + two Adam moments
        need = one * (self.config.keep_last + 1) + g  # kept checkpoints, one being written, generator.pt
        free = shutil.disk_usage(existing).free
        if free < need:
            raise RunDirectoryError(f"the run directory {out} has {free / 1e6:.1f} MB free but its checkpoints need about "
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
        state = self.state_dict()
        if not self.process.is_main:
            self._saved_step = self.step
            return None
        path = ckpt.save_checkpoint(state, self.out_dir, keep_last=self.config.keep_last)
        self._saved_step, self.last_checkpoint = self.step, path
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
        content = ckpt.generator_file(self.gan.config, self.sampling_generator.state_dict(),
                                      from_ema=self.ema is not None, step=self.step)
        return ckpt.save_file(content, path)

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


_IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")


def _load_optimizer(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping this run's implementation (fused, capturable, ...):
    a checkpoint from another device may have saved flags that this device cannot run."""
    flags = [{k: group[k] for k in _IMPLEMENTATION_FLAGS if k in group} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, own in zip(optimizer.param_groups, flags):
        group.update(own)
        on_device = bool(group.get("fused") or group.get("capturable"))  # these keep `step` with the parameters
        for param in group["params"]:
            slots = optimizer.state.get(param, {})
            if torch.is_tensor(slots.get("step")):
                slots["step"] = slots["step"].to(param.device if on_device else "cpu", torch.float32)


def graph_follows_schedule(opt_config) -> bool:
    """True when a captured CUDA graph can follow ``opt_config``'s schedule: none, or a learning-rate
    schedule alone on an optimizer that can be captured (it reads its lr from a device tensor)."""
    schedule = opt_config.schedule or {}
    if not schedule:
        return True
    return "capturable" in _accepted_options(opt_config) and not any(k.startswith("momentum") for k in schedule)


def _accepted_options(opt_config) -> set[str]:
    """Keyword arguments the optimizer class of ``opt_config`` takes (empty if it is not a class)."""
    cls = getattr(torch.optim, opt_config.name, None) if isinstance(opt_config.name, str) else opt_config.name
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()


class RunDirectoryError(OSError):
    """The run directory cannot be written, or has no room for the run's checkpoints."""


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


def check_dataset(gan: GAN, images: Tensor, labels: Tensor) -> None:
    """Raise ``ValueError`` unless ``images``/``labels`` can train ``gan``: checked once, before the loop.

    Images: a non-empty (N, C, H, W) tensor of the model's ``image_shape``, uint8 or float, finite;
    labels: N conditions that fit ``gan.spec`` (dtype, shape, range).
    """
    shape = tuple(gan.config.image_shape)
    if not isinstance(images, Tensor) or not isinstance(labels, Tensor):
        raise ValueError(f"data must be (images, labels) tensors, got ({type(images).__name__}, {type(labels).__name__})")
    if images.dim() != 4 or tuple(images.shape[1:]) != shape:
        raise ValueError(f"images must have shape (N, {', '.join(map(str, shape))}) for this model (its image_shape), "
                         f"got {tuple(images.shape)}: resize the data or set image_shape")
    if len(images) == 0:
        raise ValueError("the dataset is empty: training needs at least one image")
    if images.dtype != torch.uint8 and not images.dtype.is_floating_point:
        raise ValueError(f"images must be uint8 in [0, 255] or float in the model's pixel_range, got dtype {images.dtype}")
    if images.dtype.is_floating_point and not bool(torch.isfinite(images).all()):
        raise ValueError(f"images contain NaN or inf (first bad image: index {int((~torch.isfinite(images)).flatten(1).any(1).nonzero()[0])})")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: each image needs one condition")
    gan.spec.check(labels)


def _raise_type(gan: Any):
    raise TypeError(f"gan must be a GAN, a GANConfig or a preset name, got {type(gan).__name__}")
