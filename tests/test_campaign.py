"""A bad-input and fault campaign, as a hostile or careless user would run it.

``test_bad_input``: a table of distinct bad inputs (data, checkpoint entries and tensors, damaged
files and pointers, command lines, API values), each of which must give one condgan error of one
line (a type the command line prints as ``condgan: error: ...``, see ``condgan.cli.user_errors``),
or, where marked, is a documented acceptance. ``test_random_kills``: a run killed at random points
(inside checkpoint writes too) at least 20 times, resumed each time, bit-identical to a run left alone.
The README's "Bad input and faults" table quotes the counts these tests assert.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from test_checkpoint_integrity import CHECKPOINT_DAMAGE
from test_cli import run as run_cli
from training_helpers import small_data, tiny_config, tiny_set_args

import condgan
from condgan import Trainer, TrainerConfig
from condgan import checkpoint as ckpt
from condgan.checkpoint import integrity as checks
from condgan.cli import user_errors

TESTS = Path(__file__).resolve().parent


@dataclass
class Case:
    """One bad input: ``fn(ctx)`` must raise a one-line condgan error (matching ``match``), or, with
    ``accept`` (the documented reason), may succeed. CLI cases give ``argv`` instead."""

    name: str
    fn: Callable[[Any], Any] | None = None
    match: str | None = None
    accept: str | None = None
    argv: Callable[[Any], list] | None = None


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny run with an EMA: checkpoints at steps 2 and 4, generator.pt."""
    out = tmp_path_factory.mktemp("base")
    Trainer(tiny_config(), TrainerConfig(batch_size=16, device="cpu", loggers=(), out_dir=str(out), steps=4, checkpoint_every=2,
                                         ema_decay=0.9), data=small_data()).train()
    return out


class Ctx:
    def __init__(self, base, tmp_path):
        self.base, self.tmp = base, tmp_path

    @property
    def checkpoint(self) -> Path:
        return ckpt.latest_checkpoint(self.base)

    def state(self) -> dict:
        return ckpt.read_file(self.checkpoint)  # checksum verified and removed

    def copy(self, source: Path, name: str = "copy.pt") -> Path:
        path = self.tmp / name
        path.write_bytes(source.read_bytes())
        return path


# -- data ----------------------------------------------------------------------------------------------
def data_case(name, change, match=None, accept=None):
    def fn(ctx):
        images, labels = small_data()
        Trainer(tiny_config(), TrainerConfig(batch_size=16, device="cpu", loggers=(), steps=1), data=change(images, labels))
    return Case(f"data: {name}", fn, match, accept)


def unit(x):
    return x.float() / 127.5 - 1  # uint8 -> [-1, 1]


DATA = [
    data_case("float64 images", lambda x, y: (unit(x).double(), y), "must be float32"),
    data_case("float16 images", lambda x, y: (unit(x).half(), y), "must be float32"),
    data_case("bfloat16 images", lambda x, y: (unit(x).bfloat16(), y), "must be float32"),
    data_case("int8 images", lambda x, y: (x.to(torch.int8), y), "got dtype torch.int8"),
    data_case("int16 images", lambda x, y: (x.to(torch.int16), y), "got dtype torch.int16"),
    data_case("int32 images", lambda x, y: (x.int(), y), "got dtype torch.int32"),
    data_case("int64 images", lambda x, y: (x.long(), y), "got dtype torch.int64"),
    data_case("bool images", lambda x, y: (x > 0, y), "got dtype torch.bool"),
    data_case("complex images", lambda x, y: (unit(x).to(torch.complex64), y), "got dtype torch.complex64"),
    data_case("uint16 images", lambda x, y: (x.to(torch.uint16), y), "got dtype torch.uint16"),
    data_case("3-D images", lambda x, y: (x[:, 0], y), r"must have shape \(N, 1, 8, 8\)"),
    data_case("5-D images", lambda x, y: (x[:, None], y), r"must have shape \(N, 1, 8, 8\)"),
    data_case("2-D images", lambda x, y: (x.flatten(1), y), r"must have shape"),
    data_case("3 channels", lambda x, y: (x.expand(-1, 3, -1, -1), y), r"got \(100, 3, 8, 8\)"),
    data_case("height 4", lambda x, y: (x[:, :, :4], y), r"got \(100, 1, 4, 8\)"),
    data_case("width 4", lambda x, y: (x[..., :4], y), r"got \(100, 1, 8, 4\)"),
    data_case("16x16 images", lambda x, y: (x.repeat(1, 1, 2, 2), y), r"got \(100, 1, 16, 16\)"),
    data_case("no images", lambda x, y: (x[:0], y[:0]), "the dataset is empty"),
    data_case("a NaN pixel", lambda x, y: (unit(x).index_fill(0, torch.tensor([3]), float("nan")), y), "index 3"),
    data_case("an inf pixel", lambda x, y: (unit(x).index_fill(0, torch.tensor([5]), float("inf")), y), "index 5"),
    data_case("a -inf pixel", lambda x, y: (unit(x).index_fill(0, torch.tensor([9]), -float("inf")), y), "index 9"),
    data_case("float pixels in [0, 255]", lambda x, y: (x.float(), y), r"look like \[0, 255\] pixels"),
    data_case("floats scaled by 1e30", lambda x, y: (unit(x) * 1e30, y), "must lie in the model's pixel_range"),
    data_case("floats in [-2, -1]", lambda x, y: (unit(x) / 2 - 1.5, y), "must lie in the model's pixel_range"),
    data_case("floats in [-1, 3]", lambda x, y: (unit(x) * 2 + 1, y), "must lie in the model's pixel_range"),
    data_case("floats in [0, 1]", lambda x, y: (x.float() / 255, y), accept="within pixel_range: trained as given"),
    data_case("floats 0.5% over the range", lambda x, y: (unit(x) * 1.005, y), accept="within the 1% tolerance"),
    data_case("float labels", lambda x, y: (x, y.float()), "integer tensor"),
    data_case("bool labels", lambda x, y: (x, y.bool()), "integer tensor"),
    data_case("int32 labels", lambda x, y: (x, y.int()), accept="integer labels of any width"),
    data_case("label 10 of 10 classes", lambda x, y: (x, y.clamp(max=9).index_fill(0, torch.tensor([0]), 10)), "out of range"),
    data_case("label -1", lambda x, y: (x, y.index_fill(0, torch.tensor([0]), -1)), "out of range"),
    data_case("too few labels", lambda x, y: (x, y[:50]), "100 images but 50 labels"),
    data_case("too many labels", lambda x, y: (x[:50], y), "50 images but 100 labels"),
    data_case("2-D labels", lambda x, y: (x, y[:, None]), r"shape \(B,\)"),
    data_case("labels as a list", lambda x, y: (x, y.tolist()), "must be \\(images, labels\\) tensors"),
    data_case("images as numpy", lambda x, y: (x.numpy(), y), "must be \\(images, labels\\) tensors"),
    data_case("images None", lambda x, y: (None, y), "must be \\(images, labels\\) tensors"),
    data_case("a last batch of one", lambda x, y: (x[:33], y[:33]), "holds 1 image"),
]


# -- checkpoint entries -----------------------------------------------------------------------------------
def entry_case(name, change, match=None, save=ckpt.save_file, **changes):
    """A checkpoint whose entries are changed, written again with a consistent checksum."""
    def fn(ctx):
        state = ctx.state()
        change(state)
        path = ctx.tmp / "entry.pt"
        save(state, path)
        Trainer.from_checkpoint(path, data=changes.pop("data", small_data()), out_dir=None, **changes)
    return Case(f"checkpoint: {name}", fn, match)


def setter(key, value):
    def change(state):
        *parents, last = key.split(".")
        holder = state
        for part in parents:
            holder = holder[part]
        holder[last] = value
    return change


def huge(key, value):
    def change(state):
        plain = ckpt.config_to_plain(tiny_config())  # edited as plain data: the config layer refuses such values itself
        holder, *path = plain, *key.split(".")
        for part in path[:-1]:
            holder = holder[part]
        holder[path[-1]] = value
        state["gan_config"] = plain
    return change


ENTRIES = [entry_case(f"no {key!r}", lambda s, key=key: s.pop(key), rf"it has no '{key}' entry") for key in ckpt.CHECKPOINT_FIELDS]
ENTRIES += [entry_case(f"{key} = {value!r}", setter(key, value), match) for key, value, match in [
    ("step", "7", "'step' must be a whole number"), ("step", 3.5, "'step' must be"), ("step", True, "'step' must be"),
    ("step", None, "'step' must be"), ("step", -1, "'step' must be"), ("epoch", -1, "'epoch' must be"),
    ("batch_in_epoch", "2", "'batch_in_epoch' must be"), ("dataset_size", 0, "'dataset_size' must be"),
    ("elapsed_s", float("nan"), "'elapsed_s' must be"), ("elapsed_s", -1.0, "'elapsed_s' must be"),
    ("elapsed_s", "1s", "'elapsed_s' must be"), ("data_rng", torch.zeros(5056), "'data_rng' must be"),
    ("data_rng", torch.zeros(7, dtype=torch.uint8), "random states cannot be restored"),
    ("rng", [1, 2], "'rng' must be"), ("rng", {"torch": torch.zeros(1)}, "'rng' must be"),
    ("rng.torch", torch.zeros(7, dtype=torch.uint8), "random states cannot be restored"),
    ("rng.torch", "state", "random states cannot be restored"),
    ("rng.numpy.keys", torch.zeros(3, dtype=torch.int64), "random states cannot be restored"),
    ("rng.python.internal", torch.zeros(3, dtype=torch.int64), "random states cannot be restored"),
    ("rank_rng", "x", "'rank_rng' must be"), ("world_size", 0, "'world_size' must be"), ("batch_size", 2.5, "'batch_size' must be"),
    ("gan_config", [1], "'gan_config' must be a dict"), ("trainer_config", "cpu", "'trainer_config' must be a dict"),
    ("ema", [1], "'ema' must be"), ("opt_g", [1], "'opt_g' must be"), ("generator", None, "'generator' must be"),
    ("gan_config.latent_dim", "x", "model config holds a bad value: latent_dim"),
    ("gan_config.latent_dim", -3, "model config holds a bad value: latent_dim"),
    ("gan_config.image_shape", "abc", "model config holds a bad value: image_shape"),
    ("gan_config.num_classes", 0, "model config holds a bad value: num_classes"),
    ("gan_config.loss", "nope", "unknown loss 'nope'"), ("gan_config.generator.backbone", "nope", "unknown backbone 'nope'"),
    ("gan_config.colour", "red", "model config does not fit"), ("trainer_config.colour", "red", "unknown TrainerConfig keys"),
    ("trainer_config.log_every", 0, "stored TrainerConfig is invalid: log_every"),
    ("trainer_config.nonfinite", "ignore", "stored TrainerConfig is invalid: nonfinite"),
]]
ENTRIES += [entry_case(f"absurd {key}", huge(key, value), r"above condgan's limit|model config holds a bad value: \w+ must be")
            for key, value in [
    ("latent_dim", 10**9), ("generator.backbone_options.widths", (10**9, 16, 16, 16)), ("image_shape", (1, 10**5, 10**5)),
    ("discriminator.backbone_options.widths", (10**9, 16, 16)), ("num_classes", 10**9)]]
ENTRIES += [entry_case(name, change, match) for name, (change, match) in CHECKPOINT_DAMAGE.items()]
ENTRIES += [
    entry_case("format 'other'", setter("format", "other"), "is not a condgan", save=torch.save),
    entry_case("version 99", setter("version", 99), "format version 99", save=torch.save),
    entry_case("version '1'", setter("version", "1"), "format version '1'", save=torch.save),
    entry_case("another dataset size", lambda s: None, "was trained on 100 images but this dataset has 90",
               data=tuple(t[:90] for t in small_data())),
    entry_case("a stale checksum", setter("step", 3), "is corrupt", save=lambda s, p: torch.save(
        {**s, "checksum": "sha256:" + "0" * 64}, p)),
    entry_case("a checksum of another type", setter("step", 4), "is corrupt",
               save=lambda s, p: torch.save({**s, "checksum": 5}, p)),
]


# -- damaged files and pointers -----------------------------------------------------------------------------
LOADERS = {
    "read_file": ckpt.read_file,
    "load_generator": condgan.load_generator,
    "from_checkpoint": lambda p: Trainer.from_checkpoint(p, data=small_data(), out_dir=None),
}


def file_case(name, make, match=None, loader="read_file", source="checkpoint", accept=None):
    def fn(ctx):
        original = ctx.checkpoint if source == "checkpoint" else ctx.base / "generator.pt"
        path = ctx.tmp / original.name
        path.write_bytes(original.read_bytes())
        make(path)
        LOADERS[loader](path)
        if accept:  # it loaded: then it must hold exactly what was written
            assert checks.content_sha256(ckpt.read_file(path)) == checks.content_sha256(ckpt.read_file(original)), \
                "a changed file loaded with changed content"
    return Case(f"file ({source}, {loader}): {name}", fn, match, accept)


def truncate(fraction):
    return lambda p: p.write_bytes(p.read_bytes()[: int(len(p.read_bytes()) * fraction)])


def flip(seed):
    def make(p):
        data = bytearray(p.read_bytes())
        at = random.Random(seed).randrange(len(data))
        data[at] ^= 1 << random.Random(seed + 1).randrange(8)
        p.write_bytes(bytes(data))
    return make


HARMLESS = "only where the flipped bit changes nothing that loads (zip padding or unused metadata)"
FILES = [file_case("zero length", lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)", loader)
         for loader in LOADERS]
FILES += [file_case("zero length", lambda p: p.write_bytes(b""), r"is empty \(0 bytes\)", "load_generator", "generator.pt")]
FILES += [file_case(f"truncated to {f:.0%}", truncate(f), "cannot be read: truncated or corrupt|is corrupt")
          for f in (0.01, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.99)]
FILES += [file_case(f"truncated to {f:.0%}", truncate(f), "cannot be read|is corrupt", "load_generator", "generator.pt")
          for f in (0.1, 0.5, 0.9)]
FILES += [file_case(f"bit flip #{i}", flip(i), "cannot be read|is corrupt|is not a condgan", accept=HARMLESS) for i in range(20)]
FILES += [file_case(f"bit flip #{i}", flip(100 + i), "cannot be read|is corrupt|is not a condgan", "load_generator",
                    "generator.pt", accept=HARMLESS) for i in range(10)]
FILES += [
    file_case("a text file", lambda p: p.write_text("hello"), "cannot be read"),
    file_case("random bytes", lambda p: p.write_bytes(random.Random(0).randbytes(5000)), "cannot be read"),
    file_case("a JSON file", lambda p: p.write_text(json.dumps({"format": "condgan-checkpoint"})), "cannot be read"),
    file_case("a pickled object", lambda p: torch.save({"format": "condgan-checkpoint", "x": random.Random(0)}, p),
              "holds objects other than tensors"),
    file_case("a list", lambda p: torch.save([1, 2], p), "is not a condgan"),
    file_case("a bare tensor", lambda p: torch.save(torch.zeros(3), p), "is not a condgan"),
    file_case("a dict without format", lambda p: torch.save({"weights": torch.zeros(2)}, p), "is not a condgan"),
    file_case("a generator file where a checkpoint is needed", lambda p: p.write_bytes(
        (p.parent / "gen.pt").read_bytes() if (p.parent / "gen.pt").exists() else p.read_bytes()), "is not a condgan",
        "from_checkpoint", "generator.pt"),
    file_case("generator.pt without 'generator'", lambda p: ckpt.save_file(
        {k: v for k, v in ckpt.read_file(p).items() if k != "generator"}, p), "has no 'generator' entry", "load_generator",
        "generator.pt"),
    file_case("generator.pt with a string from_ema", lambda p: ckpt.save_file({**ckpt.read_file(p), "from_ema": "yes"}, p),
              "'from_ema' must be True or False", "load_generator", "generator.pt"),
]


def pointer_case(name, content, match, loader="load_generator"):
    def fn(ctx):
        run = ctx.tmp / "run"
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "step_0000004.pt").write_bytes(ctx.checkpoint.read_bytes())
        content(run / "checkpoints" / "latest")
        LOADERS[loader](run)
    return Case(f"latest pointer ({loader}): {name}", fn, match)


POINTERS = [pointer_case(name, content, match, loader) for loader in ("load_generator", "from_checkpoint")
            for name, content, match in [
                ("binary", lambda p: p.write_bytes(b"\x80\x04\x95\xff\x00"), "holds binary data"),
                ("empty", lambda p: p.write_text(""), "does not name a checkpoint"),
                ("a missing file", lambda p: p.write_text("step_0000009.pt\n"), "names step_0000009.pt, which is missing"),
                ("a path outside", lambda p: p.write_text("../../etc/passwd\n"), "does not name a checkpoint"),
                ("not a step file", lambda p: p.write_text("step_x.pt\n"), "does not name a checkpoint"),
                ("a folder", lambda p: p.mkdir(), "folder without checkpoints|does not name|cannot be read"),
            ]]
POINTERS += [
    Case("path: missing", lambda ctx: condgan.load_generator(ctx.tmp / "nope.pt"), "does not exist"),
    Case("path: an empty folder", lambda ctx: condgan.load_generator(ctx.tmp), "folder without checkpoints"),
    Case("path: a folder named .pt", lambda ctx: (ctx.tmp / "x.pt").mkdir() or condgan.load_generator(ctx.tmp / "x.pt"),
         "folder without checkpoints"),
]


# -- command lines ------------------------------------------------------------------------------------------------
def cli(name, argv):
    return Case(f"cli: {name}", argv=argv)


def train_argv(ctx, *extra):
    return ["train", *tiny_set_args(), "--out", ctx.tmp / "run", "--device", "cpu", "--loggers", "", *extra]


def sample_argv(ctx, *extra, source=None):
    return ["sample", source or ctx.base, "--per-class", "1", "--out", ctx.tmp / "s.npz", "--device", "cpu", *extra]


CLI = [cli(name, argv) for name, argv in [
    ("no command", lambda ctx: []),
    ("an unknown command", lambda ctx: ["fly"]),
    ("train without --out", lambda ctx: ["train"]),
    ("--steps 0", lambda ctx: train_argv(ctx, "--steps", "0")),
    ("--steps -1", lambda ctx: train_argv(ctx, "--steps", "-1")),
    ("--steps abc", lambda ctx: train_argv(ctx, "--steps", "abc")),
    ("--epochs 0", lambda ctx: train_argv(ctx, "--epochs", "0")),
    ("--minutes 0", lambda ctx: train_argv(ctx, "--minutes", "0")),
    ("--minutes inf", lambda ctx: train_argv(ctx, "--minutes", "inf")),
    ("--steps and --epochs", lambda ctx: train_argv(ctx, "--steps", "2", "--epochs", "1")),
    ("--keep-last 0", lambda ctx: train_argv(ctx, "--keep-last", "0")),
    ("--ema 0", lambda ctx: train_argv(ctx, "--ema", "0")),
    ("--ema 1", lambda ctx: train_argv(ctx, "--ema", "1", "--steps", "1")),
    ("--ema abc", lambda ctx: train_argv(ctx, "--ema", "abc")),
    ("--autocast float64", lambda ctx: train_argv(ctx, "--autocast", "float64")),
    ("--nonfinite ignore", lambda ctx: train_argv(ctx, "--nonfinite", "ignore")),
    ("--process-group-timeout 0", lambda ctx: train_argv(ctx, "--process-group-timeout", "0")),
    ("--set without =", lambda ctx: train_argv(ctx, "--set", "latent_dim")),
    ("--set an unknown key", lambda ctx: train_argv(ctx, "--set", "latnt_dim=3", "--steps", "1")),
    ("--set d_optimizer.lr=1e39", lambda ctx: train_argv(ctx, "--set", "d_optimizer.lr=1e39", "--steps", "1")),
    ("--set g_optimizer.lr=inf", lambda ctx: train_argv(ctx, "--set", "g_optimizer.lr=inf", "--steps", "1")),
    ("--preset nope", lambda ctx: train_argv(ctx, "--preset", "nope")),
    ("--loggers nope", lambda ctx: train_argv(ctx, "--loggers", "nope", "--steps", "1")),
    ("--device tpu", lambda ctx: train_argv(ctx, "--device", "tpu", "--steps", "1")),
    ("--out is a file", lambda ctx: (ctx.tmp / "f").write_text("x") and ["train", *tiny_set_args(), "--out", ctx.tmp / "f" / "run",
                                                                         "--steps", "1", "--device", "cpu"]),
    ("--resume without a run", lambda ctx: train_argv(ctx, "--resume", "--steps", "2")),
    ("--resume on another dataset size", lambda ctx: ["train", "--out", ctx.base, "--resume", "--steps", "6", "--device", "cpu"]),
    ("--resume with another model", lambda ctx: ["train", "--out", ctx.base, "--resume", "--steps", "6", "--device", "cpu",
                                                 *tiny_set_args(), "--set", "latent_dim=9"]),
    ("a new run on a used --out", lambda ctx: ["train", *tiny_set_args(), "--out", ctx.base, "--steps", "6", "--device", "cpu"]),
    ("a run whose budget is reached", lambda ctx: ["train", "--out", ctx.base, "--resume", "--device", "cpu"]),
    ("sample --per-class 0", lambda ctx: sample_argv(ctx, "--per-class", "0")),
    ("sample --out x.txt", lambda ctx: ["sample", ctx.base, "--per-class", "1", "--out", ctx.tmp / "x.txt"]),
    ("sample --batch-size 0", lambda ctx: sample_argv(ctx, "--batch-size", "0")),
    ("sample --seed -1", lambda ctx: sample_argv(ctx, "--seed", "-1")),
    ("sample --device tpu", lambda ctx: sample_argv(ctx, "--device", "tpu")),
    ("sample a missing file", lambda ctx: sample_argv(ctx, source=ctx.tmp / "nope.pt")),
    ("sample an empty folder", lambda ctx: sample_argv(ctx, source=ctx.tmp)),
    ("sample a text file", lambda ctx: (ctx.tmp / "t.pt").write_text("x") and sample_argv(ctx, source=ctx.tmp / "t.pt")),
    ("sample an empty file", lambda ctx: (ctx.tmp / "e.pt").write_bytes(b"") or sample_argv(ctx, source=ctx.tmp / "e.pt")),
    ("list an unknown kind", lambda ctx: ["list", "gizmo"]),
]]


# -- issue 25: the front door (flat folders, metrics files, silent acceptances) ----------------------------------
def write_flat_folder(root: Path, per_class: int = 100, size: int = 16, classes=("bar", "block", "ring"), seed: int = 0) -> Path:
    """ROOT/<class>/NNN.png: one small shape per image on dark noise (a bar, a block or a ring)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 40, (size, size, 3)).astype(np.uint8)
            cy, cx = rng.integers(size // 3, 2 * size // 3, 2)
            mask = [abs(xx - cx) < 2, (abs(xx - cx) < size // 4) & (abs(yy - cy) < size // 4),
                    abs(np.hypot(xx - cx, yy - cy) - size / 4) < 1.5][k % 3]
            img[mask] = rng.integers(150, 256, 3)
            Image.fromarray(img).save(root / name / f"{i:03d}.png")
    return root


def metrics_run(ctx, content: bytes | None) -> list:
    """``condgan report`` on a run whose metrics.jsonl holds ``content`` (None: metrics.jsonl is a folder)."""
    run = ctx.tmp / "mrun"
    run.mkdir()
    if content is None:
        (run / "metrics.jsonl").mkdir()
    else:
        (run / "metrics.jsonl").write_bytes(content)
    return ["report", run]


GOOD_LINE = b'{"kind": "losses", "step": 1, "g_loss": 1.0}\n'
FRONT_DOOR = [cli(name, argv) for name, argv in [
    ("report: a metrics line that is a list", lambda ctx: metrics_run(ctx, GOOD_LINE + b"[1, 2]\n")),
    ("report: a string step", lambda ctx: metrics_run(ctx, GOOD_LINE + b'{"kind": "losses", "step": "7"}\n')),
    ("report: undecodable bytes", lambda ctx: metrics_run(ctx, GOOD_LINE + b'{"kind": "\xff\xfe"}\n' + GOOD_LINE)),
    ("report: a line that is not JSON", lambda ctx: metrics_run(ctx, GOOD_LINE + b"{oops\n" + GOOD_LINE)),
    ("report: metrics.jsonl is a directory", lambda ctx: metrics_run(ctx, None)),
    ("train: a folder of a single class", lambda ctx: ["train", "--preset", "dcgan_projection", "--dataset", "imagefolder",
                                                       "--data-root", write_flat_folder(ctx.tmp / "one", 4, 8, ("cats",)),
                                                       "--image-size", "8", "--steps", "1", "--out", ctx.tmp / "r",
                                                       "--device", "cpu", "--loggers", ""]),
    ("export --out into a missing folder chain", lambda ctx: ["export", ctx.base, "--format", "torchscript", "--out",
                                                              ctx.tmp / "no" / "such" / "dir" / "g.pt"]),
    ("train-classifier --options split=test", lambda ctx: ["train-classifier", "--dataset", "imagefolder", "--data-root",
                                                           write_flat_folder(ctx.tmp / "f", 4, 8), "--options", "split=test",
                                                           "--out", ctx.tmp / "c.pt"]),
    ("train-classifier --holdout 1.5", lambda ctx: ["train-classifier", "--dataset", "imagefolder", "--data-root", ctx.tmp,
                                                    "--holdout", "1.5", "--out", ctx.tmp / "c.pt"]),
    ("train with exclude_judge naming a missing judge", lambda ctx: ["train", "--preset", "dcgan_projection", "--dataset",
                                                                     "imagefolder", "--data-root", write_flat_folder(ctx.tmp / "f", 4, 8),
                                                                     "--image-size", "8", "--set", "data.options.exclude_judge=nope.pt",
                                                                     "--steps", "1", "--out", ctx.tmp / "r", "--device", "cpu"]),
    ("train --config an empty file", lambda ctx: (ctx.tmp / "empty.toml").write_text("") or
     train_argv(ctx, "--config", ctx.tmp / "empty.toml", "--steps", "1")),
    ("train --config a table where a value goes", lambda ctx: (ctx.tmp / "nested.toml").write_text("[model.latent_dim]\nvalue = 5\n")
     and train_argv(ctx, "--config", ctx.tmp / "nested.toml", "--steps", "1")),
    ("--set a misspelled key", lambda ctx: train_argv(ctx, "--set", "batch_sise=8", "--steps", "1")),
]]
FRONT_DOOR_LINES = {  # what the user sees (the start of the one line, after "condgan: error: ")
    "cli: report: a metrics line that is a list": r"metrics.jsonl, line 2: a JSON list, not an object",
    "cli: report: a string step": r"metrics.jsonl, line 2: 'step' must be a whole number >= 0, got '7'",
    "cli: report: undecodable bytes": r"metrics.jsonl, line 2: bytes that are not UTF-8; each line must be one JSON object",
    "cli: report: a line that is not JSON": r"metrics.jsonl, line 2: not JSON \(",
    "cli: report: metrics.jsonl is a directory": r"metrics.jsonl is a directory, not a metrics file",
    "cli: train: a folder of a single class": r"one holds a single class folder \('cats'\): a conditional GAN needs at least 2 "
                                              r"classes.*--set data.options.single_class=True",
    "cli: export --out into a missing folder chain": r"--out .*g.pt: its folder .*/no/such/dir does not exist; create it first",
    "cli: train-classifier --options split=test": r"--options split='test': a judge trains on the 'train' split",
    "cli: train-classifier --holdout 1.5": r"argument --holdout: expected a fraction between 0 and 1",
    "cli: train with exclude_judge naming a missing judge": r"exclude_judge: judge file 'nope.pt' does not exist",
    "cli: train --config an empty file": r"config file .*empty.toml is empty: it sets no key",
    "cli: train --config a table where a value goes": r"config key 'model.latent_dim' takes a single value \(like \d+\), got a "
                                                      r"table holding 'value'",
    "cli: --set a misspelled key": r"^condgan: error: unknown config key 'batch_sise'; did you mean 'batch_size'\? \('condgan "
                                   r"config keys' lists every key\)\n$",
}
for case in FRONT_DOOR:
    case.match = FRONT_DOOR_LINES[case.name]
CLI += FRONT_DOOR


# -- API values ---------------------------------------------------------------------------------------------------
def api(name, fn, match=None):
    return Case(f"api: {name}", fn, match)


def optimizer_lr(lr):
    return lambda ctx: condgan.GAN(tiny_config(**{"g_optimizer.lr": lr})).optimizers()


def step_with(change):
    def fn(ctx):
        gan = condgan.GAN(tiny_config())
        opt_g, opt_d = gan.optimizers()
        real, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.arange(4)
        condgan.train_step(gan, *change(real, y, opt_g, opt_d))
    return fn


API = [api(f"TrainerConfig(batch_size=16, {key}={value!r})", lambda ctx, key=key, value=value: TrainerConfig(batch_size=16, **{key: value}), key)
       for key, value in [("steps", 0), ("steps", 1.5), ("epochs", -1), ("minutes", 0), ("minutes", float("inf")),
                          ("log_every", 0), ("sample_every", -1), ("checkpoint_every", 0), ("keep_last", 0), ("seed", -1),
                          ("ema_decay", 1.0), ("ema_decay", 0.0), ("clip_grad_norm", 0), ("clip_grad_norm", float("nan")),
                          ("autocast", "fp8"), ("compile", "fastest"), ("nonfinite", "ignore"), ("cuda_graph", "yes"),
                          ("sync_batchnorm", "yes"), ("max_skipped_intervals", 0), ("process_group_timeout", 0),
                          ("process_group_timeout", float("inf"))]]
API += [api(f"optimizer lr {lr!r}", optimizer_lr(lr), "optimizer lr must be a finite number") for lr in
        (float("inf"), float("nan"), -1.0, "fast")]
API += [
    api("train_step with swapped optimizers", step_with(lambda x, y, g, d: (x, y, d, g)), "swapped"),
    api("train_step with one optimizer twice", step_with(lambda x, y, g, d: (x, y, g, g)), "opt_d must optimize"),
    api("train_step on 16x16 images", step_with(lambda x, y, g, d: (x.repeat(1, 1, 2, 2), y, g, d)), "shape"),
    api("train_step on NaN images", step_with(lambda x, y, g, d: (x * float("nan"), y, g, d)), "NaN"),
    api("train_step with labels of another batch", step_with(lambda x, y, g, d: (x, y[:2], g, d)), "condition batch size 2"),
    api("from_checkpoint outside a run folder", lambda ctx: Trainer.from_checkpoint(
        ctx.copy(ctx.checkpoint), data=small_data()), "is not in a run directory's checkpoints/ folder"),
    api("from_checkpoint with an unknown field", lambda ctx: Trainer.from_checkpoint(
        ctx.checkpoint, data=small_data(), out_dir=None, stepz=3), "unknown TrainerConfig fields"),
    api("Trainer on a directory holding another run", lambda ctx: Trainer(
        tiny_config(), TrainerConfig(batch_size=16, device="cpu", loggers=(), out_dir=str(ctx.base)), data=small_data()), "already holds a run"),
    api("a second trainer of one run after the first moved on", lambda ctx: _moved_on(ctx), "has changed since"),
]


def _moved_on(ctx):
    run = ctx.tmp / "run"
    Trainer(tiny_config(), TrainerConfig(batch_size=16, device="cpu", loggers=(), out_dir=str(run), steps=2), data=small_data()).train()
    first, second = (Trainer.from_checkpoint(run, data=small_data(), steps=3) for _ in range(2))
    first.train()
    second.train()


CASES = DATA + ENTRIES + FILES + POINTERS + CLI + API
OUTCOMES: dict[str, str] = {}


def test_the_campaign_tries_at_least_150_distinct_bad_inputs():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)) and len(names) >= 150, len(names)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case, base, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CONDGAN_TRACEBACK", raising=False)
    ctx = Ctx(base, tmp_path)
    if case.argv is not None:
        code, _, err = run_cli(case.argv(ctx), capsys)
        assert code in (1, 2) and err.count("\n") == 1 and err.startswith("condgan: error: "), (code, err)
        if case.match:
            assert re.search(case.match, err), err
        OUTCOMES[case.name] = "refused"
        return
    try:
        case.fn(ctx)
    except user_errors() as exc:
        message = str(exc)
        assert message.strip() and "\n" not in message, message
        if case.match:
            assert re.search(case.match, message), message
        OUTCOMES[case.name] = "refused"
        return
    assert case.accept, f"{case.name}: accepted without a documented reason"
    OUTCOMES[case.name] = "accepted"


def test_random_kills_lose_nothing_and_resume_bit_identically(tmp_path):
    """24 kills of a training process (SIGKILL mostly, some SIGTERM/SIGINT; many inside a checkpoint
    or generator write), each resumed from its latest checkpoint: the final checkpoint and
    generator.pt equal an uninterrupted run's bit for bit, `latest` never moved back, nothing left over."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CONDGAN_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run([sys.executable, str(TESTS / "fault_worker.py"), str(tmp_path), "24", "7"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["kills"] >= 20 and summary["inside_write"] >= 3, summary
    assert summary["mismatched"] == [] and summary["runs_compared"] >= 1, summary
    assert summary["checkpoint_tensors_compared"] > 100 and summary["generator_tensors_compared"] > 20


# -- issue 25: the flows a user runs, with the lines they see ------------------------------------------------------
README = TESTS.parent / "README.md"


def readme_flat_folder_commands() -> list[list[str]]:
    """The README's flat-folder judge block (train-classifier, train, eval), one argv per command."""
    text = README.read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, re.S) if "judge_shapes.pt" in b)
    return [line.split()[1:] for line in block.replace("\\\n", " ").strip().splitlines()]


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """The README's flat-folder block run as pasted on a 3-class folder, but at 16 px and 4 steps (not 10 minutes)."""
    root = tmp_path_factory.mktemp("flat")
    write_flat_folder(root / "shapes")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        outputs = []
        for argv in readme_flat_folder_commands():
            argv = [{"32": "16", "10": "4", "--minutes": "--steps"}.get(a, a) for a in argv]
            if argv[0] == "train":
                argv += ["--device", "cpu", "--loggers", ""]
            if argv[0] == "eval":
                argv += ["--per-class", "100", "--no-knn"]
            from condgan.cli import main

            outputs.append((argv, main(argv)))
    finally:
        os.chdir(cwd)
    return root, outputs


def test_the_readme_judge_commands_work_on_a_flat_class_folder(flat, capsys):
    root, outputs = flat
    assert [argv[0] for argv, _ in outputs] == ["train-classifier", "train", "eval"]
    assert all(code == 0 for _, code in outputs), outputs
    from condgan.metrics.judge import load_judge

    judge = load_judge(root / "runs" / "judge_shapes.pt")
    held, dataset = judge.protocol["held_out"], judge.protocol["dataset"]
    assert held["split"] == "test" and held["images"] == 30 and len(held["per_class_accuracy"]) == 3
    assert dataset["options"] == {"holdout": 0.1, "holdout_seed": 0} and len(held["files_sha256"]) == 64
    assert dataset["fingerprint"]["name"] == "imagefolder" and dataset["fingerprint"]["images"] == 270
    assert "stopping" in judge.protocol["training"]  # trained until held-out accuracy stopped improving
    report = json.loads((root / "runs" / "shapes" / "eval.json").read_text())
    assert "a stratified 0.1 of each class, seed 0" in report["reference"]["reference"]
    # the GAN left the judge's held-out images out: the generator file's fingerprint counts the 270 others
    assert ckpt.read_file(root / "runs" / "shapes" / "generator.pt")["data"]["images"] == 270


def test_train_classifier_options_split_train_just_works(tmp_path, capsys):
    root = write_flat_folder(tmp_path / "shapes", per_class=10, size=8)
    code, out, err = run_cli(["train-classifier", "--dataset", "imagefolder", "--data-root", root, "--options", "split=train",
                              "--epochs", "1", "--out", tmp_path / "c.pt"], capsys)
    assert code == 0, err
    assert "(a stratified 0.1 of each class, seed 0" in out and f"--set data.options.exclude_judge={tmp_path / 'c.pt'}" in out


def test_judges_of_different_seeds_hold_out_the_same_images_of_a_flat_folder(tmp_path, capsys):
    """The held-out draw has its own seed (--holdout-seed, default 0), not the judge's --seed: judges trained with
    seeds 0 and 1 are measured on, and give FID against, the same images; another --holdout-seed draws others."""
    root = write_flat_folder(tmp_path / "shapes", per_class=10, size=8)
    held = {}
    for name, extra in (("s0", ["--seed", "0"]), ("s1", ["--seed", "1"]), ("h3", ["--seed", "1", "--holdout-seed", "3"])):
        code, out, err = run_cli(["train-classifier", "--dataset", "imagefolder", "--data-root", root, "--epochs", "1",
                                  "--out", tmp_path / f"{name}.pt", *extra], capsys)
        assert code == 0, err
        from condgan.metrics.judge import load_judge

        protocol = load_judge(tmp_path / f"{name}.pt").protocol
        held[name] = (protocol["dataset"]["options"]["holdout_seed"], protocol["held_out"]["files_sha256"])
    assert held["s0"] == held["s1"] and held["s0"][0] == 0
    assert held["h3"][0] == 3 and held["h3"][1] != held["s0"][1]


def test_a_model_of_other_data_is_refused_by_eval_unless_asked(flat, tmp_path, capsys):
    root, _ = flat
    gen = ckpt.read_file(root / "runs" / "shapes" / "generator.pt")
    other = tmp_path / "other.pt"
    ckpt.save_file({**gen, "data": {**gen["data"], "name": "cifar10", "mean": [0.5, 0.5, 0.5]}}, other)
    argv = ["eval", other, "--classifier", root / "runs" / "judge_shapes.pt", "--data-root", root / "shapes",
            "--per-class", "100", "--no-knn", "--no-real"]
    code, _, err = run_cli(argv, capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert re.match(r"condgan: error: .*other.pt: the model's training data is not the judge's \(the model was trained on "
                    r"'cifar10', the judge on 'imagefolder'; pixel mean \[0.5, 0.5, 0.5\] against .*\); train a judge on the "
                    r"model's data .*, or pass --allow-other-data to compare anyway$", err), err
    code, out, err = run_cli(argv + ["--allow-other-data"], capsys)
    assert code == 0 and "label acc" in out, err


def test_a_weak_judge_class_is_flagged_in_eval_and_report(flat, tmp_path, capsys):
    root, _ = flat
    payload = torch.load(root / "runs" / "judge_shapes.pt", weights_only=True)
    payload["protocol"]["held_out"]["per_class_accuracy"] = [0.664, 1.0, 1.0]  # as the shapes judge of issue 25
    torch.save(payload, tmp_path / "weak.pt")
    run = root / "runs" / "shapes"
    code, out, err = run_cli(["eval", run, "--classifier", tmp_path / "weak.pt", "--data-root", root / "shapes",
                              "--per-class", "100", "--no-knn", "--json", run / "weak_eval.json"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    row = next(line for line in lines if line.startswith("  generated"))
    assert row.split()[1].endswith("*") and not row.split()[2].endswith("*")  # beside bar's figure only
    assert "* the judge is weak on bar (held-out 0.664): below 0.9 held-out accuracy, so label accuracy there says as " \
           "much about the judge as about the samples" in lines
    from condgan.reporting import build_report

    page = build_report(run)
    assert "the judge is weak (held-out accuracy below 0.9) on bar (0.664): label accuracy there is unreliable" in page


def test_a_truncated_last_metrics_line_is_skipped_with_a_warning(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_bytes(GOOD_LINE + b'{"kind": "losses", "st')  # what a kill mid-write leaves
    from condgan.cli import _format_warning

    with pytest.warns(RuntimeWarning) as caught:
        code, out, err = run_cli(["report", run], capsys)
    assert code == 0 and "wrote" in out, err
    [warning] = [w for w in caught if "metrics.jsonl" in str(w.message)]
    assert _format_warning(warning.message, RuntimeWarning, "", 0) == (  # as the command line prints it
        f"condgan: warning: {run / 'metrics.jsonl'}, line 2: skipped the truncated last line (a run killed while writing it)\n")


def test_a_tiny_image_enlarged_to_the_model_size_is_a_warning(tmp_path):
    from PIL import Image

    from condgan.data.folders import ImageFolder

    root = write_flat_folder(tmp_path / "set", per_class=3, size=16)
    Image.new("RGB", (1, 1), (200, 10, 10)).save(root / "bar" / "tiny.png")
    with pytest.warns(RuntimeWarning, match=r"^1 of 10 images in .* are enlarged 4x or more to reach 16x16 \(the smallest: "
                                            r".*tiny.png is 1x1\): they carry little detail"):
        ImageFolder(root).load(size=(16, 16))


def test_python_m_condgan_under_a_shadowing_folder_names_it(tmp_path, capsys, monkeypatch):
    import types

    from condgan.cli import main

    (tmp_path / "condgan").mkdir()
    shadow = types.ModuleType("condgan")
    shadow.__path__ = [str(tmp_path / "condgan")]  # what `import condgan` gives in a clone's parent: a namespace package
    monkeypatch.setitem(sys.modules, "condgan", shadow)
    monkeypatch.chdir(tmp_path)
    assert main(["--version"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        f"condgan: error: the 'condgan' package imported is a folder without condgan's files (a namespace package): "
        f"{tmp_path / 'condgan'}, not condgan's installation ("), err
    assert "run condgan from another folder" in err


def test_an_internal_error_names_versions_and_the_readme_section_not_a_placeholder(capsys, monkeypatch):
    from test_cli import _command_raising

    monkeypatch.delenv("CONDGAN_TRACEBACK", raising=False)
    _command_raising(ZeroDivisionError("division by zero"))
    code, _, err = run_cli(["boom"], capsys)
    lines = err.splitlines()
    assert code == 1 and lines[0] == "Traceback (most recent call last):"
    assert re.match(rf"condgan {re.escape(condgan.__version__)} \(.*\), Python 3\.\d+\.\d+, torch {re.escape(torch.__version__)} on ",
                    lines[-2]), lines[-2]
    assert lines[-1].endswith("please report it with the traceback and versions above (the README's \"Reporting a bug\" "
                              "section says what to include)")
    assert "## Reporting a bug" in README.read_text()
    sources = [*TESTS.parent.joinpath("condgan").rglob("*.py"), README, TESTS.parent / "pyproject.toml"]
    assert not [p for p in sources if "github.com/OWNER" in p.read_text()]


def test_the_documents_name_the_command_line_forms_and_the_ci_installs_every_extra():
    from condgan.data.decode import SKIP_BAD_HINT

    assert SKIP_BAD_HINT.startswith("--set data.options.skip_bad=True (condgan train)")
    text = README.read_text()
    assert "`torch.jit.load` in that example prints torch's\ndeprecation warning" in text
    assert 'pip install -e ".[all]" && python -m pytest -q' in text
    assert 'pip install -e ".[all]"' in (TESTS.parent / ".ci" / "run").read_text()
    pyproject = (TESTS.parent / "pyproject.toml").read_text()
    extras = re.search(r'^all = \["condgan\[(.*)\]"\]$', pyproject, re.M).group(1).split(",")
    assert {"test", "export", "inception", "report", "tensorboard", "digits"} <= set(extras)


def test_resume_on_a_directory_another_process_holds_names_the_holder(tmp_path, capsys):
    """Before its first checkpoint a run holds no checkpoint, but it holds the lock: say who holds it."""
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from condgan.training.rundir import lock_run_directory; "
                               f"lock = lock_run_directory({str(run)!r}); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(TESTS.parent)})
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli(["train", "--out", run, "--resume", "--steps", "2", "--device", "cpu"], capsys)
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and err.count("\n") == 1
    assert re.search(rf"the run directory .*run is in use by another condgan process \(pid {holder.pid} on ", err), err


def test_steps_replace_the_presets_epochs(tmp_path, capsys):
    """--steps N trains N steps on any dataset size: the preset's epochs (20 of dcgan_projection: 20 steps
    of this 24-image folder) do not cap it, and the first line states the budget that stops the run."""
    root = write_flat_folder(tmp_path / "shapes", 8, 8)
    code, out, err = run_cli(["train", "--preset", "dcgan_projection", "--dataset", "imagefolder", "--data-root", root,
                              "--image-size", "8", "--steps", "25", "--out", tmp_path / "r", "--device", "cpu",
                              "--loggers", "console", "--log-every", "25"], capsys)
    assert code == 0, err
    assert "(steps=25)" in out.splitlines()[0], out
    assert ckpt.read_file(ckpt.latest_checkpoint(tmp_path / "r"))["step"] == 25
