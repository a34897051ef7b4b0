"""Faults and bad input at the Trainer's boundary: each fails before training with a clear error, or
(a diverging loss) stops without saving anything non-finite. The README's "Bad input and faults"
table lists what each one shows."""

from __future__ import annotations

import pytest
import torch

import condgan
from condgan import checkpoint as ckpt
from condgan.config import ConfigKeyError
from condgan import NonFiniteLossError, RunDirectoryError, Trainer

from training_helpers import tiny_training, small_data, tiny_config
from test_trainer import tiny_trainer


def poison_generator_loss(trainer: Trainer) -> None:
    """From now on G's loss is NaN (as a diverged run's would be)."""
    original = trainer.gan.loss.generator_loss
    trainer.gan.loss.generator_loss = lambda score: original(score) * float("nan")


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=4, checkpoint_every=4, log_every=2)
    trainer.train()
    good = trainer.last_checkpoint
    poison_generator_loss(trainer)
    trainer.config.steps = 12
    with pytest.raises(NonFiniteLossError, match=r"g_loss = nan.* over steps 5-6; stopped without saving "
                                                 r"\(the last good checkpoint is .*step_0000004.pt\)"):
        trainer.train()
    assert trainer.stop_reason == "error" and trainer.step == 6
    assert ckpt.latest_checkpoint(tmp_path) == good
    assert all(torch.isfinite(v).all() for v in ckpt.read_file(good)["generator"].values())


def test_a_nan_loss_between_log_steps_is_caught_before_a_checkpoint(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=2, checkpoint_every=2, log_every=100)
    trainer.train()
    poison_generator_loss(trainer)
    trainer.config.steps = 10
    with pytest.raises(NonFiniteLossError, match="over steps 3-4"):  # the checkpoint at step 4 is not written
        trainer.train()
    assert [p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")] == ["step_0000002.pt"]


def test_skip_mode_skips_non_finite_updates_and_counts_them(tmp_path):
    seen = []

    class Recorder:
        @condgan.hookimpl
        def on_log(self, trainer, step, metrics):
            seen.append((step, dict(metrics)))

    trainer = tiny_trainer(tmp_path, steps=4, checkpoint_every=4, log_every=2, nonfinite="skip")
    condgan.register_plugin(Recorder())
    trainer.train()
    g_before = {k: v.clone() for k, v in trainer.gan.generator.state_dict().items()}
    d_before = [p.detach().clone() for p in trainer.gan.discriminator.parameters()]
    poison_generator_loss(trainer)
    trainer.config.steps = 8
    assert trainer.train() == "steps"  # trained on, and saved
    assert trainer.skipped_updates == 4  # G's update at steps 5-8; D's updates went on
    for key, value in trainer.gan.generator.state_dict().items():
        if key.endswith(("weight", "bias")):
            torch.testing.assert_close(value, g_before[key], msg=key)  # G unchanged (its Adam state too)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, trainer.gan.discriminator.parameters()))
    assert [m.get("skipped") for _, m in seen] == [0.0, 0.0, 2.0, 2.0]
    assert all(torch.isfinite(p).all() for p in trainer.gan.parameters())
    assert all(torch.isfinite(torch.as_tensor(s["exp_avg"])).all() for s in trainer.opt_g.state.values())


def test_skip_mode_without_fused_optimizers_skips_in_python():
    gan = condgan.GAN(tiny_config())
    opt_g, opt_d = gan.optimizers()  # plain Adam: no found_inf support
    step = condgan.training.step.FastStep(gan, opt_g, opt_d, skip_nonfinite=True)
    real, y = torch.rand(16, 1, 8, 8) * 2 - 1, torch.arange(16) % 10
    assert float(step(real, y)["skipped"]) == 0
    before = [p.detach().clone() for p in gan.generator.parameters()]
    gan.loss.generator_loss = lambda score: score.float().mean() * float("inf")
    assert float(step(real, y)["skipped"]) == 1
    assert all(torch.equal(a, b) for a, b in zip(before, gan.generator.parameters()))


def test_an_unwritable_run_directory_fails_at_start(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(RunDirectoryError, match=r"cannot write to the run directory .*a-file/run: .*choose another"):
        tiny_trainer(out_dir=str(blocker / "run"), steps=2)


def test_a_full_disk_fails_at_start(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(RunDirectoryError, match=r"has 0.0 MB free but its checkpoints need about [0-9.]+ MB \(keep_last=3"):
        tiny_trainer(tmp_path, steps=2)


def test_a_batch_of_one_with_batch_norm_fails_at_start():
    images, labels = small_data()  # 100 images
    with pytest.raises(ValueError, match=r"the last batch of each epoch holds 1 image \(33 images, batch 16\)"):
        Trainer(tiny_config(), tiny_training(device="cpu", loggers=(), steps=1), data=(images[:33], labels[:33]))
    with pytest.raises(ValueError, match=r"batch_size is 1, and this model cannot train on a batch of one \(batch norm in training mode"):
        Trainer(tiny_config(), tiny_training(batch_size=1, device="cpu", loggers=(), steps=1), data=(images, labels))
    no_norm = tiny_config(**{"generator.backbone_options.norm": None})
    Trainer(no_norm, tiny_training(device="cpu", loggers=(), steps=1), data=(images[:33], labels[:33])).train()


@pytest.mark.parametrize("change, message", [
    (lambda x, y: (x[:, :, :4], y), r"images must have shape \(N, 1, 8, 8\) for this model \(its image_shape\), got \(100, 1, 4, 8\)"),
    (lambda x, y: (x.expand(-1, 3, -1, -1), y), r"images must have shape \(N, 1, 8, 8\) .*got \(100, 3, 8, 8\)"),
    (lambda x, y: (x[:0], y[:0]), "the dataset is empty: training needs at least one image"),
    (lambda x, y: (x.float().index_fill(0, torch.tensor([7]), float("nan")), y), r"images contain NaN or inf \(first bad image: index 7\)"),
    (lambda x, y: (x.int(), y), "images must be uint8 in \\[0, 255\\] or float in the model's pixel_range, got dtype torch.int32"),
    (lambda x, y: (x, y[:50]), "100 images but 50 labels"),
    (lambda x, y: (x, y.float()), "class labels must be an integer tensor"),
    (lambda x, y: (x, y + 5), r"class label 10 is out of range: labels must lie in \[0, 10\)"),
])
def test_bad_data_fails_before_training(change, message):
    images, labels = change(*small_data())
    with pytest.raises(ValueError, match=message):
        Trainer(tiny_config(), tiny_training(device="cpu", loggers=(), steps=1), data=(images, labels))


def test_misspelled_settings_fail_before_training():
    with pytest.raises(ConfigKeyError, match="unknown config key 'latnt_dim'"):
        condgan.build("mnist_mlp", overrides={"latnt_dim": 3})
    with pytest.raises(TypeError, match="unexpected keyword argument 'step'"):
        tiny_training(step=3)
    with pytest.raises(ValueError, match="nonfinite must be one of stop, skip, got 'ignore'"):
        tiny_training(nonfinite="ignore")


# -- non-finite weights (issue 18, item 2) --------------------------------------------------------------
def exploding_config(**overrides):
    """D's learning rate of 1e39: the first update makes D's weights inf/NaN (the losses of that step,
    computed before the update, are finite)."""
    return tiny_config(**{"d_optimizer.lr": 1e39, **overrides})


def test_non_finite_weights_are_never_saved(tmp_path):
    trainer = Trainer(exploding_config(), tiny_training(device="cpu", loggers=(), out_dir=str(tmp_path), steps=1),
                      data=small_data())
    with pytest.raises(condgan.NonFiniteWeightsError, match=r"training diverged: weights hold NaN or inf at step 1 "
                                                           r"\(discriminator .*\); stopped without saving \(no checkpoint"):
        trainer.train()
    assert not list((tmp_path / "checkpoints").glob("step_*.pt")) and not (tmp_path / "generator.pt").exists()


@pytest.mark.parametrize("every, error, message", [
    (1, condgan.NonFiniteWeightsError, r"weights hold NaN or inf at step 3 \(discriminator"),  # caught at the save of step 3
    (2, NonFiniteLossError, r"d_loss = nan over steps 3-4"),  # step 4's losses are NaN: caught at its sync point
])
def test_the_last_good_checkpoint_named_in_the_message_is_finite(tmp_path, every, error, message):
    trainer = tiny_trainer(tmp_path, steps=2, checkpoint_every=every)
    trainer.train()
    for group in trainer.opt_d.param_groups:
        group["lr"] = 1e39
    trainer.config.steps = 6
    with pytest.raises(error, match=message + r".*; stopped without saving \(the last good checkpoint is .*step_0000002.pt\)"):
        trainer.train()
    assert ckpt.latest_checkpoint(tmp_path).name == "step_0000002.pt"
    assert "step_0000003.pt" not in {p.name for p in (tmp_path / "checkpoints").iterdir()}
    good = ckpt.read_file(tmp_path / "checkpoints" / "step_0000002.pt")
    assert all(torch.isfinite(v).all() for v in good["discriminator"].values())


def test_cli_run_with_an_exploding_learning_rate_fails_with_one_line(tmp_path, capsys):
    from test_cli import run, train_args

    code, _, err = run(train_args(tmp_path / "run", "--set", "d_optimizer.lr=1e39", "--steps", "1"), capsys)
    assert code == 1 and err.count("\n") == 1 and "condgan: error: training diverged: weights hold NaN or inf" in err
    assert ckpt.latest_checkpoint(tmp_path / "run") is None


@pytest.mark.parametrize("lr", [float("inf"), float("nan"), -1.0])
def test_a_learning_rate_that_is_not_a_finite_number_is_refused_at_the_start(lr):
    with pytest.raises(ValueError, match="optimizer lr must be a finite number >= 0, got"):
        condgan.GAN(tiny_config(**{"g_optimizer.lr": lr})).optimizers()


def test_sample_refuses_a_generator_with_non_finite_weights(tmp_path, capsys):
    from test_cli import run

    tiny_trainer(tmp_path, steps=1).train()
    state = torch.load(tmp_path / "generator.pt", weights_only=True)
    state["generator"]["backbone.out.bias"] = torch.full_like(state["generator"]["backbone.out.bias"], float("nan"))
    ckpt.save_file(state, tmp_path / "nan.pt")  # with a checksum of its (non-finite) content
    code, _, err = run(["sample", tmp_path / "nan.pt", "--per-class", "2", "--out", tmp_path / "s.npz", "--device", "cpu"], capsys)
    assert code == 1 and err.count("\n") == 1 and "weights hold NaN or inf (backbone.out.bias)" in err
    assert not (tmp_path / "s.npz").exists()


def test_skip_mode_that_skips_every_update_warns_and_then_stops(tmp_path):
    trainer = tiny_trainer(tmp_path, steps=20, log_every=2, checkpoint_every=None, nonfinite="skip", max_skipped_intervals=2)
    poison_generator_loss(trainer)
    original = trainer.gan.loss.discriminator_loss
    trainer.gan.loss.discriminator_loss = lambda real, fake: original(real, fake) * float("nan")
    with pytest.warns(RuntimeWarning, match=r"every update of steps 1-2 was skipped for non-finite gradients; training "
                                            r"stops after 2 such intervals in a row"):
        with pytest.raises(NonFiniteLossError, match=r"every update of the last 2 interval\(s\) \(up to step 4\) was skipped"):
            trainer.train()
    assert trainer.step == 4 and ckpt.latest_checkpoint(tmp_path) is None
    with pytest.raises(ValueError, match="max_skipped_intervals must be an int >= 1"):
        tiny_training(max_skipped_intervals=0)


# -- bad inputs that failed inside torch or passed silently (issue 18, item 8) -----------------------------
@pytest.mark.parametrize("change, message", [
    (lambda x: x.double() / 127.5 - 1, r"float images must be float32 \(the training dtype\), got torch.float64: convert"),
    (lambda x: (x.float() / 127.5 - 1).half(), r"got torch.float16"),
    (lambda x: (x.float() / 127.5 - 1).bfloat16(), r"got torch.bfloat16"),
    (lambda x: x.float(), r"float images must lie in the model's pixel_range \[-1, 1\], these lie in \[0, 255\]: they "
                          r"look like \[0, 255\] pixels; give them as uint8 and condgan scales them"),
    (lambda x: (x.float() / 127.5 - 1) * 1e30, r"these lie in \[-1e\+30, 1e\+30\]: scale them to pixel_range"),
    (lambda x: x.float() / 255 - 2, r"these lie in \[-2, -1\]"),
])
def test_float_images_of_another_dtype_or_range_fail_before_training(change, message):
    images, labels = small_data()
    with pytest.raises(ValueError, match=message):
        Trainer(tiny_config(), tiny_training(device="cpu", loggers=(), steps=1), data=(change(images), labels))


def test_float_images_within_the_tolerance_train():
    images, labels = small_data()
    floats = (images.float() / 127.5 - 1) * 1.005  # 0.5% over: rounding, not another scale
    assert Trainer(tiny_config(), tiny_training(device="cpu", loggers=(), steps=1), data=(floats, labels)).train() == "steps"


def test_train_step_with_swapped_optimizers_raises():
    gan = condgan.GAN(tiny_config())
    opt_g, opt_d = gan.optimizers()
    real, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.arange(4)
    with pytest.raises(ValueError, match=r"opt_g must optimize the generator's parameters \(and only those\), but it "
                                         r"holds the other network's: are opt_g and opt_d swapped\?"):
        condgan.train_step(gan, real, y, opt_d, opt_g)
    condgan.train_step(gan, real, y, opt_g, opt_d)


def test_a_checkpoint_outside_its_run_folder_does_not_choose_where_to_write(tmp_path):
    victim = tmp_path / "victim"
    tiny_trainer(victim, steps=2).train()
    elsewhere = tmp_path / "downloads" / "model.pt"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(ckpt.latest_checkpoint(victim).read_bytes())
    with pytest.raises(ValueError, match=r"model.pt is not in a run directory's checkpoints/ folder, so the trainer has no "
                                         r"run directory: give out_dir=DIR \(where it writes\) or out_dir=None"):
        Trainer.from_checkpoint(elsewhere, data=small_data(), steps=4)
    before = sorted(p.name for p in victim.rglob("*"))
    Trainer.from_checkpoint(elsewhere, data=small_data(), steps=4, out_dir=None).train()
    moved = Trainer.from_checkpoint(elsewhere, data=small_data(), steps=4, out_dir=str(tmp_path / "new"))
    moved.train()
    assert sorted(p.name for p in victim.rglob("*")) == before and ckpt.latest_checkpoint(tmp_path / "new").name == "step_0000004.pt"
