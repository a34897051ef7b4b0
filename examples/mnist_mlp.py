"""Train the reference MNIST MLP cGAN (the `mnist_mlp` preset) with condgan's Trainer.

    python examples/mnist_mlp.py --data-root ./data --epochs 200

The reference's settings come from the preset: MNIST at 32x32 in [-1, 1], batch 64, Adam 2e-4
(0.5, 0.999), LSGAN, 200 epochs, a 10x10 sample grid (column k: label k) every 400 steps. Grids go to
``OUT/samples/``, checkpoints to ``OUT/checkpoints/`` (one at the end; ``--resume`` continues the
run), and ``OUT/generator.pt`` holds the generator for ``condgan.load_generator``. The same run from
the command line: ``condgan train --preset mnist_mlp --data-root ./data --out runs/mnist_mlp``.
"""

from __future__ import annotations

import argparse

from condgan import Trainer, run_config
from condgan.data import DatasetNotFoundError


def main(argv: list[str] | None = None) -> Trainer:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="./data", help="folder holding MNIST/raw (downloaded there if missing)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs over the whole run (the reference: 200)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda")
    parser.add_argument("--sample-every", type=int, default=400, help="steps between sample grids")
    parser.add_argument("--out", default="runs/mnist_mlp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    args = parser.parse_args(argv)

    settings = dict(epochs=args.epochs, sample_every=args.sample_every, device=args.device)
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
        print(f"interrupted: continue with  python examples/mnist_mlp.py --out {args.out} --resume")
    return trainer


if __name__ == "__main__":
    main()
