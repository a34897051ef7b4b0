"""``condgan eval RUN``: judge table models by their rows against held-out real rows.

Without ``--reference``, a run trained with ``data.options.holdout`` is judged against the rows it
held out, with its training rows as ``--real`` (read from the recorded file, refused in one line
when the file changed: :mod:`condgan.tabular.holdout`); with ``--reference held_out.csv`` (and
``--real train.csv``) against those files.

Each source (a run, checkpoint or generator file of a table model) is sampled with as many rows
per condition value as the real training table has (``--real train.csv``; without it, as the
reference has), seeded. The judges are :mod:`condgan.tabular.judges`': the quality score
(column shapes and column-pair trends, SDMetrics' two numbers), conditional fidelity (rows asked
for a value against the real rows with it), and with ``--real``: machine-learning efficacy (a
gradient-boosting model trained on synthetic rows against one trained on the real training rows,
both scored on the reference; target ``--target``, default the condition column) and the distance
to the closest training record (the fraction of copied rows, and the median distance against the
reference's). Printed in one table with the protocol, and written with it to ``--json FILE``; one run
directory judged against its own held-out rows writes ``RUN/eval_table.json``, which ``condgan report
RUN`` shows.
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


def _real_rows(args: argparse.Namespace, source: str, spec):
    """(reference rows, training rows or None, their protocol texts) of one source: the files given,
    else the rows the run held out and the rows it trained on."""
    from ..checkpoint import saved_data

    if args.reference:
        reference = _read(args.reference, spec, "--reference")
        train = _read(args.real_vectors, spec, "--real") if args.real_vectors else None
        return reference, train, (f"{args.reference} ({len(reference)} rows)",
                                  args.real_vectors and f"{args.real_vectors} ({len(train)} rows)")
    if args.real_vectors:
        raise ValueError("--real TRAIN.csv goes with --reference HELDOUT.csv; without them the run's own split is used")
    from ..tabular.holdout import recorded_rows
    from ..tabular.read import conform

    record = saved_data(source)
    train, held, path = recorded_rows(record, source, args.data_root)
    split = f"holdout {record['holdout']}, seed {record['seed']}"
    return (conform(held[list(spec.names)], spec), conform(train[list(spec.names)], spec),
            (f"the {len(held)} rows {source} held out of {path} ({split}; sha256 {record['sha256'][:12]}...)",
             f"its {len(train)} training rows"))


def _class_counts(base, output, names: list, where: str) -> dict:
    """Rows per class (the model's class order) of the real rows ``base``; one line for a value the model never saw."""
    index = {tuple(str(v) for v in combo): k for k, combo in enumerate(output.class_values)}
    counts = {k: 0 for k in range(len(index))}
    for combo in zip(*(base[n].tolist() for n in names)):
        key = tuple(str(v) for v in combo)
        if key not in index:
            for i, n in enumerate(names):
                values = sorted({k[i] for k in index})
                if key[i] not in values:
                    raise ValueError(f"{where}: condition column {n!r} holds {key[i]!r}, which the model never saw; its values: "
                                     f"{', '.join(values)}")
            raise ValueError(f"{where}: condition {' / '.join(f'{n}={v}' for n, v in zip(names, key))} is a combination the "
                             f"model never saw; its combinations: {', '.join('/'.join(k) for k in index)}")
        counts[index[key]] += 1
    return counts


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
        spec, names = _full_spec(output), list(output.condition_names)
        reference, train, (reference_text, real_text) = _real_rows(args, source, spec)
        base = train if train is not None else reference
        counts = _class_counts(base, output, names, real_text or reference_text)
        synth = _synthesize(generator, counts, args.seed)
        result: dict[str, Any] = {"rows": len(synth)}
        quality = quality_score(reference, synth, spec)
        result.update(quality=quality["score"], column_shapes=quality["column_shapes"], column_pair_trends=quality["column_pair_trends"])
        result["conditional_fidelity"] = conditional_fidelity(reference, synth, spec, names)["score"]
        if train is not None:
            target = args.predict or names[0]
            efficacy = ml_efficacy(train, synth, reference, spec, target, seed=args.seed)
            result.update(ml_target=target, ml_metric=efficacy["metric"], ml_real=efficacy["real"], ml_synthetic=efficacy["synthetic"],
                          ml_ratio=efficacy["ratio"])
            dcr = distance_to_closest_record(train, synth, spec, reference, seed=args.seed)
            result.update(copies=dcr["copies"], median_dcr_ratio=dcr["median_dcr_ratio"])
        result["seconds"] = time.perf_counter() - start
        rows[source] = result
        condition = "/".join(names)
        protocol = {"reference": reference_text, "real": real_text,
                    "samples": f"as many rows per {condition!r} value as {'the training rows' if train is not None else 'the reference'} "
                               f"have, seed {args.seed}+class"}
    print(format_rows(rows))
    print(f"table judges: quality = mean of column shapes (KS / TV complement) and column-pair trends (SDMetrics' definitions); "
          f"conditional fidelity = column shapes within each condition value; reference: {protocol['reference']}; "
          f"samples: {protocol['samples']}" + (f"; ML efficacy: gradient boosting on synthetic vs on {protocol['real']}, scored on the "
                                               f"reference; DCR against {protocol['real']}" if protocol["real"] else
                                               "; give --real TRAIN for ML efficacy and DCR"))
    json_out = args.json_out or _own_record(args)
    if json_out:
        import torch

        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        payload = {"kind": "table", "protocol": protocol, "rows": rows, "torch": torch.__version__}
        Path(json_out).write_text(json.dumps(payload, indent=1, default=str) + "\n")
        print(f"wrote {json_out} (condgan report {args.sources[0]} shows it)" if json_out != args.json_out else f"wrote {json_out}")
    return 0


def _own_record(args: argparse.Namespace) -> Path | None:
    """RUN/eval_table.json where one run directory is judged against its own held-out rows (what
    ``condgan report RUN`` shows), else None."""
    from ..reporting import TABLE_EVAL_FILE

    if args.reference or len(args.sources) != 1 or not Path(args.sources[0]).is_dir():
        return None
    return Path(args.sources[0]) / TABLE_EVAL_FILE


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
