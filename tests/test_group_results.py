"""Results over the runs of a group (issue 26): ``condgan eval GROUP`` and ``condgan report GROUP`` give
each metric's mean, sample std, min and max over the runs, name the best run, and draw bands."""

from __future__ import annotations

import json
import math
import re
import statistics

import pytest
from metrics_helpers import shapes_plugin

from condgan import register_plugin
from condgan.cli import main
from condgan.metrics.judge_training import train_judge
from condgan.runs.summary import spread

TINY_SHAPES = ["--set", "image_shape=(3,16,16)", "--set", "latent_dim=8", "--set", "generator.backbone_options.widths=(32,32,32,32)",
               "--set", "discriminator.backbone_options.widths=(32,32,32)", "--set", "data.name=shapes", "--set", "batch_size=32",
               "--set", "num_classes=None"]


@pytest.fixture(autouse=True)
def shapes_data(registry):
    register_plugin(shapes_plugin("class", n_train=600, n_test=200), name="shapes_for_groups")


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """A judge of the shapes data and a group of 3 seeds with in-training metrics every 10 steps."""
    tmp = tmp_path_factory.mktemp("group")
    register_plugin(shapes_plugin("class", n_train=600, n_test=200), name="shapes_for_groups")
    train_judge("shapes", None, tmp / "judge.pt", epochs=2, batch_size=64)
    code = main(["train", *TINY_SHAPES, "--out", str(tmp / "g"), "--device", "cpu", "--loggers", "grid", "--steps", "20",
                 "--log-every", "10", "--eval-every", "10", "--eval-samples", "300", "--judge", str(tmp / "judge.pt"),
                 "--seeds", "0-2"])
    assert code == 0
    return tmp


def test_spread_is_mean_sample_std_min_max_and_the_best_run():
    s = spread({"a": 3.0, "b": 1.0, "c": 2.0, "d": float("nan")}, "fid")
    assert (s.mean, s.std, s.min, s.max, s.best, s.n, s.missing) == (2.0, 1.0, 1.0, 3.0, "b", 3, 1)
    assert spread({"a": 0.5, "b": 0.9}, "label_accuracy").best == "b"  # higher is better
    assert spread({"a": 0.5}, "fid").std is None and spread({"a": None}, "fid") is None


def test_eval_of_a_group_reports_each_metric_over_the_runs(group, capsys):
    out = group / "g" / "eval.json"
    assert main(["eval", str(group / "g"), "--judge", str(group / "judge.pt"), "--per-class", "80", "--no-real",
                 "--no-knn", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    names = [f"{group / 'g'}/seed_{k}" for k in range(3)]
    assert list(data["rows"]) == names  # one row per run
    fids = [data["rows"][n]["fid"]["value"] for n in names]
    summary = data["groups"][str(group / "g")]
    assert summary["metrics"]["fid"]["mean"] == pytest.approx(statistics.mean(fids))
    assert summary["metrics"]["fid"]["std"] == pytest.approx(statistics.stdev(fids))
    assert (summary["metrics"]["fid"]["min"], summary["metrics"]["fid"]["max"]) == (min(fids), max(fids))
    best = f"seed_{fids.index(min(fids))}"
    assert summary["best"] == {"metric": "fid", "run": best}
    assert len(set(fids)) == 3  # three different models
    line = next(l for l in text.splitlines() if l.strip().startswith("fid "))
    assert f"{statistics.mean(fids):.4f} +/- {statistics.stdev(fids):.4f}" in line and "n=3" in line
    assert f"best run by fid (lowest): {group / 'g'}/{best}" in text


def test_the_report_of_a_group_has_the_spread_the_best_run_and_bands(group, capsys):
    assert main(["report", str(group / "g"), "--svg"]) == 0
    page = (group / "g" / "report.html").read_text()
    for k in range(3):
        assert f"seed_{k}" in page
    fids = [[json.loads(l) for l in (group / "g" / f"seed_{k}" / "metrics.jsonl").read_text().splitlines()] for k in range(3)]
    last = [[e["fid"] for e in entries if e["kind"] == "eval"][-1] for entries in fids]
    assert f"<b>seed_{last.index(min(last))}</b>" in page
    mean = sum(last) / 3
    assert f"{mean:.4f}" in page or f"{mean:.2f}" in page
    assert page.count('class="band"') >= 3  # g_loss, d_loss and FID over the runs, each a band
    assert "Over the runs" in page and not math.isnan(mean)
    assert re.search(r"eval\.json \(condgan eval\)", page) or not (group / "g" / "eval.json").exists()
