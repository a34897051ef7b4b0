"""Checkpoint files: atomic writes, the latest pointer, pruning, clear errors, configs, RNG states."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from training_helpers import tiny_training, small_data, tiny_config

import condgan
from condgan import CheckpointError, Trainer, hookimpl
from condgan import checkpoint as ckpt
from condgan.conditioners import OneHotConditioner
from condgan.plugins import Registry, set_registry


def trained(tmp_path, steps=4, **fields) -> Trainer:
    fields = {"device": "cpu", "loggers": (), "out_dir": str(tmp_path), "steps": steps, **fields}
    trainer = Trainer(tiny_config(), tiny_training(**fields), data=small_data())
    trainer.train()
    return trainer


def test_run_directory_layout_and_weights_only_files(tmp_path):
    trainer = trained(tmp_path, steps=6, checkpoint_every=2, keep_last=2)
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["latest", "step_0000004.pt", "step_0000006.pt"]
    assert (folder / "latest").read_text() == "step_0000006.pt\n"
    assert ckpt.latest_checkpoint(tmp_path) == folder / "step_0000006.pt" == trainer.last_checkpoint
    state = torch.load(folder / "step_0000006.pt", weights_only=True)  # plain data only
    assert state["format"] == "condgan-checkpoint" and state["step"] == 6
    assert set(state) >= {"gan_config", "trainer_config", "generator", "discriminator", "ema", "opt_g", "opt_d",
                          "epoch", "batch_in_epoch", "data_rng", "rng", "elapsed_s"}
    assert set(state["rng"]) >= {"torch", "numpy", "python"}
    assert condgan.GANConfig.from_dict(state["gan_config"]) == tiny_config()
    generator = torch.load(tmp_path / "generator.pt", weights_only=True)
    assert generator["format"] == "condgan-generator" and generator["from_ema"] is False
    assert not list(tmp_path.rglob(".*tmp*"))  # no temporary files left behind


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    trainer = trained(tmp_path, steps=4)
    good = trainer.last_checkpoint
    good_bytes = good.read_bytes()
    real_save = torch.save

    def crash_halfway(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.seek(0)
        f.truncate(f.tell() + 1000)  # half a file on disk ...
        raise OSError("disk full")  # ... and then the crash

    monkeypatch.setattr(torch, "save", crash_halfway)
    trainer.config.steps = 8
    with pytest.raises(OSError, match="disk full"):
        trainer.train()
    monkeypatch.undo()

    assert good.read_bytes() == good_bytes
    assert ckpt.latest_checkpoint(tmp_path) == good
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", good.name]  # no temp, no step 8
    assert Trainer.from_checkpoint(tmp_path, data=small_data(), steps=8).step == 4


def test_an_interrupted_pointer_write_keeps_latest_valid(tmp_path, monkeypatch):
    trained(tmp_path, steps=2)

    def fail(f):
        f.write(b"step_00")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ckpt.atomic_write(tmp_path / "checkpoints" / "latest", fail)
    assert ckpt.latest_checkpoint(tmp_path).name == "step_0000002.pt"


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    trainer = trained(tmp_path)
    data = trainer.last_checkpoint.read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(data[: len(data) // 2])
    for load in (ckpt.read_file, condgan.load_generator, lambda p: Trainer.from_checkpoint(p, data=small_data())):
        with pytest.raises(CheckpointError, match=r"broken.pt cannot be read: truncated or corrupt"):
            load(broken)


@pytest.mark.parametrize("content, message", [
    (lambda p: torch.save({"weights": torch.zeros(2)}, p), "is not a condgan condgan-checkpoint or condgan-generator file"),
    (lambda p: torch.save({"format": "condgan-checkpoint", "version": 99}, p), "format version 99; this condgan reads up to 2"),
    (lambda p: torch.save({"format": "condgan-checkpoint", "obj": np.random.RandomState(0)}, p), "holds objects other than tensors"),
    (lambda p: p.write_text("hello"), "cannot be read: truncated or corrupt"),
])
def test_foreign_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "foreign.pt"
    content(path)
    with pytest.raises(CheckpointError, match=message):
        ckpt.read_file(path)


def test_missing_paths_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        condgan.load_generator(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="is a folder without checkpoints"):
        condgan.load_generator(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "latest").write_text("step_0000009.pt\n")
    with pytest.raises(CheckpointError, match="names step_0000009.pt, which is missing"):
        condgan.load_generator(tmp_path)


def test_generator_file_is_refused_where_a_full_checkpoint_is_needed(tmp_path):
    trained(tmp_path)
    with pytest.raises(CheckpointError, match="not a condgan condgan-checkpoint file .*condgan-generator"):
        Trainer.from_checkpoint(tmp_path / "generator.pt", data=small_data())


# -- configs as plain data ------------------------------------------------------------------------------
def test_component_classes_are_stored_by_registered_name(tmp_path):
    config = tiny_config(**{"generator.conditioner": OneHotConditioner, "generator.conditioner_options": {},
                            "g_optimizer.name": torch.optim.Adam})
    plain = ckpt.config_to_plain(config)
    assert plain["generator"]["conditioner"] == "onehot" and plain["g_optimizer"]["name"] == "Adam"
    trainer = Trainer(config, tiny_training(steps=2, device="cpu", loggers=(), out_dir=str(tmp_path)), data=small_data())
    trainer.train()
    loaded = condgan.load_generator(tmp_path)
    assert isinstance(loaded.conditioner, OneHotConditioner)
    assert loaded.config.generator.conditioner == "onehot"


def test_unregistered_classes_and_objects_cannot_be_saved(tmp_path):
    class MyOneHot(OneHotConditioner):
        name = "my_onehot"

    config = tiny_config(**{"discriminator.conditioner": MyOneHot, "discriminator.conditioner_options": {}})
    with pytest.raises(ValueError, match=r"'discriminator.conditioner'.*MyOneHot is not registered.*register_plugin"):
        ckpt.config_to_plain(config)
    with pytest.raises(ValueError, match=r"MyOneHot is not registered"):  # at construction, not at the first save
        Trainer(config, tiny_training(device="cpu", out_dir=str(tmp_path)), data=small_data())
    config = tiny_config(**{"generator.backbone_options.activation": torch.nn.ReLU})
    with pytest.raises(ValueError, match=r"config.generator.backbone_options.activation = torch.nn.modules.activation.ReLU"):
        ckpt.config_to_plain(config)


def test_missing_plugin_is_named_when_loading(tmp_path):
    class ScaledOneHot(OneHotConditioner):
        name = "scaled_onehot"

    class Plugin:
        @hookimpl
        def register_conditioners(self):
            return [ScaledOneHot]

    condgan.register_plugin(Plugin(), name="scaled")
    config = tiny_config(**{"generator.conditioner": "scaled_onehot", "generator.conditioner_options": {}})
    Trainer(config, tiny_training(steps=1, device="cpu", loggers=(), out_dir=str(tmp_path)), data=small_data()).train()
    assert isinstance(condgan.load_generator(tmp_path).conditioner, ScaledOneHot)

    set_registry(Registry(autoload=False))  # a process where the plugin is not installed
    with pytest.raises(condgan.UnknownComponentError, match=r"cannot rebuild the generator saved in .*unknown conditioner "
                                                            r"'scaled_onehot'.*Install or register the plugin"):
        condgan.load_generator(tmp_path)
    with pytest.raises(condgan.UnknownComponentError, match="cannot rebuild the model saved in .*'scaled_onehot'"):
        Trainer.from_checkpoint(tmp_path, data=small_data())


# -- RNG states -------------------------------------------------------------------------------------------
def test_rng_states_round_trip():
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.normal()  # numpy keeps a cached gaussian: part of the state
    state = ckpt.capture_rng_state()
    expected = (random.random(), np.random.normal(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    ckpt.restore_rng_state(state)
    again = (random.random(), np.random.normal(), torch.rand(3))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])


# -- damaged files: one clear CheckpointError each (issue 18, item 8) ------------------------------------------
def test_a_zero_length_checkpoint_gives_one_clear_error_in_every_entry_point(tmp_path, capsys):
    from test_cli import run

    trained(tmp_path, steps=2)
    latest = ckpt.latest_checkpoint(tmp_path)
    latest.write_bytes(b"")
    for load in (ckpt.read_file, condgan.load_generator, lambda p: Trainer.from_checkpoint(p, data=small_data())):
        with pytest.raises(CheckpointError, match=r"step_0000002.pt is empty \(0 bytes\): its write was cut short"):
            load(tmp_path)
    for argv in (["sample", tmp_path, "--per-class", "1", "--out", tmp_path / "s.npz", "--device", "cpu"],
                 ["train", "--out", tmp_path, "--resume", "--steps", "4", "--device", "cpu"]):
        code, _, err = run(argv, capsys)
        assert code == 1 and err.count("\n") == 1 and "is empty (0 bytes)" in err, err


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("generator"), r"is damaged or incomplete: it has no 'generator' entry"),
    (lambda s: s.pop("rng"), r"it has no 'rng' entry"),
    (lambda s: s.update(step="7"), r"its 'step' must be a whole number >= 0, got str '7'"),
    (lambda s: s.update(step=3.5), r"its 'step' must be a whole number >= 0, got float 3.5"),
    (lambda s: s.update(step=True), r"its 'step' must be a whole number >= 0, got bool True"),
    (lambda s: s.update(epoch=-1), r"its 'epoch' must be a whole number >= 0"),
    (lambda s: s.update(elapsed_s=float("nan")), r"its 'elapsed_s' must be a finite number >= 0"),
    (lambda s: s.update(gan_config=[1]), r"its 'gan_config' must be a dict"),
    (lambda s: s["rng"].update(torch=torch.zeros(7, dtype=torch.uint8)), r"its stored random states cannot be restored"),
    (lambda s: s["rng"]["numpy"].update(keys=torch.zeros(3, dtype=torch.int64)), r"its stored random states cannot be restored"),
    (lambda s: s.update(data_rng=torch.zeros(9, dtype=torch.uint8)), r"its stored random states cannot be restored"),
    (lambda s: s["trainer_config"].update(log_every=0), r"its stored TrainerConfig is invalid: log_every must be an int >= 1"),
    (lambda s: s["gan_config"].update(latent_dim="x"), r"its model config holds a bad value: latent_dim must be an int in \[1, 65536\], got .x."),
])
def test_damaged_entries_give_one_clear_error(tmp_path, change, message):
    trained(tmp_path, steps=2)
    state = torch.load(ckpt.latest_checkpoint(tmp_path), weights_only=True)
    change(state)
    path = tmp_path / "checkpoints" / "step_0000009.pt"
    ckpt.save_file(state, path)  # a consistent checksum: only the entry is wrong
    with pytest.raises((CheckpointError, ValueError), match=message) as caught:
        Trainer.from_checkpoint(path, data=small_data())
    assert "\n" not in str(caught.value)


def test_a_binary_latest_pointer_gives_one_clear_error(tmp_path):
    trained(tmp_path, steps=2)
    (tmp_path / "checkpoints" / "latest").write_bytes(b"\x80\x04\x95\xff")
    for load in (ckpt.latest_checkpoint, condgan.load_generator, lambda p: Trainer.from_checkpoint(p, data=small_data())):
        with pytest.raises(CheckpointError, match=r"latest does not name a checkpoint \(it holds binary data"):
            load(tmp_path)


def test_a_run_stopped_between_its_last_checkpoint_and_generator_pt_writes_it_on_resume(tmp_path):
    trained(tmp_path, steps=4)
    (tmp_path / "generator.pt").unlink()  # the process died after the final checkpoint
    resumed = Trainer.from_checkpoint(tmp_path, data=small_data())
    assert resumed.train() == "steps" and resumed.step == 4  # nothing trained ...
    assert ckpt.read_file(tmp_path / "generator.pt")["step"] == 4  # ... and generator.pt written
    with pytest.raises(ValueError, match="nothing to train: the run is at step 4"):
        Trainer.from_checkpoint(tmp_path, data=small_data()).train()  # a complete run: nothing to do
