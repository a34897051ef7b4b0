"""``condgan search --backend ray`` (issue 26): the same search on Ray Tune with Optuna's searcher, on a
local Ray instance of 2 workers (skipped without Ray: pip install 'condgan[ray]'); an address that
does not answer and a missing Ray are one line. Ray's start makes the search test take ~40 s here."""

from __future__ import annotations

import json
import sys

import pytest

from condgan.cli import main
from test_search import config_file, run, study


def ray_search(tmp_path, *extra):
    return ["search", config_file(tmp_path), "--trials", 3, "--metric", "g_loss", "--steps", 6, "--log-every", 2,
            "--out", tmp_path / "s", "--backend", "ray", *extra]


def test_a_search_runs_on_a_local_ray_instance_of_two_workers(tmp_path, capsys):
    pytest.importorskip("ray.tune")
    code, out, err = run(ray_search(tmp_path, "--workers", 2), capsys)
    assert code == 0, err
    assert "on Ray: 3 trials" in out and "best trial_" in out
    trials = study(tmp_path).trials  # Optuna's study, stored as with the Optuna backend
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    best = json.loads((tmp_path / "s" / "best.json").read_text())
    assert best["value"] == min(t.value for t in trials)
    assert len(list((tmp_path / "s").glob("trial_*/generator.pt"))) == 3  # each trial a run directory
    code, out, err = run(ray_search(tmp_path), capsys)  # the study holds its 3 trials: nothing to run
    assert code == 0 and "3 of 3 trials finished; nothing to run" in out


def test_a_ray_address_that_does_not_answer_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray.tune")
    code, _, err = run(ray_search(tmp_path, "--ray-address", "127.0.0.1:1"), capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "--ray-address 127.0.0.1:1: nothing answers there" in err and not (tmp_path / "s").exists()


def test_without_ray_one_line_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "ray.tune", None)
    code, _, err = run(ray_search(tmp_path), capsys)
    assert code == 1 and err.strip() == "condgan: error: this needs ray, which is not installed: pip install 'condgan[ray]'"
