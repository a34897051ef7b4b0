"""The small benchmark scripts: time-to-quality curves (plot_time_to_quality.py), whole-process timing (startup.py) and stacked runs (stacked.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import plot_time_to_quality  # noqa: E402
import startup  # noqa: E402


def _curve(scale: float) -> list[dict]:
    return [{"minutes": m, "steps": 100 * m, "label_accuracy": 0.5 + scale * m, "fid": 80 / m, "recall": scale * m}
            for m in (1, 2, 3)]


def test_plot_draws_every_contender_of_every_file(tmp_path):
    pytest.importorskip("matplotlib")
    files = []
    for name in ("base", "ema"):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"contenders": [{"name": "mnist_dcgan_projection", "curve": _curve(0.1)}]}))
        files.append(path)
    curves = plot_time_to_quality.load_curves(files)
    assert sorted(curves) == ["base: mnist_dcgan_projection", "ema: mnist_dcgan_projection"]
    out = tmp_path / "curves.png"
    plot_time_to_quality.main([str(f) for f in files] + ["--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_rejects_a_file_that_is_not_a_time_to_quality_result(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(SystemExit, match="bad.json is not a time_to_quality.py JSON file"):
        plot_time_to_quality.load_curves([bad])


def test_timed_lines_times_the_marker_line_and_the_rest(tmp_path):
    script = "import time; print('start'); time.sleep(0.3); print('step 1/1'); time.sleep(0.2)"
    to_marker, after = startup.timed_lines([sys.executable, "-c", script], "step 1/1")
    assert to_marker >= 0.3 and after >= 0.2  # the sleeps bound each part from below
    with pytest.raises(RuntimeError, match="printed no 'never' line"):
        startup.timed_lines([sys.executable, "-c", "print('x')"], "never")


def test_stacked_benchmark_writes_rounds_ratios_and_its_protocol(tmp_path):
    import stacked

    out = tmp_path / "stacked.json"
    stacked.main(["--ks", "1,2", "--steps", "1", "--rounds", "1", "--contenders", "stacked,sequential", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["protocol"]["preset"] == "mnist_mlp" and data["protocol"]["threads"] == 1
    assert sorted((r["k"], r["contender"]) for r in data["summary"]) == [(1, "sequential"), (1, "stacked"),
                                                                        (2, "sequential"), (2, "stacked")]
    assert all(r["steps_per_s"] > 0 and r["ratio"] > 0 for r in data["summary"])
