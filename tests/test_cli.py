"""The `condgan` command line: list, train -> sample round trip, resume, one-line errors, SIGINT."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from training_helpers import tiny_set_args

import condgan
from condgan import checkpoint as ckpt
from condgan.cli import main

REPO = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    """main(argv) in-process: (exit code, stdout, stderr); argparse's SystemExit becomes a code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def train_args(out, *extra):
    return ["train", *tiny_set_args(), "--out", out, "--device", "cpu", "--loggers", "console,grid", *extra]


def test_list_shows_every_kind_with_its_plugin(capsys):
    code, out, _ = run(["list"], capsys)
    assert code == 0
    lines = out.splitlines()
    for header in ("conditioners:", "losses:", "backbones:", "presets:", "loggers:"):
        assert header in lines
    rows = {tuple(line.split()[:2]) for line in lines if line.startswith("  ")}
    assert {("embedding", "condgan.conditioners"), ("onehot", "condgan.conditioners"), ("lsgan", "condgan.losses"),
            ("mlp", "condgan.backbones"), ("mnist_mlp", "condgan.presets"), ("console", "condgan.loggers"),
            ("tensorboard", "condgan.loggers")} <= rows
    code, out, _ = run(["list", "preset"], capsys)
    lines = out.splitlines()
    assert lines[0] == "presets:" and all(line.startswith("  ") for line in lines[1:])
    [row] = [line.split(None, 2) for line in lines if line.split()[0] == "mnist_mlp"]
    assert row == ["mnist_mlp", "condgan.presets", "the PyTorch reference MNIST MLP cGAN (32x32, embedding, LSGAN)"]


def test_list_shows_plugin_components(capsys):
    class Plugin:
        @condgan.hookimpl
        def register_losses(self):
            class Squared(condgan.LeastSquaresLoss):
                """A loss from a plugin."""
                name = "my_squared"
            return [Squared]

    condgan.register_plugin(Plugin(), name="my-plugin")
    _, out, _ = run(["list", "loss"], capsys)
    rows = [line.split(None, 2) for line in out.splitlines()[1:]]
    assert ["my_squared", "my-plugin", "A loss from a plugin."] in rows


def test_train_then_sample_round_trip(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = run(train_args(run_dir, "--steps", 12, "--log-every", 4, "--sample-every", 6, "--ema", 0.9), capsys)
    assert code == 0, err
    assert "step 12/12" in out and "stopped (steps) at step 12" in out
    assert ckpt.latest_checkpoint(run_dir).name == "step_0000012.pt"
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_0000006.png", "step_0000012.png"]

    npz, grid = tmp_path / "s.npz", tmp_path / "grid.png"
    code, out, err = run(["sample", run_dir, "--per-class", 7, "--out", npz, "--grid", grid, "--device", "cpu"], capsys)
    assert code == 0, err
    with np.load(npz) as data:
        images, labels = data["images"], data["labels"]
    assert images.shape == (70, 1, 8, 8) and images.dtype == np.float32
    assert labels.shape == (70,) and labels.dtype == np.int64
    assert np.array_equal(labels, np.repeat(np.arange(10), 7))  # ordered by label
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0.01
    with Image.open(grid) as picture:
        assert picture.size == (10 * 10 + 2, 7 * 10 + 2)  # 7 rows x 10 columns of 8x8 tiles, padding 2

    # the npz holds the EMA generator's samples for its labels, from seed 0
    generator = condgan.load_generator(run_dir)
    expected = generator.sample(torch.from_numpy(labels), generator=torch.Generator().manual_seed(0))
    assert np.allclose(images, ((expected + 1) / 2).clamp(0, 1).numpy(), atol=1e-6)
    code, _, _ = run(["sample", run_dir / "generator.pt", "--per-class", 7, "--out", tmp_path / "t.npz", "--device", "cpu"], capsys)
    with np.load(tmp_path / "t.npz") as again:
        assert code == 0 and np.array_equal(again["images"], images)


def test_resume_continues_the_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run(train_args(run_dir, "--steps", 4), capsys)[0] == 0
    code, _, err = run(train_args(run_dir, "--steps", 8), capsys)
    assert code == 1 and "already holds a run; continue it with --resume" in err
    code, out, err = run(["train", "--out", run_dir, "--steps", 8, "--resume"], capsys)
    assert code == 0, err
    assert "training from step 4" in out and ckpt.latest_checkpoint(run_dir).name == "step_0000008.pt"
    code, _, err = run([*train_args(run_dir, "--steps", 12, "--resume"), "--set", "latent_dim=9"], capsys)
    assert code == 1 and "another model config (latent_dim: saved 8, asked 9)" in err
    code, _, err = run(train_args(run_dir, "--steps", 12, "--resume"), capsys)  # the same command + --resume
    assert code == 0, err
    code, _, err = run(["train", "--out", tmp_path / "empty", "--resume"], capsys)
    assert code == 1 and "--resume:" in err and "holds no checkpoint" in err


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: COMMAND"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["train"], "the following arguments are required: --out"),
    (["train", "--out", "x", "--steps", "0"], "argument --steps: expected a number >= 1, got 0"),
    (["train", "--out", "x", "--steps", "ten"], "argument --steps: expected a whole number, got 'ten'"),
    (["train", "--out", "x", "--steps", "2", "--minutes", "3"], "not allowed with argument"),
    (["train", "--out", "x", "--set", "batch_size"], "argument --set: expected KEY=VALUE, got 'batch_size'"),
    (["train", "--out", "x", "--autocast", "fp8"], "argument --autocast: invalid choice: 'fp8'"),
    (["sample", "ckpt.pt", "--out", "s.npz"], "one of the arguments --per-class --rows is required"),
])
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("condgan: error: ") and message in err


def test_every_option_of_every_command_has_help_text():
    import argparse

    from condgan.cli import build_parser

    [sub] = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    missing = [f"{name} {action.option_strings[0] if action.option_strings else action.dest}"
               for name, parser in sub.choices.items() for action in parser._actions if not action.help]
    assert missing == []
    train_help = sub.choices["train"].format_help()
    assert "seeds the weights" in train_help and "clip each network's gradient norm" in train_help


def test_library_errors_give_one_line_and_exit_1(tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    cases = [
        (train_args(tmp_path / "a", "--set", "nope=1"), "unknown config key 'nope' ('condgan config keys' lists every key)"),
        (train_args(tmp_path / "a", "--preset", "dcgan"), "unknown preset 'dcgan'; available: "),
        (train_args(tmp_path / "a", "--dataset", "cifar"), "unknown dataset 'cifar'; available: celeba, cifar10, cifar100"),
        (train_args(tmp_path / "a", "--set", "dataset=cifar"), "config key 'dataset' is now 'data.name'"),
        (train_args(tmp_path / "a", "--set", "epochs=abc"), "epochs must be None or an int >= 1, got 'abc'"),
        (train_args(tmp_path / "a", "--set", "sample_every=-1"), "sample_every must be an int >= 0, got -1"),
        (train_args(tmp_path / "a", "--set", "g_optimizer.name=LBFGS"), "unknown optimizer 'LBFGS'"),
        (train_args(tmp_path / "a", "--set", "pixel_range=(1,1)"), "pixel_range must be two finite numbers"),
        (train_args(tmp_path / "a", "--set", "latent_dim=1000000000"), "latent_dim must be an int in [1, 65536]"),
        (["train", "--out", tmp_path / "a", "--data-root", tmp_path / "nodata", "--no-download", "--device", "cpu"],
         "MNIST not found under"),
        (["train", "--out", tmp_path / "a", "--data-root", tmp_path / "nodata", "--no-download", "--device", "cpu"],
         "and --no-download is set: point --data-root at the folder that holds MNIST/raw, or drop --no-download"),
        (["train-classifier", "--data-root", tmp_path / "nodata", "--out", tmp_path / "a" / "c.pt"],
         "; condgan train-classifier never downloads: point --data-root at the folder that holds the dataset"),
        (train_args(tmp_path / "a", "--ema", "1.5"), "ema_decay must be None or a finite number > 0 and < 1"),
        (["sample", tmp_path / "missing.pt", "--per-class", 1, "--out", tmp_path / "s.npz"], "missing.pt does not exist"),
        (["sample", broken, "--per-class", 1, "--out", tmp_path / "s.npz"], "broken.pt cannot be read: truncated or corrupt"),
        (["sample", broken, "--per-class", 1, "--out", tmp_path / "s.png"], "--out must name a .npz file"),
        (["list", "widget"], "unknown kind 'widget'"),
    ]
    for argv, message in cases:
        code, out, err = run(argv, capsys)
        assert code == 1, (argv, err)
        assert len(err.splitlines()) == 1 and err.startswith("condgan: error: ") and message in err, err
    assert not (tmp_path / "a").exists()  # nothing was trained or written


def test_sigint_saves_a_checkpoint_and_exits(tmp_path):
    """`python -m condgan train` in a subprocess; Ctrl-C (SIGINT) once it trains."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CONDGAN_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "condgan", *map(str, train_args(run_dir, "--steps", 10**7, "--log-every", 5, "--loggers", "console"))],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until training has logged a few steps
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                lines.append(line)
                if line.startswith("step 10") or not line:
                    break
        assert lines and lines[-1].startswith("step 10"), "".join(lines) + proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "stopped (interrupted) at step" in out
    assert "interrupted at step" in err and "--resume" in err and "Traceback" not in err
    path = ckpt.latest_checkpoint(run_dir)
    state = ckpt.read_file(path)
    assert state["step"] >= 10 and path.name == f"step_{state['step']:07d}.pt"
    assert condgan.load_generator(run_dir).sample(torch.arange(10)).shape == (10, 1, 8, 8)


# -- how errors reach the user (issue 18, item 7) -----------------------------------------------------
class _BrokenStr(ValueError):
    def __str__(self):
        raise RuntimeError("no")


def _errors():
    from condgan.data import DatasetError, DatasetNotFoundError
    from condgan.distributed import DistributedError

    return [
        (condgan.NonFiniteLossError("training diverged: g_loss = nan"), "condgan: error: training diverged: g_loss = nan"),
        (condgan.CheckpointError(""), "condgan: error: CheckpointError (no message)"),
        (condgan.CheckpointError("a.pt is damaged"), "condgan: error: a.pt is damaged"),
        (condgan.RunDirectoryError("run is in use"), "condgan: error: run is in use"),
        (DatasetError("bad file"), "condgan: error: bad file"),
        (DatasetNotFoundError("MNIST not found"), "condgan: error: MNIST not found"),
        (DistributedError("process 0 of 2 stopped"), "condgan: error: process 0 of 2 stopped"),
        (condgan.ConfigKeyError("unknown config key 'x'"), "condgan: error: unknown config key 'x'"),
        (condgan.UnknownComponentError("unknown loss 'y'"), "condgan: error: unknown loss 'y'"),
        (condgan.PluginError("plugin p failed"), "condgan: error: plugin p failed"),
        (ValueError("two\nlines"), "condgan: error: two lines"),
        (_BrokenStr(), "condgan: error: _BrokenStr (no message)"),
        (MemoryError(), "condgan: error: out of memory (MemoryError (no message)): lower batch_size"),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), "condgan: error: out of memory (CUDA out"),
        (RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you "
                      "tried to allocate 40000000000000 bytes."), "condgan: error: out of memory ([enforce fail"),
    ]


def _command_raising(exc):
    from condgan.commands import Command

    def fail(args):
        raise exc

    class Plugin:
        @condgan.hookimpl
        def register_commands(self):
            return [Command("boom", "raise an error", lambda parser: None, fail)]

    condgan.register_plugin(Plugin(), name="boom")


@pytest.mark.parametrize("index", range(15))
def test_condgan_and_input_errors_are_one_line(index, capsys, monkeypatch):
    monkeypatch.delenv("CONDGAN_TRACEBACK", raising=False)
    exc, line = _errors()[index]
    _command_raising(exc)
    code, _, err = run(["boom"], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith(line), err


@pytest.mark.parametrize("exc", [ZeroDivisionError("division by zero"), KeyError("rng"), TypeError("unsupported operand")])
def test_unexpected_errors_keep_their_traceback_and_say_they_are_bugs(exc, capsys, monkeypatch):
    monkeypatch.delenv("CONDGAN_TRACEBACK", raising=False)
    _command_raising(exc)
    code, _, err = run(["boom"], capsys)
    lines = err.splitlines()
    assert code == 1 and lines[0] == "Traceback (most recent call last):" and "in fail" in err
    assert lines[-1].startswith(f"condgan: internal error: {type(exc).__name__}: ") and "This is a bug in condgan or " \
        "in a plugin, not in your input: please report it with the traceback and versions above (the README's " \
        "\"Reporting a bug\" section says what to include)" in lines[-1]
    assert lines[-2].startswith(f"condgan {condgan.__version__} (") and "https://" not in err
