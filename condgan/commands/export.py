"""``condgan export``: write a trained generator as TorchScript, ONNX or safetensors (see :mod:`condgan.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..hookspecs import hookimpl
from . import Command

EXPORT_OUTPUTS = ("image", "vector")  # generators of these output kinds trace to TorchScript and ONNX


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from ..export import FORMATS, ONNX_OPSET

    parser.add_argument("checkpoint", help="a checkpoint, a run directory (its latest checkpoint) or a generator.pt")
    parser.add_argument("--format", required=True, choices=list(FORMATS),
                        help="; ".join(f"{f.name}: {f.description}" for f in FORMATS.values()))
    parser.add_argument("--out", help="the file to write (default: generator<suffix> in the run directory: "
                                      + ", ".join(f.suffix for f in FORMATS.values()) + ")")
    parser.add_argument("--opset", type=int, default=ONNX_OPSET, help=f"ONNX opset (default {ONNX_OPSET})")


def run_export(args: argparse.Namespace) -> int:
    from ..checkpoint import CHECKPOINT_FORMAT, SAFETENSORS_SUFFIX, load_generator, read_file, resolve_checkpoint
    from ..export import check_format, default_path, export_generator

    fmt = check_format(args.format)  # a missing package fails before anything is loaded
    out = Path(args.out) if args.out else default_path(args.checkpoint, fmt.name)
    if args.out and not out.parent.is_dir():  # a typo in --out must not make a directory chain
        what = "is a file" if out.parent.exists() else "does not exist"
        raise FileNotFoundError(f"--out {args.out}: its folder {out.parent} {what}; create it first "
                                f"(mkdir -p {out.parent}) or choose another --out")
    source = resolve_checkpoint(args.checkpoint)
    generator = load_generator(source, device="cpu", outputs=EXPORT_OUTPUTS, reader="condgan export")
    options = {}
    if fmt.name == "onnx":
        options["opset"] = args.opset
    if fmt.name == "safetensors" and source.suffix != SAFETENSORS_SUFFIX:
        obj = read_file(source)
        from_ema = obj.get("ema") is not None if obj["format"] == CHECKPOINT_FORMAT else obj.get("from_ema")
        options.update(step=int(obj["step"]), from_ema=bool(from_ema))
    result = export_generator(generator, out, fmt.name, **options)
    checked = (f"checked with {result.checked_by}: max |diff| {result.max_abs_diff:.2g} against the eager generator"
               if result.max_abs_diff is not None else "not run: onnxruntime is not installed")
    print(f"wrote {result.path} ({fmt.description}; {checked})")
    return 0


@hookimpl
def register_commands():
    return [Command("export", "write a trained generator as TorchScript, ONNX or safetensors (for use without condgan)",
                    add_export_arguments, run_export)]
