"""Train the reference MNIST MLP cGAN (the `mnist_mlp` preset) with condgan's Trainer.

    python examples/mnist_mlp.py --data-root ./data                 # the full run: 200 epochs
    python examples/mnist_mlp.py --data-root ./data --minutes 10    # or stop after 10 minutes
    python examples/mnist_mlp.py --data-root ./data --steps 2000    # or after 2000 steps

{how_long}

The reference's settings come from the preset: MNIST at 32x32 in [-1, 1], batch 64, Adam 2e-4
(0.5, 0.999), LSGAN, 200 epochs, a 10x10 sample grid (column k: label k) every 400 steps. Grids go to
``OUT/samples/``, checkpoints to ``OUT/checkpoints/`` (one at the end; ``--resume`` continues the
run), and ``OUT/generator.pt`` holds the generator for ``condgan.load_generator``. The same run from
the command line: ``condgan train --preset mnist_mlp --data-root ./data --out runs/mnist_mlp``.
"""

from __future__ import annotations

import argparse
import shlex

from condgan import Trainer, run_config
from condgan.commands import positive_float, positive_int
from condgan.data import DatasetNotFoundError

#: How long the full default run takes on a CPU, and how that was measured.
HOW_LONG = """How long: the full run is 200 epochs of 938 steps (187,600 steps of batch 64). On a CPU that is
about two hours: measured over 200 steps on one thread of a 2-core AMD EPYC (torch 2.14), a step
took 34 ms of CPU time and 42 ms of wall time (24 steps/s), so 187,600 steps take about 2.2 hours
(1.8 hours of CPU time); a machine busy with other work is slower (8.9 steps/s measured under load).
A CUDA GPU is much faster. Give --minutes or --steps for a shorter run; Ctrl-C stops a run with a
checkpoint, and --resume continues it."""
if __doc__:  # None under python -OO
    __doc__ = __doc__.format(how_long=HOW_LONG)

DEFAULTS = {"data_root": "./data", "out": "runs/mnist_mlp", "device": "auto"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train the reference MNIST MLP cGAN (the mnist_mlp preset).", epilog=HOW_LONG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", default=DEFAULTS["data_root"], help="folder holding MNIST/raw (downloaded there if missing)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--epochs", type=positive_int, help="stop at this epoch (default: the reference's 200)")
    budget.add_argument("--steps", type=positive_int, help="stop at this step (counted over the whole run)")
    budget.add_argument("--minutes", type=positive_float, help="stop after this much training time (over the whole run)")
    parser.add_argument("--device", default=DEFAULTS["device"], help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--sample-every", type=positive_int, help="steps between sample grids (default 400)")
    parser.add_argument("--out", default=DEFAULTS["out"], help="the run directory (default runs/mnist_mlp)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, noise, dropout and data order")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out (its saved budget, unless given)")
    return parser


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run: the same --data-root, --out and --device, with --resume."""
    words = ["python", "examples/mnist_mlp.py", "--data-root", args.data_root, "--out", args.out]
    if args.device != DEFAULTS["device"]:
        words += ["--device", args.device]
    return shlex.join([*words, "--resume"])


def main(argv: list[str] | None = None) -> Trainer:
    args = build_parser().parse_args(argv)
    settings = {"device": args.device}
    budget = {k: getattr(args, k) for k in ("epochs", "steps", "minutes") if getattr(args, k) is not None}
    if budget:  # a new budget replaces the saved (or the preset's) one
        settings.update({"epochs": None, "steps": None, "minutes": None, **budget})
    if args.sample_every is not None:
        settings["sample_every"] = args.sample_every
    try:
        if args.resume:
            trainer = Trainer.from_checkpoint(args.out, data_root=args.data_root, **settings)
        else:
            config = run_config("mnist_mlp", {"data.root": args.data_root, "out_dir": args.out, "seed": args.seed, **settings})
            trainer = Trainer(config)
    except (DatasetNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    trainer.train()
    print(f"{trainer.step} steps; grids in {args.out}/samples, checkpoint {trainer.last_checkpoint}")
    if trainer.stop_reason == "interrupted":
        print(f"interrupted: continue with  {resume_command(args)}")
    return trainer


if __name__ == "__main__":
    main()
