"""Every tensor read from a file is checked against what it is loaded into before anything uses it
(condgan.checkpoint.integrity): checkpoints, generator files and classifier files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_helpers import small_data, tiny_config

import condgan
from condgan import CheckpointError, Trainer, TrainerConfig
from condgan import checkpoint as ckpt
from condgan.checkpoint import integrity as checks

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny run of 4 steps with an EMA: its checkpoint and generator.pt."""
    out = tmp_path_factory.mktemp("run")
    Trainer(tiny_config(), TrainerConfig(device="cpu", loggers=(), out_dir=str(out), steps=4, ema_decay=0.9),
            data=small_data()).train()
    return out


def saved(run, source=None) -> dict:
    """The run's latest checkpoint (or ``source``) as loaded, without its checksum: the damage below is
    made as a careless writer would make it (a file without a checksum is read unverified), so
    only the content checks can tell."""
    state = torch.load(source or ckpt.latest_checkpoint(run), weights_only=True)
    state.pop("checksum", None)
    return state


def first_param(opt_state) -> dict:
    return opt_state["state"][opt_state["param_groups"][0]["params"][0]]


def test_resuming_from_a_wrong_sized_adam_moment_is_refused_instead_of_crashing(tmp_path):
    """The fused Adam step read past the end of a (3,) exp_avg: SIGSEGV in `condgan train --resume`."""
    out = tmp_path / "run"
    Trainer(tiny_config(), TrainerConfig(batch_size=16, device="cpu", loggers=(), out_dir=str(out), steps=2),
            data=condgan.DataConfig(name="synthetic")).train()
    path = ckpt.latest_checkpoint(out)
    state = torch.load(path, weights_only=True)
    state.pop("checksum", None)  # as a hand-made file would be (the checksum would catch the edit first)
    first_param(state["opt_d"])["exp_avg"] = torch.zeros(3)
    torch.save(state, path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CONDGAN_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, "-m", "condgan", "train", "--out", str(out), "--resume", "--steps", "4",
                           "--device", "cpu", "--loggers", ""], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("condgan: error: "), done.stderr
    assert "discriminator optimizer (opt_d) state: parameter 0 (conditioner.embedding.weight) 'exp_avg' is a " \
           "torch.float32 tensor of shape (3,), but its parameter is a torch.float32 tensor of shape (10, 10)" in done.stderr


def _set(path, value):
    """A change that sets state[path...] = value."""
    def change(state):
        holder = state
        for key in path[:-1]:
            holder = holder[key]
        holder[path[-1]] = value(holder[path[-1]]) if callable(value) else value
    return change


def _moment(opt, key, value):
    def change(state):
        slots = first_param(state[opt])
        slots[key] = value(slots[key]) if callable(value) else value
    return change


def _group(opt, key, value):
    def change(state):
        group = state[opt]["param_groups"][0]
        group[key] = value(group[key]) if callable(value) else value
    return change


W = "backbone.layers.0.weight"  # G's first linear layer: (16, 18)
CHECKPOINT_DAMAGE = {
    "G weight of another shape": (_set(("generator", W), torch.zeros(3)),
                                  r"its generator weight 'backbone.layers.0.weight' is a torch.float32 tensor of shape \(3,\), "
                                  r"but the model its config builds has a torch.float32 tensor of shape \(16, 18\)"),
    "G weight of another dtype": (_set(("generator", W), lambda t: t.double()), r"is a torch.float64 tensor of shape \(16, 18\)"),
    "G weight missing": (lambda s: s["generator"].pop(W), r"its generator weights do not fit .*missing \['backbone.layers.0.weight'\]"),
    "G weight unexpected": (_set(("generator", "extra.weight"), torch.zeros(2)), r"unexpected \['extra.weight'\]"),
    "G weight not a tensor": (_set(("generator", W), [1.0, 2.0]), r"'backbone.layers.0.weight' must be a tensor, got list"),
    "G weights not a dict": (_set(("generator",), [1]), r"its 'generator' must be a dict of tensors, got list"),
    "D weight NaN": (_set(("discriminator", "backbone.layers.0.weight"), lambda t: t.index_fill(0, torch.tensor([0]), float("nan"))),
                     r"its discriminator weights hold NaN or inf \(backbone.layers.0.weight\); the run had diverged"),
    "BN buffer inf": (_set(("generator", "backbone.layers.3.running_var"), lambda t: t + float("inf")), r"running_var"),
    "EMA of another shape": (_set(("ema", W), torch.zeros(16, 17)), r"its EMA generator weight 'backbone.layers.0.weight'"),
    "Adam exp_avg (3,)": (_moment("opt_g", "exp_avg", torch.zeros(3)),
                          r"generator optimizer \(opt_g\) state: parameter 0 \(conditioner.embedding.weight\) 'exp_avg' is a "
                          r"torch.float32 tensor of shape \(3,\)"),
    "Adam exp_avg_sq flattened": (_moment("opt_g", "exp_avg_sq", lambda t: t.reshape(-1)),
                                  r"'exp_avg_sq' is a torch.float32 tensor of shape \(100,\)"),
    "Adam exp_avg float64": (_moment("opt_d", "exp_avg", lambda t: t.double()), r"'exp_avg' is a torch.float64 tensor"),
    "Adam exp_avg NaN": (_moment("opt_d", "exp_avg", lambda t: t * float("nan")), r"opt_d\) state holds NaN or inf \(parameter 0"),
    "Adam step NaN": (_moment("opt_g", "step", torch.tensor(float("nan"))), r"'step'.* NaN or inf|holds NaN or inf"),
    "Adam step negative": (_moment("opt_g", "step", torch.tensor(-5.0)), r"'step' is negative"),
    "Adam step of two numbers": (_moment("opt_g", "step", torch.zeros(2)), r"'step' must be a single number"),
    "Adam step a string": (_moment("opt_g", "step", "3"), r"'step' is str '3'; a finite number is needed"),
    "moment a 2-D tensor of another shape": (_moment("opt_g", "exp_avg", torch.zeros(10, 1)), r"'exp_avg' is a torch.float32 tensor of shape \(10, 1\)"),
    "unknown state entry of a wrong shape": (_moment("opt_g", "row_var", torch.zeros(7)), r"'row_var' .* does not fit its parameter"),
    "two parameter groups": (lambda s: s["opt_g"]["param_groups"].append(dict(s["opt_g"]["param_groups"][0])),
                             r"opt_g\) state has 2 parameter group\(s\), the optimizer has 1"),
    "a parameter too few": (_group("opt_d", "params", lambda ids: ids[:-1]), r"parameter group 0 holds \d+ parameters, the optimizer's holds"),
    "a parameter named twice": (_group("opt_d", "params", lambda ids: [ids[0]] + ids[:-1]), r"names parameter 0, which is not a whole number used once"),
    "state of an unknown parameter": (_set(("opt_g", "state", 999), {"step": torch.tensor(1.0)}), r"entry for parameter 999, which no parameter group names"),
    "lr inf": (_group("opt_g", "lr", float("inf")), r"parameter group 0 has lr inf; a finite number >= 0 is needed"),
    "lr negative": (_group("opt_g", "lr", -1.0), r"has lr -1.0"),
    "lr a string": (_group("opt_g", "lr", "fast"), r"has lr 'fast'"),
    "betas NaN": (_group("opt_d", "betas", (0.5, float("nan"))), r"has betas = \(0.5, nan\), which is not finite"),
    "optimizer state not a dict": (_set(("opt_d",), {"state": {}}), r"opt_d\) state must be an optimizer state dict"),
}


@pytest.mark.parametrize("name", list(CHECKPOINT_DAMAGE))
def test_a_checkpoint_tensor_that_does_not_fit_is_refused_before_loading(run, tmp_path, name):
    change, message = CHECKPOINT_DAMAGE[name]
    state = saved(run)
    change(state)
    path = tmp_path / "damaged.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=message) as caught:
        Trainer.from_checkpoint(path, data=small_data(), out_dir=None)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


@pytest.mark.parametrize("where", ["checkpoint", "generator.pt"])
def test_generator_weights_are_checked_when_loading_a_generator(run, tmp_path, where):
    source = ckpt.latest_checkpoint(run) if where == "checkpoint" else run / "generator.pt"
    key = "ema" if where == "checkpoint" else "generator"  # a checkpoint's sampling weights are its EMA's
    for value, message in [(torch.zeros(3), r"weight 'backbone.layers.0.weight' is a torch.float32 tensor of shape \(3,\)"),
                           (torch.full((16, 18), float("inf")), r"weights hold NaN or inf \(backbone.layers.0.weight\)")]:
        state = saved(run, source)
        state[key][W] = value
        path = tmp_path / "g.pt"
        torch.save(state, path)
        with pytest.raises(CheckpointError, match=message):
            condgan.load_generator(path)


@pytest.mark.parametrize("key, value", [("latent_dim", 10**9), ("generator.backbone_options.widths", (10**9, 16, 16, 16)),
                                        ("image_shape", (1, 10**5, 10**5))])
def test_a_stored_config_of_absurd_size_is_refused_before_allocation(run, tmp_path, key, value):
    plain = ckpt.config_to_plain(tiny_config())
    holder, *path = plain, *key.split(".")
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = value  # written as a hand-made file would be: the config layer would refuse it at once
    for source, load in [(ckpt.latest_checkpoint(run), lambda p: Trainer.from_checkpoint(p, data=small_data(), out_dir=None)),
                         (run / "generator.pt", condgan.load_generator)]:
        state = saved(run, source)
        state["gan_config"] = plain
        path = tmp_path / "huge.pt"
        torch.save(state, path)
        with pytest.raises(CheckpointError, match=r"its config asks for a (model|generator) of [\d,]+ parameters and "
                                                  r"buffers \([\d,.]+ GB as float32\), above condgan's limit of 1,000,000,000"
                                                  r"|its model config holds a bad value: (latent_dim|image_shape) must be"):
            load(path)


def test_the_size_limit_can_be_raised_and_counts_on_the_meta_device(monkeypatch):
    assert checks.count_parameters(lambda: torch.nn.Linear(10**6, 10**6)) == 10**12 + 10**6  # nothing allocated
    gan = condgan.GAN(tiny_config())
    assert checks.count_parameters(lambda: condgan.GAN(tiny_config())) == sum(
        t.numel() for t in [*gan.parameters(), *gan.buffers()])
    state = torch.get_rng_state()
    checks.count_parameters(lambda: condgan.GAN(tiny_config()))
    assert torch.equal(state, torch.get_rng_state())  # no random number drawn
    monkeypatch.setenv("CONDGAN_MAX_PARAMETERS", "100")
    with pytest.raises(CheckpointError, match="above condgan's limit of 100;"):
        checks.check_model_size(lambda: condgan.GAN(tiny_config()), "model", "f.pt")


def test_classifier_files_are_checked_the_same_way(tmp_path):
    from condgan.classifier import ClassifierError, MnistClassifier, load_classifier, save_classifier, weights_sha256

    path = tmp_path / "clf.pt"
    save_classifier(MnistClassifier(channels=(2, 3), feature_dim=8), path)
    good = torch.load(path, weights_only=True)
    cases = [
        (lambda p: p["state_dict"].__setitem__("out.weight", torch.zeros(3)), r"its classifier weight 'out.weight' is a torch.float32 "
                                                                            r"tensor of shape \(3,\), but the model"),
        (lambda p: p["state_dict"].__setitem__("out.bias", torch.full((10,), float("nan"))), r"classifier weights hold NaN or inf \(out.bias\)"),
        (lambda p: p["protocol"]["architecture_options"].__setitem__("feature_dim", 10**9), r"its config asks for a classifier of [\d,]+ parameters"),
        (lambda p: p["protocol"].__setitem__("architecture_options", [1, 2]), r"architecture_options must be a dict"),
        (lambda p: p.pop("state_dict"), r"is damaged: it needs a 'state_dict' of tensors"),
    ]
    for change, message in cases:
        payload = torch.load(path, weights_only=True)
        change(payload)
        if isinstance(payload.get("state_dict"), dict):
            payload["sha256"] = weights_sha256(payload["state_dict"])  # re-hashed: only the checks can tell
        bad = tmp_path / "bad.pt"
        torch.save(payload, bad)
        with pytest.raises(ClassifierError, match=message):
            load_classifier(bad)
    torch.save(good, path)
    assert load_classifier(path).feature_dim == 8


# -- checksums (issue 18, item 4) --------------------------------------------------------------------
def flip_inside(path, tensor) -> None:
    """Flip one bit inside ``tensor``'s bytes where they lie in the file."""
    data = bytearray(path.read_bytes())
    at = data.find(tensor.numpy().tobytes())
    assert at > 0
    data[at + 1] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("which", ["checkpoint", "generator.pt"])
def test_a_flipped_byte_in_tensor_data_is_detected(run, tmp_path, which):
    source = ckpt.latest_checkpoint(run) if which == "checkpoint" else run / "generator.pt"
    state = torch.load(source, weights_only=True)
    assert state["checksum"].startswith("sha256:") and state["checksum"] == checks.content_sha256(
        {k: v for k, v in state.items() if k != "checksum"})
    path = tmp_path / source.name
    path.write_bytes(source.read_bytes())
    flip_inside(path, state["generator"]["backbone.out.weight"])
    assert not torch.equal(torch.load(path, weights_only=True)["generator"]["backbone.out.weight"],
                           state["generator"]["backbone.out.weight"])  # torch.load reads it silently
    loaders = [ckpt.read_file, condgan.load_generator]
    if which == "checkpoint":
        loaders.append(lambda p: Trainer.from_checkpoint(p, data=small_data(), out_dir=None))
    for load in loaders:
        with pytest.raises(CheckpointError, match=rf"{path} is corrupt: its content does not match the checksum written "
                                                  r"with it \('sha256:"):
            load(path)


def test_a_changed_number_is_detected_and_files_without_a_checksum_still_load(run, tmp_path):
    state = torch.load(ckpt.latest_checkpoint(run), weights_only=True)
    path = tmp_path / "step.pt"
    torch.save({**state, "step": 5}, path)  # a number edited, the checksum kept
    with pytest.raises(CheckpointError, match="is corrupt"):
        ckpt.read_file(path)
    torch.save({k: v for k, v in state.items() if k != "checksum"}, path)  # a file from before checksums
    assert Trainer.from_checkpoint(path, data=small_data(), out_dir=None).step == 4
