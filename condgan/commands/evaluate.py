"""``condgan eval`` and ``condgan train-classifier``: judge samples with condgan's metrics.

``train-classifier`` trains a judge on a registered dataset (:mod:`condgan.metrics.judge_training`);
``eval`` reads one or more sample files or runs through a judge, one table row each under the same
protocol, with the dataset's real images as a reference row, and optionally the Inception metrics
(:mod:`condgan.metrics.inception`); vector models are judged by their vectors against held-out real
ones (``--reference FILE``, :mod:`.evaluate_vectors`). Errors are raised as ValueError/OSError subclasses and printed
by :mod:`condgan.cli` as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..hookspecs import hookimpl
from . import Command, non_negative_int, parse_override, positive_float, positive_int
from ..checkpoint.generator import saved_data as model_data  # noqa: F401 - where it was
from .tables import COLUMNS, format_table  # noqa: F401 - where they were

IMAGE_READER = "condgan eval with a judge (vector models: --reference FILE)"
MISSING_CLASSIFIER_ADVICE = ("train one with: condgan train-classifier --dataset NAME --data-root DIR --out FILE "
                             "(a few minutes on a CPU)")


# -- condgan train-classifier -------------------------------------------------------------------------
def add_train_classifier_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="mnist", help="a registered dataset (condgan list dataset); default mnist")
    parser.add_argument("--data-root", help="folder holding the dataset (MNIST: DIR/MNIST/raw); nothing is downloaded")
    parser.add_argument("--out", required=True, help="the judge file to write (e.g. runs/judge_mnist28.pt)")
    parser.add_argument("--image-size", type=positive_int, help="train at SxS (the size of the samples it will judge); "
                                                                "default the dataset's own size")
    parser.add_argument("--channels", type=positive_int, help="convert the images to this many channels (default: the dataset's)")
    parser.add_argument("--options", nargs="*", default=[], type=parse_override, metavar="KEY=VALUE",
                        help="the dataset's options, e.g. --options num_classes=4")
    parser.add_argument("--arch", choices=["cnn", "resnet", "mnist-cnn", "judge-cnn"], default="cnn",
                        help="network: cnn (default: the MNIST CNN for MNIST, a CNN sized to the data otherwise), resnet "
                             "(a small ResNet sized to the data), or mnist-cnn / judge-cnn by name")
    parser.add_argument("--augment", action="store_true",
                        help="train with random rotations (up to 10 degrees) and shifts (up to a tenth of the side) "
                             "instead of the plain small shifts; no noise")
    parser.add_argument("--epochs", type=positive_float,
                        help="passes over the training images (default: until the held-out accuracy stops improving "
                             "for 3 epochs, at most --max-epochs)")
    parser.add_argument("--max-epochs", type=positive_int, default=30, help="the cap without --epochs (default 30)")
    parser.add_argument("--holdout", type=_fraction, default=0.1,
                        help="the part of each class held out of a flat image folder (no test/ folder) to measure the "
                             "judge and as the reference set of FID (default 0.1; drawn with --holdout-seed)")
    parser.add_argument("--holdout-seed", type=non_negative_int, default=0,
                        help="seed of the held-out draw (default 0, whatever --seed is: judges of different seeds "
                             "are measured on the same images)")
    parser.add_argument("--batch-size", type=positive_int, default=128, help="images per training step (default 128)")
    parser.add_argument("--hflip", action="store_true", help="also augment with horizontal flips (not for digits or text)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed of the weights, augmentation and batch order (default 0)")


def run_train_classifier(args: argparse.Namespace) -> int:
    from ..metrics.judge_training import train_judge

    start = time.perf_counter()
    from ..data import DatasetNotFoundError

    try:
        details = train_judge(args.dataset, args.data_root, args.out, image_size=args.image_size, channels=args.channels,
                              options=dict(args.options), arch=args.arch, epochs=args.epochs, seed=args.seed,
                              batch_size=args.batch_size, hflip=args.hflip, augment=args.augment, holdout=args.holdout,
                              holdout_seed=args.holdout_seed, max_epochs=args.max_epochs)
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(f"{str(exc).split(' and --no-download')[0]}; condgan train-classifier never downloads: "
                                   "point --data-root at the folder that holds the dataset (for MNIST: the folder that "
                                   "holds MNIST/raw)") from None
    held = details["held_out"]
    score = (f"accuracy {held['accuracy']:.4f}" if "accuracy" in held else f"RMSE {held['rmse']:.4f}, R^2 {held['r2']:.3f}")
    where = held.get("rule") or held["split"]
    epochs = details["stopping"] if "stopping" in details else f"{details['epochs']:g} epochs"
    print(f"held-out {score} on {held['images']} {args.dataset} images ({where}); trained {details['steps']} steps "
          f"({epochs}) in {details['train_seconds']:.0f} s ({time.perf_counter() - start:.0f} s in all)")
    print(f"judge recipe: arch {args.arch}{' (' + details['network'] + ')' if args.arch == 'cnn' else ''}, "
          f"augmentation: {details['augmentation']}, seed {args.seed}")
    if held.get("rule", "").startswith("a stratified"):
        print(f"to train a GAN on the images this judge did not see: --set data.options.exclude_judge={args.out}")
    print(f"wrote {args.out} (sha256 {details['sha256']})")
    floor = 0.99 if args.dataset == "mnist" else 0.9
    if "accuracy" in held and held["accuracy"] < floor:
        print(f"warning: held-out accuracy {held['accuracy']:.4f} is below {floor}; train longer (--epochs, --max-epochs) "
              "or on more images", file=sys.stderr)
    from ..metrics.judge import WEAK_CLASS_ACCURACY

    names = details.get("class_names")
    weak = [(k, a) for k, a in enumerate(held.get("per_class_accuracy") or []) if a is not None and a < WEAK_CLASS_ACCURACY]
    if weak:
        listed = ", ".join(f"{names[k] if names else k} {a:.3f}" for k, a in weak)
        print(f"warning: the judge is weak on {len(weak)} class(es) (held-out accuracy below {WEAK_CLASS_ACCURACY}: {listed}); "
              "label accuracy of samples of those classes is unreliable", file=sys.stderr)
    return 0


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction between 0 and 1 (e.g. 0.1), got {text}")
    return value


# -- condgan eval -------------------------------------------------------------------------------------
def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="checkpoints, run directories or generator.pt files (sampled), or .npz files of images "
                             "(N, C, H, W) float32 in [0, 1] and labels (N,) int64: one table row each; a group of runs "
                             "(condgan train --seeds/--sweep): a row per run and each metric's mean, std, min and max "
                             "over them; none: only the real row")
    parser.add_argument("--classifier", "--judge", dest="classifier",
                        help=f"the judge file, for image models ({MISSING_CLASSIFIER_ADVICE})")
    parser.add_argument("--reference", metavar="FILE",
                        help="vector models: held-out real vectors, a tensors .npz/.pt ('outputs' (N, D) and their labels, tags "
                             "or vectors); table models: held-out real rows, a .csv/.parquet (default: the rows the run "
                             "held out, data.options.holdout); each source is judged against them (no --classifier)")
    parser.add_argument("--real", dest="real_vectors", metavar="FILE",
                        help="with --reference: the real training vectors (a tensors file) as a reference row, or the real "
                             "training rows of a table model (for ML efficacy and DCR)")
    parser.add_argument("--predict", metavar="COLUMN",
                        help="table models: the column ML efficacy predicts (default: the condition column)")
    parser.add_argument("--judges", metavar="A.pt,B.pt,C.pt",
                        help="several judge files trained independently (another --arch, --augment, --seed), separated "
                             "by commas: every figure under each judge and as the worst case over them (instead of --judge)")
    parser.add_argument("--target", action="append", default=[], type=_target, metavar="METRIC>=VALUE",
                        help="a quality target, e.g. label_accuracy>=0.99 or fid<=5 (repeatable): met only when every "
                             "judge's figure meets it; exit status 1 when a source misses one")
    parser.add_argument("--worst-grid", metavar="FILE.png",
                        help="draw, under each judge, each class's lowest-scored samples (lowest probability of the asked "
                             "class), one row per class (several sources or judges: FILE_SOURCE_J<k>.png)")
    parser.add_argument("--worst-per-class", type=positive_int, default=8,
                        help="samples per class in --worst-grid (default 8)")
    parser.add_argument("--data-root", help="folder holding the judge's dataset (MNIST: DIR/MNIST/raw); a table run: its "
                                            "table file, where it moved since training")
    parser.add_argument("--json", dest="json_out", help="also write every figure with its protocol to this JSON file")
    parser.add_argument("--per-class", type=positive_int, default=1000, help="samples per class from a checkpoint (default 1000)")
    parser.add_argument("--samples", type=positive_int, default=10000,
                        help="samples from a checkpoint with tag or vector conditions (the reference's first N conditions)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the samples and of the held-out split")
    parser.add_argument("--device", default="cpu", help="device of the generators and the judge: cpu (default), auto, cuda")
    parser.add_argument("--no-real", dest="real", action="store_false", help="skip the real reference row (training images)")
    parser.add_argument("--no-parzen", dest="parzen", action="store_false", help="skip the Parzen log-likelihood (MNIST; the slowest metric)")
    parser.add_argument("--no-knn", dest="knn", action="store_false", help="skip precision/recall and density/coverage")
    parser.add_argument("--allow-other-data", action="store_true",
                        help="compare models whose training data differs from the judge's (another dataset name, class "
                             "list or image statistics) anyway")
    parser.add_argument("--inception", action="store_true",
                        help="also FID, Inception Score and KID from Inception-v3 (torch-fidelity, local weights)")
    parser.add_argument("--inception-weights", metavar="PATH",
                        help="torch-fidelity's weights-inception-2015-12-05-6726825d.pth (default: torch hub's cache); implies --inception")


def run_eval(args: argparse.Namespace) -> int:
    import torch

    from ..metrics.agreement import load_judges, worst_case
    from ..metrics.evaluate import PAPER_PARZEN, evaluate_images
    from . import judges as several

    if args.reference:
        from .evaluate_tables import TABLE_SUFFIXES, run_table_eval
        from .evaluate_vectors import run_vector_eval

        return (run_table_eval if Path(args.reference).suffix.lower() in TABLE_SUFFIXES else run_vector_eval)(args)
    if _judged_by_rows(args):  # a table model, read first: its own held-out rows judge it
        from .evaluate_tables import run_table_eval

        return run_table_eval(args)
    if args.real_vectors:
        raise ValueError("--real FILE goes with --reference FILE (vector models); image models take their real row from the judge's data")
    paths = several.judge_paths(args)
    if not args.sources and not args.real:
        raise ValueError("nothing to evaluate: give checkpoints or .npz files, or drop --no-real")
    from ..checkpoint import check_output_kind, saved_output

    sources, groups = _expand_groups(args.sources)  # a group's runs in its place
    for source, _ in sources:  # a model this judge cannot read fails before the judge and data load
        if Path(source).suffix != ".npz":
            check_output_kind(saved_output(source), ("image",), IMAGE_READER, source)
    device = _device(args.device)
    inception = None
    if args.inception or args.inception_weights:
        from ..metrics.inception import InceptionMetrics

        inception = InceptionMetrics(args.inception_weights, device=device)  # a missing file fails before any work
    judges = [j.to(device) for j in load_judges(paths)]
    judge, many = judges[0], len(judges) > 1
    if args.worst_grid and judge.kind != "class":
        raise ValueError(f"--worst-grid draws the samples of each class; the judge reads {judge.kind} conditions")
    references = _references(judges, args.data_root, args.seed)
    reference = references[0]
    per_judge: list[dict[str, dict[str, Any]]] = [{} for _ in judges]
    samples: dict[str, tuple] = {}
    seconds: dict[str, float] = {}
    for source, given_name in sources:
        start = time.perf_counter()
        images, labels, pixel_range, described = _load_source(source, args.per_class, args.seed, device, judge=judge,
                                                                 reference=reference, samples=args.samples,
                                                                 other_data=args.allow_other_data)
        for other in judges[1:]:
            _check_model_data(source, other, args.allow_other_data)
        name = given_name or ("generated" if len(sources) == 1 else _row_name(source, per_judge[0]))
        samples[name] = (images, labels, pixel_range)
        for k, (j, ref) in enumerate(zip(judges, references)):
            per_judge[k][name] = evaluate_images(images, labels, j, ref, pixel_range=pixel_range, source=described,
                                                 parzen=args.parzen and k == 0, knn=args.knn)
        if inception is not None:
            per_judge[0][name].update(inception.evaluate(images, reference.test_images, pixel_range=pixel_range))
        seconds[name] = time.perf_counter() - start
    if args.real:
        start = time.perf_counter()
        name = f"real {judge.dataset} train"
        for k, (j, ref) in enumerate(zip(judges, references)):
            per_judge[k][name] = evaluate_images(ref.train_images, ref.train_labels, j, ref, source=ref.description["real_row"],
                                                 parzen=args.parzen and k == 0, knn=args.knn)
        if inception is not None:
            per_judge[0][name].update(inception.evaluate(reference.train_images, reference.test_images))
        if not samples:
            samples[name] = (reference.train_images, reference.train_labels, None)
        seconds[name] = time.perf_counter() - start
    rows = per_judge[0]
    worst = {name: worst_case([r[name] for r in per_judge]) for name in rows} if many else rows
    if many:
        several.print_report(paths, judges, references, per_judge, worst, seconds)
    else:
        print(format_table(rows, seconds, class_names=judge.class_names, weak=judge.weak_classes()))
    group_summaries = {group: _group_summary(group, names, worst) for group, names in groups.items()}
    if any("parzen_log_likelihood" in r for r in rows.values()):
        print("paper, Table 1 (Parzen LL, same protocol): " + "; ".join(f"{k} {v:.0f} +/- {s}" for k, (v, s) in PAPER_PARZEN.items()))
    if not many:
        print(several.judge_line(paths[0], judge, reference))
    if inception is not None:
        print(f"Inception: {inception.describe()}")
    targets = several.check_targets(args.target, list(samples), per_judge, judges)  # the sources (or the real row)
    grids = several.write_worst_grids(args.worst_grid, args.worst_per_class, samples, judges) if args.worst_grid else []
    if args.json_out:
        payload = {
            "arguments": {k: (v if k != "target" else [str(t) for t in v]) for k, v in vars(args).items()
                          if k not in ("command", "command_name", "options")},
            "data_root": args.data_root,
            "classifier": ({"path": str(paths[0]), "sha256": judge.sha256, "protocol": judge.identity()} if not many else
                           {"path": ",".join(map(str, paths)), "sha256": ",".join(j.sha256[:16] for j in judges),
                            "protocol": judge.identity(), "worst_case_over": len(judges)}),
            "reference": reference.description, "seconds": {k: round(v, 1) for k, v in seconds.items()},
            "rows": {name: {key: r.to_dict() for key, r in results.items()} for name, results in worst.items()},
            "paper_parzen": {k: {"value": v, "stderr": s} for k, (v, s) in PAPER_PARZEN.items()},
            "groups": group_summaries,
            "torch": torch.__version__,
        }
        if many:
            payload["judges"] = several.judges_payload(paths, judges, references, per_judge)
            payload["rows_are"] = "the worst case over the judges (each judge's own rows: judges[k].rows)"
        if targets:
            payload["targets"] = targets
        if grids:
            payload["worst_grids"] = grids
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=1, default=str) + "\n")
        print(f"wrote {args.json_out}")
    return 1 if any(not t["met"] for t in targets) else 0


def _judged_by_rows(args: argparse.Namespace) -> bool:
    """Whether the sources (checkpoints, runs, generator files) make table rows, read before any judge
    loads: True for table models, False for image models (and .npz files, groups and kinds no judge
    reads, which the image path refuses); one line for a vector model without --reference, a table
    model with --judge, or sources of several kinds."""
    from ..checkpoint import saved_output
    from ..runs.groups import is_group

    kinds = {source: saved_output(source).name for source in args.sources
             if Path(source).suffix != ".npz" and not is_group(source)}
    if not kinds or set(kinds.values()) == {"image"}:
        return False
    if len(set(kinds.values())) > 1:
        raise ValueError("condgan eval judges one output kind at a time: " + ", ".join(f"{s} makes {k}" for s, k in kinds.items()))
    source, kind = next(iter(kinds.items()))
    if kind == "table":
        if args.classifier or args.judges:
            raise ValueError(f"{source} makes table rows, which a judge file does not read: drop --judge/--judges "
                             "(condgan eval RUN judges rows against the run's held-out rows, or --reference HELDOUT.csv)")
        return True
    if kind == "vector":
        raise ValueError(f"{source} makes vector outputs: judge them against held-out real ones with --reference FILE "
                         "(a tensors file: outputs and conditions), not a judge")
    return False  # another kind: the image path refuses it in one line


def _target(text: str):
    from ..metrics.agreement import parse_target

    try:
        return parse_target(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _references(judges, data_root, seed: int) -> list:
    """Each judge's reference set; judges whose protocol names the same held-out images share one."""
    from ..metrics.evaluate import load_reference

    cache: dict[str, Any] = {}
    out = []
    for judge in judges:
        data, held = judge.protocol.get("dataset") or {}, judge.protocol.get("held_out") or {}
        key = json.dumps([judge.legacy, data.get("name"), data.get("options"), data.get("load"), held.get("split"),
                          held.get("rule"), held.get("files_sha256")], sort_keys=True, default=str)
        if key not in cache:
            cache[key] = load_reference(judge, data_root, seed=seed)
        out.append(cache[key])
    return out


def _check_model_data(source: str, judge, other_data: bool) -> None:
    """The data checks of :func:`_load_source` under another judge of the set (a generator source only)."""
    if Path(source).suffix == ".npz":
        return
    from ..checkpoint import load_generator

    check_same_data(source, load_generator(source, device="cpu").config, judge)
    if not other_data:
        check_same_dataset(source, model_data(source), judge)


def _expand_groups(sources: list[str]) -> tuple[list[tuple[str, str | None]], dict[str, list[str]]]:
    """(source, row name or None) for every source, a group's runs in its place (rows ``GROUP/RUN``),
    and group -> its rows' names."""
    from ..runs.groups import GroupError, group_run_dirs, is_group

    out: list[tuple[str, str | None]] = []
    groups: dict[str, list[str]] = {}
    for source in sources:
        if not is_group(source):
            out.append((source, None))
            continue
        runs = group_run_dirs(source)
        if not runs:
            raise GroupError(f"the group {source} has no trained run yet (condgan train --out {source} --resume)")
        label = source.rstrip("/")
        groups[label] = [f"{label}/{name}" for name, _ in runs]
        out += [(str(path), f"{label}/{name}") for name, path in runs]
    return out, groups


def _group_summary(group: str, names: list[str], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Print each metric of the group's runs as mean +/- std (min, max) and the best run; returns it for --json."""
    from ..runs.summary import best_metric, lower_is_better, scalars, spreads

    summary = spreads({name.rsplit("/", 1)[1]: scalars(rows[name]) for name in names})
    print(f"\ngroup {group}: {len(names)} runs; mean +/- sample std (min, max) over the runs:")
    for metric, s in summary.items():
        print(f"  {metric:<28} {s.text()}")
    key = best_metric(summary)
    if key is not None:
        s, lower = summary[key], lower_is_better(key)
        print(f"best run by {key} ({'lowest' if lower else 'highest'}): {group}/{s.best} ({key} {s.min if lower else s.max:.4f})")
    return {"runs": names, "metrics": {k: v.to_dict() for k, v in summary.items()},
            "best": {"metric": key, "run": summary[key].best} if key else None}


def _row_name(source: str, rows: dict) -> str:
    name, k = source, 2
    while name in rows:
        name, k = f"{source} ({k})", k + 1
    return name


def _device(name: str):
    from ..training.setup import resolve_device

    return resolve_device(name)


def _load_source(source: str, per_class: int, seed: int, device, *, judge=None, reference=None,
                 samples: int = 10000, other_data: bool = False) -> tuple[Any, Any, Any, str]:
    """(images, conditions, pixel_range, description) from an .npz or from a generator's samples.

    Class-conditional generators give ``per_class`` samples per class; others one per condition of
    the reference set (its first ``samples``). With a judge, a model trained on another dataset is refused.
    """
    from ..metrics.evaluate import load_npz, sample_generator

    path = Path(source)
    if path.suffix == ".npz":
        if not path.is_file():
            raise FileNotFoundError(f"{source!r} does not exist")
        images, labels = load_npz(path)
        return images, labels, (0.0, 1.0), f"{source} (npz, {len(labels)} images)"
    from ..checkpoint import load_generator

    generator = load_generator(source, device=device, outputs=("image",), reader=IMAGE_READER)
    config = generator.config
    if judge is not None:
        check_same_data(source, config, judge)
        if not other_data:
            check_same_dataset(source, model_data(source), judge)
    if config.spec.kind == "class":
        images, labels, pixel_range = sample_generator(generator, per_class=per_class, num_classes=config.num_classes, seed=seed)
        return images, labels, pixel_range, f"{source} ({per_class} samples per class, seed {seed})"
    if reference is None:
        raise ValueError(f"{source} has {config.spec.kind} conditions: sampling it needs the reference set's conditions")
    conditions = reference.test_labels[:samples]
    images, labels, pixel_range = sample_generator(generator, conditions=conditions, seed=seed)
    return images, labels, pixel_range, f"{source} (one sample per reference condition, first {len(conditions)}, seed {seed})"


@hookimpl
def register_commands():
    return [
        Command("eval", "label accuracy, FID, intra-class FID, precision/recall (Parzen LL for MNIST; Inception "
                        "metrics on request) of samples, one row per source", add_eval_arguments, run_eval),
        Command("train-classifier", "train a judge (classifier or regressor) for condgan's metrics on a dataset",
                add_train_classifier_arguments, run_train_classifier),
    ]


def check_same_data(source: str, config, judge) -> None:
    """Refuse a model whose condition or images differ from the judge's data (another dataset), in one line."""
    from ..metrics.judge import JudgeMismatchError

    differences = []
    judge_kind = "vector" if judge.kind == "vector" else judge.kind
    if config.condition_kind != judge_kind:
        differences.append(f"the model has {config.condition_kind!r} conditions, the judge {judge_kind!r}")
    elif judge.num_classes is not None and config.num_classes != judge.num_classes:
        differences.append(f"the model has {config.num_classes} classes, the judge {judge.num_classes}")
    elif config.class_names and judge.class_names and tuple(config.class_names) != tuple(judge.class_names):
        differences.append(f"the model's classes are {', '.join(config.class_names[:4])}..., the judge's "
                           f"{', '.join(judge.class_names[:4])}...")
    if config.image_shape[0] != judge.image_shape[0]:
        differences.append(f"the model makes {config.image_shape[0]}-channel images, the judge reads {judge.image_shape[0]}")
    if differences:
        raise JudgeMismatchError(f"{source}: the samples and the judge come from different datasets ({'; '.join(differences)}); "
                                 f"the judge was trained on {judge.dataset}: train one on the model's data "
                                 "(condgan train-classifier --dataset NAME)")



def check_same_dataset(source: str, record: dict[str, Any] | None, judge) -> None:
    """Refuse, in one line, a model whose recorded training data is not the judge's dataset."""
    from ..data.fingerprint import compare_fingerprints
    from ..metrics.judge import JudgeMismatchError

    theirs = (judge.protocol.get("dataset") or {}).get("fingerprint") or {"name": judge.dataset}
    differences = compare_fingerprints(record, theirs) if record else []
    if differences:
        raise JudgeMismatchError(f"{source}: the model's training data is not the judge's ({'; '.join(differences)}); "
                                 "train a judge on the model's data (condgan train-classifier --dataset NAME), or pass "
                                 "--allow-other-data to compare anyway")
