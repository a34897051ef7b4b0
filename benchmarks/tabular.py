"""condgan against ctgan on real tables: the same judges, budgets in epochs or seconds (issue 23, item 5).

    python benchmarks/tabular.py --epochs 300 --seeds 0,1,2 --share condgan_tabular=0.3333 \
        --json benchmarks/results/tabular.json --markdown benchmarks/results/tabular.md

Tables (no download): ``iris`` (150 rows, conditioned on ``species``), ``wine`` (178 rows, on
``cultivar``), ``diabetes`` (442 rows, on ``sex``, mapped to "F"/"M"), all bundled with
scikit-learn, and ``penguins`` (palmerpenguins, 344 rows, on ``species``: continuous, integer and
categorical columns with its own missing values: 2 rows of the four measurements, 11 of ``sex``).
A table without missing values gets some by a documented, seeded rule: :func:`add_missing` blanks
5% of the cells of the first two numeric output columns (``numpy.random.default_rng(0)``).

Protocol, for each table: one seeded 75/25 split (:func:`condgan.tabular.holdout_split`, seed 0;
the split and the missing rule stay fixed so that ``--seeds`` varies the training alone); for each
training seed, each contender trains on the 75% in its own subprocess (a clean peak memory:
``resource.getrusage`` max RSS of that process) with ``--threads`` torch threads:

- ``ctgan`` and condgan's ``ctgan`` preset: ``--epochs`` epochs each (ctgan's own epoch:
  ``max(rows // 500, 1)`` steps of 500 rows drawn by training-by-sampling, which the preset's
  ``ctgan_cond`` draws alike, so both make the same number of steps at the same batch), or
  ``--seconds`` of loop time without ``--epochs``;
- a contender named in ``--share NAME=F`` (default: ``condgan_tabular=0.3333``): F times the
  seconds ctgan's loop took on the same table and seed (ctgan runs first), or F x ``--seconds``
  when ctgan is not run.

The other contenders' order rotates from table to table and seed to seed. Each then samples as many
rows as the training split has, with its condition counts (condgan: by class; ctgan:
``sample(condition_column=, condition_value=)``), and :mod:`condgan.tabular.judges` judges them
against the held-out 25%: the quality score (column shapes and pair trends), ML efficacy (a
gradient-boosted classifier of the condition column trained on synthetic rows over the same model
trained on the real training rows, macro F1 on the held-out rows) and conditional fidelity (column
shapes within each condition value). Time per epoch is the loop's seconds over the passes it made
(condgan's ``tabular``: ``ceil(rows / batch)`` steps an epoch). The summary gives each figure's
mean and standard deviation over the seeds (and min/max in the JSON); ``targets`` says per table
whether the ``ctgan`` preset's mean lies within ctgan's seed range and whether ``tabular``'s mean
at least matches ctgan's (quality and ML efficacy).

Contenders: condgan's ``tabular`` preset, condgan's ``ctgan`` preset, and ctgan 0.12.x itself
(``pip install condgan[bench-tabular]``; skipped with one line when it is not installed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTENDERS = ("condgan_tabular", "condgan_ctgan", "ctgan")
TABLES = ("iris", "wine", "diabetes", "penguins")
FIGURES = ("quality", "column_shapes", "column_pair_trends", "ml_efficacy_ratio", "ml_real_f1", "ml_synthetic_f1",
           "conditional_fidelity", "seconds", "steps", "epochs", "seconds_per_epoch", "peak_rss_mb")


def load(name: str):
    """(frame, condition column) of a table bundled with scikit-learn."""
    from sklearn import datasets

    if name == "iris":
        bunch = datasets.load_iris(as_frame=True)
        frame = bunch.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
        frame["species"] = [str(bunch.target_names[t]) for t in frame.pop("target")]
        return frame, "species"
    if name == "wine":
        bunch = datasets.load_wine(as_frame=True)
        frame = bunch.frame.rename(columns=lambda c: c.replace("/", "_"))
        frame["cultivar"] = [f"class_{t}" for t in frame.pop("target")]
        return frame, "cultivar"
    if name == "diabetes":
        bunch = datasets.load_diabetes(as_frame=True, scaled=False)
        frame = bunch.frame.copy()
        frame["sex"] = frame["sex"].map({1.0: "F", 2.0: "M"})  # scaled=False: 1 and 2
        return frame, "sex"
    if name == "penguins":  # palmerpenguins (the bench-tabular extra): mixed kinds, its own missing values
        try:
            from palmerpenguins import load_penguins
        except ImportError:
            raise SystemExit("tabular.py: the penguins table needs palmerpenguins (pip install condgan[bench-tabular])") from None
        return load_penguins(), "species"
    raise SystemExit(f"tabular.py: unknown table {name!r}; the tables: {', '.join(TABLES)}")


def add_missing(frame, condition: str, *, fraction: float = 0.05, seed: int = 0):
    """The rule that adds missing values: ``fraction`` of the cells of the first two numeric
    columns besides the condition become NaN, drawn by ``numpy.random.default_rng(seed)``."""
    import numpy as np

    frame = frame.copy()
    rng = np.random.default_rng(seed)
    numeric = [c for c in frame.columns if c != condition and frame[c].dtype.kind == "f"][:2]
    for c in numeric:
        frame.loc[rng.random(len(frame)) < fraction, c] = np.nan
    return frame


def prepare(name: str, seed: int, folder: Path):
    """Write the table's train and held-out splits to ``folder``; returns (train.csv, test.csv, condition)."""
    from condgan.tabular import holdout_split, infer_spec

    frame, condition = load(name)
    if not frame.isna().any().any():  # a table with no missing values gets some, by the seeded rule
        frame = add_missing(frame, condition, seed=seed)
    train, test = holdout_split(frame, 0.25, seed=seed)
    # column kinds from the whole table (a split alone may make a numeric column look integer)
    kinds = {c.name: c.kind for c in infer_spec(frame)}
    (folder / "kinds.json").write_text(json.dumps(kinds))
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return folder / "train.csv", folder / "test.csv", condition


# -- contenders (each in a worker process) ---------------------------------------------------------
def train_condgan(preset: str, train_csv: Path, condition: str, seconds: float | None, epochs: int | None, seed: int,
                  out: Path):
    """Train a condgan preset for ``seconds`` of loop time or ``epochs`` passes; returns (synthetic
    frame, steps, epochs, loop seconds)."""
    import pandas as pd
    import torch

    from condgan import Trainer
    from condgan.resolve import run_config
    from condgan.tabular.columns import TableSpec

    kinds = json.loads((train_csv.parent / "kinds.json").read_text())
    budget = {"training.epochs": epochs, "training.minutes": None} if epochs else {"training.minutes": seconds / 60}
    run = run_config(preset, {"data.name": "table", "data.root": str(train_csv), "data.options.condition": condition,
                              "data.options.kinds": kinds, **budget, "training.seed": seed,
                              "training.device": "cpu", "training.out_dir": str(out), "training.loggers": [],
                              "training.sample_every": 0})
    trainer = Trainer(run)
    trainer.train()
    elapsed = trainer.elapsed_s  # the loop's seconds (as ctgan's: from its first step to its last)
    gen = trainer.gan.generator.eval()
    output = gen.output
    counts = pd.read_csv(train_csv)[condition].astype(str).value_counts()
    values = [str(v) for v in next(iter(TableSpec.from_dict(output.condition))).categories]  # class k: value k
    labels = torch.cat([torch.full((int(counts.get(v, 0)),), k, dtype=torch.long) for k, v in enumerate(values)])
    with torch.no_grad():
        g = torch.Generator().manual_seed(seed)
        encoded = gen.sample(labels, generator=g)
    return output.rows(encoded, labels), trainer.step, trainer.step / max(trainer.batches_per_epoch, 1), elapsed


class _Budget(Exception):
    pass


def train_ctgan(train_csv: Path, condition: str, seconds: float | None, epochs: int | None, seed: int):
    """Train ctgan 0.12's CTGAN (its defaults) for ``epochs`` (its own loop) or ``seconds`` of loop
    time (stopped from inside: its DataSampler's ``sample_condvec``, called twice a step, raises
    at the deadline). Returns (synthetic frame, steps, epochs, loop seconds)."""
    import numpy as np
    import pandas as pd
    import torch
    from ctgan import CTGAN
    from ctgan.data_sampler import DataSampler

    from condgan.tabular import read_table

    frame = read_table(train_csv)
    # ctgan refuses NaN in continuous columns; as SDV's RDT does (missing_value_generation="from_column"),
    # each such column gets a missing flag column and its NaNs the column's mean, and NaN comes back where G flags it
    flagged = [c for c in frame.columns if frame[c].dtype.kind == "f" and frame[c].isna().any()]
    for c in flagged:
        frame[c + "__missing"] = frame[c].isna().map({True: "yes", False: "no"})
        frame[c] = frame[c].fillna(frame[c].mean())
    discrete = [c for c in frame.columns if frame[c].dtype == object or c == condition]
    calls, clock = [0], {}
    original = DataSampler.sample_condvec
    limit = math.inf if epochs else seconds

    def sample_condvec(self, batch):
        if "start" not in clock:
            clock["start"] = time.perf_counter()
        elif time.perf_counter() - clock["start"] >= limit:
            clock["stop"] = time.perf_counter()
            raise _Budget
        calls[0] += 1
        return original(self, batch)

    DataSampler.sample_condvec = sample_condvec
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = CTGAN(epochs=epochs or 10 ** 9, enable_gpu=False)
    try:
        model.fit(frame, discrete_columns=discrete)
    except _Budget:
        pass
    finally:
        DataSampler.sample_condvec = original
    stop = clock.get("stop", time.perf_counter())
    steps = calls[0] // 2
    per_epoch = max(len(frame) // model._batch_size, 1)
    counts = frame[condition].astype(str).value_counts()
    parts = [model.sample(int(k), condition_column=condition, condition_value=v) for v, k in counts.items()]
    synth = pd.concat(parts, ignore_index=True)
    synth[condition] = [v for v, k in counts.items() for _ in range(int(k))]  # the value each row was asked for
    for c in flagged:
        synth.loc[synth.pop(c + "__missing") == "yes", c] = np.nan
    return synth, steps, steps / per_epoch, stop - clock.get("start", stop)


def judge(train_csv: Path, test_csv: Path, synth, condition: str, folder: Path) -> dict:
    """The judged figures of synthetic rows against the held-out real rows."""
    from condgan.tabular import conditional_fidelity, load_table, ml_efficacy, quality_score

    kinds = json.loads((folder / "kinds.json").read_text())
    train = load_table(train_csv, condition, kinds=kinds)
    test = load_table(test_csv, condition, kinds=kinds)
    synth = synth.copy()
    for c in train.spec:  # integer columns as integers (condgan restores them itself; ctgan's rows may hold floats)
        if c.kind == "integer" and c.name in synth:
            synth[c.name] = synth[c.name].round()
    synth.to_csv(folder / "synth.csv", index=False)
    fake = load_table(folder / "synth.csv", condition, kinds=kinds)
    spec = train.spec
    q = quality_score(test.frame, fake.frame, spec)
    ml = ml_efficacy(train.frame, fake.frame, test.frame, spec, target=condition)
    cf = conditional_fidelity(test.frame, fake.frame, spec, condition)
    return {"quality": q["score"], "column_shapes": q["column_shapes"], "column_pair_trends": q["column_pair_trends"],
            "ml_efficacy_ratio": ml["ratio"], "ml_real_f1": ml["real"], "ml_synthetic_f1": ml["synthetic"],
            "conditional_fidelity": cf["score"]}


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    train_csv, test_csv, condition = folder / "train.csv", folder / "test.csv", args.condition
    epochs = args.epochs or None
    if args.worker == "ctgan":
        synth, steps, epochs, loop = train_ctgan(train_csv, condition, args.seconds, epochs, args.seed)
    else:
        preset = args.worker.removeprefix("condgan_")
        synth, steps, epochs, loop = train_condgan(preset, train_csv, condition, args.seconds, epochs, args.seed,
                                                   folder / f"run_{preset}_{args.seed}")
    result = judge(train_csv, test_csv, synth, condition, folder)
    result.update(seconds=loop, steps=int(steps), epochs=float(epochs),
                  seconds_per_epoch=loop / epochs if epochs else math.nan,
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(result))


# -- the driver ------------------------------------------------------------------------------------
def ctgan_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ctgan") is not None


def run_one(table: str, contender: str, folder: Path, condition: str, seed: int, seconds: float, epochs: int | None,
            args) -> dict:
    cmd = [sys.executable, __file__, "--worker", contender, "--folder", str(folder), "--condition", condition,
           "--seconds", str(seconds), "--epochs", str(epochs or 0), "--seed", str(seed), "--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"tabular.py: {contender} on {table} (seed {seed}) failed: {tail}")
    return json.loads(lines[-1][len("RESULT "):])


def summarise(results: list[dict]) -> list[dict]:
    """Mean, standard deviation (over seeds, ddof 1), min and max of each figure per (table, contender)."""
    import statistics

    groups: dict = {}
    for r in results:
        groups.setdefault((r["table"], r["contender"]), []).append(r)
    out = []
    for (table, contender), runs in groups.items():
        row = {"table": table, "contender": contender, "rows": runs[0]["rows"], "seeds": [r["seed"] for r in runs]}
        for key in FIGURES:
            values = [float(r[key]) for r in runs]
            row[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "min": min(values), "max": max(values)}
        out.append(row)
    return out


def targets(summary: list[dict], best: str) -> list[dict]:
    """Per table: is the ``ctgan`` preset's mean within ctgan's seed range (min..max), and does the
    best preset's mean at least match ctgan's, for the quality score and the ML efficacy."""
    by = {(r["table"], r["contender"]): r for r in summary}
    out = []
    for table in dict.fromkeys(r["table"] for r in summary):
        ref = by.get((table, "ctgan"))
        if ref is None:
            continue
        row = {"table": table}
        for key in ("quality", "ml_efficacy_ratio"):
            rep = by.get((table, "condgan_ctgan"))
            if rep is not None:
                row[f"ctgan_preset_{key}_in_ctgan_range"] = ref[key]["min"] <= rep[key]["mean"] <= ref[key]["max"]
            top = by.get((table, best))
            if top is not None:
                row[f"{best}_{key}_at_least_ctgan"] = top[key]["mean"] >= ref[key]["mean"]
        if (table, best) in by:
            row[f"{best}_seconds_over_ctgan"] = by[(table, best)]["seconds"]["mean"] / ref["seconds"]["mean"]
        out.append(row)
    return out


def markdown(summary: list[dict]) -> str:
    def f(v, digits=3):
        return f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}"

    head = ("| table | contender | quality | ML efficacy (F1 synth / real) | conditional fidelity | train s | steps | "
            "s / epoch | peak RSS MB |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    rows = [f"| {r['table']} ({r['rows']} rows) | {r['contender']} | {f(r['quality'])} | {f(r['ml_efficacy_ratio'])} "
            f"({r['ml_synthetic_f1']['mean']:.3f} / {r['ml_real_f1']['mean']:.3f}) | {f(r['conditional_fidelity'])} | "
            f"{r['seconds']['mean']:.1f} | {r['steps']['mean']:.0f} | {r['seconds_per_epoch']['mean']:.3f} | "
            f"{r['peak_rss_mb']['mean']:.0f} |" for r in summary]
    return head + "\n".join(rows) + "\n"


def _shares(text: str, parser) -> dict[str, float]:
    shares = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if name not in CONTENDERS or not value:
            parser.error(f"--share takes CONTENDER=FRACTION items (contenders: {', '.join(CONTENDERS)}), got {item!r}")
        try:
            shares[name] = float(value)
        except ValueError:
            parser.error(f"--share {item!r}: the fraction must be a number")
        if not shares[name] > 0:
            parser.error(f"--share {item!r}: the fraction must be > 0")
    return shares


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="training seconds per contender per table and seed (without --epochs)")
    parser.add_argument("--epochs", type=int, default=0,
                        help="ctgan and condgan's ctgan preset train this many epochs instead (the same steps at batch 500)")
    parser.add_argument("--share", default="condgan_tabular=0.3333",
                        help="CONTENDER=F,...: that contender trains F x ctgan's measured training seconds on the same "
                             "table and seed (ctgan then runs first), or F x --seconds without ctgan")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2 (the split and the missing rule keep seed 0)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each contender")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--condition", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if not args.seconds > 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
    if args.epochs < 0:
        parser.error(f"--epochs must be >= 1 (or 0: train by --seconds), got {args.epochs}")
    try:
        seeds = [int(v) for v in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds takes integers separated by commas, got {args.seeds!r}")
    shares = _shares(args.share, parser)
    tables, contenders = args.tables.split(","), args.contenders.split(",")
    for c in contenders:
        if c not in CONTENDERS:
            parser.error(f"unknown contender {c!r}; the contenders: {', '.join(CONTENDERS)}")
    for t in tables:
        if t not in TABLES:
            parser.error(f"unknown table {t!r}; the tables: {', '.join(TABLES)}")
    if "ctgan" in contenders and not ctgan_installed():
        print("tabular.py: ctgan is not installed (pip install condgan[bench-tabular]): skipping the ctgan contender")
        contenders = [c for c in contenders if c != "ctgan"]
    import torch

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, table in enumerate(tables):
            folder = Path(tmp) / table
            folder.mkdir()
            train_csv, _, condition = prepare(table, 0, folder)
            rows = sum(1 for _ in open(train_csv)) - 1
            for j, seed in enumerate(seeds):
                fixed = [c for c in contenders if c not in shares]
                k = (i + j) % max(len(fixed), 1)
                order = fixed[k:] + fixed[:k]  # interleaved
                if "ctgan" in order and any(c in shares for c in contenders):
                    order = ["ctgan"] + [c for c in order if c != "ctgan"]  # the shares need ctgan's seconds
                order += [c for c in contenders if c in shares]
                ctgan_seconds = None
                for contender in order:
                    if contender in shares:
                        seconds, epochs = shares[contender] * (ctgan_seconds or args.seconds), None
                    elif contender in ("ctgan", "condgan_ctgan"):
                        seconds, epochs = args.seconds, args.epochs or None
                    else:
                        seconds, epochs = args.seconds, None
                    r = run_one(table, contender, folder, condition, seed, seconds, epochs, args)
                    if contender == "ctgan":
                        ctgan_seconds = r["seconds"]
                    r.update(table=table, contender=contender, rows=rows, condition=condition, seed=seed)
                    results.append(r)
                    print(f"{table:9s} seed {seed} {contender:16s} quality {r['quality']:.3f}  ML efficacy "
                          f"{r['ml_efficacy_ratio']:.3f}  fidelity {r['conditional_fidelity']:.3f}  {r['seconds']:.1f} s  "
                          f"{r['steps']} steps  {r['seconds_per_epoch']:.3f} s/epoch  {r['peak_rss_mb']:.0f} MB", flush=True)
    results.sort(key=lambda r: (tables.index(r["table"]), CONTENDERS.index(r["contender"]), r["seed"]))
    summary = summarise(results)
    best = "condgan_tabular"
    protocol = {"seconds": args.seconds, "epochs": args.epochs or None, "shares": shares, "seeds": seeds,
                "threads": args.threads, "torch": torch.__version__, "cpus": os.cpu_count(),
                "load_average": os.getloadavg(), "missing_rule": "tables without missing values: 5% of the first two "
                "numeric columns, seeded (seed 0)", "split": "75/25 holdout_split(seed 0)", "ctgan": _version("ctgan")}
    reading = targets(summary, best)
    if args.json:
        Path(args.json).write_text(json.dumps({"protocol": protocol, "summary": summary, "targets": reading,
                                               "results": results}, indent=2, default=str))
    table_md = markdown(summary)
    if args.markdown:
        Path(args.markdown).write_text(table_md)
    print(table_md)
    for row in reading:
        print(json.dumps(row))
    return 0


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
