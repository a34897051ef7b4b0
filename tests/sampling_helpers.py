"""A short trained run for the sampling and export tests, and generator files of other condition kinds."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from training_helpers import tiny_set_args

from condgan import checkpoint as ckpt
from condgan import plugins
from condgan.cli import main
from condgan.config import GANConfig

NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def cli(argv) -> tuple[int, str, str]:
    """``condgan argv`` in-process: (exit code, stdout, stderr); argparse's SystemExit becomes a code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def train_tiny_run(folder: Path, steps: int = 40) -> Path:
    """``condgan train`` of the tiny synthetic model with class names, on the CPU (about a second)."""
    previous = plugins.set_registry(plugins.Registry(autoload=False))
    try:
        code, _, err = cli(["train", *tiny_set_args(), "--set", f"class_names={NAMES!r}", "--out", folder,
                            "--steps", steps, "--device", "cpu", "--loggers", "console", "--seed", 0])
    finally:
        plugins.set_registry(previous)
    assert code == 0, err
    return folder


def generator_file_for(path: Path, config: GANConfig) -> Path:
    """An (untrained) generator.pt for ``config``: the sampling CLI on tag and vector models."""
    generator = ckpt.build_generator(config)
    ckpt.save_file(ckpt.generator_file(config, generator.state_dict(), from_ema=False, step=0), path)
    return path


def tag_config(**fields) -> GANConfig:
    config = GANConfig(condition_kind="multilabel", num_classes=4, image_shape=(1, 8, 8), latent_dim=8,
                       class_names=("smiling", "blond", "glasses", "hat"), **fields)
    config.generator.conditioner = "onehot"
    config.generator.backbone_options = {"widths": (16, 16)}
    return config


def vector_config(**fields) -> GANConfig:
    config = GANConfig(condition_kind="vector", num_classes=None, condition_dim=3, image_shape=(1, 8, 8), latent_dim=8, **fields)
    config.generator.conditioner = "vector"
    config.generator.backbone_options = {"widths": (16, 16)}
    return config
