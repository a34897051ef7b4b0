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
    parser.add_argument("--eval-every", type=positive_int, metavar="N",
                        help="every N steps (a multiple of --log-every) FID and label accuracy with --judge into "
                             "RUN/metrics.jsonl; the best checkpoint is kept as RUN/best.pt")
    parser.add_argument("--eval-samples", type=positive_int, help="samples per evaluation (default 1000)")
    parser.add_argument("--judge", help="judge file for --eval-every (condgan train-classifier --dataset NAME --out FILE)")
    parser.add_argument("--best-metric", choices=["fid", "label_accuracy", "attribute_accuracy", "condition_rmse"],
                        help="what picks best.pt (default fid)")
    parser.add_argument("--sync-batchnorm", dest="sync_batchnorm", action="store_true", default=None,
                        help="under torchrun on GPUs: batch-norm statistics over all processes' batches (SyncBatchNorm)")


TRAINER_FLAGS = ("steps", "epochs", "minutes", "device", "seed", "log_every", "sample_every", "checkpoint_every",
                 "keep_last", "ema_decay", "clip_grad_norm", "autocast", "compile", "cuda_graph", "loggers", "download",
                 "nonfinite", "sync_batchnorm", "eval_every", "eval_samples", "judge", "best_metric")


def run_train(args: argparse.Namespace) -> int:
    from .. import checkpoint as ckpt
    from ..config import apply_overrides
    from ..plugins import get_component
    from ..trainer import Trainer, TrainerConfig

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


@hookimpl
def register_commands():
    return [Command("train", "train a model (from a preset) and save checkpoints in a run directory",
                    add_train_arguments, run_train)]
