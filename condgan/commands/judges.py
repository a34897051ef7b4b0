"""``condgan eval`` under several judges: per-judge tables, the worst case, targets, and grids of what each judge rejects.

:mod:`condgan.commands.evaluate` loads the sources once and evaluates them under every judge;
this module prints what came out (:func:`print_report`), checks ``--target`` options under every
judge (:func:`check_targets`), draws ``--worst-grid`` files (:func:`write_worst_grids`) and
builds the ``--json`` payload's judge part (:func:`judges_payload`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Sequence


def judge_paths(args: argparse.Namespace) -> list[str]:
    """The judge files of ``--judge FILE`` (or ``--classifier``) or ``--judges A,B,C``, in order; one line when neither or both."""
    from ..metrics.agreement import split_paths

    if args.classifier and args.judges:
        raise ValueError("give either --judge FILE or --judges A.pt,B.pt,C.pt, not both")
    if not args.classifier and not args.judges:
        raise ValueError("condgan eval of image models needs a judge: --judge FILE, or --judges A.pt,B.pt,C.pt for several "
                         "(train one with: condgan train-classifier --dataset NAME --data-root DIR --out FILE); "
                         "vector and table models take --reference FILE instead")
    return [args.classifier] if args.classifier else split_paths(args.judges)


def judge_line(path: str, judge, reference) -> str:
    """The protocol line of one judge: recipe, architecture, dataset, size, hash, held-out accuracy, features, reference."""
    held = judge.protocol.get("held_out") or {}
    score = held.get("accuracy", held.get("rmse"))
    return (f"judge {path}: {judge.label()}, {judge.protocol.get('architecture')} on {judge.dataset} at "
            f"{'x'.join(map(str, judge.image_shape))}, sha256 {judge.sha256[:16]}..., held-out "
            f"{'accuracy' if 'accuracy' in held else 'RMSE'} {score if score is None else round(score, 4)}; "
            f"features: {judge.describe_features()}; reference: {reference.description['reference']}")


def print_report(paths: Sequence[str], judges: Sequence[Any], references: Sequence[Any], per_judge: Sequence[dict],
                 worst: dict[str, dict], seconds: dict[str, float]) -> None:
    """Every judge's table and protocol line, then the worst case over them and per-class accuracy side by side."""
    from .tables import format_table

    for k, (path, judge, reference, rows) in enumerate(zip(paths, judges, references, per_judge)):
        print(f"== judge {k + 1} of {len(judges)}: {path} ({judge.label()}) ==")
        print(format_table(rows, seconds, class_names=judge.class_names, weak=judge.weak_classes()))
        print(judge_line(path, judge, reference))
        print()
    print(f"== worst case over the {len(judges)} judges (highest FID and RMSE, lowest accuracy, precision, recall, "
          "density, coverage; Parzen and Inception figures do not depend on the judge) ==")
    print(format_table(worst, seconds, class_names=judges[0].class_names, per_class=False))
    side = per_class_side_by_side(judges, per_judge, worst)
    if side:
        print()
        print(side)


def per_class_side_by_side(judges: Sequence[Any], per_judge: Sequence[dict], worst: dict[str, dict]) -> str:
    """Per-class label accuracy of each row under each judge, one line per judge, and the worst line."""
    names = judges[0].class_names
    lines = []
    for row, results in worst.items():
        if "label_accuracy" not in results:
            continue
        per = [r[row]["label_accuracy"].details["per_class"] for r in per_judge]
        if not lines:
            names = names or tuple(str(c) for c in range(len(per[0])))
            lines.append(f"{'per-class label accuracy under each judge':<43}" + "  ".join(n[:5].rjust(5) + " " for n in names))
        lines.append(f"  {row}")
        for k, (judge, values) in enumerate(zip(judges, per)):
            weak = judge.weak_classes()
            lines.append(f"    J{k + 1} {judge.label()[:34]:<34}  " + "  ".join(
                ("  -  " if v is None else f"{v:.3f}") + ("*" if c in weak else " ") for c, v in enumerate(values)).rstrip())
        lines.append(f"    {'worst':<37}  " + "  ".join(("  -  " if v is None else f"{v:.3f}") + " "
                                                        for v in results["label_accuracy"].details["per_class"]).rstrip())
    if any(j.weak_classes() for j in judges):
        lines.append("* that judge is weak on the class (held-out accuracy below 0.9)")
    return "\n".join(lines)


def check_targets(targets: Sequence[Any], rows: Sequence[str], per_judge: Sequence[dict], judges: Sequence[Any]) -> list[dict]:
    """Each target on each row under every judge; prints one line per (target, row); returns them for ``--json``."""
    from ..metrics.agreement import scalars

    out = []
    for target in targets:
        for row in rows:
            result = target.check([scalars(r[row]) for r in per_judge])
            result["row"] = row
            each = ", ".join(f"J{k + 1} {_value(e['value'])} {'met' if e['met'] else 'NOT met'}"
                             for k, e in enumerate(result["per_judge"]))
            verdict = "met under every judge" if result["met"] else "NOT met"
            print(f"target {target} for {row}: {verdict} ({each})")
            out.append(result)
    return out


def _value(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def grid_paths(path: str | Path, rows: Sequence[str], judges: Sequence[Any]) -> dict[tuple[str, int], Path]:
    """(row, judge index) -> the PNG to write: ``path`` itself for one row and one judge, else ``STEM_ROW_J<k>.png``."""
    from ..imagegrid import safe_name

    path = Path(path)
    if len(rows) == 1 and len(judges) == 1:
        return {(rows[0], 0): path}
    parts: dict[str, str] = {}
    for row in rows:  # a row's file part: its last path component, made unique
        part = safe_name(Path(row.rstrip("/")).name or row)
        parts[row] = part if part not in parts.values() else f"{part}{len(parts) + 1}"
    return {(row, k): path.with_name(f"{path.stem}_{parts[row]}_J{k + 1}{path.suffix or '.png'}")
            for row in rows for k in range(len(judges))}


def write_worst_grids(path: str | Path, per_class: int, samples: dict[str, tuple], judges: Sequence[Any]) -> list[dict]:
    """For each sampled row and each judge, the grid of the ``per_class`` worst-scored samples per class; prints each path."""
    from ..metrics.worst_samples import save_worst_grid

    written = []
    for (row, k), target in grid_paths(path, list(samples), judges).items():
        images, labels, pixel_range = samples[row]
        out, indices, probs = save_worst_grid(target, judges[k], images, labels, per_class, pixel_range=pixel_range)
        lowest = float(probs[~probs.isnan()].min()) if bool((~probs.isnan()).any()) else float("nan")
        print(f"wrote {out}: the {per_class} samples per class that judge J{k + 1} ({judges[k].label()}) scores lowest "
              f"for {row}, one row per class (lowest probability of the asked class: {lowest:.3f})")
        written.append({"row": row, "judge": k, "path": str(out), "indices": indices.tolist(),
                        "probabilities": [[None if p != p else round(float(p), 4) for p in r] for r in probs]})
    return written


def judges_payload(paths: Sequence[str], judges: Sequence[Any], references: Sequence[Any],
                   per_judge: Sequence[dict]) -> list[dict]:
    """The ``judges`` list of the ``--json`` file: each judge's path, recipe, hash, protocol, reference and rows."""
    return [{"path": str(path), "label": judge.label(), "recipe": judge.recipe, "sha256": judge.sha256,
             "held_out": judge.protocol.get("held_out"), "protocol": judge.identity(), "reference": reference.description,
             "rows": {name: {key: r.to_dict() for key, r in results.items()} for name, results in rows.items()}}
            for path, judge, reference, rows in zip(paths, judges, references, per_judge)]
