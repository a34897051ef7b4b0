"""``condgan sample``: draw samples of chosen conditions from a trained generator, or interpolate.

Examples::

    condgan sample runs/a --per-class 8 --out s.npz                  # every class, as an .npz
    condgan sample runs/a --classes 3,7 --per-class 8 --grid g.png   # two classes, a labelled grid
    condgan sample runs/a --classes cat,dog --per-class 100 --out pngs/ --truncation 0.5
    condgan sample runs/a --classes 3,7 --per-class 4 --interpolate condition --steps 9 --grid i.png
    condgan sample runs/v --per-class 100 --out v.npz                # a vector model: outputs (N, D)
    condgan sample runs/v --per-class 100 --out v.npy                # the vectors alone
    condgan sample runs/t --per-class 500 --out synth.csv            # a table model: rows with the file's columns
    condgan sample runs/t --rows 1000 --out synth.csv                # rows drawn with the training rows' condition frequencies
    condgan sample runs/t --rows 200 --condition species=Gentoo --out gentoo.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..hookspecs import hookimpl
from . import Command, non_negative_int, positive_float, positive_int

SAMPLE_OUTPUTS = ("image", "vector", "table")  # the output kinds condgan sample writes
TABLE_SUFFIXES = (".csv", ".parquet")


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="a checkpoint, a run directory (its latest checkpoint), a generator.pt "
                                           "or a generator .safetensors")
    count = parser.add_mutually_exclusive_group(required=True)
    count.add_argument("--per-class", type=positive_int,
                       help="samples per condition (with --interpolate: rows per condition)")
    count.add_argument("--rows", type=positive_int, metavar="N",
                       help="a table model: N rows in all, shared among the condition values by the training rows' "
                            "frequencies (only the values --condition allows)")
    parser.add_argument("--condition", action="append", metavar="COLUMN=VALUE",
                        help="with --rows: rows whose condition column COLUMN has VALUE (repeat for several condition columns)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--classes", help="class indices or names, comma separated, e.g. 3,7 or cat,dog (default: every class)")
    which.add_argument("--tags", action="append", metavar="TAG,TAG",
                       help="one multi-hot condition: attribute names (or indices), comma separated; repeat for more "
                            "conditions; '' for none (default: each tag alone)")
    which.add_argument("--vectors", metavar="FILE", help="float condition vectors, one per row: .npy, .txt or .csv")
    parser.add_argument("--out", help="an .npz (images (N, C, H, W) float32 in [0, 1], labels (N,) int64 or conditions "
                                      "(N, K) float32, names) or a folder ending in / (one PNG per sample, named with its label); "
                                      "a vector model: an .npz (outputs (N, D) float32, labels or conditions, names) or an "
                                      ".npy (the outputs alone)")
    parser.add_argument("--grid", help="a PNG grid: column k is condition k (up to 10 rows), with a label strip")
    parser.add_argument("--truncation", type=positive_float, metavar="T",
                        help="draw z from a normal truncated to [-T, T] (BigGAN's trick: smaller T, less diversity)")
    parser.add_argument("--interpolate", choices=["z", "condition"],
                        help="z: from one z to another at each condition; condition: from the first of two conditions "
                             "to the second at fixed z's")
    parser.add_argument("--steps", type=_at_least_two, default=8, help="interpolation steps, the ends included (default 8)")
    parser.add_argument("--frames", metavar="DIR", help="with --interpolate: one PNG per step (frame_000.png, ...)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the noise (default 0)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=positive_int, default=1000, help="images generated at once")


def _at_least_two(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"expected a number >= 2 (the two ends), got {value}")
    return value


def _out_kind(out: str | None) -> str | None:
    """"npz", "npy", "folder" or None; a ValueError for anything else."""
    if out is None:
        return None
    path = Path(out)
    if path.suffix in (".npz", ".npy") or path.suffix in TABLE_SUFFIXES:
        return path.suffix[1:]
    if out.endswith(("/", "\\")) or path.is_dir():
        return "folder"
    raise ValueError(f"--out must name a .npz file, an .npy file (vectors), a .csv or .parquet file (tables) or a folder "
                     f"ending in / (for PNG files), got {out!r}")


def _check_writes(args: argparse.Namespace, out_kind: str | None, output) -> None:
    """One line, before sampling, for a file kind this output kind cannot be written as."""
    table = out_kind in ("csv", "parquet")
    if output.name == "table":
        if not table and args.out or args.grid or args.frames or args.interpolate:
            raise ValueError(f"this model makes {output.describe()}: write its rows with --out FILE.csv or FILE.parquet "
                             "(no grids, frames or interpolation)")
        return
    if table:
        raise ValueError(f"--out {args.out}: .csv and .parquet hold table rows, and this model makes {output.describe()} outputs")
    if output.name == "image":
        if out_kind == "npy":
            raise ValueError(f"--out {args.out}: .npy holds vectors; an image model writes an .npz or a folder/ of PNG files")
        return
    pictures = [flag for flag, value in (("--grid", args.grid), ("--frames", args.frames)) if value]
    if out_kind == "folder":
        pictures.append("--out FOLDER/")
    if pictures:
        raise ValueError(f"{', '.join(pictures)} draw images, and this model makes {output.describe()} outputs: "
                         "write them with --out FILE.npz or FILE.npy")


def run_sample(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_generator
    from ..sampling import generate, interpolate_conditions, interpolate_z, make_conditions
    from ..training.setup import resolve_device

    out_kind = _out_kind(args.out)
    if args.frames and not args.interpolate:
        raise ValueError("--frames writes the steps of an interpolation: add --interpolate z or --interpolate condition")
    if not (args.out or args.grid or args.frames):
        raise ValueError("nothing to write: give --out (an .npz or a folder/), --grid or --frames")
    if args.condition and args.rows is None:
        raise ValueError("--condition COLUMN=VALUE goes with --rows N (a table model's rows); --per-class takes --classes")
    if args.rows is not None and (args.classes or args.tags or args.vectors):
        raise ValueError("--rows N draws a table model's rows: choose their condition values with --condition COLUMN=VALUE, "
                         "not --classes/--tags/--vectors")
    generator = load_generator(args.checkpoint, device=resolve_device(args.device), outputs=SAMPLE_OUTPUTS,
                               reader="condgan sample")
    if args.rows is not None and generator.output.name != "table":
        raise ValueError(f"--rows/--condition draw table rows, and {args.checkpoint} makes {generator.output.describe()} "
                         "outputs: use --per-class N (and --classes)")
    _check_writes(args, out_kind, generator.output)
    if args.rows is not None:
        _write_rows(args, out_kind, generator)
        return 0
    conditions = make_conditions(generator, classes=args.classes, tags=args.tags, vectors=args.vectors)
    if args.interpolate:
        interpolate = interpolate_z if args.interpolate == "z" else interpolate_conditions
        result = interpolate(generator, conditions, args.steps, per_condition=args.per_class, seed=args.seed,
                             truncation=args.truncation)
        _write_interpolation(args, out_kind, result)
        return 0
    samples = generate(generator, conditions, args.per_class, seed=args.seed, truncation=args.truncation,
                       batch_size=args.batch_size)
    if not bool(torch.isfinite(samples.images).all()):
        raise ValueError(f"the generator in {args.checkpoint} produced NaN or inf samples (its weights are finite, its "
                         "outputs overflow): nothing was written; use an earlier checkpoint of the run")
    shape = tuple(samples.images.shape[1:])
    what = f"{args.per_class} per condition x {len(conditions)} conditions, {shape}"
    key = "images" if generator.output.name == "image" else "outputs"
    if out_kind in ("csv", "parquet"):
        _write_table(Path(args.out), generator.output.rows(samples.images, samples.y), out_kind)
        print(f"wrote {len(samples.labels)} rows ({args.per_class} per condition x {len(conditions)} conditions) to {args.out}")
    elif out_kind == "npy":
        import numpy as np

        from ..checkpoint import atomic_write

        atomic_write(Path(args.out), lambda f: np.save(f, samples.images.numpy().astype(np.float32)))
        print(f"wrote {len(samples.labels)} samples ({what}; grouped by condition, {args.per_class} each) to {args.out}")
    elif out_kind == "npz":
        _write_npz(Path(args.out), samples.images, samples.y, samples.labels, key=key)
        print(f"wrote {len(samples.labels)} samples ({what}) to {args.out}")
    elif out_kind == "folder":
        from ..imagegrid import save_pngs

        paths = save_pngs(samples.images, samples.labels, args.out)
        print(f"wrote {len(paths)} PNG files ({what}) to {args.out}")
    if args.grid:
        _write_sample_grid(args, samples, conditions, torch)
    return 0


def _write_rows(args: argparse.Namespace, out_kind: str, generator) -> None:
    """``--rows N [--condition COLUMN=VALUE ...]``: the rows of the matching classes, by their training
    frequencies (:mod:`condgan.tabular.draw`), to the .csv/.parquet that :func:`_check_writes` let through."""
    from ..tabular.draw import parse_conditions, rows_per_class
    from .evaluate_tables import _synthesize

    given = parse_conditions(args.condition)
    counts = rows_per_class(generator.output, args.rows, given)
    frame = _synthesize(generator, counts, args.seed)
    _write_table(Path(args.out), frame, out_kind)
    asked = ", ".join(f"{c}={v}" for c, v in given.items())
    names = "/".join(generator.output.condition_names)
    print(f"wrote {len(frame)} rows ({asked + '; ' if asked else ''}{names} values by the training rows' frequencies: "
          + ", ".join(f"{generator.config.class_names[k] if generator.config.class_names else k} {n}" for k, n in counts.items())
          + f") to {args.out}")


def _write_table(path: Path, frame, kind: str) -> None:
    import io

    from ..checkpoint import atomic_write

    buffer = io.BytesIO()
    if kind == "csv":
        buffer.write(frame.to_csv(index=False).encode())
    else:
        frame.to_parquet(buffer, index=False)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def _write_npz(path: Path, images, y, labels, key: str = "images", **extra) -> None:
    import numpy as np

    from ..checkpoint import atomic_write

    arrays = {key: images.numpy().astype(np.float32), "names": np.array(labels, dtype=str), **extra}
    if y is not None:
        key = "labels" if not y.dtype.is_floating_point else "conditions"
        arrays[key] = y.numpy().astype(np.int64 if key == "labels" else np.float32)
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _write_sample_grid(args, samples, conditions, torch) -> None:
    from ..imagegrid import save_grid
    from ..training.grids import GRID_MAX_COLUMNS, GRID_ROWS

    per = args.per_class
    columns, rows = min(len(conditions), GRID_MAX_COLUMNS), min(per, GRID_ROWS)
    order = [k * per + r for r in range(rows) for k in range(columns)]  # row r, column k: condition k
    labels = conditions.labels[:columns]
    plain = list(labels) == [str(k) for k in range(columns)]  # the label would repeat the column's index
    save_grid(args.grid, samples.images[order], columns, column_labels=None if plain else labels)
    print(f"wrote a {rows}x{columns} grid to {args.grid}" + ("" if columns == len(conditions) else
          f" (the first {columns} of {len(conditions)} conditions)"))


def _write_interpolation(args, out_kind, result) -> None:
    from ..imagegrid import save_grid, save_pngs

    rows, steps = result.images.shape[:2]
    flat = result.images.reshape(rows * steps, *result.images.shape[2:])  # row by row
    what = f"{rows} rows x {steps} steps"
    if args.grid:
        save_grid(args.grid, flat, steps, row_labels=result.row_labels, column_labels=result.column_labels)
        print(f"wrote a {what} interpolation grid to {args.grid}")
    if args.frames:
        folder = Path(args.frames)
        folder.mkdir(parents=True, exist_ok=True)
        columns = min(rows, 10)
        for s in range(steps):
            save_grid(folder / f"frame_{s:03d}.png", result.images[:, s], columns)
        print(f"wrote {steps} frames ({rows} images each) to {folder}")
    if out_kind == "npz":
        import numpy as np

        images = result.images.dim() == 5
        _write_npz(Path(args.out), result.images, None, result.row_labels, key="images" if images else "outputs",
                   weights=result.weights.numpy().astype(np.float32), column_labels=np.array(result.column_labels, dtype=str))
        print(f"wrote the interpolation ({what}; {'images (R, S, C, H, W)' if images else 'outputs (R, S, D)'}) to {args.out}")
    elif out_kind == "npy":
        import numpy as np

        from ..checkpoint import atomic_write

        atomic_write(Path(args.out), lambda f: np.save(f, result.images.numpy().astype(np.float32)))
        print(f"wrote the interpolation ({what}) to {args.out}")
    elif out_kind == "folder":
        labels = [f"{r}_{row}_{col}" for r, row in enumerate(result.row_labels) for col in result.column_labels]
        paths = save_pngs(flat, labels, args.out)
        print(f"wrote {len(paths)} PNG files ({what}) to {args.out}")


@hookimpl
def register_commands():
    return [Command("sample", "draw samples of chosen classes, tags or vectors from a trained generator "
                              "(npz, PNG files, labelled grids, truncation, interpolation)", add_sample_arguments, run_sample)]
