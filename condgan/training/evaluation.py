"""Metrics during training: the ``metrics`` logger writes ``metrics.jsonl`` and keeps ``best.pt``.

Added to a run's loggers when ``TrainerConfig.eval_every`` is set (or named in ``loggers`` for the
losses alone). Each ``on_log`` appends the losses to ``RUN/metrics.jsonl``; every
``eval_every`` steps and at the end it samples ``eval_samples`` images from the sampling generator
(the EMA copy when EMA is on) with fixed noise and balanced labels (tags and vectors: those of the
reference images), reads them through the judge, and appends FID and label accuracy (attribute
accuracy, condition RMSE). The reference is ``eval_samples`` training images (a seeded draw, the
same for every evaluation of the run), so FIDs of one run are comparable with each other; their
level is not that of ``condgan eval`` (10,000 samples against the held-out set). When the chosen
``best_metric`` improves, the full training state is written to ``RUN/best.pt`` (a checkpoint
that ``condgan sample``, ``eval`` and ``load_generator`` read). Sampling and judging run in eval mode
without touching any random stream, so training proceeds exactly as without evaluations.

Lines of ``metrics.jsonl`` (JSON objects, one per line; also read by ``condgan report``):

- ``{"kind": "protocol", "step": s, "judge": {...}, "reference": "...", "samples": K, ...}`` at each start;
- ``{"kind": "losses", "step": s, "elapsed_s": t, "g_loss": ..., "d_loss": ...}``;
- ``{"kind": "eval", "step": s, "elapsed_s": t, "fid": ..., "label_accuracy": ..., "seconds": ..., "best": bool}``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..hookspecs import hookimpl
from ..metrics.evaluate import check_fid_samples
from ..metrics.fid import fid_from_features
from ..metrics.judge import JudgeMismatchError, judge_outputs, load_judge

if TYPE_CHECKING:  # pragma: no cover
    from .trainer import Trainer

METRICS_FILE = "metrics.jsonl"
BEST_FILE = "best.pt"
LOWER_IS_BETTER = {"fid": True, "label_accuracy": False, "attribute_accuracy": False, "condition_rmse": True}
SAMPLE_BATCH = 500


class MetricsFileError(ValueError):
    """A ``metrics.jsonl`` that cannot be read: the message names the file and the line."""


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a ``metrics.jsonl``, each a JSON object with a ``kind`` and a whole-number ``step``.

    A last line without its newline that does not parse (what a kill mid-write leaves) is skipped
    with a warning saying so.

    Raises:
        MetricsFileError: the path is a folder, or a line is not UTF-8, not JSON, not an object,
            or has a ``step`` that is not a whole number (one line naming the file and line).
    """
    path = Path(path)
    if path.is_dir():
        raise MetricsFileError(f"{path} is a directory, not a metrics file (JSON lines written by the metrics logger)")
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete = data.endswith(b"\n") or not data
    if complete:
        lines = lines[:-1]
    entries = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        last = number == len(lines) and not complete
        where = f"{path}, line {number}"
        try:
            text = raw.decode("utf-8")
            entry = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            if last:
                warnings.warn(f"{where}: skipped the truncated last line (a run killed while writing it)", RuntimeWarning,
                              stacklevel=2)
                break
            what = "bytes that are not UTF-8" if isinstance(exc, UnicodeDecodeError) else f"not JSON ({exc.msg})"
            raise MetricsFileError(f"{where}: {what}; each line must be one JSON object") from None
        if not isinstance(entry, dict):
            raise MetricsFileError(f"{where}: a JSON {type(entry).__name__}, not an object; each line must be one JSON "
                                   "object such as {\"kind\": \"losses\", \"step\": 10, ...}")
        step = entry.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise MetricsFileError(f"{where}: 'step' must be a whole number >= 0, got {step!r}")
        if not isinstance(entry.get("kind", ""), str):
            raise MetricsFileError(f"{where}: 'kind' must be a string, got {entry['kind']!r}")
        entries.append(entry)
    return entries


class TrainingMetrics:
    """The ``metrics`` logger (see the module doc)."""

    name = "metrics"

    def __init__(self):
        self.path: Path | None = None
        self.every: int | None = None
        self.judge = None
        self.last_eval: int | None = None

    # -- events ---------------------------------------------------------------------------------------
    @hookimpl
    def on_train_start(self, trainer: Trainer) -> None:
        cfg = trainer.config
        self.path = Path(trainer.out_dir) / METRICS_FILE if trainer.out_dir is not None else None
        self.every = getattr(cfg, "eval_every", None)
        self.best_metric = getattr(cfg, "best_metric", "fid")
        self.best: float | None = None
        if self.path is not None and self.path.is_file():  # a resumed run: drop entries past the resumed step
            kept = [e for e in read_metrics(self.path) if e.get("step", 0) <= trainer.step]
            self.path.write_text("".join(json.dumps(e) + "\n" for e in kept))
            evals = [e[self.best_metric] for e in kept if e.get("kind") == "eval" and e.get(self.best_metric) is not None]
            if evals:
                self.best = min(evals) if LOWER_IS_BETTER[self.best_metric] else max(evals)
        if self.every:
            self._prepare(trainer)

    @hookimpl
    def on_log(self, trainer: Trainer, step: int, metrics: dict[str, float]) -> None:
        self._write({"kind": "losses", "step": step, "elapsed_s": round(trainer.elapsed_s, 3),
                     **{k: (v if math.isfinite(v) else None) for k, v in metrics.items()}})
        if self.every and step % self.every == 0:
            self.evaluate(trainer)

    @hookimpl
    def on_train_end(self, trainer: Trainer) -> None:
        if self.every and self.judge is not None and trainer.stop_reason != "error" and self.last_eval != trainer.step:
            self.evaluate(trainer)
        self.judge = None

    # -- evaluation -------------------------------------------------------------------------------------
    def _prepare(self, trainer: Trainer) -> None:
        cfg, spec = trainer.config, trainer.gan.spec
        if trainer.gan.output.name != "image":
            raise JudgeMismatchError(f"eval_every judges images, and this model makes {trainer.gan.output.describe()} outputs: "
                                     "leave eval_every off and judge the run with condgan eval afterwards")
        judge = load_judge(cfg.judge).to(trainer.device)
        shape = tuple(trainer.gan.config.image_shape)
        if judge.image_shape != shape:
            raise JudgeMismatchError(f"the judge {cfg.judge} was trained on {judge.dataset} at {judge.image_shape} but the "
                                     f"model makes {shape} images: train a judge at this size (--image-size {shape[-1]})")
        if judge.kind != spec.kind or judge.out_dim != spec.width:
            raise JudgeMismatchError(f"the judge {cfg.judge} reads {judge.kind} conditions of {judge.out_dim} entries but the "
                                     f"model's are {spec.kind} of {spec.width}")
        k = cfg.eval_samples
        check_fid_samples(k, judge.feature_dim, "in-training FID (eval_samples)")
        images, labels = trainer.batches.images, trainer.batches.labels
        gen = torch.Generator().manual_seed(cfg.seed)
        idx = torch.randperm(len(images), generator=gen)[:k].to(images.device)
        self.reference, _ = judge_outputs(judge, images[idx])
        if spec.kind == "class":
            self.conditions = (torch.arange(k) % spec.num_classes).to(trainer.device)
        else:
            self.conditions = labels[idx].to(trainer.device)
        noise = torch.Generator().manual_seed(cfg.seed + 1)  # apart from the training RNG and the grid's noise
        self.z = trainer.gan.generator.sample_noise(len(self.conditions), "cpu", noise).to(trainer.device)
        self.judge = judge
        self._write({"kind": "protocol", "step": trainer.step, "judge": {"path": str(cfg.judge), **judge.identity()},
                     "samples": len(self.conditions), "best_metric": self.best_metric,
                     "reference": f"{len(idx)} training images, randperm(N={len(images)}, seed={cfg.seed})[:{k}]",
                     "noise": f"fixed, seed {cfg.seed + 1}", "conditions": "balanced labels" if spec.kind == "class"
                     else "those of the reference images", "generator": "EMA" if trainer.ema is not None else "G"})

    @torch.no_grad()
    def evaluate(self, trainer: Trainer) -> dict[str, Any]:
        """Sample, judge, log one ``eval`` entry and keep ``best.pt``; returns the entry."""
        from ..data import to_unit

        start = time.perf_counter()
        generator, pixel_range = trainer.sampling_generator, trainer.gan.config.pixel_range
        chunks = [to_unit(generator.sample(self.conditions[s:s + SAMPLE_BATCH], z=self.z[s:s + SAMPLE_BATCH]).float(), pixel_range)
                  for s in range(0, len(self.conditions), SAMPLE_BATCH)]
        images = torch.cat(chunks)
        entry: dict[str, Any] = {"kind": "eval", "step": trainer.step, "elapsed_s": round(trainer.elapsed_s, 3)}
        if not bool(torch.isfinite(images).all()):
            entry.update({"fid": None, "error": "the samples contain NaN or inf"})
        else:
            feats, head = judge_outputs(self.judge, images, pixel_range=(0.0, 1.0))
            entry["fid"] = fid_from_features(feats, self.reference).value
            y = self.conditions.cpu()
            if self.judge.kind == "class":
                entry["label_accuracy"] = float((head.argmax(1) == y).float().mean())
            elif self.judge.kind == "multilabel":
                entry["attribute_accuracy"] = float(((head > 0).float() == y).float().mean())
            else:
                entry["condition_rmse"] = float((head - y).square().mean().sqrt())
        value = entry.get(self.best_metric)
        better = value is not None and (self.best is None or (value < self.best if LOWER_IS_BETTER[self.best_metric]
                                                               else value > self.best))
        if better:
            self.best = value
            self._save_best(trainer)
        entry.update({"best": better, "seconds": round(time.perf_counter() - start, 3)})
        self.last_eval = trainer.step
        self._write(entry)
        return entry

    def _save_best(self, trainer: Trainer) -> None:
        if trainer.out_dir is None:
            return
        from .. import checkpoint as ckpt

        if trainer.process.world_size > 1:  # a full state would gather from every process; the logger runs on one
            content = ckpt.generator_file(trainer.gan.config, trainer.sampling_generator.state_dict(),
                                          from_ema=trainer.ema is not None, step=trainer.step)
        else:
            content = trainer.state_dict()
        ckpt.save_file(content, Path(trainer.out_dir) / BEST_FILE)

    def _write(self, entry: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(entry, default=str) + "\n")


@hookimpl
def register_loggers():
    return [TrainingMetrics]
