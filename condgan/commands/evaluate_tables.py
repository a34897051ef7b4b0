"""``condgan eval RUN --reference held_out.csv``: judge table models by their rows against held-out real rows.

Each source (a run, checkpoint or generator file of a table model) is sampled with as many rows
per condition value as the real training table has (``--real train.csv``; without it, as the
reference has), seeded. The judges are :mod:`condgan.tabular.judges`': the quality score
(column shapes and column-pair trends, SDMetrics' two numbers), conditional fidelity (rows asked
for a value against the real rows with it), and with ``--real``: machine-learning efficacy (a
gradient-boosting model trained on synthetic rows against one trained on the real training rows,
both scored on the reference; target ``--target``, default the condition column) and the distance
to the closest training record (the fraction of copied rows, and the median distance against the
reference's). Printed in one table with the protocol.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

TABLE_READER = "condgan eval --reference TABLE"
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def _read(path: str | Path, spec, what: str):
    """The rows of a CSV/Parquet file in the model's column kinds, or one line naming what does not fit."""
    from ..tabular.read import TableError, conform, read_table

    frame = read_table(path)
    missing = [n for n in spec.names if n not in frame.columns]
    if missing:
        raise ValueError(f"{what} {path} lacks the model's column {missing[0]!r}; the model's columns: {', '.join(spec.names)}")
    try:
        return conform(frame[list(spec.names)], spec)
    except (TableError, ValueError, TypeError) as exc:
        raise ValueError(f"{what} {path}: its columns do not read as the model's kinds ({' '.join(str(exc).split())[:160]})") from None


def _full_spec(output):
    from ..tabular.columns import TableSpec

    columns = [*TableSpec.from_dict(output.condition).columns, *output.spec.columns] if output.condition else list(output.spec)
    order = {n: i for i, n in enumerate(output.order)}
    return TableSpec(tuple(sorted(columns, key=lambda c: order.get(c.name, len(order)))))


def _synthesize(generator, counts: dict, seed: int):
    """Rows from ``generator``: ``counts[k]`` rows of class k, as a DataFrame with the file's columns."""
    import pandas as pd
    import torch

    from ..sampling import Conditions, generate

    frames = []
    for k, n in counts.items():
        if n:
            samples = generate(generator, Conditions(torch.tensor([k]), (str(k),)), n, seed=seed + k)
            frames.append(generator.output.rows(samples.images, samples.y))
    return pd.concat(frames, ignore_index=True)


def run_table_eval(args: argparse.Namespace) -> int:
    from ..checkpoint import check_output_kind, load_generator, saved_output
    from ..tabular.judges import (
        conditional_fidelity,
        distance_to_closest_record,
        ml_efficacy,
        quality_score,
    )
    from ..training.setup import resolve_device

    if not args.sources:
        raise ValueError("nothing to evaluate: give table runs or checkpoints")
    for source in args.sources:  # a model of another kind fails before any table loads
        check_output_kind(saved_output(source), ("table",), TABLE_READER, source)
    device = resolve_device(args.device)
    rows: dict[str, dict[str, Any]] = {}
    protocol: dict[str, Any] = {}
    for source in args.sources:
        start = time.perf_counter()
        generator = load_generator(source, device=device, outputs=("table",), reader=TABLE_READER)
        output = generator.output
        spec, condition = _full_spec(output), next(iter(output.condition["columns"]))["name"]
        reference = _read(args.reference, spec, "--reference")
        train = _read(args.real_vectors, spec, "--real") if args.real_vectors else None
        base = train if train is not None else reference
        categories = list(spec[condition].categories)
        unknown = sorted({str(v) for v in base[condition].dropna()} - {str(c) for c in categories})
        if unknown:
            raise ValueError(f"{args.real_vectors or args.reference}: condition column {condition!r} holds {unknown[0]!r}, "
                             f"which the model never saw; its values: {', '.join(map(str, categories))}")
        index = {str(c): k for k, c in enumerate(categories)}
        counts = {k: 0 for k in range(len(categories))}
        for v in base[condition]:
            counts[index[str(v)]] += 1
        synth = _synthesize(generator, counts, args.seed)
        result: dict[str, Any] = {"rows": len(synth)}
        quality = quality_score(reference, synth, spec)
        result.update(quality=quality["score"], column_shapes=quality["column_shapes"], column_pair_trends=quality["column_pair_trends"])
        result["conditional_fidelity"] = conditional_fidelity(reference, synth, spec, condition)["score"]
        if train is not None:
            target = args.predict or condition
            efficacy = ml_efficacy(train, synth, reference, spec, target, seed=args.seed)
            result.update(ml_target=target, ml_metric=efficacy["metric"], ml_real=efficacy["real"], ml_synthetic=efficacy["synthetic"],
                          ml_ratio=efficacy["ratio"])
            dcr = distance_to_closest_record(train, synth, spec, reference, seed=args.seed)
            result.update(copies=dcr["copies"], median_dcr_ratio=dcr["median_dcr_ratio"])
        result["seconds"] = time.perf_counter() - start
        rows[source] = result
        protocol = {"reference": f"{args.reference} ({len(reference)} rows)",
                    "real": args.real_vectors and f"{args.real_vectors} ({len(train)} rows)",
                    "samples": f"as many rows per {condition!r} value as {'--real' if train is not None else '--reference'} has, "
                               f"seed {args.seed}+class"}
    print(format_rows(rows))
    print(f"table judges: quality = mean of column shapes (KS / TV complement) and column-pair trends (SDMetrics' definitions); "
          f"conditional fidelity = column shapes within each condition value; reference: {protocol['reference']}; "
          f"samples: {protocol['samples']}" + (f"; ML efficacy: gradient boosting on synthetic vs on {protocol['real']}, scored on the "
                                               f"reference; DCR against {protocol['real']}" if args.real_vectors else
                                               "; give --real TRAIN for ML efficacy and DCR"))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps({"protocol": protocol, "rows": rows}, indent=1, default=str) + "\n")
        print(f"wrote {args.json_out}")
    return 0


COLUMNS = (("quality", "quality"), ("shapes", "column_shapes"), ("pairs", "column_pair_trends"),
           ("cond fid", "conditional_fidelity"), ("ML real", "ml_real"), ("ML synth", "ml_synthetic"), ("ML ratio", "ml_ratio"),
           ("copies", "copies"), ("DCR ratio", "median_dcr_ratio"))


def format_rows(rows: dict[str, dict[str, Any]]) -> str:
    used = [c for c in COLUMNS if any(c[1] in r for r in rows.values())]
    head = ["set", "rows", *(h for h, _ in used), "s"]
    lines = [[name, str(r["rows"]), *(f"{r[k]:.3f}" if k in r else "-" for _, k in used), f"{r['seconds']:.0f}"]
             for name, r in rows.items()]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in [head, *lines])
