"""The ``condgan`` command line: ``list``, ``train``, ``sample``.

Adding a subcommand: in your module write ``add_arguments(parser)`` (argparse options) and
``run(args) -> int | None`` (the exit code; None means 0), then add one
``Command("name", "one-line help", add_arguments, run)`` to ``COMMANDS`` at the end of this file.
``run`` may raise library errors (``USER_ERRORS``: ValueError, KeyError, CheckpointError,
DatasetNotFoundError, ...): :func:`main` prints them as one ``condgan: error: ...`` line and exits 1.
Bad arguments exit 2 with one line, as argparse does (without the usage block). Set
``CONDGAN_TRACEBACK=1`` to see the full traceback instead.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn

PROG = "condgan"


class _Parser(argparse.ArgumentParser):
    """argparse, with errors as one line: ``condgan: error: ...`` and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int | None]


# -- argument types -------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> ``("key", value)``; the value is a Python literal when it parses as one, else a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        value = ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        value = raw
    return key.strip(), value


def _int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected a number >= {low}, got {value}")
        return value
    parse.__name__ = f"int>={low}"
    return parse


positive_int = _int_at_least(1)
non_negative_int = _int_at_least(0)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


# -- condgan list -----------------------------------------------------------------------------------
def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", help="only this kind (conditioner, loss, backbone, preset, logger)")


def run_list(args: argparse.Namespace) -> int:
    from .plugins import KINDS, list_components

    if args.kind is not None and args.kind not in KINDS:
        raise ValueError(f"unknown kind {args.kind!r}; kinds are {', '.join(KINDS)}")
    for kind in [args.kind] if args.kind else KINDS:
        infos = list_components(kind)
        print(f"{kind}es:" if kind.endswith("s") else f"{kind}s:")
        if not infos:
            print("  (none)")
        name_width = max((len(i.name) for i in infos), default=0)
        plugin_width = max((len(i.plugin) for i in infos), default=0)
        for info in infos:
            print(f"  {info.name:<{name_width}}  {info.plugin:<{plugin_width}}  {_summary(info.obj)}")
    return 0


def _summary(obj: Any) -> str:
    text = getattr(obj, "description", "") or (getattr(obj, "__doc__", "") or "")
    return text.strip().splitlines()[0].replace("``", "") if text.strip() else ""


# -- condgan train ----------------------------------------------------------------------------------
def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="a registered preset (condgan list preset); default mnist_mlp")
    parser.add_argument("--set", dest="overrides", action="append", default=[], type=parse_override, metavar="KEY=VALUE",
                        help="override a model/data config key, e.g. --set batch_size=128 --set dataset=synthetic "
                             "--set generator.backbone_options.widths=(256,512); values are Python literals or strings")
    parser.add_argument("--data-root", help="folder holding the dataset (MNIST: DIR/MNIST/raw); default ./data")
    parser.add_argument("--out", required=True, help="run directory: checkpoints, samples, generator.pt")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=positive_int, help="train until this step (counted over the whole run)")
    budget.add_argument("--epochs", type=positive_int, help="train until this epoch; default: the preset's epochs")
    budget.add_argument("--minutes", type=positive_float, help="train for this much time (over the whole run)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=non_negative_int)
    parser.add_argument("--log-every", type=positive_int, help="steps between progress lines (default 100)")
    parser.add_argument("--sample-every", type=non_negative_int, help="steps between sample grids (0: at the end only)")
    parser.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints (default 2000)")
    parser.add_argument("--keep-last", type=positive_int, help="checkpoints kept (default 3)")
    parser.add_argument("--ema", dest="ema_decay", type=positive_float, metavar="DECAY",
                        help="keep an EMA of G's weights (e.g. 0.999) and sample from it")
    parser.add_argument("--clip-grad-norm", type=positive_float)
    parser.add_argument("--autocast", choices=["bfloat16", "float16"], help="mixed precision for the forward passes")
    parser.add_argument("--compile", nargs="?", const=True, metavar="MODE",
                        help="torch.compile the training step (optionally with a mode, e.g. reduce-overhead)")
    parser.add_argument("--cuda-graph", dest="cuda_graph", action=argparse.BooleanOptionalAction,
                        help="capture the step as one CUDA graph (default: on for CUDA without --compile)")
    parser.add_argument("--loggers", type=lambda s: tuple(n for n in s.split(",") if n),
                        help="comma-separated logger names (default console,grid,tensorboard)")
    parser.add_argument("--no-download", dest="download", action="store_false", default=None,
                        help="never download a missing dataset")
    parser.add_argument("--nonfinite", choices=["stop", "skip"],
                        help="a NaN/inf loss stops training (default; nothing non-finite is saved) or its updates are skipped and counted")
    parser.add_argument("--sync-batchnorm", dest="sync_batchnorm", action="store_true", default=None,
                        help="under torchrun on GPUs: batch-norm statistics over all processes' batches (SyncBatchNorm)")


TRAINER_FLAGS = ("steps", "epochs", "minutes", "device", "seed", "log_every", "sample_every", "checkpoint_every",
                 "keep_last", "ema_decay", "clip_grad_norm", "autocast", "compile", "cuda_graph", "loggers", "download",
                 "nonfinite", "sync_batchnorm")


def run_train(args: argparse.Namespace) -> int:
    from . import checkpoint as ckpt
    from .config import apply_overrides
    from .plugins import get_component
    from .trainer import Trainer, TrainerConfig

    out = Path(args.out)
    given = {name: getattr(args, name) for name in TRAINER_FLAGS if getattr(args, name) is not None}
    if args.data_root is not None:
        given["data_root"] = args.data_root
    model_config = None
    if args.preset is not None or args.overrides or not args.resume:
        model_config = apply_overrides(get_component("preset", args.preset or "mnist_mlp").config(), dict(args.overrides))

    if args.resume:
        path = ckpt.latest_checkpoint(out)
        if path is None:
            raise ckpt.CheckpointError(f"--resume: {out} holds no checkpoint ({out}/{ckpt.CHECKPOINT_DIR}/{ckpt.LATEST} not found)")
        if model_config is not None:
            _check_same_model(ckpt.config_to_plain(model_config), ckpt.read_file(path)["gan_config"], out)
        if {"steps", "epochs", "minutes"} & set(given):  # a new budget replaces the saved one
            given = {"steps": None, "epochs": None, "minutes": None, **given}
        trainer = Trainer.from_checkpoint(path, out_dir=str(out), **given)
    else:
        if ckpt.list_checkpoints(out / ckpt.CHECKPOINT_DIR):
            raise ValueError(f"{out} already holds a run; continue it with --resume, or choose another --out")
        given.setdefault("data_root", "./data")
        trainer = Trainer(model_config, TrainerConfig(out_dir=str(out), **given))

    from .distributed import shutdown

    reason = trainer.train()
    main, step, last, stop_signal = trainer.process.is_main, trainer.step, trainer.last_checkpoint, trainer.stop_signal
    del trainer
    shutdown()  # under torchrun: leave the process group before exiting (a no-op otherwise)
    if reason == "interrupted":
        if main:
            print(f"{PROG}: interrupted at step {step}; checkpoint {last}. Continue with: condgan train --out {out} --resume",
                  file=sys.stderr)
        return 128 + (stop_signal or 2)
    if main:
        print(f"done: {out}/{ckpt.GENERATOR_FILE} holds the generator (condgan sample {out} --per-class 1000 --out samples.npz)")
    return 0


def _check_same_model(asked: Mapping[str, Any], saved: Mapping[str, Any], out: Path) -> None:
    """--resume with --preset/--set: they must describe the saved model."""
    a, s = _dotted(asked), _dotted(saved)
    differ = sorted(k for k in a.keys() | s.keys() if a.get(k) != s.get(k))
    if differ:
        detail = "; ".join(f"{k}: saved {s.get(k)!r}, asked {a.get(k)!r}" for k in differ[:5])
        raise ValueError(f"--resume: the run in {out} has another model config ({detail}); "
                         "drop --preset/--set to resume it as saved")


def _dotted(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


# -- condgan sample -----------------------------------------------------------------------------------
def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint, a run directory (its latest checkpoint) or a generator.pt")
    parser.add_argument("--per-class", type=positive_int, required=True, help="samples per class")
    parser.add_argument("--out", required=True, help="the .npz to write: images (N, C, H, W) float32 in [0, 1], labels (N,) int64")
    parser.add_argument("--grid", help="also save a PNG grid: column k is label k (up to 10 rows)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=positive_int, default=1000, help="images generated at once")


def run_sample(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from .checkpoint import atomic_write, load_generator
    from .data import to_unit
    from .trainer import GRID_MAX_COLUMNS, GRID_ROWS, resolve_device

    out = Path(args.out)
    if out.suffix != ".npz":
        raise ValueError(f"--out must name a .npz file, got {str(out)!r}")
    device = resolve_device(args.device)
    generator = load_generator(args.checkpoint, device=device)
    config = generator.config
    if config.spec.kind != "class":
        raise ValueError(f"condgan sample draws N per class, but this model's condition is {config.spec.kind!r}")
    classes, per_class = config.num_classes, args.per_class
    labels = torch.arange(classes).repeat_interleave(per_class)  # (N,) ordered by label
    noise = torch.Generator(device=device).manual_seed(args.seed)
    chunks = []
    for start in range(0, len(labels), args.batch_size):
        y = labels[start:start + args.batch_size].to(device)
        chunks.append(to_unit(generator.sample(y, generator=noise).float(), config.pixel_range).cpu())
    images = torch.cat(chunks)  # (N, C, H, W) in [0, 1]
    atomic_write(out, lambda f: np.savez(f, images=images.numpy().astype(np.float32), labels=labels.numpy().astype(np.int64)))
    print(f"wrote {len(labels)} samples ({per_class} per class x {classes} classes, {tuple(images.shape[1:])}) to {out}")
    if args.grid:
        from torchvision.utils import save_image

        columns, rows = min(classes, GRID_MAX_COLUMNS), min(per_class, GRID_ROWS)
        order = [k * per_class + r for r in range(rows) for k in range(columns)]  # row r, column k: label k
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        save_image(images[order], args.grid, nrow=columns)
        print(f"wrote a {rows}x{columns} grid to {args.grid}")
    return 0


# -- main ---------------------------------------------------------------------------------------------
def _user_errors() -> tuple[type[BaseException], ...]:
    from .checkpoint import CheckpointError
    from .plugins import PluginError

    return (ValueError, KeyError, OSError, CheckpointError, PluginError)


def build_parser(commands: list[Command] | None = None) -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog=PROG, description="condgan: train, sample and inspect conditional GANs.")
    parser.add_argument("--version", action="version", version=f"condgan {__version__}")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    for command in commands or COMMANDS:
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(sub_parser)
        sub_parser.set_defaults(command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 error, 2 bad arguments, 128+N on signal N)."""
    args = build_parser().parse_args(argv)
    try:
        return args.command.run(args) or 0
    except _user_errors() as exc:
        if os.environ.get("CONDGAN_TRACEBACK"):
            raise
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


from .metrics import cli as metrics_cli  # noqa: E402  (eval, train-classifier; imports nothing from here at load)
from . import bench  # noqa: E402  (bench; imports nothing from here)

COMMANDS: list[Command] = [
    Command("list", "list registered components and the plugin that gave each", add_list_arguments, run_list),
    Command("train", "train a model (from a preset) and save checkpoints in a run directory", add_train_arguments, run_train),
    Command("sample", "draw N samples per class from a trained generator into an .npz", add_sample_arguments, run_sample),
    Command("eval", "label accuracy, FID, intra-class FID, Parzen LL, precision/recall of samples vs MNIST",
            metrics_cli.add_eval_arguments, metrics_cli.run_eval),
    Command("train-classifier", "train the MNIST classifier that condgan's metrics use",
            metrics_cli.add_train_classifier_arguments, metrics_cli.run_train_classifier),
    Command("bench", "time training steps against the reference loop and a matmul ceiling (tables and JSON)",
            bench.add_arguments, bench.run),
]
