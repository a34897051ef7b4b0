"""``condgan train``: train a model and save checkpoints in a run directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping

from ..hookspecs import hookimpl
from . import PROG, Command, non_negative_int, parse_override, positive_float, positive_int

def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", help="a registered preset (condgan list preset); default mnist_mlp")
    parser.add_argument("--config", dest="config_file", metavar="FILE",
                        help="a TOML or JSON config file (sections model, data, training; start from "
                             "'condgan config show PRESET'); --set and the options below apply on top")
    parser.add_argument("--set", dest="overrides", action="append", default=[], type=parse_override, metavar="KEY=VALUE",
                        help="override a config key, e.g. --set batch_size=128 --set generator.conditioner=onehot "
                             "--set generator.backbone_options.widths=(256,512); values are Python literals or strings; "
                             "'condgan config keys' lists the keys")
    parser.add_argument("--dataset", help="a registered dataset (condgan list dataset), e.g. imagefolder; default: the preset's")
    parser.add_argument("--data-root", help="folder (or file) holding the dataset (MNIST: DIR/MNIST/raw); default ./data")
    parser.add_argument("--image-size", type=_image_size, metavar="S|HxW",
                        help="bring the images to this size (e.g. 64 or 48x64); default: the model's, else the dataset's")
    parser.add_argument("--out", required=True, help="run directory: checkpoints, samples, generator.pt")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=positive_int, help="train until this step (counted over the whole run)")
    budget.add_argument("--epochs", type=positive_int, help="train until this epoch; default: the preset's epochs")
    budget.add_argument("--minutes", type=positive_float, help="train for this much time (over the whole run)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--seed", type=non_negative_int,
                        help="seeds the weights, noise, dropout and data order (default 0): the same seed and steps give the same run on the CPU")
    parser.add_argument("--batch-size", type=positive_int, help="images per step; default: the preset's")
    parser.add_argument("--log-every", type=positive_int, help="steps between progress lines (default 100)")
    parser.add_argument("--sample-every", type=non_negative_int, help="steps between sample grids (0: at the end only)")
    parser.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints (default 2000)")
    parser.add_argument("--keep-last", type=positive_int, help="checkpoints kept (default 3)")
    parser.add_argument("--ema", dest="ema_decay", type=positive_float, metavar="DECAY",
                        help="keep an EMA of G's weights (e.g. 0.999) and sample from it (default: the preset's)")
    parser.add_argument("--ema-start", dest="ema_start", type=non_negative_int, metavar="STEP",
                        help="EMA warm-up: the average copies G's weights until this step (default: the preset's, else 0)")
    parser.add_argument("--clip-grad-norm", type=positive_float, metavar="NORM",
                        help="clip each network's gradient norm to NORM every step (default: no clipping)")
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
    parser.add_argument("--process-group-timeout", type=positive_float, metavar="SECONDS",
                        help="under torchrun: how long a process waits for the others before it stops with an error "
                             "(default 600)")
    parser.add_argument("--eval-every", type=positive_int, metavar="N",
                        help="every N steps (a multiple of --log-every) FID and label accuracy with --judge into "
                             "RUN/metrics.jsonl; the best checkpoint is kept as RUN/best.pt")
    parser.add_argument("--eval-samples", type=positive_int, help="samples per evaluation (default 1000)")
    parser.add_argument("--judge", help="judge file for --eval-every (condgan train-classifier --dataset NAME --out FILE)")
    parser.add_argument("--best-metric", choices=["fid", "label_accuracy", "attribute_accuracy", "condition_rmse"],
                        help="what picks best.pt (default fid)")
    parser.add_argument("--sync-batchnorm", dest="sync_batchnorm", action="store_true", default=None,
                        help="under torchrun on GPUs: batch-norm statistics over all processes' batches (SyncBatchNorm)")


def _image_size(text: str) -> int | tuple[int, int]:
    h, sep, w = text.lower().partition("x")
    try:
        sides = (int(h), int(w)) if sep else int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected S or HxW (e.g. 64 or 48x64), got {text!r}") from None
    if min(sides if sep else (sides,)) < 1:
        raise argparse.ArgumentTypeError(f"image sides must be >= 1, got {text!r}")
    return sides


TRAINING_FLAGS = ("steps", "epochs", "minutes", "batch_size", "device", "seed", "log_every", "sample_every",
                  "checkpoint_every", "keep_last", "ema_decay", "ema_start", "clip_grad_norm", "autocast", "compile", "cuda_graph",
                  "loggers", "nonfinite", "sync_batchnorm", "process_group_timeout", "eval_every", "eval_samples",
                  "judge", "best_metric")
DATA_FLAGS = {"dataset": "name", "data_root": "root", "image_size": "image_size", "download": "download"}


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The dotted overrides that the command's options stand for (``--steps 5`` -> ``training.steps``)."""
    given = {f"training.{name}": getattr(args, name) for name in TRAINING_FLAGS if getattr(args, name) is not None}
    given.update({f"data.{key}": getattr(args, flag) for flag, key in DATA_FLAGS.items() if getattr(args, flag) is not None})
    return given


def run_train(args: argparse.Namespace) -> int:
    from .. import checkpoint as ckpt
    from ..config import read_config_file
    from ..resolve import run_config
    from ..training.trainer import Trainer

    out = Path(args.out)
    file_overrides = read_config_file(args.config_file) if args.config_file else {}
    overrides = {**file_overrides, **dict(args.overrides)}
    flags = flag_overrides(args)
    if args.resume:
        path = ckpt.latest_checkpoint(out)
        if path is None:
            raise ckpt.CheckpointError(f"--resume: {out} holds no checkpoint ({out}/{ckpt.CHECKPOINT_DIR}/{ckpt.LATEST} not found)")
        if args.preset is not None or overrides:
            asked = run_config(args.preset or "mnist_mlp", overrides).model
            saved = ckpt.read_file(path)["gan_config"]
            _check_same_model(ckpt.config_to_plain(asked), saved, out, ignore=("class_names", *_left_to_data(asked)))
        changes = {key.split(".", 1)[1]: value for key, value in flags.items() if key.startswith("training.")}
        if {"steps", "epochs", "minutes"} & set(changes):  # a new budget replaces the saved one
            changes = {"steps": None, "epochs": None, "minutes": None, **changes}
        trainer = Trainer.from_checkpoint(path, out_dir=str(out), data_root=args.data_root, **changes)
    else:
        config = run_config(args.preset or "mnist_mlp", {**overrides, **flags, "training.out_dir": str(out)})
        trainer = Trainer(config)
    from ..distributed import shutdown

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


def _left_to_data(model: Any) -> tuple[str, ...]:
    """Model keys a preset leaves to the data (None): the saved run has them filled in."""
    return tuple(k for k in ("condition_kind", "num_classes", "condition_dim", "image_shape", "output_kind", "output_dim")
                 if getattr(model, k) is None)


def _check_same_model(asked: Mapping[str, Any], saved: Mapping[str, Any], out: Path, ignore: tuple[str, ...] = ()) -> None:
    """--resume with --preset/--set: they must describe the saved model."""
    a, s = _dotted(asked), _dotted(saved)
    differ = sorted(k for k in a.keys() | s.keys() if a.get(k) != s.get(k) and k.split(".")[0] not in ignore)
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


@hookimpl
def register_commands():
    return [Command("train", "train a model (from a preset) and save checkpoints in a run directory",
                    add_train_arguments, run_train)]
