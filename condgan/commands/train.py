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
    budget.add_argument("--epochs", type=positive_int,
                        help="train until this epoch; default: the preset's budget (any budget given replaces it whole)")
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
    parser.add_argument("--seeds", type=_group_arg("parse_seeds"), metavar="SEEDS",
                        help="train a group: one run per seed (0-7, 0,3,5), each in OUT/seed_N, listed in OUT/group.json; "
                             "run N equals --seed N trained alone")
    parser.add_argument("--sweep", action="append", default=[], type=_group_arg("parse_sweep"), metavar="KEY=V1,V2",
                        help="train a group: one run per value of a config key (values as Python literals), e.g. "
                             "--sweep model.g_optimizer.lr=1e-4,2e-4; several --sweep make a grid (with --seeds: each over every seed)")
    parser.add_argument("--no-stack", dest="no_stack", action="store_true",
                        help="a group's runs one after another, not side by side with stacked weights (the default "
                             "where their architecture can be stacked: MLPs as mnist_mlp's)")
    parser.add_argument("--sync-batchnorm", dest="sync_batchnorm", action="store_true", default=None,
                        help="under torchrun on GPUs: batch-norm statistics over all processes' batches (SyncBatchNorm)")


def _group_arg(name: str):
    """An argparse type from :mod:`condgan.runs.groups` (its GroupError as argparse's one-line error)."""
    def parse(text: str):
        from ..runs import groups

        try:
            return getattr(groups, name)(text)
        except groups.GroupError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = name.removeprefix("parse_")
    return parse


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
    from ..runs.groups import is_group

    out = Path(args.out)
    file_overrides = read_config_file(args.config_file) if args.config_file else {}
    overrides = {**file_overrides, **dict(args.overrides)}
    flags = flag_overrides(args)
    if args.seeds is not None or args.sweep or (args.resume and is_group(out)):
        return run_group(args, out, overrides, flags)
    trainer = make_trainer(out, args.preset, overrides, flags, resume=args.resume, data_root=args.data_root)
    from ..distributed import shutdown

    reason = trainer.train()
    main, step, last, stop_signal = trainer.process.is_main, trainer.step, trainer.last_checkpoint, trainer.stop_signal
    kind = trainer.gan.config.output_kind
    del trainer
    shutdown()  # under torchrun: leave the process group before exiting (a no-op otherwise)
    if reason == "interrupted":
        if main:
            print(f"{PROG}: interrupted at step {step}; checkpoint {last}. Continue with: condgan train --out {out} --resume",
                  file=sys.stderr)
        return 128 + (stop_signal or 2)
    if main:
        target = {"table": "synth.csv", "vector": "samples.npz"}.get(kind, "samples.npz")
        print(f"done: {out}/{ckpt.GENERATOR_FILE} holds the generator (condgan sample {out} --per-class 1000 --out {target}"
              + (f"; condgan eval {out} judges it against its held-out rows)" if kind == "table" else ")"))
    return 0


def make_trainer(out: Path, preset: str | None, overrides: Mapping[str, Any], flags: Mapping[str, Any], *,
                 resume: bool, data_root: str | None = None):
    """The Trainer of ``condgan train``: a new run from the preset with the overrides and the options'
    overrides on top, or (``resume``) the run in ``out`` from its latest checkpoint with the options
    as changes (a new budget replaces the saved one)."""
    from .. import checkpoint as ckpt
    from ..resolve import run_config
    from ..training.rundir import check_not_locked
    from ..training.trainer import Trainer

    if resume:
        check_not_locked(out)  # a run still starting holds no checkpoint yet: name it, not the missing file
        path = ckpt.latest_checkpoint(out)
        if path is None:
            raise ckpt.CheckpointError(f"--resume: {out} holds no checkpoint ({out}/{ckpt.CHECKPOINT_DIR}/{ckpt.LATEST} not found)")
        if preset is not None or overrides:
            asked = run_config(preset or "mnist_mlp", overrides).model
            saved = ckpt.read_file(path)["gan_config"]
            _check_same_model(ckpt.config_to_plain(asked), saved, out, ignore=("class_names", *_left_to_data(asked)))
        changes = {key.split(".", 1)[1]: value for key, value in flags.items() if key.startswith("training.")}
        if {"steps", "epochs", "minutes"} & set(changes):  # a new budget replaces the saved one
            changes = {"steps": None, "epochs": None, "minutes": None, **changes}
        return Trainer.from_checkpoint(path, out_dir=str(out), data_root=data_root, **changes)
    return Trainer(new_run_config(out, preset, overrides, flags))


def new_run_config(out: Path, preset: str | None, overrides: Mapping[str, Any], flags: Mapping[str, Any]):
    """The RunConfig of a new run in ``out``: the preset, then the overrides, then the options' overrides."""
    from ..resolve import run_config

    given = {**overrides, **flags}
    return run_config(preset or "mnist_mlp", {**_user_budget(given), **given, "training.out_dir": str(out)})


def run_group(args: argparse.Namespace, out: Path, overrides: Mapping[str, Any], flags: Mapping[str, Any]) -> int:
    """``condgan train --seeds/--sweep``: plan (or, with ``--resume``, read) the group in ``out`` and
    train its runs one after another (:mod:`condgan.runs.groups`)."""
    from ..checkpoint import files as ckpt
    from ..runs import groups
    from ..training.rundir import check_run_continues

    if args.seed is not None and args.seeds is not None:
        raise groups.GroupError("--seed and --seeds: give the seeds of the group with --seeds alone")
    if args.resume:
        if args.seeds is not None or args.sweep:
            raise groups.GroupError(f"--resume continues the group in {out} as planned in its {groups.GROUP_FILE}: "
                                    "drop --seeds/--sweep (a new group needs another --out)")
        if args.seed is not None:
            raise groups.GroupError("--resume of a group: each run keeps its own seed; drop --seed")
        group = groups.read_group(out)
        budget = dict(flags)  # a new budget, --data-root, --device: for the runs not started yet too
    else:
        if groups.is_group(out):
            raise groups.GroupError(f"{out} already holds a group ({out}/{groups.GROUP_FILE}): continue it with --resume, "
                                    "or choose another --out")
        if ckpt.latest_checkpoint(out) is not None:
            raise groups.GroupError(f"{out} holds a run, not a group: choose another --out for the group")
        group = groups.Group(out, args.preset or "mnist_mlp", {**overrides, **flags}, groups.plan_group(args.seeds, args.sweep))
        for run in group.runs:
            check_run_continues(group.run_dir(run), None)
        budget = {}

    def make(run_dir: Path, run_overrides: Mapping[str, Any], resume: bool):
        if resume:
            return make_trainer(run_dir, None, {}, flags, resume=True, data_root=args.data_root)
        return make_trainer(run_dir, group.preset, {**group.base, **run_overrides}, budget, resume=False)

    def check(run_overrides: Mapping[str, Any]) -> None:
        new_run_config(out, group.preset, {**group.base, **run_overrides}, budget)

    print(f"group {out}: {len(group.runs)} runs ({', '.join(r.name for r in group.runs[:4])}"
          f"{', ...' if len(group.runs) > 4 else ''})")
    new_budget = any(k.split(".", 1)[1] in BUDGET_KEYS for k in budget)
    stop = groups.train_group(group, make, check, resume=args.resume, retrain_done=new_budget,
                              stack=not getattr(args, "no_stack", False))
    if stop["reason"] == "interrupted":
        print(f"{PROG}: interrupted in run {stop['run']} at step {stop['step']}. Continue the group with: "
              f"condgan train --out {out} --resume", file=sys.stderr)
        return 128 + (stop["signal"] or 2)
    print(f"done: group {out}: {len(group.runs)} runs in {out}/{groups.GROUP_FILE} (condgan eval {out} --judge FILE; "
          f"condgan report {out})")
    return 0


BUDGET_KEYS = ("steps", "epochs", "minutes")


def _user_budget(given: Mapping[str, Any]) -> dict[str, Any]:
    """A budget the user gives (a flag, ``--set``, a config file) replaces the preset's whole budget:
    the preset's other parts are cleared (``--steps 1200`` is not capped by the preset's epochs)."""
    asked = any(key in BUDGET_KEYS or key in {f"training.{k}" for k in BUDGET_KEYS} for key in given)
    return {f"training.{k}": None for k in BUDGET_KEYS} if asked else {}


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
