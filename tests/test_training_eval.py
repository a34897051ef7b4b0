"""Metrics during training (metrics.jsonl, best.pt), the run report, and condgan eval over several sources."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

import condgan
from condgan import register_plugin
from condgan.metrics.judge import JudgeMismatchError
from condgan.metrics.judge_training import train_judge
from condgan.training.evaluation import read_metrics
from condgan import Trainer, TrainerConfig

from metrics_helpers import shapes, shapes_plugin

WIDTHS = {"generator.backbone_options.widths": (32, 32, 32, 32)}


@pytest.fixture
def shapes_run(tmp_path):
    """A judge for the shapes data, and a short run with in-training metrics every 20 steps."""
    register_plugin(shapes_plugin("class", n_train=600, n_test=200))
    judge_path = tmp_path / "judge.pt"
    train_judge("shapes", None, judge_path, epochs=2, batch_size=64)
    data = shapes(600, 16, kind="class", seed=0)
    gan = condgan.build("mnist_mlp", image_shape=(3, 16, 16), num_classes=4, latent_dim=8, overrides=WIDTHS).config
    config = TrainerConfig(steps=40, log_every=10, eval_every=20, eval_samples=300, judge=str(judge_path), sample_every=20,
                           out_dir=str(tmp_path / "run"), loggers=("grid",), device="cpu", checkpoint_every=None)
    trainer = Trainer(gan, config, data=data)
    trainer.train()
    return tmp_path, trainer, data


def test_metrics_are_logged_and_the_best_checkpoint_is_kept(shapes_run):
    tmp_path, trainer, data = shapes_run
    run = tmp_path / "run"
    entries = read_metrics(run / "metrics.jsonl")
    kinds = [(e["kind"], e["step"]) for e in entries]
    assert kinds == [("protocol", 0), ("losses", 10), ("losses", 20), ("eval", 20), ("losses", 30), ("losses", 40), ("eval", 40)]
    protocol, evals = entries[0], [e for e in entries if e["kind"] == "eval"]
    assert protocol["judge"]["dataset"]["name"] == "shapes" and protocol["samples"] == 300
    for e in evals:
        assert e["fid"] > 0 and 0 <= e["label_accuracy"] <= 1 and e["seconds"] > 0
    assert evals[0]["best"]  # the first evaluation is the best so far
    best_step = max((e for e in evals if e["best"]), key=lambda e: e["step"])["step"]
    best = torch.load(run / "best.pt", weights_only=False)
    assert best["step"] == best_step
    generator = condgan.load_generator(run / "best.pt")
    assert generator.sample(torch.arange(4)).shape == (4, 3, 16, 16)
    assert all(e["g_loss"] is not None for e in entries if e["kind"] == "losses")


def test_evaluations_leave_training_unchanged(shapes_run):
    tmp_path, trainer, data = shapes_run
    gan = trainer.gan.config
    plain = Trainer(gan, TrainerConfig(steps=40, log_every=10, sample_every=20, loggers=(), device="cpu"), data=data)
    plain.train()
    for a, b in zip(plain.gan.generator.state_dict().values(), trainer.gan.generator.state_dict().values()):
        assert torch.equal(a, b)


def test_the_report_has_curves_grids_metrics_and_config(shapes_run, tmp_path):
    from condgan.cli import main
    from condgan.reporting import build_report

    run = shapes_run[0] / "run"
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert page.count("<figure>") == 2  # the grids of steps 20 and 40 (the final grid is step 40)
    assert "data:image/png;base64," in page and "training losses" in page and "FID (judge features)" in page
    assert "best by fid (best.pt)" in page and "&quot;judge&quot;:" in page and "shapes at [3, 16, 16]" in page
    svg = build_report(run, svg=True)
    assert svg.count("<polyline") >= 3 and "src=\"data:image/png" in svg  # curves as SVG, grids still PNG


def test_report_screenshot_in_headless_chromium(shapes_run, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from condgan.reporting import write_report

    page = write_report(shapes_run[0] / "run", tmp_path / "r.html")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1200,2000", page.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (2000, 1200)
    assert (pixels < 128).mean() > 0.01  # text, curves and grids drew something dark on the white page


def test_eval_compares_several_sources_in_one_table(shapes_run, capsys):
    from condgan.cli import main

    tmp_path, trainer, data = shapes_run
    images, labels = shapes(400, 16, kind="class", seed=5)
    np.savez(tmp_path / "real.npz", images=(images.float() / 255).numpy(), labels=labels.numpy())
    np.savez(tmp_path / "noise.npz", images=np.random.rand(400, 3, 16, 16).astype(np.float32), labels=labels.numpy())
    out = tmp_path / "run" / "eval.json"
    assert main(["eval", str(tmp_path / "real.npz"), str(tmp_path / "noise.npz"), str(tmp_path / "run"),
                 "--judge", str(tmp_path / "judge.pt"), "--per-class", "100", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())["rows"]
    assert list(rows) == [str(tmp_path / "real.npz"), str(tmp_path / "noise.npz"), str(tmp_path / "run"), "real shapes train"]
    assert rows[str(tmp_path / "real.npz")]["fid"]["value"] < rows[str(tmp_path / "noise.npz")]["fid"]["value"]
    assert len({r["fid"]["protocol"]["classifier"]["sha256"] for r in rows.values()}) == 1  # one protocol
    assert "label acc" in text and "Parzen" not in text.split("\n")[0]
    from condgan.reporting import build_report

    assert "eval.json (condgan eval)" in build_report(tmp_path / "run", svg=True)


def test_bad_in_training_settings_fail_at_once(tmp_path):
    with pytest.raises(ValueError, match=r"multiple of log_every \(100\)"):
        TrainerConfig(eval_every=150, judge="j.pt")
    with pytest.raises(ValueError, match="eval_every needs judge=PATH"):
        TrainerConfig(eval_every=100)
    with pytest.raises(ValueError, match="best_metric must be one of"):
        TrainerConfig(best_metric="recall")
    assert "metrics" in TrainerConfig(eval_every=100, judge="j.pt").loggers


def test_a_judge_of_another_image_size_stops_the_run_before_training(tmp_path):
    register_plugin(shapes_plugin("class", n_train=300, n_test=100, size=8))
    train_judge("shapes", None, tmp_path / "j8.pt", epochs=1, batch_size=64)
    gan = condgan.build("mnist_mlp", image_shape=(3, 16, 16), num_classes=4, latent_dim=8, overrides=WIDTHS)
    config = TrainerConfig(steps=20, log_every=10, eval_every=10, judge=str(tmp_path / "j8.pt"), loggers=(), device="cpu",
                           out_dir=str(tmp_path / "run"))
    trainer = Trainer(gan, config, data=shapes(300, 16, seed=0))
    with pytest.raises(JudgeMismatchError, match=r"at \(3, 8, 8\) but the model makes \(3, 16, 16\) images"):
        trainer.train()
    assert trainer.step == 0
