"""The examples run as a user runs them, and the custom conditioner honours the conditioner contract."""

from __future__ import annotations

import importlib.util
import math
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import condgan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LOSS_LINE = re.compile(r"^step +(\d+)  d_loss (\S+)  g_loss (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def custom_conditioner():
    """examples/custom_conditioner.py imported as a module (its main() does not run on import)."""
    spec = importlib.util.spec_from_file_location("custom_conditioner_example", EXAMPLES / "custom_conditioner.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_custom_conditioner_example_runs_as_a_script():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # a tiny model: one thread is fastest
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "custom_conditioner.py"), "--steps", "5", "--log-every", "2", "--device", "cpu"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "registered conditioner 'film' (__main__.FiLMConditioner) from plugin 'film-example'" in out
    assert "generator: FiLMConditioner + MLP" in out
    steps = LOSS_LINE.findall(out)
    assert [int(s) for s, _, _ in steps] == [2, 4, 5]
    assert all(math.isfinite(float(d)) and math.isfinite(float(g)) for _, d, g in steps)
    assert re.search(r"samples nearest their label's mode: \d+\.\d% \(chance 10%\)", out)


def test_custom_conditioner_example_rejects_bad_arguments(custom_conditioner, capsys):
    with pytest.raises(SystemExit) as info:
        custom_conditioner.main(["--steps", "0"])
    assert info.value.code == 2 and "--steps" in capsys.readouterr().err


def test_film_conditioner_contract(custom_conditioner):
    spec = condgan.ConditionSpec("class", 4)
    film = custom_conditioner.FiLMConditioner(spec, "discriminator", embedding_dim=3)
    film.setup_input((5, 2, 3))  # a conv input: modulated per channel
    x, y = torch.randn(6, 5, 2, 3), torch.tensor([0, 1, 2, 3, 0, 1])
    torch.testing.assert_close(film.join(x, y), x)  # starts as the identity
    assert film.joined_shape((5, 2, 3)) == (5, 2, 3)
    with torch.no_grad():
        film.to_film.bias.copy_(torch.arange(10.0))  # gamma = 0..4, beta = 5..9 per channel
    gamma, beta = torch.arange(5.0)[:, None, None], torch.arange(5.0, 10.0)[:, None, None]
    torch.testing.assert_close(film.join(x, y), x * (1 + gamma) + beta)

    flat = custom_conditioner.FiLMConditioner(spec, "generator")
    flat.setup_input((7,))
    z = torch.randn(6, 7)
    assert flat.join(z, y).shape == (6, 7)


def test_film_trains_through_the_registry_and_follows_labels(custom_conditioner, capsys):
    # In-process, in this test's own registry: the example registers its plugin and learns.
    accuracy = custom_conditioner.main(["--steps", "1000", "--log-every", "500", "--device", "cpu"])
    out = capsys.readouterr().out
    assert "from plugin 'film-example'" in out
    assert [int(s) for s, _, _ in LOSS_LINE.findall(out)] == [500, 1000]
    assert accuracy >= 0.3, f"FiLM samples nearest their label's mode: {accuracy:.0%} (chance 10%)"
    assert "film" in {i.name for i in condgan.list_components("conditioner")}


# -- examples/mnist_mlp.py -----------------------------------------------------------------------
@pytest.fixture
def mnist_example():
    spec = importlib.util.spec_from_file_location("mnist_mlp_example", EXAMPLES / "mnist_mlp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeTrainer:
    """Stands in for condgan.Trainer: records how the example builds it and stops as told."""

    made: list = []
    stop = "interrupted"

    def __init__(self, config):
        FakeTrainer.made.append(("new", config))
        self.step, self.last_checkpoint, self.stop_reason = 7, "OUT/checkpoints/step_0000007.pt", None

    @classmethod
    def from_checkpoint(cls, path, **changes):
        trainer = cls.__new__(cls)
        FakeTrainer.made.append(("resume", path, changes))
        trainer.step, trainer.last_checkpoint, trainer.stop_reason = 9, f"{path}/checkpoints/step_0000009.pt", None
        return trainer

    def train(self):
        self.stop_reason = FakeTrainer.stop
        return self.stop_reason


def test_mnist_example_resume_hint_keeps_the_data_root(mnist_example, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(mnist_example, "Trainer", FakeTrainer)
    monkeypatch.setattr(FakeTrainer, "made", [])
    data, out = str(tmp_path / "my data"), str(tmp_path / "run")
    mnist_example.main(["--data-root", data, "--out", out, "--steps", "500", "--device", "cpu"])
    [hint] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("interrupted: continue with")]
    command = hint.split("continue with", 1)[1].split()
    assert command[:2] == ["python", "examples/mnist_mlp.py"]
    args = mnist_example.build_parser().parse_args(shlex.split(hint.split("continue with", 1)[1])[2:])
    assert (args.data_root, args.out, args.device, args.resume) == (data, out, "cpu", True)  # the folder with a space, quoted
    [(kind, config)] = FakeTrainer.made
    assert (kind, config.training.steps, config.training.epochs, config.data.root) == ("new", 500, None, data)
    assert config.model == condgan.get_component("preset", "mnist_mlp").config()

    # resuming as the hint says: the saved budget is kept unless a new one is given
    mnist_example.main(shlex.split(hint.split("continue with", 1)[1])[2:])
    assert FakeTrainer.made[-1] == ("resume", out, {"device": "cpu", "data_root": data})
    mnist_example.main(["--data-root", data, "--out", out, "--resume", "--minutes", "1.5"])
    assert FakeTrainer.made[-1][2] == {"device": "auto", "data_root": data, "epochs": None, "steps": None, "minutes": 1.5}


def test_mnist_example_limits_and_help(mnist_example, capsys):
    with pytest.raises(SystemExit) as info:
        mnist_example.main(["--steps", "10", "--minutes", "1"])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        mnist_example.main(["--steps", "0"])
    assert info.value.code == 2 and "--steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mnist_example.main(["--help"])
    text = capsys.readouterr().out
    assert "--minutes" in text and "187,600 steps" in text and "about two hours" in text
    assert "about two hours" in mnist_example.__doc__


def test_vector_from_features_example_runs_and_the_cgan_covers_both_valid_outputs(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "vector_from_features.py"), "--steps", "300", "--width", "64",
         "--save", str(tmp_path / "dv.npz")], capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr
    figures = dict(re.findall(r"^ *(\S+): tag accuracy (\d+\.\d)%", result.stdout, re.MULTILINE))
    coverage = dict(re.findall(r"^ *(\S+): .*synonym coverage (\d+\.\d)%", result.stdout, re.MULTILINE))
    assert set(figures) == {"cGAN", "ridge"}, result.stdout
    assert float(figures["cGAN"]) > 20  # chance is 10%; measured 38.1% after 300 steps at width 64
    assert float(coverage["ridge"]) == 0.0 and float(coverage["cGAN"]) > 20  # measured 49.1%: both synonyms drawn
    with np.load(tmp_path / "dv.npz") as f:  # the training set as a tensors file
        data = condgan.data.arrays.TensorFile(tmp_path / "dv.npz").load()
        assert f["outputs"].shape == (1347, 16) and data.spec.kind == "vector" and data.output.dim == 16
