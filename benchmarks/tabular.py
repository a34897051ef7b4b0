"""condgan against ctgan on real tables: the same training seconds each, the same judges (issue 23, item 5).

    python benchmarks/tabular.py --seconds 30 --json results/tabular.json --markdown results/tabular.md

Tables (all ship inside scikit-learn, no download): ``iris`` (150 rows, conditioned on
``species``), ``wine`` (178 rows, on ``cultivar``), ``diabetes`` (442 rows, on ``sex``, mapped to
"F"/"M"). None has missing values, so a documented, seeded rule adds them:
:func:`add_missing` blanks 5% of the cells of the first two numeric output columns
(``numpy.random.default_rng(seed)``), which every contender sees alike.

Protocol, for each table: a seeded 75/25 split (:func:`condgan.tabular.holdout_split`); each
contender trains on the 75% for ``--seconds`` of its training loop's wall-clock time, in its own
subprocess (a clean peak memory: ``resource.getrusage`` max RSS of that process) with
``--threads`` torch threads; the contenders' order rotates from table to table (interleaved, so a
change in machine load hits each alike). Each then samples as many rows as the training split has,
with the training split's condition counts (condgan: ``--per-class`` by class; ctgan:
``sample(condition_column=, condition_value=)``), and :mod:`condgan.tabular.judges` judges them
against the held-out 25%: the quality score (column shapes and pair trends), ML efficacy (a
gradient-boosted classifier of the condition column trained on synthetic rows over the same model
trained on the real training rows, macro F1 on the held-out rows) and conditional fidelity (column
shapes within each condition value). Time per epoch is the loop's seconds over the passes it made
(an epoch: ``ceil(rows / batch)`` condgan steps, ``max(rows // batch, 1)`` ctgan steps).

Contenders: condgan's ``tabular`` preset, condgan's ``ctgan`` preset (batch 500 capped to the
largest multiple of pac 10 the table's rows fill), and ctgan 0.12.x itself (``pip install
condgan[bench-tabular]``; skipped with one line when it is not installed).
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
TABLES = ("iris", "wine", "diabetes")
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
    frame = add_missing(frame, condition, seed=seed)
    train, test = holdout_split(frame, 0.25, seed=seed)
    # column kinds from the whole table (a split alone may make a numeric column look integer)
    kinds = {c.name: c.kind for c in infer_spec(frame)}
    (folder / "kinds.json").write_text(json.dumps(kinds))
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    return folder / "train.csv", folder / "test.csv", condition


# -- contenders (each in a worker process) ---------------------------------------------------------
def train_condgan(preset: str, train_csv: Path, condition: str, seconds: float, seed: int, out: Path):
    """Train a condgan preset for ``seconds`` of loop time; returns (synthetic frame, steps, epochs, loop seconds)."""
    import pandas as pd
    import torch

    from condgan import Trainer
    from condgan.resolve import run_config
    from condgan.tabular.columns import TableSpec

    run = run_config(preset)
    n = sum(1 for _ in open(train_csv)) - 1
    batch = run.training.batch_size
    if preset == "ctgan":  # the batch a packing D can judge: a multiple of pac that the rows fill
        batch = max(10, min(batch, n // 10 * 10))
    kinds = json.loads((train_csv.parent / "kinds.json").read_text())
    run = run_config(run, {"data.name": "table", "data.root": str(train_csv), "data.options.condition": condition,
                           "data.options.kinds": kinds,
                           "training.minutes": seconds / 60, "training.batch_size": batch, "training.seed": seed,
                           "training.device": "cpu", "training.out_dir": str(out), "training.loggers": [],
                           "training.sample_every": 0})
    trainer = Trainer(run)
    start = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - start
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


def train_ctgan(train_csv: Path, condition: str, seconds: float, seed: int):
    """Train ctgan 0.12's CTGAN (its defaults) for ``seconds`` of loop time; the loop is stopped
    from inside (its DataSampler's ``sample_condvec``, called twice a step, raises at the deadline)."""
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

    def sample_condvec(self, batch):
        if "start" not in clock:
            clock["start"] = time.perf_counter()
        elif time.perf_counter() - clock["start"] >= seconds:
            clock["stop"] = time.perf_counter()
            raise _Budget
        calls[0] += 1
        return original(self, batch)

    DataSampler.sample_condvec = sample_condvec
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = CTGAN(epochs=10 ** 9, enable_gpu=False)
    try:
        model.fit(frame, discrete_columns=discrete)
    except _Budget:
        pass
    finally:
        DataSampler.sample_condvec = original
    steps = calls[0] // 2
    per_epoch = max(len(frame) // model._batch_size, 1)
    counts = frame[condition].astype(str).value_counts()
    parts = [model.sample(int(k), condition_column=condition, condition_value=v) for v, k in counts.items()]
    synth = pd.concat(parts, ignore_index=True)
    synth[condition] = [v for v, k in counts.items() for _ in range(int(k))]  # the value each row was asked for
    for c in flagged:
        synth.loc[synth.pop(c + "__missing") == "yes", c] = np.nan
    return synth, steps, steps / per_epoch, clock.get("stop", time.perf_counter()) - clock.get("start", time.perf_counter())


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
    if args.worker == "ctgan":
        synth, steps, epochs, loop = train_ctgan(train_csv, condition, args.seconds, args.seed)
    else:
        preset = args.worker.removeprefix("condgan_")
        synth, steps, epochs, loop = train_condgan(preset, train_csv, condition, args.seconds, args.seed,
                                                   folder / f"run_{preset}")
    result = judge(train_csv, test_csv, synth, condition, folder)
    result.update(seconds=loop, steps=int(steps), epochs=float(epochs),
                  seconds_per_epoch=loop / epochs if epochs else math.nan,
                  peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(result))


# -- the driver ------------------------------------------------------------------------------------
def ctgan_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("ctgan") is not None


def run_one(table: str, contender: str, folder: Path, condition: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", contender, "--folder", str(folder), "--condition", condition,
           "--seconds", str(args.seconds), "--seed", str(args.seed), "--threads", str(args.threads)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"tabular.py: {contender} on {table} failed: {tail}")
    return json.loads(lines[-1][len("RESULT "):])


def markdown(results: list[dict]) -> str:
    head = ("| table | contender | quality | ML efficacy (F1 synth / real) | conditional fidelity | steps | "
            "s / epoch | peak RSS MB |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
    rows = [f"| {r['table']} ({r['rows']} rows) | {r['contender']} | {r['quality']:.3f} | {r['ml_efficacy_ratio']:.3f} "
            f"({r['ml_synthetic_f1']:.3f} / {r['ml_real_f1']:.3f}) | {r['conditional_fidelity']:.3f} | {r['steps']} | "
            f"{r['seconds_per_epoch']:.3f} | {r['peak_rss_mb']:.0f} |" for r in results]
    return head + "\n".join(rows) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training seconds per contender per table")
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each contender")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--condition", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if not args.seconds > 0:
        parser.error(f"--seconds must be > 0, got {args.seconds}")
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
            train_csv, _, condition = prepare(table, args.seed, folder)
            rows = sum(1 for _ in open(train_csv)) - 1
            order = contenders[i % len(contenders):] + contenders[:i % len(contenders)]  # interleaved
            for contender in order:
                r = run_one(table, contender, folder, condition, args)
                r.update(table=table, contender=contender, rows=rows, condition=condition)
                results.append(r)
                print(f"{table:9s} {contender:16s} quality {r['quality']:.3f}  ML efficacy {r['ml_efficacy_ratio']:.3f}  "
                      f"fidelity {r['conditional_fidelity']:.3f}  {r['steps']} steps  {r['seconds_per_epoch']:.3f} s/epoch  "
                      f"{r['peak_rss_mb']:.0f} MB", flush=True)
    results.sort(key=lambda r: (tables.index(r["table"]), CONTENDERS.index(r["contender"])))
    protocol = {"seconds": args.seconds, "seed": args.seed, "threads": args.threads, "torch": torch.__version__,
                "cpus": os.cpu_count(), "load_average": os.getloadavg(), "missing_rule": "5% of the first two numeric columns, seeded",
                "split": "75/25 holdout_split(seed)", "ctgan": _version("ctgan")}
    if args.json:
        Path(args.json).write_text(json.dumps({"protocol": protocol, "results": results}, indent=2, default=str))
    table_md = markdown(results)
    if args.markdown:
        Path(args.markdown).write_text(table_md)
    print(table_md)
    return 0


def _version(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
