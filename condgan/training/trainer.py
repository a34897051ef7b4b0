"""The Trainer: an iteration-based loop around the step, firing training events to plugins.

The loop keeps the device busy: batches come from a device-resident dataset shuffled on the device,
noise is drawn there, and losses are summed on the device and read back only every ``log_every``
steps. Everything else is a plain function the loop calls or an event it fires
(:mod:`.events`): budgets (:mod:`.budget`), the run directory (:mod:`.rundir`), non-finite guards
(:mod:`.guards`), checkpoint state (:mod:`.state`), sample grids (:mod:`.grids`), signals
(:mod:`.signals`), metrics during training (:mod:`.evaluation`, a plugin). A checkpoint holds the
position, the data order at the start of the epoch and every RNG state, so a resumed run continues
bit-identically (on the CPU, with deterministic kernels).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .. import distributed
from ..checkpoint import configs as ckpt_configs
from ..config import DataConfig, GANConfig, RunConfig, TrainerConfig
from ..data import ImageSet
from ..gan import GAN
from ..plugins import Registry, get_registry
from . import events, grids, guards, rundir, setup, state
from .budget import Budget
from .ema import EMA
from .optim import apply_schedule, make_optimizers, use_cuda_graph
from .setup import resolve_device, seed_everything
from .signals import stop_on_signals
from .step import FastStep

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
        gan, config, data = setup.run_sections(gan, config, data)
        self.config = config
        self.data_config = data if isinstance(data, DataConfig) else DataConfig() if data is None else None
        self.device = distributed.process_device(resolve_device(config.device))
        self.process = distributed.init_from_env(self.device, timeout=config.process_group_timeout)
        self.registry: Registry = get_registry()
        events.check_run_plugins(self.registry, config.loggers, config.callbacks)
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None
        self._expected_latest: Path | None = None  # the checkpoint out_dir's `latest` must name when this trainer writes
        self._claimed = False  # True while train() holds the run directory
        if self.out_dir is not None and self.process.is_main:  # before the data: a bad --out fails in a second
            rundir.check_before_run(self.out_dir, resuming=self.__dict__.pop("_resuming", False))
        self.gan, images, labels, self.data_fingerprint = setup.build_model(gan, data, config, self.device, self.out_dir,
                                                                            self.process.is_main)
        self.autocast_dtype = setup.AUTOCAST_DTYPES[config.autocast] if config.autocast else None
        self.data_generator = torch.Generator(device=self.device).manual_seed(config.seed)
        drop_last = setup.packed_batches(self.gan, len(labels), config.batch_size)  # before the first step
        self.batches = setup.make_batches(
            self.gan, images, labels, config.batch_size, workers=getattr(self.data_config, "workers", None),
            device=self.device, pixel_range=self.gan.config.pixel_range, generator=self.data_generator,
            rank=self.process.rank, world_size=self.process.world_size, drop_last=drop_last)
        setup.check_batch_sizes(self.gan, labels, config.batch_size, self.process.world_size, self.device)
        self.dataset_size, self.batches_per_epoch = len(labels), len(self.batches)
        self.cuda_graph = use_cuda_graph(config.cuda_graph, self.gan.config, self.device, compile=config.compile,
                                         world_size=self.process.world_size)
        self.opt_g, self.opt_d = make_optimizers(self.gan, self.device, cuda_graph=self.cuda_graph)
        self.ema = EMA(self.gan.generator, config.ema_decay, config.ema_start) if config.ema_decay is not None else None
        self.step_fn = self._build_step()
        self.step_rng: torch.Generator | None = None  # a stacked group's run: the generator its steps draw from
        if self.process.rank > 0:  # one random stream per process; process 0 keeps the single-process stream
            seed_everything(distributed.rank_seed(config.seed, self.process.rank))
        self.guard = guards.LossGuard(config.nonfinite, config.max_skipped_intervals)
        opts = ((self.opt_g, self.gan.config.g_optimizer), (self.opt_d, self.gan.config.d_optimizer))
        self._schedules = [(opt, c.lr, c.schedule) for opt, c in opts if c.schedule]
        state.start_position(self)
        self._grid_labels, self.grid_columns = grids.grid_conditions(self.gan.spec, labels, self.device)
        self._grid_z = grids.grid_noise(self.gan.generator, len(self._grid_labels), config.seed, self.device)

    def _build_step(self):
        """``step(real, y) -> losses``: one G update then one D update (:class:`FastStep`: the
        reference's step, optionally compiled or captured as a CUDA graph)."""
        cfg = self.config
        return FastStep(self.gan, self.opt_g, self.opt_d, clip_grad_norm=cfg.clip_grad_norm,
                        autocast_dtype=self.autocast_dtype, cuda_graph=self.cuda_graph,
                        skip_nonfinite=cfg.nonfinite == "skip",
                        compile="default" if cfg.compile is True else (cfg.compile or None))

    # -- checkpoints --------------------------------------------------------------------------------
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
        return state.from_checkpoint(cls, path, data, data_root, changes)

    def state_dict(self) -> dict[str, Any]:
        """Everything a checkpoint holds; under torch.distributed every process must call it."""
        return state.trainer_state(self)

    def load_state_dict(self, saved: Mapping[str, Any], *, source: str | Path = "checkpoint") -> None:
        """Restore weights, optimizers, EMA, position and every RNG state from :meth:`state_dict`
        output; everything is checked before anything changes (CheckpointError naming ``source``)."""
        state.load_trainer_state(self, saved, source)

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step into ``out_dir`` (atomically) and fire ``on_checkpoint``;
        under torch.distributed every process calls it and process 0 writes (others return None)."""
        return state.save_checkpoint(self)

    def export_generator(self, path: str | Path | None = None) -> Path | None:
        """Write the sampling generator alone (EMA weights when on) for :func:`condgan.load_generator`
        (default ``out_dir/generator.pt``; process 0 only under torch.distributed)."""
        return state.export_generator(self, path)

    # -- budget ---------------------------------------------------------------------------------------
    @property
    def budget(self) -> Budget:
        """The stopping rule of ``config`` (read anew: a changed ``config.steps`` applies)."""
        return Budget.of(self.config)

    def budget_text(self) -> str:
        """The budget as ``"steps=1000, minutes=5"``."""
        return self.budget.text()

    @property
    def target_steps(self) -> int | None:
        """The step the run stops at by its step/epoch budget (None for a time budget alone)."""
        return self.budget.target_steps(self.batches_per_epoch)

    def seconds_left(self, steps_per_s: float) -> float | None:
        """Estimated time to the end of the budget at ``steps_per_s``."""
        return self.budget.seconds_left(self.step, self.elapsed_s, steps_per_s, self.batches_per_epoch)

    @property
    def skipped_updates(self) -> int:
        """Updates skipped for non-finite gradients so far (``nonfinite="skip"``)."""
        return self.guard.skipped_updates

    def request_stop(self, reason: str = "requested") -> None:
        """Stop before the next step, as a budget would (final checkpoint and generator written);
        ``stop_reason`` becomes ``reason``. For callbacks (early stopping)."""
        self._stop_request = str(reason)

    # -- the loop -------------------------------------------------------------------------------------
    @property
    def sampling_generator(self) -> nn.Module:
        """The generator used for samples: the EMA copy when EMA is on, else G."""
        return self.ema.module if self.ema is not None else self.gan.generator

    def train(self) -> str:
        """Train until the budget is reached, a callback asks to stop or SIGINT/SIGTERM arrives;
        returns :attr:`stop_reason`.

        At the end (also after a signal) it makes a last sample grid and, with ``out_dir``, a
        checkpoint and ``generator.pt``. Stops happen between steps (under torch.distributed, at
        the next log step, where the processes agree). Only process 0 fires events and writes. A
        run whose budget is reached but whose ``generator.pt`` is behind writes it and returns.

        Raises:
            ValueError: no budget, or the budget is already reached (nothing to train).
            NonFiniteLossError: a loss became NaN or inf (``nonfinite="stop"``); nothing
                non-finite was saved.
        """
        if not self.budget:
            raise ValueError("the training config has no budget: set steps, epochs or minutes (condgan train: "
                             "--steps, --epochs or --minutes)")
        reached = self.budget.reached(self.step, self.epoch, self.elapsed_s)
        if reached and distributed.agree_any([state.generator_behind(self)], self.device)[0]:
            with state.holding_run_directory(self):  # killed between its last checkpoint and generator.pt
                self.export_generator()
            self.stop_reason = reached
            return reached
        if reached:
            raise ValueError(f"nothing to train: the run is at step {self.step}, epoch {self.epoch} and its budget "
                             f"({self.budget_text()}) is reached; give a larger budget")
        try:
            with state.holding_run_directory(self):
                return self._train()
        except RuntimeError as exc:
            if self.process.world_size > 1 and distributed.is_peer_failure(exc):
                raise distributed.peer_failure(self.process, self.step, self.config.process_group_timeout, exc,
                                               state.latest_or_none(self.out_dir)) from None
            raise

    def _train(self) -> str:
        main, hook = self.process.is_main, self.registry.hook
        self.stop_reason, self.stop_signal, self._stop_request = None, None, None
        with events.run_plugins(self.registry, self.config.loggers, self.config.callbacks, active=main,
                                owner=self if self.step_rng is not None else None), \
                stop_on_signals(self._on_signal):
            try:
                if main and self.out_dir is not None:
                    ckpt_configs.save_run_config(self.out_dir, self.gan.config, self.data_config, self.config)
                if main:
                    hook.on_train_start(trainer=self)
                self._loop()
                self._sample()
                if self.out_dir is not None:
                    self.save_checkpoint()
                    self.export_generator()
            except BaseException as exc:
                self.stop_reason = "error"
                if main:
                    hook.on_failure(trainer=self, error=exc)
                raise
            finally:
                if main:
                    hook.on_train_end(trainer=self)
        return self.stop_reason

    def _on_signal(self, signum: int) -> None:
        self.stop_signal = signum

    def _loop(self) -> None:
        cfg, hook, main = self.config, self.registry.hook, self.process.is_main
        checkpoint_every = cfg.checkpoint_every if self.out_dir is not None else None
        means = guards.RunningMeans(skip=cfg.nonfinite == "skip")
        started, elapsed_before = time.monotonic(), self.elapsed_s
        while not self._stopped(means):
            real, y = self._next_batch()
            for optimizer, lr, schedule in self._schedules:  # Python floats: no sync
                apply_schedule(optimizer, lr, schedule, self.step)
            losses = self.step_fn(real, y)
            if self.ema is not None:
                self.ema.update(self.step)  # the step just taken, counted from 0
            self._advance()
            means.add(losses)
            self.elapsed_s = elapsed_before + time.monotonic() - started
            if main:
                hook.on_step_end(trainer=self, step=self.step)
            at_log = self.step % cfg.log_every == 0
            at_checkpoint = bool(checkpoint_every) and self.step % checkpoint_every == 0
            if at_log or at_checkpoint:
                metrics, agreed_stop = self._sync_point(means)  # the loop's only host sync
                if at_log and main:
                    hook.on_log(trainer=self, step=self.step, metrics=metrics)
                if agreed_stop:
                    self.stop_reason = agreed_stop
                    return
            if cfg.sample_every and self.step % cfg.sample_every == 0:
                self._sample()
            if at_checkpoint:
                self.save_checkpoint()

    def _stopped(self, means: guards.RunningMeans) -> bool:
        """True (with :attr:`stop_reason` set) when the loop must stop before its next step."""
        several = self.process.world_size > 1  # time, signals and requests are then agreed at sync points only
        reason = self.budget.reached(self.step, self.epoch, self.elapsed_s, clock=not several)
        if reason is None and not several:
            reason = self._stop_request or ("interrupted" if self.stop_signal is not None else None)
        if reason is None:
            return False
        if means.count:
            self._sync_point(means)  # nothing non-finite may reach the final checkpoint
        self.stop_reason = reason
        return True

    def _sync_point(self, means: guards.RunningMeans) -> tuple[dict[str, float], str | None]:
        """Read the running means back (a host sync); stop on a non-finite loss; under
        torch.distributed, agree with the other processes on stopping (signal, request, time budget)."""
        first = self.step - means.count + 1
        metrics = means.read()
        bad = self.guard.bad_losses(metrics, first, self.step, warn=self.process.is_main, last_good=state.last_good(self))
        time_up = self.budget.time_up(self.elapsed_s)
        asked = self.stop_signal is not None or self._stop_request is not None
        bad_any, asked, time_up = distributed.agree_any([bool(bad), asked, time_up], self.device)
        if bad_any:
            raise guards.diverged(bad, first, self.step, state.last_good(self))
        stop = (self._stop_request or "interrupted") if asked else "minutes" if time_up else None
        return metrics, stop

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

    # -- samples and the run directory ----------------------------------------------------------------
    def sample_grid(self) -> tuple[Tensor, Tensor]:
        """Images (N, C, H, W) in [0, 1] on the CPU from fixed noise, and their conditions (row-major grid)."""
        return grids.draw_grid(self.sampling_generator, self._grid_labels, self._grid_z, self.gan.config.pixel_range)

    def _sample(self) -> None:
        if self._sampled_step == self.step or not self.process.is_main:
            return
        images, labels = self.sample_grid()
        self._sampled_step = self.step
        self.registry.hook.on_sample(trainer=self, step=self.step, images=images, labels=labels, columns=self.grid_columns)
