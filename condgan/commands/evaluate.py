"""``condgan eval`` and ``condgan train-classifier``: judge samples with condgan's metrics.

Each subcommand is an ``add_*_arguments(parser)`` and a ``run_*(args) -> int`` pair, as
:mod:`condgan.cli` expects; errors are raised as ValueError/OSError subclasses and printed there
as one line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from . import Command, non_negative_int, positive_float, positive_int

MISSING_CLASSIFIER_ADVICE = "train one with: condgan train-classifier --data-root DIR --out FILE (a few minutes on a CPU)"


# -- condgan train-classifier -------------------------------------------------------------------------
def add_train_classifier_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True, help="folder holding MNIST in torchvision's layout (DIR/MNIST/raw)")
    parser.add_argument("--out", required=True, help="the classifier file to write (e.g. runs/classifier.pt)")
    parser.add_argument("--epochs", type=positive_float, default=3.0, help="passes over the 60,000 training images (default 3)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the weights, dropout, augmentation and batch order (default 0)")


def run_train_classifier(args: argparse.Namespace) -> int:
    from ..classifier import train_classifier

    start = time.perf_counter()
    with _mnist_never_downloaded("train-classifier", args.data_root):
        details = train_classifier(args.data_root, args.out, epochs=args.epochs, seed=args.seed)
    print(f"test accuracy {details['test_accuracy']:.4f} on {details['test_images']} MNIST test images; "
          f"trained {details['steps']} steps in {details['train_seconds']:.0f} s "
          f"({time.perf_counter() - start:.0f} s in all)")
    print(f"wrote {args.out} (sha256 {details['sha256']})")
    if details["test_accuracy"] < 0.99:
        print(f"warning: test accuracy {details['test_accuracy']:.4f} is below 0.99; train longer (--epochs)", file=sys.stderr)
    return 0


# -- condgan eval -------------------------------------------------------------------------------------
def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?",
                        help="a checkpoint, run directory or generator.pt (sampled N per class), or an .npz of "
                             "images (N, C, H, W) float32 in [0, 1] and labels (N,) int64; omit to evaluate only real MNIST")
    parser.add_argument("--data-root", required=True, help="folder holding MNIST in torchvision's layout (DIR/MNIST/raw)")
    parser.add_argument("--classifier", required=True, help=f"the metrics' classifier file ({MISSING_CLASSIFIER_ADVICE})")
    parser.add_argument("--json", dest="json_out", help="also write every figure with its protocol to this JSON file")
    parser.add_argument("--per-class", type=positive_int, default=1000, help="samples per class from a checkpoint (default 1000)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the samples and of the held-out split")
    parser.add_argument("--device", default="cpu", help="device of the generator and classifier: cpu (default), auto, cuda")
    parser.add_argument("--no-real", dest="real", action="store_false",
                        help="skip the real-MNIST reference row (10,000 training images)")
    parser.add_argument("--no-parzen", dest="parzen", action="store_false", help="skip the Parzen log-likelihood (the slowest metric)")


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from ..classifier import ClassifierError, load_classifier
    from ..metrics.evaluate import PAPER_PARZEN, evaluate_images, load_mnist_reference, load_npz, sample_generator

    if args.source is None and not args.real:
        raise ValueError("nothing to evaluate: give a checkpoint or .npz, or drop --no-real")
    if not Path(args.classifier).is_file():
        raise ClassifierError(f"classifier file {args.classifier!r} does not exist; {MISSING_CLASSIFIER_ADVICE}")
    device = _device(args.device)
    classifier = load_classifier(args.classifier).to(device)
    with _mnist_never_downloaded("eval", args.data_root):
        reference = load_mnist_reference(args.data_root, seed=args.seed)
    rows: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    if args.source is not None:
        start = time.perf_counter()
        images, labels, pixel_range, source = _load_source(args.source, args.per_class, args.seed, device)
        rows["generated"] = evaluate_images(images, labels, classifier, reference, pixel_range=pixel_range,
                                            source=source, parzen=args.parzen)
        seconds["generated"] = time.perf_counter() - start
    if args.real:
        start = time.perf_counter()
        rows["real MNIST train"] = evaluate_images(reference.train_images, reference.train_labels, classifier, reference,
                                                   source=reference.description["real_row"], parzen=args.parzen)
        seconds["real MNIST train"] = time.perf_counter() - start
    print(format_table(rows, seconds))
    if args.parzen:
        print("paper, Table 1 (Parzen LL, same protocol): " + "; ".join(f"{k} {v:.0f} +/- {s}" for k, (v, s) in PAPER_PARZEN.items()))
    ident = classifier.protocol
    print(f"classifier {args.classifier} sha256 {classifier.sha256[:16]}... test accuracy "
          f"{ident.get('training', {}).get('test_accuracy', float('nan')):.4f}; reference: {reference.description['reference']}")
    if args.json_out:
        payload = {
            "arguments": {k: v for k, v in vars(args).items() if k not in ("command", "command_name")},
            "data_root": str(args.data_root), "classifier": {"path": str(args.classifier), "sha256": classifier.sha256},
            "reference": reference.description, "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "rows": {name: {key: r.to_dict() for key, r in results.items()} for name, results in rows.items()},
            "paper_parzen": {k: {"value": v, "stderr": s} for k, (v, s) in PAPER_PARZEN.items()},
            "torch": torch.__version__,
        }
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.json_out}")
    return 0


@contextlib.contextmanager
def _mnist_never_downloaded(command: str, root: str):
    """Missing MNIST, in the words of a command that never downloads (it has no --no-download to drop)."""
    from ..data import DatasetNotFoundError

    try:
        yield
    except DatasetNotFoundError:
        raise DatasetNotFoundError(f"MNIST not found under {root!r} (expected {root}/MNIST/raw); condgan {command} never "
                                   "downloads: point --data-root at the folder that holds MNIST/raw (condgan train "
                                   "downloads it into its --data-root)") from None


def _device(name: str):
    from ..trainer import resolve_device

    return resolve_device(name)


def _load_source(source: str, per_class: int, seed: int, device) -> tuple[Any, Any, tuple[float, float] | None, str]:
    """(images, labels, pixel_range, description) from an .npz or from a generator's samples."""
    from ..metrics.evaluate import load_npz, sample_generator

    path = Path(source)
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"{source!r} does not exist")
        images, labels = load_npz(path)
        return images, labels, (0.0, 1.0), f"{source} (npz, {len(labels)} images)"
    import condgan

    generator = condgan.load_generator(source, device=device)
    num_classes = getattr(getattr(generator, "config", None), "num_classes", None) or 10
    images, labels, pixel_range = sample_generator(generator, per_class=per_class, num_classes=num_classes, seed=seed)
    return images, labels, pixel_range, f"{source} ({per_class} samples per class, seed {seed})"


def format_table(rows: dict[str, dict[str, Any]], seconds: dict[str, float] | None = None) -> str:
    """A plain-text table of the headline figures, one line per evaluated set, then per-class label accuracy."""
    head = ["set", "n", "label acc", "FID", "intra-FID", "Parzen LL (sigma)", "precision", "recall", "density", "coverage", "s"]
    lines = []
    for name, r in rows.items():
        parzen = r.get("parzen_log_likelihood")
        pr, dc = r.get("precision_recall"), r.get("density_coverage")
        lines.append([
            name, str(r["label_accuracy"].protocol["samples"]), f"{r['label_accuracy'].value:.4f}", f"{r['fid'].value:.3f}",
            f"{r['intra_class_fid'].value:.3f}",
            f"{parzen.value:.1f} +/- {parzen.details['stderr']:.1f} ({parzen.details['sigma']:.3f})" if parzen else "-",
            f"{pr.value['precision']:.3f}" if pr else "-", f"{pr.value['recall']:.3f}" if pr else "-",
            f"{dc.value['density']:.3f}" if dc else "-", f"{dc.value['coverage']:.3f}" if dc else "-",
            f"{(seconds or {}).get(name, float('nan')):.0f}",
        ])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    out.append("")
    out.append("per-class label accuracy: " + "  ".join(f"{k}" .rjust(5) for k in range(10)))
    for name, r in rows.items():
        per = r["label_accuracy"].details["per_class"]
        out.append(f"  {name:<23} " + "  ".join("  -  " if p is None else f"{p:.3f}" for p in per))
    return "\n".join(out)


@hookimpl
def register_commands():
    return [
        Command("eval", "label accuracy, FID, intra-class FID, Parzen LL, precision/recall of samples vs MNIST",
                add_eval_arguments, run_eval),
        Command("train-classifier", "train the MNIST classifier that condgan's metrics use",
                add_train_classifier_arguments, run_train_classifier),
    ]
