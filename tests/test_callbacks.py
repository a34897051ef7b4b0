"""Callbacks: a third-party plugin sees every training event in order (also on resume and on
failure) and can stop a run early on a metric, with no edit to condgan."""

from __future__ import annotations

import pytest
import torch

import condgan
from condgan.checkpoint import files as ckpt
from condgan.training.events import EVENTS
from training_helpers import small_data, tiny_config, tiny_training

LOG = []  # (event, step) of every event the recorder saw, shared by its instances


class Recorder:
    """Records every event with the trainer's step (a per-run callback: made by the trainer)."""

    name = "recorder"

    @condgan.hookimpl
    def on_train_start(self, trainer):
        LOG.append(("on_train_start", trainer.step))

    @condgan.hookimpl
    def on_step_end(self, trainer, step):
        assert step == trainer.step
        LOG.append(("on_step_end", step))

    @condgan.hookimpl
    def on_log(self, trainer, step, metrics):
        assert set(metrics) >= {"g_loss", "d_loss"}
        LOG.append(("on_log", step))

    @condgan.hookimpl
    def on_sample(self, trainer, step, images, labels, columns):
        LOG.append(("on_sample", step))

    @condgan.hookimpl
    def on_checkpoint(self, trainer, path):
        assert path.is_file()
        LOG.append(("on_checkpoint", trainer.step))

    @condgan.hookimpl
    def on_failure(self, trainer, error):
        LOG.append(("on_failure", type(error).__name__))

    @condgan.hookimpl
    def on_train_end(self, trainer):
        LOG.append(("on_train_end", trainer.stop_reason))


class EarlyStopping:
    """Stops when ``d_loss`` has not improved on its best for ``patience`` log points."""

    name = "early_stopping"
    patience = 2

    def __init__(self):
        self.best, self.bad = float("inf"), 0

    @condgan.hookimpl
    def on_log(self, trainer, step, metrics):
        if metrics["d_loss"] < self.best:
            self.best, self.bad = metrics["d_loss"], 0
        else:
            self.bad += 1
        if self.bad >= self.patience:
            trainer.request_stop("early_stopping")


class ThirdPartyPlugin:
    """What a package's entry point would load: it registers callback classes by name."""

    @condgan.hookimpl
    def register_callbacks(self):
        return [Recorder, EarlyStopping]


@pytest.fixture(autouse=True)
def plugin():
    LOG.clear()
    condgan.register_plugin(ThirdPartyPlugin(), name="third_party")
    yield


def trainer(tmp_path, **fields):
    fields = {"device": "cpu", "loggers": (), "callbacks": ("recorder",), "out_dir": str(tmp_path), **fields}
    return condgan.Trainer(tiny_config(), tiny_training(**fields), data=small_data())


def test_a_callback_plugin_sees_every_event_in_order(tmp_path):
    trainer(tmp_path, steps=4, log_every=2, sample_every=3, checkpoint_every=4).train()
    assert LOG == [("on_train_start", 0), ("on_step_end", 1), ("on_step_end", 2), ("on_log", 2), ("on_step_end", 3),
                   ("on_sample", 3), ("on_step_end", 4), ("on_log", 4), ("on_checkpoint", 4), ("on_sample", 4),
                   ("on_train_end", "steps")]  # the last grid after the loop; its checkpoint was written in it
    assert {event for event, _ in LOG} == set(EVENTS) - {"on_failure"}


def test_a_resumed_run_fires_its_events_from_the_saved_step(tmp_path):
    trainer(tmp_path, steps=2, log_every=2, sample_every=0, checkpoint_every=2).train()
    LOG.clear()
    resumed = condgan.Trainer.from_checkpoint(tmp_path, data=small_data(), steps=4)
    resumed.train()
    assert LOG == [("on_train_start", 2), ("on_step_end", 3), ("on_step_end", 4), ("on_log", 4), ("on_checkpoint", 4),
                   ("on_sample", 4), ("on_train_end", "steps")]


def test_a_failing_run_fires_on_failure_then_on_train_end(tmp_path):
    run = trainer(tmp_path, steps=6, log_every=2, sample_every=0, checkpoint_every=100)
    original = run.gan.loss.generator_loss
    run.gan.loss.generator_loss = lambda score: original(score) * float("nan")
    with pytest.raises(condgan.NonFiniteLossError):
        run.train()
    assert LOG == [("on_train_start", 0), ("on_step_end", 1), ("on_step_end", 2),
                   ("on_failure", "NonFiniteLossError"), ("on_train_end", "error")]
    assert not (tmp_path / "checkpoints").exists()  # nothing non-finite was written


def test_a_callback_stops_a_run_early_on_a_metric(tmp_path):
    run = trainer(tmp_path, steps=400, log_every=5, sample_every=0, checkpoint_every=1000,
                  callbacks=("recorder", "early_stopping"))
    assert run.train() == "early_stopping"
    assert 10 <= run.step < 400 and run.step % 5 == 0  # stopped at a log point, at least `patience` logs in
    assert LOG[-4:] == [("on_log", run.step), ("on_sample", run.step), ("on_checkpoint", run.step),
                        ("on_train_end", "early_stopping")]
    assert ckpt.read_file(ckpt.latest_checkpoint(tmp_path))["step"] == run.step  # the final checkpoint, as any stop
    assert (tmp_path / ckpt.GENERATOR_FILE).is_file()


def test_request_stop_between_log_points_stops_before_the_next_step(tmp_path):
    class StopAtThree:
        @condgan.hookimpl
        def on_step_end(self, trainer, step):
            if step == 3:
                trainer.request_stop("three")

    condgan.register_plugin(StopAtThree())
    run = trainer(tmp_path, steps=10, log_every=100, sample_every=0, checkpoint_every=None)
    assert run.train() == "three" and run.step == 3
    assert torch.isfinite(next(run.gan.generator.parameters())).all()


def test_an_unknown_callback_name_fails_before_anything_loads(tmp_path):
    with pytest.raises(condgan.UnknownComponentError, match="unknown callback 'nope'.*recorder"):
        trainer(tmp_path, steps=1, callbacks=("nope",))
