"""Time to quality: train presets for a wall-clock budget, judge them at fixed intervals, report minutes to each threshold.

Protocol (every figure in the JSON carries it):

- each contender trains alone, one after another, on this machine's CPU (or ``--device``) with
  ``--threads`` intra-op threads, from seed ``--seed``, on MNIST's 60,000 training images (at the
  preset's image size);
- condgan presets train with :class:`condgan.Trainer` (the fast step, its EMA settings from the
  preset's ``trainer`` unless ``--no-preset-trainer``); the reference loop
  (``benchmarks/reference_loop.py``: PyTorch-GAN's ``cgan.py``, the loop ``mnist_mlp`` reproduces)
  trains under the same clock;
- every ``--eval-every`` minutes of training time (evaluation time is not counted) the contender's
  sampling generator (the EMA copy when on) draws ``--per-class`` images of each class (labels in
  order, seed ``--seed``) and :func:`condgan.metrics.evaluate_images` judges them against the MNIST
  test set with the classifier ``--classifier`` (its SHA-256 is recorded): label accuracy, FID and
  recall (k-NN, the metric's own k); no Parzen;
- minutes to a threshold = the training time of the first evaluation that reached it (so the
  resolution is ``--eval-every``); ``null`` when the budget ended first;
- with ``--judges A.pt,B.pt,C.pt`` (judges trained independently: ``condgan train-classifier --arch
  cnn --seed 0``, ``--arch resnet --seed 1``, ``--arch cnn --augment --seed 2``) the same samples are
  judged under each; every point holds each judge's figures (``per_judge``) and, at its top level,
  the worst case over them (lowest label accuracy and recall, highest FID), which is what the
  minutes to a threshold count: a threshold is reached only when every judge sees it
  (``minutes_to_per_judge`` gives each judge's own).

    python benchmarks/time_to_quality.py --data-root ../shared/data --classifier runs/classifier.pt \\
        --preset resnet_projection --preset dcgan_projection --minutes 10 --eval-every 1 --json out.json

A smoke run: ``--minutes 0.5 --eval-every 0.25 --per-class 50``. The classifier is made with
``condgan train-classifier`` (or ``--train-classifier EPOCHS`` here, written to ``--classifier``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

#: (metric, direction, thresholds): minutes to each are reported
THRESHOLDS = {"label_accuracy": ("above", (0.95, 0.98, 0.99)), "fid": ("below", (50.0, 20.0, 10.0)),
              "recall": ("above", (0.3, 0.5))}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", required=True, help="folder holding MNIST (torchvision layout: DIR/MNIST/raw)")
    p.add_argument("--classifier", "--judge", dest="classifier",
                   help="the judge file (condgan train-classifier --dataset mnist --image-size S, S the contenders' image size)")
    p.add_argument("--judges", metavar="A.pt,B.pt,C.pt",
                   help="several judge files (instead of --classifier): figures per judge and as the worst case over them")
    p.add_argument("--train-classifier", type=float, metavar="EPOCHS",
                   help="train the classifier for EPOCHS epochs into --classifier first when the file is missing")
    p.add_argument("--preset", action="append", dest="presets", help="a preset to time (repeatable; default resnet_projection)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for every preset, e.g. augment=diffaugment (values are Python literals or strings)")
    p.add_argument("--no-reference", dest="reference", action="store_false", help="skip the reference loop")
    p.add_argument("--no-preset-trainer", dest="preset_trainer", action="store_false",
                   help="ignore the presets' trainer settings (EMA)")
    p.add_argument("--minutes", type=float, default=10.0, help="training time per contender (default 10)")
    p.add_argument("--eval-every", type=float, default=1.0, help="minutes of training between evaluations (default 1)")
    p.add_argument("--per-class", type=int, default=1000, help="samples per class at each evaluation (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--json", dest="json_out", help="write the curves, minutes to thresholds and protocol here")
    p.add_argument("--markdown", help="write the minutes-to-threshold table here")
    args = p.parse_args(argv)
    if not args.minutes > 0 or not 0 < args.eval_every <= args.minutes:
        p.error(f"need 0 < --eval-every <= --minutes, got --eval-every {args.eval_every}, --minutes {args.minutes}")
    if args.per_class < 1:
        p.error(f"--per-class must be >= 1, got {args.per_class}")
    if bool(args.classifier) == bool(args.judges):
        p.error("give either --classifier FILE or --judges A.pt,B.pt,C.pt")
    if args.judges and args.train_classifier is not None:
        p.error("--train-classifier trains one judge into --classifier; train several with condgan train-classifier")
    args.presets = args.presets or ["resnet_projection"]
    return args


def parse_override(text: str) -> tuple[str, Any]:
    import ast

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set takes KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


class Judge:
    """The fixed metric: label accuracy, FID and recall of ``per_class`` samples per class, under one judge or several.

    ``paths`` is one judge file or several; each judge reads the same samples against its own
    reference set. A call returns the worst case over the judges with each judge's figures under
    ``"per_judge"`` (one judge: its figures, and ``per_judge`` holding them once).
    """

    def __init__(self, data_root: str, paths: str | list[str], per_class: int, seed: int, device: torch.device):
        from condgan.metrics.agreement import load_judges
        from condgan.metrics.evaluate import load_reference

        self.paths = [paths] if isinstance(paths, str) else list(paths)
        self.judges = [j.to(device) for j in load_judges(self.paths)]  # judge files, or a legacy classifier file
        self.classifier = self.judges[0]
        self.identity = self.classifier.identity()
        self.identities = [{"path": p, "label": j.label(), **j.identity()} for p, j in zip(self.paths, self.judges)]
        self.references = [load_reference(j, data_root, seed=seed) for j in self.judges]
        self.reference = self.references[0]
        self.per_class, self.seed, self.device = per_class, seed, device
        self.protocol: dict[str, Any] | None = None

    def __call__(self, generator: Any, pixel_range: tuple[float, float]) -> dict[str, Any]:
        from condgan.metrics import evaluate_images, sample_generator
        from condgan.metrics.agreement import worse

        images, labels, _ = sample_generator(generator, per_class=self.per_class, num_classes=10, seed=self.seed)
        per_judge = []
        for judge, reference in zip(self.judges, self.references):
            results = evaluate_images(images, labels, judge, reference, pixel_range=pixel_range,
                                      parzen=False, knn=True, source="time_to_quality samples")
            if self.protocol is None:
                self.protocol = {name: r.protocol for name, r in results.items()}
            per_judge.append({"label_accuracy": float(results["label_accuracy"].value), "fid": float(results["fid"].value),
                              "recall": float(results["precision_recall"].value["recall"]),
                              "precision": float(results["precision_recall"].value["precision"])})
        worst = {m: per_judge[0][m] for m in per_judge[0]}
        for scores in per_judge[1:]:
            worst = {m: (v if worse(m, v, worst[m]) else worst[m]) for m, v in scores.items()}
        return {**worst, "per_judge": per_judge}


class ReferenceSampler(torch.nn.Module):
    """The reference loop's generator with condgan's ``sample(y)`` interface (N(0, 1) noise, eval mode)."""

    pixel_range = (-1.0, 1.0)

    def __init__(self, generator: torch.nn.Module, latent_dim: int):
        super().__init__()
        self.generator, self.latent_dim = generator, latent_dim

    @torch.no_grad()
    def sample(self, y: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        was = self.generator.training
        self.generator.eval()
        try:
            z = torch.randn(len(y), self.latent_dim, device=y.device, generator=generator)
            return self.generator(z, y)
        finally:
            self.generator.train(was)


def curve(name: str, train_for: Callable[[float], int], sampler: Callable[[], Any], pixel_range, judge: Judge,
          minutes: float, every: float) -> list[dict[str, float]]:
    """Train ``name`` in intervals of ``every`` minutes up to ``minutes``; judge after each."""
    points = []
    for k in range(1, math.floor(minutes / every + 1e-9) + 1):
        steps = train_for(k * every)
        start = time.perf_counter()
        scores = judge(sampler(), pixel_range)
        points.append({"minutes": round(k * every, 4), "steps": steps, **scores,
                       "eval_seconds": round(time.perf_counter() - start, 1)})
        spread = "" if len(scores["per_judge"]) < 2 else " (worst of {}; per judge: {})".format(
            len(scores["per_judge"]), "; ".join(", ".join(f"{m} {v:.3f}" for m, v in each.items()) for each in scores["per_judge"]))
        print(f"{name}: {k * every:.2f} min, {steps} steps: " +
              ", ".join(f"{m} {v:.3f}" for m, v in scores.items() if m != "per_judge") + spread, flush=True)
    return points


def condgan_contender(preset: str, overrides: dict[str, Any], args: argparse.Namespace, device: torch.device):
    import condgan
    from condgan.data import load_mnist

    run = condgan.run_config(preset, overrides)
    config = run.model
    if config.image_shape is None or config.num_classes is None:  # a preset that fits the data: MNIST's
        config = dataclasses.replace(config, image_shape=config.image_shape or (1, 28, 28), num_classes=config.num_classes or 10)
    images, labels = load_mnist(args.data_root, train=True, image_size=config.image_shape[1], download=False)
    training = run.training if args.preset_trainer else condgan.TrainerConfig(batch_size=run.training.batch_size)
    trainer = condgan.Trainer(config, dataclasses.replace(
        training, steps=None, epochs=None, minutes=args.eval_every, device=str(device), seed=args.seed, loggers=(),
        checkpoint_every=None, sample_every=0, log_every=100), data=(images, labels))

    def train_for(total_minutes: float) -> int:
        trainer.config.minutes = total_minutes  # budgets count the whole run: this continues it
        trainer.train()
        return trainer.step

    return train_for, lambda: trainer.sampling_generator, config.pixel_range, {
        "preset": preset, "overrides": {k: repr(v) for k, v in overrides.items()}, "trainer": trainer.config.to_dict()}


def reference_contender(args: argparse.Namespace, device: torch.device):
    from reference_loop import ReferenceLoop

    torch.manual_seed(args.seed)
    import numpy as np

    np.random.seed(args.seed)
    loop = ReferenceLoop(args.data_root, device)
    if loop.data_source != "mnist":
        raise SystemExit(f"the reference loop found no MNIST under {args.data_root}")
    state = {"seconds": 0.0, "steps": 0}

    def train_for(total_minutes: float) -> int:
        while state["seconds"] < total_minutes * 60:
            start = time.perf_counter()
            loop.run(20)
            state["seconds"] += time.perf_counter() - start
            state["steps"] += 20
        return state["steps"]

    sampler = ReferenceSampler(loop.generator, loop.latent_dim)
    return train_for, lambda: sampler, (-1.0, 1.0), {"loop": "benchmarks/reference_loop.py (PyTorch-GAN cgan.py)",
                                                     "steps_per_chunk": 20}


def minutes_to(points: list[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for metric, (direction, levels) in THRESHOLDS.items():
        out[metric] = {}
        for level in levels:
            hit = [p["minutes"] for p in points
                   if (p[metric] >= level if direction == "above" else p[metric] <= level) and math.isfinite(p[metric])]
            out[metric][f"{'>=' if direction == 'above' else '<='} {level:g}"] = hit[0] if hit else None
    return out


def minutes_to_per_judge(points: list[dict[str, Any]]) -> list[dict[str, dict[str, float | None]]]:
    """:func:`minutes_to` under each judge alone (from each point's ``per_judge`` figures)."""
    n = len(points[0]["per_judge"]) if points and "per_judge" in points[0] else 0
    return [minutes_to([{"minutes": p["minutes"], **p["per_judge"][k]} for p in points]) for k in range(n)]


def markdown(report: dict[str, Any]) -> str:
    columns = [(m, key) for m, levels in report["contenders"][0]["minutes_to"].items() for key in levels]
    lines = ["| contender | steps | " + " | ".join(f"{m} {k}" for m, k in columns) + " |",
             "|---|---:|" + "---:|" * len(columns)]
    for c in report["contenders"]:
        steps = c["curve"][-1]["steps"] if c["curve"] else 0
        cells = [("-" if c["minutes_to"][m][k] is None else f"{c['minutes_to'][m][k]:g} min") for m, k in columns]
        lines.append(f"| {c['name']} | {steps} | " + " | ".join(cells) + " |")
    judges = report["protocol"].get("judges") or []
    if len(judges) > 1:
        lines += ["", f"Worst case over {len(judges)} judges: " + "; ".join(
            f"{j['label']} (sha256 {j['sha256'][:12]}, held-out accuracy {(j.get('held_out') or {}).get('accuracy')})"
            for j in judges) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    from condgan.metrics.agreement import split_paths

    classifier = Path(args.classifier or "")
    if args.classifier and not classifier.is_file():
        if args.train_classifier is None:
            raise SystemExit(f"classifier {classifier} does not exist: make one with condgan train-classifier, "
                             "or pass --train-classifier EPOCHS")
        from condgan.classifier import train_classifier

        classifier.parent.mkdir(parents=True, exist_ok=True)
        details = train_classifier(args.data_root, classifier, epochs=args.train_classifier, seed=args.seed)
        print(f"trained the classifier: test accuracy {details['test_accuracy']:.4f}", flush=True)
    judge = Judge(args.data_root, split_paths(args.judges) if args.judges else str(classifier), args.per_class, args.seed,
                  device)
    overrides = dict(parse_override(s) for s in args.set)
    contenders = []
    plans = [(p, lambda p=p: condgan_contender(p, overrides, args, device)) for p in args.presets]
    if args.reference:
        plans.append(("reference loop", lambda: reference_contender(args, device)))
    for name, make in plans:
        train_for, sampler, pixel_range, setup = make()
        points = curve(name, train_for, sampler, pixel_range, judge, args.minutes, args.eval_every)
        contenders.append({"name": name, "setup": setup, "curve": points, "minutes_to": minutes_to(points),
                           "minutes_to_per_judge": minutes_to_per_judge(points)})
    reference = next((c for c in contenders if c["name"] == "reference loop"), None)
    if reference is not None:
        for c in contenders:
            c["speedup_vs_reference"] = {
                metric: {k: (reference["minutes_to"][metric][k] / v if v and reference["minutes_to"][metric][k] else None)
                         for k, v in levels.items()} for metric, levels in c["minutes_to"].items()}
    report = {
        "protocol": {
            "budget_minutes": args.minutes, "eval_every_minutes": args.eval_every, "per_class": args.per_class,
            "seed": args.seed, "device": str(device), "threads": torch.get_num_threads(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "torch": torch.__version__,
            "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "training data": "MNIST training set (60,000 images)", "thresholds": THRESHOLDS,
            "minutes_to": "training time of the first evaluation that reached the threshold (resolution: eval_every)",
            "metrics": judge.protocol,
            "judges": judge.identities,
            "worst_case": ("each point's top-level figures are the worst over the judges (lowest label accuracy, recall "
                           "and precision, highest FID); minutes_to counts those" if len(judge.judges) > 1 else None),
        },
        "contenders": contenders,
    }
    report["protocol"]["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    table = markdown(report)
    print(table)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1, default=str))
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
