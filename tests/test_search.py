"""``condgan search`` (issue 26): an Optuna study over a [search] space, each trial a run directory, the
study in SQLite so a killed search resumes, weak trials pruned through a trainer callback, the best
config written for ``condgan train --config``, and bad input as one line before any trial."""

from __future__ import annotations

import json
import sys

import pytest
from metrics_helpers import shapes_plugin
from training_helpers import small_data, tiny_config, tiny_training

import condgan
from condgan import checkpoint as ckpt
from condgan.cli import main
from condgan.runs.search import ReportToTrial

optuna = pytest.importorskip("optuna")

TINY = """
[model]
image_shape = [1, 8, 8]
latent_dim = 8
generator = {backbone_options = {widths = [16, 16, 16, 16]}}
discriminator = {backbone_options = {widths = [16, 16, 16]}}

[data]
name = "synthetic"

[training]
batch_size = 16
device = "cpu"
loggers = []
"""
SPACE = """
[search]
"model.g_optimizer.lr" = {low = 1e-5, high = 1e-3, log = true}
"model.loss" = {choices = ["lsgan", "hinge"]}
"""


def run(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def config_file(tmp_path, text=TINY + SPACE, name="search.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def search(tmp_path, trials, *extra, config=None):
    return ["search", config or config_file(tmp_path), "--trials", trials, "--metric", "g_loss", "--steps", 6,
            "--log-every", 2, "--out", tmp_path / "s", *extra]


def study(tmp_path):
    return optuna.load_study(study_name="condgan", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")


def test_a_search_on_fid_names_its_best_trial_and_its_config_trains(tmp_path, capsys):
    condgan.register_plugin(shapes_plugin("class", n_train=600, n_test=200), name="shapes")
    from condgan.metrics.judge_training import train_judge

    train_judge("shapes", None, tmp_path / "judge.pt", epochs=2, batch_size=64)
    text = TINY.replace('name = "synthetic"', 'name = "shapes"').replace("[1, 8, 8]", "[3, 16, 16]") \
        .replace("[model]", "[model]\nnum_classes = \"none\"") + SPACE
    argv = ["search", config_file(tmp_path, text), "--trials", 4, "--metric", "fid", "--judge", tmp_path / "judge.pt",
            "--steps", 10, "--log-every", 5, "--eval-samples", 300, "--out", tmp_path / "s"]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    trials = study(tmp_path).trials
    assert len(trials) == 4 and {t.state.name for t in trials} <= {"COMPLETE", "PRUNED"}
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    best = min(complete, key=lambda t: t.value)
    assert f"best trial {best.number}: fid {best.value:.4g}" in out
    for t in trials:  # each trial a run directory, its FID from the metrics during training
        evals = [json.loads(l) for l in (tmp_path / "s" / f"trial_{t.number:04d}" / "metrics.jsonl").read_text().splitlines()]
        assert any(e["kind"] == "eval" and e["fid"] > 0 for e in evals)
    saved = json.loads((tmp_path / "s" / "best.json").read_text())
    assert saved["trial"] == best.number and saved["value"] == best.value
    code, _, err = run(["train", "--config", tmp_path / "s" / "best.toml", "--out", tmp_path / "again", "--steps", 2], capsys)
    assert code == 0, err
    trained = ckpt.read_file(ckpt.latest_checkpoint(tmp_path / "again"))["gan_config"]
    searched = ckpt.read_file(ckpt.latest_checkpoint(tmp_path / "s" / f"trial_{best.number:04d}"))["gan_config"]
    assert trained == searched  # the same model, learning rate and loss as the best trial
    assert trained["g_optimizer"]["lr"] == best.params["model.g_optimizer.lr"]


def test_a_search_resumes_to_its_total_and_retries_a_trial_cut_off_by_a_kill(tmp_path, capsys):
    code, out, err = run(search(tmp_path, 2), capsys)
    assert code == 0, err
    assert len(study(tmp_path).trials) == 2
    # a kill mid-trial leaves a trial "running" in the study: simulate one
    s = study(tmp_path)
    dead = s.ask({"model.g_optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1e-3, log=True),
                  "model.loss": optuna.distributions.CategoricalDistribution(["lsgan", "hinge"])})
    code, out, err = run(search(tmp_path, 4), capsys)
    assert code == 0, err
    assert f"trial(s) {dead.number} were cut off by a kill" in out and "2 of 4 trials finished; running 2" in out
    trials = study(tmp_path).trials
    assert trials[dead.number].state.name == "FAIL" and trials[dead.number].user_attrs["interrupted"]
    retry = next(t for t in trials if t.user_attrs.get("retry_of") == dead.number)
    assert retry.params == dead.params and retry.state.name in ("COMPLETE", "PRUNED")
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials) == 4
    code, out, err = run(search(tmp_path, 4), capsys)  # nothing left to run
    assert code == 0 and "4 of 4 trials finished; running 0" in out and len(study(tmp_path).trials) == 5


def test_a_pruned_trial_stops_its_trainer_at_a_metric_point(tmp_path):
    seen = []

    def report(value, step):
        seen.append(step)
        return step == 4

    callback = ReportToTrial("d_loss", report)
    condgan.register_plugin(callback)
    trainer = condgan.Trainer(tiny_config(), tiny_training(steps=20, log_every=2, device="cpu", loggers=(),
                                                           out_dir=str(tmp_path / "run")), data=small_data())
    assert trainer.train() == "pruned" and trainer.step == 4 and seen == [2, 4]
    assert callback.last is not None and ckpt.latest_checkpoint(tmp_path / "run") is not None


# -- bad input: one line, before any trial -------------------------------------------------------------
@pytest.mark.parametrize("space, said", [
    ('"model.g_optimizer.lrr" = {low = 1e-5, high = 1e-3}', "unknown config key 'model.g_optimizer.lrr'; did you mean"),
    ('"model.g_optimizer.lr" = {low = 1e-3, high = 1e-5}', "low (0.001) must be below high (1e-05)"),
    ('"model.g_optimizer.lr" = {low = 0.0, high = 1e-3, log = true}', "a log range needs low > 0"),
    ('"model.loss" = {choices = []}', "choices must be a non-empty list"),
    ('"model.g_optimizer.lr" = {low = 1e-5, hi = 1e-3}', "unknown field(s) ['hi']"),
])
def test_a_bad_search_space_is_one_line(tmp_path, capsys, space, said):
    code, out, err = run(search(tmp_path, 2, config=config_file(tmp_path, TINY + "[search]\n" + space + "\n")), capsys)
    assert code == 1 and said in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_a_study_of_another_config_is_refused(tmp_path, capsys):
    assert run(search(tmp_path, 1), capsys)[0] == 0
    other = config_file(tmp_path, TINY + SPACE.replace("1e-5", "1e-6"), "other.toml")
    code, _, err = run(search(tmp_path, 2, config=other), capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "holds the study of another config (differs in: space model.g_optimizer.lr)" in err
    code, _, err = run(search(tmp_path, 2, "--set", "latent_dim=4"), capsys)
    assert code == 1 and "differs in: base latent_dim" in err


def test_a_judged_metric_without_a_judge_and_a_missing_optuna_are_one_line(tmp_path, capsys, monkeypatch):
    code, _, err = run(["search", config_file(tmp_path), "--trials", 1, "--metric", "fid", "--steps", 2,
                        "--out", tmp_path / "s"], capsys)
    assert code == 1 and "--metric fid is measured by a judge: give --judge FILE" in err
    monkeypatch.setitem(sys.modules, "optuna", None)  # as if not installed
    code, _, err = run(search(tmp_path, 1), capsys)
    assert code == 1 and err.strip() == "condgan: error: this needs optuna, which is not installed: pip install 'condgan[search]'"
