"""Several judges (issue 27): a ResNet and an augmented judge, eval under all of them, worst case, targets, worst grids.

Three tiny judges are trained on scikit-learn's digits (8x8, no download) in seconds: a CNN, a
ResNet and an augmented CNN, each with its own seed. Real held-out digits and corrupted ones are
judged under all of them through ``condgan eval --judges``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from condgan.cli import main  # noqa: E402
from condgan.metrics import judge_outputs, load_judge  # noqa: E402
from condgan.metrics.agreement import Target, load_judges, parse_target, worst_case  # noqa: E402
from condgan.metrics.judge import JudgeError, JudgeMismatchError  # noqa: E402
from condgan.metrics.judge_training import load_for_judge, train_judge  # noqa: E402
from condgan.metrics.worst_samples import save_worst_grid  # noqa: E402

TINY = {"epochs": 15, "batch_size": 64, "widths": (8, 16), "feature_dim": 16, "lr": 5e-3}  # 40 feature dims
RECIPES = {"cnn": ("cnn", False, 0), "resnet": ("resnet", False, 1), "augmented": ("cnn", True, 2)}


@pytest.fixture(scope="module")
def judges(tmp_path_factory):
    """Three digits judges (CNN seed 0, ResNet seed 1, augmented CNN seed 2) and two NPZ files: the held-out
    digits and the same digits corrupted (noise and a blanked half)."""
    root = tmp_path_factory.mktemp("judges")
    paths = {}
    for name, (arch, augment, seed) in RECIPES.items():
        paths[name] = root / f"{name}.pt"
        train_judge("digits", None, paths[name], arch=arch, augment=augment, seed=seed, **TINY)
    _, test = load_for_judge("digits", None, "test")
    real = test.images.float() / 255
    g = torch.Generator().manual_seed(0)
    bad = (real + 0.5 * torch.randn(real.shape, generator=g)).clamp(0, 1)
    bad[:, :, :, 4:] = 0.0
    files = {}
    for name, images in (("real", real), ("bad", bad)):
        files[name] = root / f"{name}.npz"
        np.savez(files[name], images=images.numpy(), labels=test.conditions.numpy())
    return root, paths, files, (bad, test.conditions)


@pytest.fixture(scope="module")
def evaluated(judges):
    """``condgan eval real.npz bad.npz --judges cnn,resnet,augmented --json``: (exit code, printed, JSON)."""
    root, paths, files, _ = judges
    out = root / "eval.json"
    argv = ["eval", str(files["real"]), str(files["bad"]), "--judges", ",".join(str(p) for p in paths.values()),
            "--no-parzen", "--json", str(out)]
    from io import StringIO
    from contextlib import redirect_stdout

    printed = StringIO()
    with redirect_stdout(printed):
        code = main(argv)
    return code, printed.getvalue(), json.loads(out.read_text())


def test_resnet_and_augmented_judge_files_round_trip_with_their_recipe(judges):
    _, paths, _, (bad, _) = judges
    for name, (arch, augment, seed) in RECIPES.items():
        judge = load_judge(paths[name])
        assert judge.recipe["arch"] == arch and judge.recipe["augment"] is augment and judge.recipe["seed"] == seed
        assert judge.protocol["training"]["seed"] == seed
        assert (judge.protocol["training"]["augment"] is not None) is augment
    resnet = load_judge(paths["resnet"])
    assert resnet.protocol["architecture"] == "condgan-judge-resnet-v1" and resnet.label() == "resnet seed 1"
    assert type(resnet.net).__name__ == "JudgeResNet" and resnet.feature_dim == 8 + 16 + 16
    again = load_judge(paths["resnet"], expected_sha256=resnet.sha256)
    torch.testing.assert_close(judge_outputs(again, bad[:50]), judge_outputs(resnet, bad[:50]), rtol=0, atol=0)
    augmented = load_judge(paths["augmented"])
    assert augmented.protocol["training"]["augment"]["rotation_degrees"] == 10.0
    assert "rotations <= 10 degrees" in augmented.protocol["training"]["augmentation"]
    assert load_judge(paths["cnn"]).protocol["recipe"]["network"] == "judge-cnn"  # 'cnn' on digits: the data's CNN


def test_every_judge_is_reasonable_and_they_differ(judges):
    _, paths, _, _ = judges
    loaded = [load_judge(p) for p in paths.values()]
    assert len({j.sha256 for j in loaded}) == 3
    assert all(j.protocol["held_out"]["accuracy"] > 0.85 for j in loaded), [j.protocol["held_out"]["accuracy"] for j in loaded]


def test_eval_reports_each_judge_and_the_worst_case(evaluated, judges):
    code, printed, data = evaluated
    assert code == 0
    assert len(data["judges"]) == 3 and [j["label"] for j in data["judges"]] == ["cnn seed 0", "resnet seed 1",
                                                                               "cnn+augment seed 2"]
    real, bad = (f"{judges[2][k]}" for k in ("real", "bad"))
    for row in (real, bad):
        per = [j["rows"][row] for j in data["judges"]]
        worst = data["rows"][row]
        assert worst["fid"]["value"] == max(p["fid"]["value"] for p in per)
        assert worst["label_accuracy"]["value"] == min(p["label_accuracy"]["value"] for p in per)
        assert worst["precision_recall"]["value"]["recall"] == min(p["precision_recall"]["value"]["recall"] for p in per)
        k = worst["fid"]["details"]["judge"]
        assert per[k]["fid"]["value"] == worst["fid"]["value"]
        per_class = worst["label_accuracy"]["details"]["per_class"]
        assert per_class == [min(p["label_accuracy"]["details"]["per_class"][c] for p in per) for c in range(10)]
    for j in data["judges"]:  # real held-out digits against themselves, the corrupted ones much worse, under every judge
        rows = j["rows"]
        assert rows[real]["fid"]["value"] < 1e-3 and rows[bad]["fid"]["value"] > 10
        assert rows[bad]["label_accuracy"]["value"] < rows[real]["label_accuracy"]["value"] - 0.3
        assert rows[real]["label_accuracy"]["value"] == pytest.approx(j["held_out"]["accuracy"], abs=1e-6)
    for k, j in enumerate(data["judges"]):  # each judge's table and protocol line, with its held-out accuracy
        assert f"== judge {k + 1} of 3: {j['path']} ({j['label']}) ==" in printed
        assert f"judge {j['path']}: {j['label']}, " in printed and f"held-out accuracy {round(j['held_out']['accuracy'], 4)}" in printed
    assert "== worst case over the 3 judges" in printed and "per-class label accuracy under each judge" in printed
    assert printed.count("J2 resnet seed 1") == 3  # the side-by-side block: one line per row (real, bad, real train)


def test_each_judges_figures_are_those_of_eval_under_that_judge_alone(evaluated, judges, tmp_path):
    root, paths, files, _ = judges
    _, _, data = evaluated
    out = tmp_path / "alone.json"
    assert main(["eval", str(files["bad"]), "--judge", str(paths["resnet"]), "--no-parzen", "--no-real",
                 "--json", str(out)]) == 0
    alone = json.loads(out.read_text())["rows"]["generated"]
    several = data["judges"][1]["rows"][str(files["bad"])]
    for key in ("label_accuracy", "fid", "precision_recall"):
        assert alone[key]["value"] == several[key]["value"]


def test_a_target_fails_when_one_judge_fails_it(evaluated, judges, capsys):
    root, paths, files, _ = judges
    _, _, data = evaluated
    fids = [j["rows"][str(files["bad"])]["fid"]["value"] for j in data["judges"]]
    between = (min(fids) + max(fids)) / 2  # met by the judges below it, missed by those above
    argv = ["eval", str(files["bad"]), "--judges", ",".join(str(p) for p in paths.values()), "--no-parzen", "--no-real",
            "--no-knn"]
    assert main(argv + ["--target", f"fid<={between}"]) == 1
    out = capsys.readouterr().out
    assert f"target fid<={between:g} for generated: NOT met (" in out and " met, " in out
    assert main(argv + ["--target", f"fid<={max(fids) + 1}", "--target", "label_accuracy>=0"]) == 0
    out = capsys.readouterr().out
    assert out.count(": met under every judge") == 2
    check = Target("fid", "<=", between).check([{"fid": f} for f in fids])
    assert not check["met"] and [e["met"] for e in check["per_judge"]] == [f <= between for f in fids]


def test_worst_grid_has_one_row_per_class_of_the_lowest_scored_samples(judges, tmp_path):
    from PIL import Image

    _, paths, _, (bad, labels) = judges
    judge = load_judge(paths["resnet"])
    per_class = 5
    path, indices, probs = save_worst_grid(tmp_path / "worst.png", judge, bad, labels, per_class)
    _, logits = judge_outputs(judge, bad)
    own = logits.softmax(1)[torch.arange(len(labels)), labels]
    for c in range(10):
        mine = own[labels == c]
        assert torch.allclose(probs[c], mine.sort().values[:per_class])  # the lowest of that class, ascending
        assert bool((labels[indices[c]] == c).all())
    picture = np.asarray(Image.open(path).convert("L"))
    scale, cell = 6, 8 + 2  # 8-px tiles scaled up to >= 48 px, 2 px padding
    assert picture.shape[0] == (10 * cell + 2) * scale  # ten rows: one per class
    left = picture.shape[1] - (per_class * cell + 2) * scale  # the row labels' strip
    shown = (bad.clamp(0, 1) * 255).round()
    for c in range(10):
        for k in range(per_class):
            top, x0 = (2 + c * cell) * scale, left + (2 + k * cell) * scale
            tile = picture[top + scale // 2:top + 8 * scale:scale, x0 + scale // 2:x0 + 8 * scale:scale]
            assert np.abs(tile.astype(float) - shown[indices[c, k], 0].numpy()).max() <= 1


def test_eval_writes_a_worst_grid_per_judge(judges, tmp_path, capsys):
    _, paths, files, _ = judges
    argv = ["eval", str(files["bad"]), "--judges", f"{paths['cnn']},{paths['resnet']}", "--no-parzen", "--no-real",
            "--no-knn", "--worst-grid", str(tmp_path / "w.png"), "--worst-per-class", "3"]
    assert main(argv) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["w_generated_J1.png", "w_generated_J2.png"]
    assert "the 3 samples per class that judge J2 (resnet seed 1) scores lowest" in capsys.readouterr().out
    assert main(argv[:2] + ["--judge", str(paths["cnn"]), "--no-parzen", "--no-real", "--no-knn",
                            "--worst-grid", str(tmp_path / "one.png")]) == 0
    assert (tmp_path / "one.png").is_file()


def test_in_training_metrics_read_a_resnet_judge(judges, tmp_path):
    import condgan
    from condgan import Trainer, TrainerConfig

    _, paths, _, _ = judges
    _, train = load_for_judge("digits", None, "train")
    gan = condgan.build("mnist_mlp", image_shape=(1, 8, 8), num_classes=10, latent_dim=8,
                        overrides={"generator.backbone_options.widths": (16, 16, 16, 16)}).config
    config = TrainerConfig(steps=20, log_every=10, eval_every=10, eval_samples=200, judge=str(paths["resnet"]),
                           out_dir=str(tmp_path / "run"), loggers=(), device="cpu", checkpoint_every=None, sample_every=0)
    Trainer(gan, config, data=(train.images, train.conditions)).train()
    evals = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line).get("kind") == "eval"]
    assert len(evals) == 2 and all(e["fid"] > 0 and 0 <= e["label_accuracy"] <= 1 for e in evals)


def test_time_to_quality_judges_under_several_judges(judges):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import time_to_quality

    root, paths, _, _ = judges
    _, train = load_for_judge("digits", None, "train")

    class Replay(torch.nn.Module):  # a "generator" that returns real training digits of the asked label
        def sample(self, y, generator=None):
            out = torch.empty(len(y), 1, 8, 8)
            for c in range(10):
                pool = train.images[train.conditions == c].float() / 255
                where = (y == c).nonzero()[:, 0]
                out[where] = pool[torch.arange(len(where)) % len(pool)]
            return out

    judge = time_to_quality.Judge(None, [str(p) for p in paths.values()], 60, 0, torch.device("cpu"))
    scores = judge(Replay(), (0.0, 1.0))
    per = scores["per_judge"]
    assert len(per) == 3 and scores["fid"] == max(p["fid"] for p in per)
    assert scores["label_accuracy"] == min(p["label_accuracy"] for p in per)
    points = [{"minutes": 1.0, "steps": 10, **scores}]
    each = time_to_quality.minutes_to_per_judge(points)
    assert len(each) == 3 and [e["label_accuracy"][">= 0.95"] for e in each] == [
        1.0 if p["label_accuracy"] >= 0.95 else None for p in per]
    table = time_to_quality.markdown({"contenders": [{"name": "replay", "curve": points,
                                                      "minutes_to": time_to_quality.minutes_to(points)}],
                                      "protocol": {"judges": judge.identities}})
    assert "Worst case over 3 judges: cnn seed 0 (sha256 " in table and "resnet seed 1" in table
    args = time_to_quality.parse_args(["--data-root", "x", "--judges", "a.pt,b.pt"])
    assert args.judges == "a.pt,b.pt" and args.classifier is None


# -- bad input: one line each --------------------------------------------------------------------------
def _cli(argv: list[str]) -> int:
    """``main(argv)``'s exit code, argparse's exits (2) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _one_line(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_an_unknown_arch_is_one_line(tmp_path, capsys):
    assert _cli(["train-classifier", "--dataset", "digits", "--arch", "vgg", "--out", str(tmp_path / "j.pt")]) == 2
    assert "argument --arch: invalid choice: 'vgg'" in _one_line(capsys.readouterr().err)
    with pytest.raises(ValueError, match="unknown judge arch 'vgg'; choose one of cnn, resnet, mnist-cnn, judge-cnn"):
        train_judge("digits", None, tmp_path / "j.pt", arch="vgg")


def test_a_judges_list_with_a_missing_file_is_one_line(judges, tmp_path, capsys):
    _, paths, files, _ = judges
    missing = tmp_path / "nope.pt"
    assert main(["eval", str(files["real"]), "--judges", f"{paths['cnn']},{missing}", "--no-parzen"]) == 1
    err = _one_line(capsys.readouterr().err)
    assert f"judge file '{missing}' does not exist" in err
    assert main(["eval", str(files["real"]), "--judges", f"{paths['cnn']},,{paths['resnet']}"]) == 1
    assert "--judges takes judge files separated by commas" in _one_line(capsys.readouterr().err)
    assert main(["eval", str(files["real"]), "--judge", str(paths["cnn"]), "--judges", str(paths["resnet"])]) == 1
    assert "either --judge FILE or --judges" in _one_line(capsys.readouterr().err)
    assert main(["eval", str(files["real"]), "--judges", f"{paths['cnn']},{paths['cnn']}"]) == 1
    assert "are the same judge" in _one_line(capsys.readouterr().err)
    assert _cli(["eval", str(files["real"]), "--judge", str(paths["cnn"]), "--target", "fid=5"]) == 2
    assert "a target reads METRIC>=VALUE" in _one_line(capsys.readouterr().err)
    assert _cli(["eval", str(files["real"]), "--judge", str(paths["cnn"]), "--target", "speed>=5"]) == 2
    assert "unknown target metric 'speed'" in _one_line(capsys.readouterr().err)


def test_judges_of_another_image_size_or_dataset_are_refused_in_one_line(judges, tmp_path):
    from metrics_helpers import shapes_plugin

    from condgan import register_plugin

    _, paths, _, _ = judges
    other_size = tmp_path / "d12.pt"
    train_judge("digits", None, other_size, image_size=12, epochs=0.5, batch_size=64, widths=(4, 4), feature_dim=8)
    with pytest.raises(JudgeMismatchError) as exc:
        load_judges([paths["cnn"], other_size])
    text = str(exc.value)
    assert "\n" not in text and "(digits at 1x8x8, class, 10 classes)" in text and "(digits at 1x12x12" in text
    assert "trained on different datasets or image sizes" in text
    register_plugin(shapes_plugin("class", n_train=200, n_test=60, size=8))
    other_data = tmp_path / "shapes.pt"
    train_judge("shapes", None, other_data, epochs=0.5, batch_size=64, widths=(4, 4), feature_dim=8)
    with pytest.raises(JudgeMismatchError, match=r"\(shapes at 3x8x8, class, 4 classes\) were trained on different datasets"):
        load_judges([paths["resnet"], other_data])
    with pytest.raises(JudgeError, match="judge file 'x.pt' does not exist"):
        load_judges([paths["cnn"], "x.pt"])


def test_targets_and_worst_case_by_hand():
    from condgan.metrics.result import MetricResult

    assert parse_target("fid<=5") == Target("fid", "<=", 5.0) and str(parse_target("label_accuracy>=0.99")) == "label_accuracy>=0.99"
    assert not parse_target("fid<=5").met(float("nan")) and not parse_target("fid<=5").met(None)
    r = lambda acc, fid, rec: {"label_accuracy": MetricResult("label_accuracy", acc, {}, {"per_class": [acc, 1.0]}),  # noqa: E731
                               "fid": MetricResult("fid", fid, {}),
                               "precision_recall": MetricResult("precision_recall", {"precision": 0.9, "recall": rec}, {})}
    worst = worst_case([r(0.99, 3.0, 0.4), r(0.95, 7.0, 0.6), r(0.98, 2.0, 0.3)])
    assert (worst["label_accuracy"].value, worst["fid"].value, worst["precision_recall"].value["recall"]) == (0.95, 7.0, 0.3)
    assert worst["fid"].details["judge"] == 1 and worst["precision_recall"].details["judge"]["recall"] == 2
    assert worst["label_accuracy"].details["per_class"] == [0.95, 1.0]
    assert not Target("fid", "<=", 5).check([{"fid": 3.0}, {"fid": 7.0}, {"fid": 2.0}])["met"]
    assert Target("fid", "<=", 8).check([{"fid": 3.0}, {"fid": 7.0}, {"fid": 2.0}])["met"]
