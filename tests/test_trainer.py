"""The Trainer: exact resume, budgets, EMA, training events and loggers, signals, learning."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import os
import random
import shutil
import signal
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from training_helpers import TINY, small_data, tiny_config, tiny_training

import condgan
from condgan import Trainer, TrainerConfig, hookimpl
from condgan import checkpoint as ckpt
from condgan.loggers import TENSORBOARD_HINT, ConsoleProgress, TensorBoard
from condgan.training.ema import EMA


def tiny_trainer(tmp_path=None, *, data=None, **fields) -> Trainer:
    fields.setdefault("device", "cpu")
    fields.setdefault("loggers", ())
    if tmp_path is not None:
        fields.setdefault("out_dir", str(tmp_path))
    return Trainer(tiny_config(), tiny_training(**fields), data=data if data is not None else small_data())


def full_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every tensor that determines how training continues, flattened to name -> tensor."""
    state = {}
    for prefix, module in [("G", trainer.gan.generator), ("D", trainer.gan.discriminator)] + (
            [("EMA", trainer.ema.module)] if trainer.ema else []):
        state.update({f"{prefix}.{k}": v for k, v in module.state_dict().items()})
    for prefix, opt in [("opt_g", trainer.opt_g), ("opt_d", trainer.opt_d)]:
        for index, slots in opt.state_dict()["state"].items():
            state.update({f"{prefix}.{index}.{k}": torch.as_tensor(v) for k, v in slots.items()})
    return state


def assert_same_state(a: Trainer, b: Trainer) -> None:
    sa, sb = full_state(a), full_state(b)
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f"differ after resume: {different[:5]}"


def scramble_global_rngs() -> None:
    torch.manual_seed(12345)
    np.random.seed(12345)
    random.seed(12345)


# -- exact resume -------------------------------------------------------------------------------------
def test_resume_continues_bit_identically(tmp_path):
    # 7 batches per epoch: stop mid-epoch 1 (step 9) and cross two epoch boundaries after resuming.
    # EMA, clipping and D's dropout all in play; the straight run also samples (which must not
    # disturb any RNG) while the resumed one does not.
    extras = dict(ema_decay=0.9, clip_grad_norm=5.0, log_every=2)
    straight = tiny_trainer(steps=20, sample_every=3, **extras)
    assert straight.train() == "steps"

    first = tiny_trainer(tmp_path / "run", steps=9, sample_every=0, checkpoint_every=4, **extras)
    first.train()
    assert (first.step, first.epoch, first.batch_in_epoch) == (9, 1, 2)
    saved = full_state(first)
    shutil.copy(first.last_checkpoint, tmp_path / "step9.pt")

    scramble_global_rngs()
    resumed = Trainer.from_checkpoint(tmp_path / "run", steps=20, data=small_data())
    assert (resumed.step, resumed.epoch, resumed.batch_in_epoch) == (9, 1, 2)
    assert resumed.train() == "steps"
    assert (resumed.step, resumed.epoch, resumed.batch_in_epoch) == (straight.step, straight.epoch, straight.batch_in_epoch)
    assert_same_state(straight, resumed)
    assert not torch.equal(saved["G.backbone.out.weight"], full_state(resumed)["G.backbone.out.weight"])  # it trained

    # the check can fail: the same resume with the noise RNG not restored ends elsewhere
    control = Trainer.from_checkpoint(tmp_path / "step9.pt", steps=20, data=small_data(), out_dir=str(tmp_path / "control"))
    torch.manual_seed(0)
    control.train()
    assert not torch.equal(full_state(control)["G.backbone.out.weight"], full_state(straight)["G.backbone.out.weight"])


def test_resume_from_an_epoch_boundary(tmp_path):
    straight = tiny_trainer(steps=10)
    straight.train()
    tiny_trainer(tmp_path, steps=7).train()  # exactly one epoch
    resumed = Trainer.from_checkpoint(tmp_path, steps=10, data=small_data())
    assert (resumed.epoch, resumed.batch_in_epoch) == (1, 0)
    resumed.train()
    assert_same_state(straight, resumed)


def test_resume_with_the_budget_already_reached_refuses(tmp_path):
    tiny_trainer(tmp_path, steps=3).train()
    trainer = Trainer.from_checkpoint(tmp_path, data=small_data())
    with pytest.raises(ValueError, match=r"nothing to train.*step 3.*steps=3"):
        trainer.train()


def test_resume_needs_the_same_dataset(tmp_path):
    tiny_trainer(tmp_path, steps=2).train()
    with pytest.raises(condgan.CheckpointError, match="100 images but this dataset has 50"):
        Trainer.from_checkpoint(tmp_path, steps=4, data=small_data(per_class=5))


def test_resume_on_another_device_type_continues_with_a_warning(tmp_path):
    tiny_trainer(tmp_path, steps=9).train()
    path = ckpt.latest_checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    state.update(device_type="cuda", data_rng=torch.zeros(16, dtype=torch.uint8))  # as a CUDA run saves it
    ckpt.save_file(state, path)  # re-written with its checksum
    with pytest.warns(RuntimeWarning, match="trained on cuda, this run is on cpu: .* not bit-identically"):
        resumed = Trainer.from_checkpoint(tmp_path, steps=12, data=small_data())
    assert (resumed.step, resumed.epoch, resumed.batch_in_epoch) == (9, 1, 2)
    assert resumed.train() == "steps" and resumed.step == 12


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_captures_the_step_and_resumes(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=8, device="cuda", ema_decay=0.9)
    assert trainer.step_fn.cuda_graph and trainer.data_generator.device.type == "cuda"
    assert trainer.train() == "steps" and trainer.step_fn.captured
    resumed = Trainer.from_checkpoint(tmp_path, steps=12, data=small_data())
    assert resumed.train() == "steps" and resumed.step == 12
    assert all(torch.isfinite(p).all() for p in resumed.gan.parameters())
    assert condgan.load_generator(tmp_path).sample(torch.arange(10)).shape == (10, 1, 8, 8)  # on the CPU


def test_step_options_reach_the_fast_step():
    trainer = tiny_trainer(steps=3, autocast="bfloat16", clip_grad_norm=1.0)
    step = trainer.step_fn
    assert (step.autocast_dtype, step.clip_grad_norm, step.compile, step.cuda_graph) == (torch.bfloat16, 1.0, None, False)
    assert trainer.opt_g.defaults["fused"] and trainer.opt_d.defaults["fused"]  # fused Adam on the CPU
    assert trainer.train() == "steps"
    assert all(torch.isfinite(p).all() for p in trainer.gan.parameters())
    assert tiny_trainer(compile=True).step_fn.compile == "default"
    assert tiny_trainer(compile="max-autotune-no-cudagraphs").step_fn.compile == "max-autotune-no-cudagraphs"
    with pytest.raises(ValueError, match="compile must be one of False, True, default, reduce-overhead"):
        tiny_training(compile="fast")


# -- budgets ------------------------------------------------------------------------------------------
def test_epoch_budget_counts_passes_over_the_data():
    trainer = tiny_trainer(epochs=2)
    assert trainer.target_steps == 14
    assert trainer.train() == "epochs"
    assert (trainer.step, trainer.epoch, trainer.batch_in_epoch) == (14, 2, 0)


def test_minutes_budget_stops_on_time():
    trainer = tiny_trainer(minutes=0.002)  # 0.12 s
    assert trainer.train() == "minutes"
    assert trainer.step >= 1 and trainer.elapsed_s >= 0.12


def test_default_budget_is_the_presets_epochs():
    run = condgan.run_config("mnist_mlp", {**TINY, "data.name": "synthetic", "batch_size": 16, "epochs": 1,
                                           "device": "cpu", "loggers": ()})
    trainer = Trainer(run, data=small_data())
    assert trainer.budget_text() == "epochs=1"
    assert trainer.train() == "epochs" and trainer.step == 7
    with pytest.raises(ValueError, match="the training config has no budget: set steps, epochs or minutes"):
        Trainer(tiny_config(), tiny_training(device="cpu", loggers=()), data=small_data()).train()


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "steps must be None or an int >= 1"),
    ("epochs", 1.5, "epochs must be None or an int >= 1"),
    ("minutes", -1, "minutes must be None or a finite number > 0"),
    ("log_every", 0, "log_every must be an int >= 1"),
    ("ema_decay", 1.0, "ema_decay must be None or a finite number > 0 and < 1"),
    ("clip_grad_norm", 0, "clip_grad_norm must be None"),
    ("autocast", "fp8", "autocast must be None or one of bfloat16, float16"),
    ("keep_last", 0, "keep_last must be an int >= 1"),
])
def test_trainer_config_rejects_bad_values(field, value, message):
    with pytest.raises(ValueError, match=message):
        tiny_training(**{field: value})


def test_bad_settings_fail_before_training():
    with pytest.raises(condgan.UnknownComponentError, match="unknown logger 'nope'"):
        tiny_trainer(loggers=("nope",))
    with pytest.raises(condgan.UnknownComponentError, match="unknown dataset 'cifar'; available: .*mnist.*synthetic"):
        Trainer(tiny_config(), tiny_training(device="cpu"), data=condgan.DataConfig(name="cifar"))
    with pytest.raises(ValueError, match=r"batch_size must be an int in \[1, \d+\], got 'big'"):
        Trainer(tiny_config(), tiny_training(batch_size="big", device="cpu"), data=small_data())
    with pytest.raises(ValueError, match="class label 10 is out of range"):
        images, labels = small_data()
        Trainer(tiny_config(), tiny_training(device="cpu"), data=(images, labels + 1))


def test_optimizer_schedules_follow_the_step_and_survive_resume(tmp_path):
    # the paper's SGD: learning rate divided by lr_decay each step, momentum ramped linearly
    config = tiny_config(**{"g_optimizer.name": "SGD", "g_optimizer.lr": 0.1, "g_optimizer.options": {"momentum": 0.5},
                            "g_optimizer.schedule": {"lr_decay": 2.0, "momentum_start": 0.5, "momentum_end": 0.7,
                                                     "momentum_steps": 4}})
    trainer = Trainer(config, tiny_training(steps=3, device="cpu", loggers=(), out_dir=str(tmp_path)), data=small_data())
    seen = []
    step_fn = trainer.step_fn
    trainer.step_fn = lambda *a: seen.append(dict(trainer.opt_g.param_groups[0])) or step_fn(*a)
    trainer.train()
    assert [(g["lr"], g["momentum"]) for g in seen] == [(0.1, 0.5), (0.05, 0.55), (0.025, 0.6)]
    assert trainer.opt_d.param_groups[0]["lr"] == 2e-4  # D has no schedule

    resumed = Trainer.from_checkpoint(tmp_path, steps=6, data=small_data())
    seen.clear()
    step_fn = resumed.step_fn
    resumed.step_fn = lambda *a: seen.append(dict(resumed.opt_g.param_groups[0])) or step_fn(*a)
    resumed.train()
    assert [(g["lr"], round(g["momentum"], 6)) for g in seen] == [(0.0125, 0.65), (0.00625, 0.7), (0.003125, 0.7)]


# -- EMA ----------------------------------------------------------------------------------------------
def test_ema_update_is_the_moving_average():
    model = torch.nn.BatchNorm1d(3)
    ema = EMA(model, decay=0.75)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([4.0, 8.0, -4.0]))
        model.running_mean.fill_(2.0)
    ema.update()
    assert torch.allclose(ema.module.weight, 0.75 * torch.ones(3) + 0.25 * torch.tensor([4.0, 8.0, -4.0]))
    assert torch.equal(ema.module.running_mean, model.running_mean)  # buffers are copied
    assert not ema.module.weight.requires_grad


def test_ema_weights_differ_and_are_used_for_samples(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=12, ema_decay=0.9)
    trainer.train()
    raw, ema = trainer.gan.generator, trainer.ema.module
    raw_w, ema_w = raw.backbone.out.weight, ema.backbone.out.weight
    assert not torch.allclose(raw_w, ema_w)
    assert trainer.sampling_generator is ema

    images, labels = trainer.sample_grid()
    z = trainer._grid_z
    from_ema = (ema.sample(labels, z=z) + 1) / 2
    from_raw = (raw.sample(labels, z=z) + 1) / 2
    assert torch.allclose(images, from_ema.clamp(0, 1)) and not torch.allclose(images, from_raw.clamp(0, 1))

    for path in (tmp_path, tmp_path / "generator.pt", trainer.last_checkpoint):
        loaded = condgan.load_generator(path)
        assert torch.equal(loaded.backbone.out.weight, ema_w), path
        assert torch.allclose(loaded.sample(labels, z=z), ema.sample(labels, z=z))


def test_without_ema_load_generator_gives_the_raw_weights(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=3)
    trainer.train()
    assert trainer.ema is None and trainer.sampling_generator is trainer.gan.generator
    loaded = condgan.load_generator(tmp_path)
    assert torch.equal(loaded.backbone.out.weight, trainer.gan.generator.backbone.out.weight)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())


# -- training events ------------------------------------------------------------------------------------
class Recorder:
    """A plugin (not a logger) that records every training event."""

    def __init__(self):
        self.events = []

    @hookimpl
    def on_train_start(self, trainer):
        self.events.append(("start", trainer.step))

    @hookimpl
    def on_log(self, trainer, step, metrics):
        self.events.append(("step_end", step, metrics))

    @hookimpl
    def on_sample(self, trainer, step, images, labels, columns):
        self.events.append(("sample", step, images, labels, columns))

    @hookimpl
    def on_checkpoint(self, trainer, path):
        self.events.append(("checkpoint", step_of(path), trainer.step))

    @hookimpl
    def on_train_end(self, trainer):
        self.events.append(("end", trainer.step, trainer.stop_reason))


def step_of(path):
    return int(path.name.removeprefix("step_").removesuffix(".pt"))


def test_hooks_fire_in_order_with_their_arguments(tmp_path):
    recorder = Recorder()
    condgan.register_plugin(recorder, name="recorder")
    trainer = tiny_trainer(tmp_path, steps=6, log_every=2, sample_every=3, checkpoint_every=4)
    losses = []
    step_fn = trainer.step_fn
    trainer.step_fn = lambda *a, **k: losses.append(step_fn(*a, **k)) or losses[-1]
    trainer.train()

    kinds = [(e[0], e[1]) for e in recorder.events]
    assert kinds == [("start", 0), ("step_end", 2), ("sample", 3), ("step_end", 4), ("checkpoint", 4),
                     ("step_end", 6), ("sample", 6), ("checkpoint", 6), ("end", 6)]
    step_ends = [e for e in recorder.events if e[0] == "step_end"]
    for _, step, metrics in step_ends:  # the mean of the losses since the previous event
        assert set(metrics) == {"g_loss", "d_loss"} and all(type(v) is float for v in metrics.values())
        window = losses[step - 2:step]
        for key in metrics:
            assert metrics[key] == pytest.approx(sum(float(d[key]) for d in window) / 2, rel=1e-5)
    _, _, images, labels, columns = recorder.events[2]
    assert images.shape == (100, 1, 8, 8) and images.device.type == "cpu"
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert columns == 10 and torch.equal(labels, torch.arange(10).repeat(10))  # column k is label k
    assert recorder.events[4][2] == 4 and recorder.events[-1] == ("end", 6, "steps")


def test_on_train_end_fires_on_errors_too():
    recorder = Recorder()
    condgan.register_plugin(recorder, name="recorder")
    trainer = tiny_trainer(steps=5)

    def broken_step(*args, **kwargs):
        raise RuntimeError("boom")

    trainer.step_fn = broken_step
    with pytest.raises(RuntimeError, match="boom"):
        trainer.train()
    assert recorder.events == [("start", 0), ("end", 0, "error")]


def test_selected_loggers_get_one_instance_per_run_and_are_unregistered():
    made = []

    class Counting:
        name = "counting"

        def __init__(self):
            self.steps = []
            made.append(self)

        @hookimpl
        def on_log(self, trainer, step, metrics):
            self.steps.append(step)

    class Plugin:
        @hookimpl
        def register_loggers(self):
            return [Counting]

    condgan.register_plugin(Plugin(), name="counting-plugin")
    assert "counting" in {i.name for i in condgan.list_components("logger")}
    tiny_trainer(steps=4, log_every=2, loggers=("counting",)).train()
    tiny_trainer(steps=2, log_every=1, loggers=()).train()  # not selected: no instance
    assert [m.steps for m in made] == [[2, 4]]
    registry = condgan.plugins.get_registry()
    assert made[0] not in registry.pm.get_plugins()


# -- built-in loggers -------------------------------------------------------------------------------------
def test_console_prints_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    trainer = tiny_trainer(steps=4, log_every=2)
    console = ConsoleProgress(stream=stream)
    condgan.register_plugin(console, name="console-test")
    trainer.train()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("training from step 0 on cpu (steps=4)")
    assert lines[1].startswith("step 2/4 epoch 0 g_loss ") and "steps/s ETA " in lines[1]
    assert lines[2].startswith("step 4/4 epoch 0")
    assert lines[3].startswith("stopped (steps) at step 4, epoch 0: 4 steps in")


def test_console_draws_a_live_bar_on_a_terminal():
    stream = io.StringIO()
    condgan.register_plugin(ConsoleProgress(stream=stream, live=True), name="console-test")
    tiny_trainer(steps=4, log_every=2).train()
    text = stream.getvalue()
    assert "\r[############            ] 2/4  50% |" in text and "\r[########################] 4/4 100% |" in text
    assert text.rstrip("\n").splitlines()[-1].startswith("stopped (steps) at step 4")


def test_grids_are_saved_as_png(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=4, sample_every=2, loggers=("grid",))
    trainer.train()
    pngs = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert pngs == ["step_0000002.png", "step_0000004.png"]
    with Image.open(tmp_path / "samples" / "step_0000004.png") as image:
        assert image.size == (10 * (8 + 2) + 2, 10 * (8 + 2) + 2)  # 10 x 10 tiles of 8x8, padding 2


def test_tensorboard_missing_says_how_to_get_it_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if `tensorboard` were not installed
    monkeypatch.setattr(TensorBoard, "_hint_shown", False)
    tiny_trainer(tmp_path / "a", steps=2, loggers=("tensorboard",)).train()
    tiny_trainer(tmp_path / "b", steps=2, loggers=("tensorboard",)).train()
    err = capsys.readouterr().err
    assert err.count(TENSORBOARD_HINT) == 1 and "pip install condgan[tensorboard]" in err
    assert not (tmp_path / "a" / "tensorboard").exists()


def test_tensorboard_missing_is_silent_in_a_default_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if `tensorboard` were not installed
    monkeypatch.setattr(TensorBoard, "_hint_shown", False)
    default = TrainerConfig().loggers
    assert "tensorboard" in default
    tiny_trainer(tmp_path / "a", steps=2, loggers=default).train()  # the default list: TensorBoard only where installed
    assert TENSORBOARD_HINT not in capsys.readouterr().err
    tiny_trainer(tmp_path / "b", steps=2, loggers=("console", "tensorboard")).train()  # named on purpose: say why not
    assert capsys.readouterr().err.count(TENSORBOARD_HINT) == 1


def test_tensorboard_logs_losses_and_grids_through_summary_writer(tmp_path, monkeypatch):
    # the real package is optional; a stand-in SummaryWriter records what the logger sends it
    calls = []

    class FakeWriter:
        def __init__(self, log_dir, purge_step=None):
            calls.append(("init", log_dir, purge_step))

        def add_scalar(self, tag, value, step):
            calls.append(("scalar", tag, step, type(value)))

        def add_image(self, tag, image, step):
            calls.append(("image", tag, step, tuple(image.shape)))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    tiny_trainer(tmp_path, steps=4, log_every=2, sample_every=4, loggers=("tensorboard",)).train()
    assert calls == [
        ("init", str(tmp_path / "tensorboard"), None),
        ("scalar", "train/g_loss", 2, float), ("scalar", "train/d_loss", 2, float),
        ("scalar", "train/g_loss", 4, float), ("scalar", "train/d_loss", 4, float),
        ("image", "samples", 4, (3, 102, 102)),
        ("close",),
    ]


# -- signals ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_between_steps_and_saves(tmp_path, sig):
    class SendSignal:
        @hookimpl
        def on_log(self, trainer, step, metrics):
            if step == 3:
                os.kill(os.getpid(), sig)

    condgan.register_plugin(SendSignal(), name="signal")
    before = signal.getsignal(sig)
    trainer = tiny_trainer(tmp_path, steps=1000, log_every=1)
    assert trainer.train() == "interrupted"
    assert trainer.step == 3 and trainer.stop_signal == sig
    assert signal.getsignal(sig) is before  # handlers restored
    assert step_of(trainer.last_checkpoint) == 3
    assert Trainer.from_checkpoint(tmp_path, data=small_data()).step == 3


# -- learning -------------------------------------------------------------------------------------------
def test_trainer_learns_the_synthetic_conditional_dataset():
    # class k lights cell k of a 4x4 grid of 2x2 cells; after a short run the samples must light
    # their label's cell (a higher learning rate and the usual BatchNorm eps make the short run enough)
    config = tiny_config(**{"generator.backbone_options.widths": (32, 64, 64, 64), "generator.backbone_options.norm_eps": 1e-5,
                            "discriminator.backbone_options.widths": (64, 64, 64),
                            "g_optimizer.lr": 1e-3, "d_optimizer.lr": 1e-3})
    trainer = Trainer(config, tiny_training(batch_size=32, steps=300, device="cpu", loggers=(), seed=1),
                      data=small_data(per_class=32))
    labels = torch.arange(10).repeat(20)

    def accuracy() -> float:
        images = trainer.gan.generator.sample(labels)  # (200, 1, 8, 8)
        cells = images.view(-1, 4, 2, 4, 2).mean(dim=(2, 4)).flatten(1)  # (200, 16): mean of each cell
        return (cells.argmax(1) == labels).float().mean().item()

    before = accuracy()
    trainer.train()
    after = accuracy()
    assert before < 0.3 and after > 0.8, (before, after)


# -- the MNIST example ------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
MNIST_ROOT = Path(os.environ.get("CONDGAN_MNIST_ROOT", REPO.parent / "shared" / "data"))


@pytest.mark.skipif(not (MNIST_ROOT / "MNIST" / "raw").is_dir(), reason=f"needs MNIST under {MNIST_ROOT}")
def test_mnist_example_runs_on_the_trainer(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("mnist_mlp_example", REPO / "examples" / "mnist_mlp.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)

    class CtrlCAtFirstGrid:
        @hookimpl
        def on_sample(self, trainer, step, images, labels, columns):
            os.kill(os.getpid(), signal.SIGINT)

    condgan.register_plugin(CtrlCAtFirstGrid(), name="ctrl-c")
    trainer = example.main(["--data-root", str(MNIST_ROOT), "--out", str(tmp_path), "--device", "cpu", "--sample-every", "3"])
    assert (trainer.stop_reason, trainer.step) == ("interrupted", 3)
    assert trainer.budget_text() == "epochs=200" and trainer.batches_per_epoch == 938  # the reference's run
    preset = condgan.get_component("preset", "mnist_mlp").config()
    assert trainer.gan.config == dataclasses.replace(preset, class_names=tuple("0123456789"))  # names from the data
    assert (tmp_path / "samples" / "step_0000003.png").is_file() and (tmp_path / "generator.pt").is_file()
    assert ckpt.latest_checkpoint(tmp_path).name == "step_0000003.pt"
    assert "--resume" in capsys.readouterr().out


def test_a_cuda_graph_follows_learning_rate_schedules_of_capturable_optimizers_only():
    from condgan.training.optim import graph_follows_schedule

    adam, sgd = condgan.OptimizerConfig("Adam", 2e-4), condgan.OptimizerConfig("SGD", 0.1, {"momentum": 0.5})
    assert graph_follows_schedule(adam) and graph_follows_schedule(sgd)  # no schedule
    assert graph_follows_schedule(dataclasses.replace(adam, schedule={"lr_decay": 1.0001, "min_lr": 1e-6}))
    assert not graph_follows_schedule(dataclasses.replace(adam, schedule={"momentum_start": 0.5, "momentum_end": 0.7,
                                                                          "momentum_steps": 10}))
    assert not graph_follows_schedule(dataclasses.replace(sgd, schedule={"lr_decay": 1.0001}))  # SGD's lr is a float


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_run_with_a_learning_rate_schedule_matches_an_eager_run():
    decay = {"g_optimizer.schedule": {"lr_decay": 1.5, "min_lr": 1e-6}}
    runs = []
    for cuda_graph in (None, False):
        trainer = Trainer(tiny_config(**decay), tiny_training(device="cuda", loggers=(), steps=12, cuda_graph=cuda_graph),
                          data=small_data())
        trainer.train()
        runs.append(trainer)
    assert runs[0].step_fn.cuda_graph and runs[0].step_fn.captured and not runs[1].step_fn.cuda_graph
    assert runs[0].opt_g.param_groups[0]["lr"] == runs[1].opt_g.param_groups[0]["lr"] == max(2e-4 / 1.5 ** 11, 1e-6)
    for a, b in zip(runs[0].gan.generator.parameters(), runs[1].gan.generator.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)
