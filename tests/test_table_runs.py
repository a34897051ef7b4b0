"""Table runs end to end (issue 23, Done-when): the held-out rows a run records and ``condgan eval RUN``
judging against them, ``condgan report`` showing the table judges, several condition columns, and
``condgan sample --rows N --condition col=value``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sampling_helpers import cli
from test_tables import penguins

from condgan.tabular.holdout import split_rows

TRAIN = ["train", "--preset", "tabular", "--dataset", "table", "--device", "cpu", "--loggers", "console", "--seed", 0]


def test_split_rows_is_seeded_disjoint_and_in_file_order():
    train, held = split_rows(100, 0.2, seed=3)
    assert len(held) == 20 and len(train) == 80 and not set(train) & set(held)
    assert list(train) == sorted(train) and sorted([*train, *held]) == list(range(100))
    assert np.array_equal(split_rows(100, 0.2, seed=3)[1], held) and not np.array_equal(split_rows(100, 0.2, seed=4)[1], held)
    assert len(split_rows(5, 0.0)[1]) == 0


def test_eval_without_reference_judges_the_run_against_its_held_out_rows_and_the_report_shows_it(tmp_path):
    penguins(tmp_path / "p.csv", 400)
    run = tmp_path / "run"
    code, _, err = cli([*TRAIN, "--data-root", tmp_path / "p.csv", "--set", "data.options.condition=species",
                        "--steps", 150, "--out", run])
    assert code == 0, err
    report = tmp_path / "r.html"
    assert cli(["report", run, "--out", report])[0] == 0
    assert "no table judgement in this run yet" in report.read_text()  # the report offers the eval
    code, out, err = cli(["eval", run, "--json", run / "eval.json"])
    assert code == 0, err
    assert "reference: the 80 rows" in out and "held out of" in out and "ML efficacy" in out
    judged = json.loads((run / "eval.json").read_text())
    assert judged["kind"] == "table" and judged["protocol"]["real"] == "its 320 training rows"
    row = judged["rows"][str(run)]
    assert row["rows"] == 320 and row["ml_target"] == "species"  # as many rows per species as training had
    assert row["quality"] > 0.7 and row["conditional_fidelity"] > 0.6 and row["copies"] < 0.05  # measured 0.828, 0.809, 0.0
    assert row["ml_synthetic"] > 0.6 * row["ml_real"]  # measured 0.887 against 0.951
    assert cli(["report", run, "--out", report])[0] == 0
    page = report.read_text()
    for figure in ("table judges", "quality score", "column shapes", "column pairs", "conditional fidelity",
                   "ML efficacy synth", "ML efficacy real", "DCR copy fraction", f"{row['quality']:.4f}"):
        assert figure in page, figure
    code, _, err = cli(["report", run, "--eval", "--out", report])  # the report runs the eval itself
    assert code == 0, err
    assert (run / "eval_table.json").is_file() and "eval_table.json (condgan eval, table judges)" in report.read_text()

    frame = pd.read_csv(tmp_path / "p.csv")
    frame.iloc[:-1].to_csv(tmp_path / "p.csv", index=False)  # one row fewer: the held-out rows are lost
    code, _, err = cli(["eval", run])
    [line] = err.strip().splitlines()
    assert code != 0 and "p.csv changed since" in line and "give --reference HELDOUT.csv" in line, line
    frame.to_csv(tmp_path / "moved.csv", index=False)
    (run / "eval_table.json").unlink()
    code, out, err = cli(["eval", run, "--data-root", tmp_path / "moved.csv"])  # the same bytes elsewhere
    assert code == 0 and "reference: the 80 rows" in out, err
    assert f"wrote {run / 'eval_table.json'} (condgan report {run} shows it)" in out  # a run judged on its own rows keeps it
    assert json.loads((run / "eval_table.json").read_text())["rows"][str(run)]["rows"] == 320


def test_a_run_without_held_out_rows_and_wrong_judges_are_one_line(tmp_path):
    penguins(tmp_path / "p.csv", 60)
    run = tmp_path / "run"
    assert cli([*TRAIN, "--data-root", tmp_path / "p.csv", "--set", "data.options.condition=species", "--set",
                "data.options.holdout=0", "--steps", 2, "--out", run])[0] == 0
    for argv, message in [
        (["eval", run], "was trained on every row of"),
        (["eval", run, "--judge", tmp_path / "judge.pt"], "makes table rows, which a judge file does not read: drop --judge"),
        (["eval", run, "--real", tmp_path / "p.csv"], "--real TRAIN.csv goes with --reference HELDOUT.csv"),
        (["report", tmp_path / "run", "--eval"], "was trained on every row of"),
        ([*TRAIN, "--data-root", tmp_path / "p.csv", "--set", "data.options.condition=species", "--set",
          "data.options.holdout=1.5", "--steps", 2, "--out", tmp_path / "bad"], "holdout is the fraction of rows kept out"),
    ]:
        code, _, err = cli(argv)
        [line] = err.strip().splitlines()
        assert code != 0 and message in line, (argv, line)


def test_several_condition_columns_make_a_class_per_combination_the_file_holds(tmp_path):
    from condgan.tabular.dataset import TableDataset

    real = penguins(tmp_path / "p.csv", 400)
    data = TableDataset(tmp_path / "p.csv", condition=["species", "island"]).load()
    combos = sorted({f"{s}/{i}" for s, i in zip(real["species"], real["island"])})
    assert data.class_names == tuple(combos) == ("Adelie/Biscoe", "Adelie/Dream", "Adelie/Torgersen", "Chinstrap/Dream", "Gentoo/Biscoe")
    assert data.output.classes[3] == ("Chinstrap", "Dream") and data.output.condition_names == ("species", "island")
    assert sum(data.output.counts) == len(data) == 400  # the dataset's own default holds nothing out
    back = data.output.rows(data.vectors, data.conditions)
    assert list(back.columns) == list(real.columns)
    pd.testing.assert_frame_equal(back[["species", "island"]], real[["species", "island"]])

    run = tmp_path / "run"
    code, _, err = cli([*TRAIN, "--data-root", tmp_path / "p.csv", "--set", "data.options.condition=species,island",
                        "--steps", 300, "--out", run])
    assert code == 0, err
    code, out, err = cli(["sample", run, "--per-class", 100, "--out", tmp_path / "s.csv"])
    assert code == 0 and "5 conditions" in out, err
    synth = pd.read_csv(tmp_path / "s.csv")
    assert list(synth.columns) == list(real.columns) and len(synth) == 500
    assert sorted(f"{s}/{i}" for s, i in set(zip(synth["species"], synth["island"]))) == combos  # named by both columns
    mass = synth.groupby("species")["body_mass_g"].mean()
    assert mass["Gentoo"] > mass["Adelie"] + 600  # the joint condition still carries the species (measured 1,323 g; real 1,400)
    code, _, err = cli(["sample", run, "--per-class", 3, "--classes", "Gentoo/Biscoe", "--out", tmp_path / "g.csv"])
    assert code == 0, err
    assert set(zip(*pd.read_csv(tmp_path / "g.csv")[["species", "island"]].values.T)) == {("Gentoo", "Biscoe")}
    code, out, err = cli(["eval", run, "--json", tmp_path / "e.json"])
    assert code == 0, err
    row = json.loads((tmp_path / "e.json").read_text())["rows"][str(run)]
    assert row["ml_target"] == "species" and row["conditional_fidelity"] > 0.5  # fidelity within each combination


def test_sample_rows_by_training_frequencies_or_fixed_condition_values(tmp_path):
    from condgan.checkpoint import load_generator
    from condgan.tabular.draw import rows_per_class

    penguins(tmp_path / "p.csv", 200)
    run = tmp_path / "run"
    assert cli([*TRAIN, "--data-root", tmp_path / "p.csv", "--set", "data.options.condition=species,island", "--steps", 3,
                "--out", run])[0] == 0
    output = load_generator(run).output
    assert len(output.counts) == len(output.class_values) == 5 and sum(output.counts) == 160  # training rows per (species, island)
    share = rows_per_class(output, 1000, {})
    assert sum(share.values()) == 1000 and rows_per_class(output, 1000, {}) == share  # deterministic
    for k, n in share.items():  # largest remainders: within one row of the exact share
        assert abs(n - 1000 * output.counts[k] / sum(output.counts)) < 1
    assert set(rows_per_class(output, 10, {"species": "Adelie"})) == {0, 1, 2}  # Adelie lives on three islands
    assert rows_per_class(output, 10, {"species": "Gentoo", "island": "Biscoe"}) == {4: 10}

    code, out, err = cli(["sample", run, "--rows", 300, "--out", tmp_path / "all.csv"])
    assert code == 0 and "wrote 300 rows" in out, err
    synth = pd.read_csv(tmp_path / "all.csv")
    drawn = synth.groupby(["species", "island"]).size().to_dict()
    assert drawn == {output.class_values[k]: n for k, n in rows_per_class(output, 300, {}).items()}  # by the training frequencies
    code, out, err = cli(["sample", run, "--rows", 40, "--condition", "island=Dream", "--condition", "species=Chinstrap",
                          "--out", tmp_path / "c.parquet"])
    assert code == 0, err
    rows = pd.read_parquet(tmp_path / "c.parquet")
    assert len(rows) == 40 and set(rows["species"]) == {"Chinstrap"} and set(rows["island"]) == {"Dream"}
    for argv, message in [
        (["--rows", 5, "--condition", "species=Emperor"], "--condition species=Emperor: column 'species' never held 'Emperor'; "
                                                          "its values: Adelie, Chinstrap, Gentoo"),
        (["--rows", 5, "--condition", "colour=red"], "'colour' is not a condition column of this model; its condition columns: species, island"),
        (["--rows", 5, "--condition", "species=Gentoo", "--condition", "island=Dream"], "the training rows never held this combination"),
        (["--rows", 5, "--condition", "species"], "expected COLUMN=VALUE"),
        (["--per-class", 5, "--condition", "species=Gentoo"], "--condition COLUMN=VALUE goes with --rows N"),
        (["--rows", 5, "--classes", "Gentoo/Biscoe"], "choose their condition values with --condition"),
    ]:
        code, _, err = cli(["sample", run, *argv, "--out", tmp_path / "x.csv"])
        [line] = err.strip().splitlines()
        assert code != 0 and message in line, (argv, line)
    assert not (tmp_path / "x.csv").exists()


def test_a_table_given_to_image_commands_and_an_image_model_to_table_commands_are_one_line(tmp_path):
    from sampling_helpers import train_tiny_run

    penguins(tmp_path / "p.csv", 60)
    table = tmp_path / "table"
    assert cli([*TRAIN, "--data-root", tmp_path / "p.csv", "--set", "data.options.condition=species", "--steps", 2,
                "--out", table])[0] == 0
    image = train_tiny_run(tmp_path / "image", steps=2)
    cases = [
        (["train-classifier", "--dataset", "table", "--data-root", tmp_path / "p.csv", "--options", "condition=species",
          "--out", tmp_path / "j.pt"], "dataset 'table' holds table (4 columns"),
        ([*TRAIN, "--data-root", tmp_path / "p.csv", "--set", "data.options.condition=species", "--steps", 4, "--log-every", 1,
          "--eval-every", 2, "--judge", tmp_path / "j.pt", "--out", tmp_path / "judged"], "eval_every judges images, and this model makes table"),
        (["sample", table, "--per-class", 2, "--grid", tmp_path / "g.png"], "write its rows with --out FILE.csv or FILE.parquet"),
        (["sample", image, "--per-class", 2, "--out", tmp_path / "x.csv"], ".csv and .parquet hold table rows, and this model makes image"),
        (["sample", image, "--rows", 4, "--out", tmp_path / "x.csv"], "--rows/--condition draw table rows, and"),
        (["sample", image, "--rows", 4, "--condition", "label=3", "--out", tmp_path / "x.npz"], "--rows/--condition draw table rows"),
        (["eval", image, "--reference", tmp_path / "p.csv"], "handles table outputs only"),
        (["report", image, "--eval"], "--eval judges table runs by their held-out rows, and"),
    ]
    for argv, message in cases:
        code, _, err = cli(argv)
        lines = err.strip().splitlines()
        assert code != 0 and len(lines) == 1 and message in lines[0], (argv, err)
