"""``condgan sample``: draw samples from a trained generator."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..hookspecs import hookimpl
from . import Command, non_negative_int, positive_int

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

    from ..checkpoint import atomic_write, load_generator
    from ..data import to_unit
    from ..trainer import GRID_MAX_COLUMNS, GRID_ROWS, resolve_device

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
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"the generator in {args.checkpoint} produced NaN or inf samples (its weights are finite, its "
                         "outputs overflow): nothing was written; use an earlier checkpoint of the run")
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


@hookimpl
def register_commands():
    return [Command("sample", "draw N samples per class from a trained generator into an .npz", add_sample_arguments, run_sample)]
