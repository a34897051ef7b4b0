"""Settings by concern: the model, data and training sections, one override rule, config files."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

import condgan
from condgan.cli import main
from condgan.config import SECTIONS, ConfigKeyError, RunConfig, read_config_file, to_toml
from condgan.resolve import run_config

from training_helpers import TINY, tiny_set_args


def _names(section) -> set[str]:
    return {f.name for f in dataclasses.fields(section)}


def test_no_setting_has_two_homes():
    run = RunConfig()
    sections = [_names(getattr(run, s)) for s in SECTIONS]
    for i in range(len(sections)):
        for j in range(i + 1, len(sections)):
            assert not sections[i] & sections[j], (SECTIONS[i], SECTIONS[j], sections[i] & sections[j])
    assert {"batch_size", "epochs", "sample_every", "steps"} <= _names(run.training)
    assert {"name", "root", "image_size", "options"} <= _names(run.data)
    assert not {"batch_size", "epochs", "sample_every", "dataset"} & _names(run.model)


def test_a_new_component_starts_from_its_own_options_everywhere():
    # the same rule for run_config, apply_overrides on a model section and build()
    run = run_config("mnist_mlp", {"generator.conditioner": "onehot"})
    assert run.model.generator.conditioner_options == {}
    assert run.model.discriminator.conditioner_options == {"embedding_dim": 10}  # untouched
    condgan.GAN(run.model)  # builds: no stale embedding_dim
    model = condgan.apply_overrides(run.model, {"discriminator.conditioner": "onehot"})
    assert model.discriminator.conditioner_options == {}
    kept = run_config("mnist_mlp", {"generator.conditioner": "embedding", "generator.conditioner_options": {"embedding_dim": 3}})
    assert kept.model.generator.conditioner_options == {"embedding_dim": 3}
    same = run_config("mnist_mlp", {"generator.conditioner": "embedding"})  # not a change: options stay
    assert same.model.generator.conditioner_options == {"embedding_dim": 10}
    celeba = run_config("mnist_mlp", {"data.options.attributes": ("Smiling",), "name": "celeba"})  # either order
    assert celeba.data.options == {"attributes": ("Smiling",)}
    sgd = run_config("mnist_mlp", {"g_optimizer.name": "SGD"})
    assert sgd.model.g_optimizer.options == {}  # Adam's betas would be refused by SGD
    condgan.build(sgd.model).optimizers()
    assert condgan.build("mnist_mlp", conditioner="onehot").generator.conditioner.name == "onehot"


def test_keys_may_leave_out_their_section_when_unique():
    run = run_config("mnist_mlp", {"batch_size": 8, "data.root": "x", "model.latent_dim": 7, "name": "synthetic"})
    assert (run.training.batch_size, run.data.root, run.model.latent_dim, run.data.name) == (8, "x", 7, "synthetic")
    with pytest.raises(ConfigKeyError, match="config key 'dataset' is now 'data.name'"):
        run_config("mnist_mlp", {"dataset": "synthetic"})
    with pytest.raises(ConfigKeyError, match=r"^unknown config key 'latnt_dim'; did you mean 'latent_dim'\? "
                                             r"\('condgan config keys' lists every key\)$"):
        run_config("mnist_mlp", {"latnt_dim": 3})
    with pytest.raises(ConfigKeyError, match=r"^unknown config key 'model.generator.bakcbone'; did you mean "
                                             r"'model.generator.backbone'\?"):
        run_config("mnist_mlp", {"generator.bakcbone": "mlp"})
    with pytest.raises(ConfigKeyError, match=r"^unknown config key 'zzz' \('condgan config keys' lists every key\)$"):
        run_config("mnist_mlp", {"zzz": 3})  # nothing close: no guess
    with pytest.raises(ValueError, match=r"^config key 'model.latent_dim' takes a single value \(like 100\), got a table"):
        run_config("mnist_mlp", {"model.latent_dim.value": 5})


@pytest.mark.parametrize("key, value, message", [
    ("epochs", "abc", "epochs must be None or an int >= 1, got 'abc'"),
    ("sample_every", -1, "sample_every must be an int >= 0, got -1"),
    ("sample_every", "often", "sample_every must be an int >= 0, got 'often'"),
    ("pixel_range", (1, 1), "pixel_range must be two finite numbers .* low < high"),
    ("pixel_range", "abc", "pixel_range must be two finite numbers"),
    ("latent_dim", 10**9, r"latent_dim must be an int in \[1, 65536\]"),
    ("g_optimizer.name", "SparseAdam", "cannot train a GAN step"),
    ("g_optimizer.lr", float("inf"), "optimizer lr must be a finite number >= 0"),
    ("g_optimizer.options", {"betas": 0.5}, None),  # accepted here; the optimizer refuses it (one line) at build
    ("data.image_size", 0, r"image_size must be None, an int S or \(H, W\)"),
    ("data.fit", "zoom", "data fit must be one of crop, pad, stretch"),
    ("image_shape", (3, 0, 4), r"image_shape must be None \(the dataset's\) or \(C, H, W\)"),
])
def test_every_value_is_checked_where_the_config_is_made(key, value, message):
    if message is None:
        run = run_config("mnist_mlp", {key: value})
        with pytest.raises(ValueError, match="cannot be built with options|betas"):
            condgan.build(run.model).optimizers()
        return
    with pytest.raises(ValueError, match=message):
        run_config("mnist_mlp", {key: value})


def test_config_show_round_trips_every_preset(tmp_path, capsys):
    for info in condgan.list_components("preset"):
        assert main(["config", "show", info.name]) == 0
        text = capsys.readouterr().out
        path = tmp_path / f"{info.name}.toml"
        path.write_text(text)
        assert run_config(info.name, read_config_file(path)) == info.obj.run_config()
        assert main(["config", "show", info.name, "--format", "json"]) == 0
        jpath = tmp_path / f"{info.name}.json"
        jpath.write_text(capsys.readouterr().out)
        assert run_config(info.name, read_config_file(jpath)) == info.obj.run_config()


def test_config_keys_lists_every_key(capsys):
    assert main(["config", "keys"]) == 0
    out = capsys.readouterr().out
    assert "training.batch_size  (or batch_size)" in out and "data.name  (or name)" in out
    assert "model.generator.conditioner  (or generator.conditioner)" in out


def test_train_with_a_config_file_and_set_on_top(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_text(to_toml({
        "model": {key: list(v) if isinstance(v, tuple) else v for key, v in TINY.items() if "." not in key}
        | {"generator": {"backbone_options": {"widths": [16, 16, 16, 16]}},
           "discriminator": {"backbone_options": {"widths": [16, 16, 16]}}},
        "data": {"name": "synthetic"},
        "training": {"batch_size": 16, "steps": 2, "loggers": []},
    }))
    out = tmp_path / "run"
    code = main(["train", "--config", str(config), "--set", "generator.conditioner=onehot", "--steps", "3",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["generator"]["conditioner"] == "onehot" and saved["model"]["generator"]["conditioner_options"] == {}
    assert saved["training"]["steps"] == 3 and saved["training"]["batch_size"] == 16 and saved["data"]["name"] == "synthetic"
    generator = condgan.load_generator(out)
    assert generator.conditioner.name == "onehot"
    # the resolved config file trains the same run again
    again = tmp_path / "again"
    assert main(["train", "--config", str(out / "config.json"), "--out", str(again), "--device", "cpu"]) == 0
    replay = condgan.load_generator(again).state_dict()
    assert all(torch.equal(replay[k], v) for k, v in generator.state_dict().items())


def test_set_generator_conditioner_from_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", *tiny_set_args(), "--set", "generator.conditioner=onehot", "--steps", "2",
                 "--out", str(out), "--device", "cpu", "--loggers", ""])
    assert code == 0, capsys.readouterr().err
    assert condgan.load_generator(out).conditioner.name == "onehot"


def test_config_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nlatent_dim = 3")
    with pytest.raises(ValueError, match="config file .*bad.toml is not valid TOML"):
        read_config_file(bad)
    other = tmp_path / "x.yaml"
    other.write_text("a: 1")
    with pytest.raises(ValueError, match="must end in .toml or .json"):
        read_config_file(other)
    sections = tmp_path / "s.json"
    sections.write_text('{"modle": {}}')
    with pytest.raises(ConfigKeyError, match=r"unknown section\(s\) \['modle'\]"):
        read_config_file(sections)
    with pytest.raises(ValueError, match="cannot read the config file"):
        read_config_file(tmp_path / "missing.toml")
