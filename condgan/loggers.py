"""Built-in loggers: plugins that turn training events into progress lines, PNG grids and TensorBoard.

A logger is a class with a ``name`` whose methods implement training-event hooks
(:mod:`condgan.hookspecs`: ``on_train_start``, ``on_log``, ``on_sample``, ``on_checkpoint``,
``on_train_end``) with :data:`condgan.hookimpl`. ``TrainerConfig.loggers`` names the ones a run uses;
the trainer makes one instance per run and registers it as a plugin while it trains. A plugin
module can also implement the event hooks directly: those fire for every run.

Example:
    >>> from condgan import TrainerConfig, hookimpl, register_plugin
    >>> class PrintLosses:
    ...     name = "print_losses"
    ...     @hookimpl
    ...     def on_log(self, trainer, step, metrics):
    ...         print(step, metrics)
    >>> class Plugin:
    ...     @hookimpl
    ...     def register_loggers(self):
    ...         return [PrintLosses]
    >>> register_plugin(Plugin())
    >>> config = TrainerConfig(loggers=("console", "print_losses"))
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import TextIO

from torch import Tensor

from .hookspecs import TrainerView, hookimpl

TENSORBOARD_HINT = "TensorBoard logging is off: the `tensorboard` package is not installed (pip install condgan[tensorboard])"


def format_duration(seconds: float) -> str:
    """``3725`` -> ``"1:02:05"``, ``65`` -> ``"1:05"``."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ConsoleProgress:
    """Steps/s, ETA and losses every ``log_every`` steps: a live bar on a terminal, plain lines otherwise.

    Args:
        stream: where to write; default ``sys.stdout`` at the start of each run.
        live: force the live bar on (True) or off (False); default: when ``stream`` is a TTY.
    """

    name = "console"

    def __init__(self, stream: TextIO | None = None, live: bool | None = None):
        self._stream_arg, self._live_arg = stream, live

    @hookimpl
    def on_train_start(self, trainer: TrainerView) -> None:
        self.stream = self._stream_arg or sys.stdout
        self.live = self._live_arg if self._live_arg is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.start_time, self.start_step = time.perf_counter(), trainer.step
        self._bar_open = False
        where = f" -> {trainer.out_dir}" if trainer.out_dir else ""
        self._line(f"training from step {trainer.step} on {trainer.device} ({trainer.budget_text()}){where}")

    @hookimpl
    def on_log(self, trainer: TrainerView, step: int, metrics: dict[str, float]) -> None:
        elapsed = time.perf_counter() - self.start_time
        rate = (step - self.start_step) / elapsed if elapsed > 0 else 0.0
        losses = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        eta = trainer.seconds_left(rate)
        eta_text = f"ETA {format_duration(eta)}" if eta is not None else "ETA ?"
        total = trainer.target_steps
        if self.live:
            frac = min(1.0, step / total) if total else 0.0
            bar = "#" * int(frac * 24)
            count = f"{step}/{total}" if total else f"{step}"
            text = f"\r[{bar:<24}] {count} {frac:4.0%} | {rate:.1f} steps/s {eta_text} | epoch {trainer.epoch} {losses}"
            self.stream.write(text + "\x1b[K")  # \x1b[K clears the rest of a longer previous line
            self.stream.flush()
            self._bar_open = True
        else:
            count = f"{step}/{total}" if total else f"{step}"
            self._line(f"step {count} epoch {trainer.epoch} {losses} | {rate:.1f} steps/s {eta_text}")

    @hookimpl
    def on_checkpoint(self, trainer: TrainerView, path: Path) -> None:
        if not self.live:  # a line per checkpoint would break the bar; the end line names the last one
            self._line(f"checkpoint: {path}")

    @hookimpl
    def on_train_end(self, trainer: TrainerView) -> None:
        if not hasattr(self, "start_time"):  # another plugin's on_train_start failed before ours ran: its error stands
            return
        elapsed = time.perf_counter() - self.start_time
        steps = trainer.step - self.start_step
        rate = steps / elapsed if elapsed > 0 else 0.0
        saved = f"; checkpoint {trainer.last_checkpoint}" if trainer.last_checkpoint else ""
        self._line(f"stopped ({trainer.stop_reason}) at step {trainer.step}, epoch {trainer.epoch}: "
                   f"{steps} steps in {format_duration(elapsed)} ({rate:.1f} steps/s){saved}")

    def _line(self, text: str) -> None:
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        self.stream.write(text + "\n")
        self.stream.flush()


class SampleGrids:
    """Saves each sample grid as ``OUT/samples/step_0000400.png`` (needs ``TrainerConfig.out_dir``).

    When the model's classes have names (``GANConfig.class_names``, from the dataset), each column
    is headed by its class's name. Samples that are not images (vectors, ...) are saved as
    ``OUT/samples/step_0000400.npz`` instead: ``outputs`` (N, *shape) float32 and their
    conditions (``labels`` (N,) int64 or ``conditions`` (N, K) float32).
    """

    name = "grid"

    @hookimpl
    def on_sample(self, trainer: TrainerView, step: int, images: Tensor, labels: Tensor, columns: int) -> None:
        if trainer.out_dir is None:
            return
        from .imagegrid import save_grid

        config = trainer.gan.config
        if images.dim() != 4:  # not images: the samples themselves
            return save_samples(Path(trainer.out_dir) / "samples" / f"step_{step:07d}.npz", images, labels)
        names = config.class_names if config.condition_kind == "class" else None
        headings = [names[int(k)] for k in labels[:columns]] if names else None
        save_grid(Path(trainer.out_dir) / "samples" / f"step_{step:07d}.png", images, columns, column_labels=headings)


def save_samples(path: Path, outputs: Tensor, conditions: Tensor) -> Path:
    """Samples that are not images, with their conditions, as an ``.npz`` file (written atomically)."""
    import numpy as np

    from .checkpoint.files import atomic_write

    key = "conditions" if conditions.dtype.is_floating_point else "labels"
    arrays = {"outputs": outputs.float().numpy(), key: conditions.numpy()}
    return atomic_write(path, lambda f: np.savez(f, **arrays))


class TensorBoard:
    """Losses and sample grids to TensorBoard under ``OUT/tensorboard`` when ``tensorboard`` is installed.

    Without the package it does nothing. It says so, in one line with the way to get it (once per
    process), only when TensorBoard was asked for: when the run's loggers are not the default list
    (``TrainerConfig.loggers``), which takes TensorBoard where it is installed and stays quiet
    otherwise.
    """

    name = "tensorboard"
    _hint_shown = False  # one hint per process, not one per run

    def __init__(self):
        self.writer = None

    @hookimpl
    def on_train_start(self, trainer: TrainerView) -> None:
        if trainer.out_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if _asked_for_explicitly(trainer) and not TensorBoard._hint_shown:
                TensorBoard._hint_shown = True
                print(TENSORBOARD_HINT, file=sys.stderr)
            return
        self.writer = SummaryWriter(str(Path(trainer.out_dir) / "tensorboard"), purge_step=trainer.step or None)

    @hookimpl
    def on_log(self, trainer: TrainerView, step: int, metrics: dict[str, float]) -> None:
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"train/{key}", value, step)

    @hookimpl
    def on_sample(self, trainer: TrainerView, step: int, images: Tensor, labels: Tensor, columns: int) -> None:
        if self.writer is not None and images.dim() != 4:
            self.writer.add_histogram("samples", images, step)  # vectors: the distribution of their values
        elif self.writer is not None:
            from torchvision.utils import make_grid

            self.writer.add_image("samples", make_grid(images, nrow=columns), step)

    @hookimpl
    def on_train_end(self, trainer: TrainerView) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _asked_for_explicitly(trainer: TrainerView) -> bool:
    """True when the run's logger list is not its config's default (so a logger in it was named on purpose)."""
    config = trainer.config
    if not dataclasses.is_dataclass(config):
        return True
    default = next((f.default for f in dataclasses.fields(config) if f.name == "loggers"), None)
    return tuple(config.loggers) != tuple(default or ())


@hookimpl
def register_loggers():
    return [ConsoleProgress, SampleGrids, TensorBoard]
