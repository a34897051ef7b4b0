"""Vectors through the same core as images (issue 23, item 2): the ``tensors`` dataset with an
``outputs`` array, the ``vector_mlp`` preset, the trainer's vector "grid", ``condgan sample`` to
.npz/.npy, and a learning test on a many-to-many map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sampling_helpers import cli

from condgan.conditions import ConditionSpec
from condgan.data import DatasetError, VectorSet
from condgan.data.arrays import TensorFile
from condgan.outputs import VectorOutput
from condgan.resolve import run_config
from condgan.training import Trainer

TINY = {  # vector_mlp at a width that trains in seconds on one CPU thread
    "generator.backbone_options.widths": (64, 64), "discriminator.backbone_options.widths": (64, 64),
    **{f"{net}.conditioner_options.{side}": 32 for net in ("generator", "discriminator") for side in ("x_width", "y_width")},
}


def tiny_args(*extra):
    return ["--preset", "vector_mlp", *[a for k, v in TINY.items() for a in ("--set", f"{k}={v!r}")], "--device", "cpu",
            "--loggers", "console,grid", *extra]


# -- the tensors dataset ---------------------------------------------------------------------------
def test_the_tensors_dataset_reads_vector_outputs_with_any_condition(tmp_path):
    out = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    np.savez(tmp_path / "c.npz", outputs=out, labels=np.array([0, 1, 2, 0, 1, 2]), class_names=np.array(["a", "b", "c"]))
    data = TensorFile(tmp_path / "c.npz").load()
    assert isinstance(data, VectorSet) and data.output == VectorOutput(3) and data.class_names == ("a", "b", "c")
    assert torch.equal(data.samples, torch.from_numpy(out)) and data.spec == ConditionSpec("class", 3)
    torch.save({"outputs": torch.randn(5, 2, dtype=torch.float64), "vectors": torch.randn(5, 7)}, tmp_path / "v.pt")
    data = TensorFile(tmp_path / "v.pt").load()
    assert data.spec == ConditionSpec("vector", dim=7) and data.vectors.dtype == torch.float32 and data.output == VectorOutput(2)


@pytest.mark.parametrize("arrays, message", [
    ({"outputs": np.array([[0.0, 1.0], [np.nan, 2.0], [3.0, np.inf]], np.float32), "labels": np.zeros(3, int)},
     r"'outputs' row 1 column 0 is nan: vector outputs must be finite \(2 rows hold NaN or inf\)$"),
    ({"outputs": np.zeros((3, 2), np.int64), "labels": np.zeros(3, int)}, r"'outputs' must be \(N, D\) floats, got shape \(3, 2\) int64$"),
    ({"outputs": np.zeros((3, 2), np.float32), "images": np.zeros((3, 1, 4, 4), np.uint8), "labels": np.zeros(3, int)},
     "has both 'images' and 'outputs'; keep one"),
    ({"outputs": np.zeros((3, 2), np.float32), "labels": np.zeros(4, int)}, r"3 outputs but 4 labels: each output needs one$"),
])
def test_bad_vector_files_are_one_line_naming_the_file(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=message) as info:
        TensorFile(tmp_path / "bad.npz").load()
    assert str(info.value).startswith(str(tmp_path / "bad.npz")) and "\n" not in str(info.value)


def test_rows_of_different_lengths_are_one_line(tmp_path):
    torch.save({"outputs": [torch.zeros(3), torch.zeros(3), torch.zeros(2)], "labels": torch.zeros(3, dtype=torch.long)},
               tmp_path / "ragged.pt")
    with pytest.raises(DatasetError, match=r"ragged.pt: the rows of 'outputs' differ in length \(row 0 has 3 values, row 2 has 2\)"):
        TensorFile(tmp_path / "ragged.pt").load()
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros(3), np.zeros(2)
    np.savez(tmp_path / "ragged.npz", outputs=ragged, labels=np.zeros(2, int))
    with pytest.raises(DatasetError, match=r"ragged.npz: 'outputs' is an array of objects \(rows of different lengths\?\)"):
        TensorFile(tmp_path / "ragged.npz").load()


def test_an_image_preset_on_vector_data_is_one_line_before_the_first_step(tmp_path):
    np.savez(tmp_path / "v.npz", outputs=np.zeros((8, 2), np.float32), labels=np.arange(8) % 2)
    code, _, err = cli(["train", "--preset", "mnist_mlp", "--dataset", "tensors", "--data-root", tmp_path / "v.npz",
                        "--steps", 1, "--out", tmp_path / "run", "--device", "cpu"])
    [line] = err.strip().splitlines()
    assert code != 0 and "has vector (2,) outputs but the model makes 'image' outputs" in line
    assert not (tmp_path / "run" / "checkpoints").exists()


# -- training, sampling, export ------------------------------------------------------------------------
def test_train_sample_and_export_a_vector_model_from_the_command_line(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "v.npz", outputs=rng.standard_normal((40, 3)).astype(np.float32), tags=rng.integers(0, 2, (40, 4)))
    code, _, err = cli(["train", *tiny_args(), "--dataset", "tensors", "--data-root", tmp_path / "v.npz", "--steps", 6,
                        "--sample-every", 3, "--batch-size", 8, "--out", tmp_path / "run"])
    assert code == 0, err
    with np.load(tmp_path / "run" / "samples" / "step_0000006.npz") as grid:  # the vector "grid": the samples
        assert grid["outputs"].shape == (40, 3) and grid["conditions"].shape == (40, 4)
    assert ckpt_output(tmp_path / "run") == {"kind": "vector", "dim": 3}

    code, _, err = cli(["sample", tmp_path / "run", "--per-class", 5, "--tags", "0,2", "--tags", "", "--out", tmp_path / "s.npz"])
    assert code == 0, err
    with np.load(tmp_path / "s.npz") as s:
        assert s["outputs"].shape == (10, 3) and np.isfinite(s["outputs"]).all() and "images" not in s.files
        assert s["conditions"].tolist()[:5] == [[1.0, 0.0, 1.0, 0.0]] * 5 and s["conditions"][5:].sum() == 0
    code, _, err = cli(["sample", tmp_path / "run", "--per-class", 2, "--out", tmp_path / "s.npy"])
    assert code == 0, err
    assert np.load(tmp_path / "s.npy").shape == (8, 3)  # each tag alone (4) x 2
    code, _, err = cli(["sample", tmp_path / "run", "--per-class", 2, "--grid", tmp_path / "g.png"])
    [line] = err.strip().splitlines()
    assert code != 0 and "--grid draw images, and this model makes vector (3,) outputs" in line and not (tmp_path / "g.png").exists()

    code, _, err = cli(["export", tmp_path / "run", "--format", "torchscript", "--out", tmp_path / "g.ts"])
    assert code == 0, err
    G = torch.jit.load(str(tmp_path / "g.ts"))
    assert G(torch.randn(2, 32), torch.ones(2, 4)).shape == (2, 3)


def ckpt_output(run):
    from condgan import checkpoint as ckpt

    return ckpt.read_file(run)["output"]


def test_vector_conditions_to_vector_outputs_train_in_python():
    g = torch.Generator().manual_seed(0)
    features = torch.randn(64, 5, generator=g)
    data = VectorSet(features[:, :2] * 2 + 0.1 * torch.randn(64, 2, generator=g), features, ConditionSpec("vector", dim=5))
    run = run_config("vector_mlp", {**TINY, "steps": 4, "batch_size": 16, "loggers": (), "device": "cpu", "checkpoint_every": None})
    trainer = Trainer(run, data=data)
    trainer.train()
    assert trainer.gan.config.condition_dim == 5 and trainer.gan.output == VectorOutput(2)
    assert trainer.sampling_generator.sample(features[:3]).shape == (3, 2)


# -- learning: a many-to-many map -------------------------------------------------------------------
MODES = {0: (0, 2), 1: (1, 3, 4)}  # condition -> its valid outputs: points of a regular pentagon of radius 2
CENTRES = torch.tensor([[2 * math.cos(2 * math.pi * k / 5), 2 * math.sin(2 * math.pi * k / 5)] for k in range(5)])


def many_to_many(n: int = 600, seed: int = 0) -> VectorSet:
    """2-D points: condition c is any of its modes (a Gaussian of std 0.1 around each), as an image has several valid tags."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    choice = torch.randint(0, 6, (n,), generator=g)
    mode = torch.tensor([MODES[int(c)][int(k) % len(MODES[int(c)])] for c, k in zip(y, choice)])
    return VectorSet(CENTRES[mode] + 0.1 * torch.randn(n, 2, generator=g), y, ConditionSpec("class", 2))


def test_samples_of_a_condition_cover_its_modes_and_leave_the_others_empty():
    run = run_config("vector_mlp", {**TINY, "steps": 700, "log_every": 100, "sample_every": 0, "checkpoint_every": None,
                                    "loggers": (), "device": "cpu", "seed": 0})
    trainer = Trainer(run, data=many_to_many())
    trainer.train()
    G = trainer.sampling_generator
    for c, own in MODES.items():
        x = G.sample(torch.full((500,), c), generator=torch.Generator().manual_seed(1))
        distance, nearest = torch.cdist(x, CENTRES).min(1)
        near = distance < 0.5  # within 5 std of a mode (the modes lie 2.35 apart)
        share = torch.bincount(nearest[near], minlength=5).float() / len(x)
        others = [k for k in range(5) if k not in own]
        assert near.float().mean() >= 0.5, (c, share)  # measured 0.82-0.88 (c=0), 0.66-0.73 (c=1), seeds 0-2
        assert all(share[k] >= 0.08 for k in own), (c, share)  # every mode covered: measured 0.12-0.48
        assert share[others].sum() <= 0.05, (c, share)  # the other condition's modes empty: measured 0.00


# -- judges (issue 23, item 4: vectors) ---------------------------------------------------------------
def test_vector_judges_measure_distance_fidelity_diversity_and_conditional_fidelity():
    from condgan.metrics.vectors import evaluate_vectors

    data = many_to_many(800, seed=3)
    real, y = data.vectors, data.conditions
    same = evaluate_vectors(real, y, real, y, num_classes=2, protocol={"reference": "itself"})
    assert same["frechet_distance"].value == pytest.approx(0.0, abs=1e-6)
    assert same["precision_recall"].value == {"precision": 1.0, "recall": 1.0}
    shifted = evaluate_vectors(real + torch.tensor([0.3, -0.4]), y, real, y, num_classes=2)
    assert shifted["frechet_distance"].value == pytest.approx(0.25, rel=1e-6)  # |mean shift|^2, same covariance
    far = evaluate_vectors(real + 10.0, y, real, y)
    assert far["precision_recall"].value == {"precision": 0.0, "recall": 0.0} and "intra_class_fd" not in far
    swapped = evaluate_vectors(real, 1 - y, real, y, num_classes=2)  # the right vectors for the wrong conditions
    assert swapped["frechet_distance"].value < 1e-6 and swapped["intra_class_fd"].value > 1.0
    assert swapped["frechet_distance"].protocol["features"].startswith("the vectors themselves")


def test_condgan_eval_judges_vector_runs_and_sample_files_against_held_out_vectors(tmp_path):
    train, held = many_to_many(300, seed=0), many_to_many(200, seed=1)
    np.savez(tmp_path / "train.npz", outputs=train.vectors.numpy(), labels=train.conditions.numpy())
    np.savez(tmp_path / "held.npz", outputs=held.vectors.numpy(), labels=held.conditions.numpy())
    code, _, err = cli(["train", *tiny_args(), "--dataset", "tensors", "--data-root", tmp_path / "train.npz", "--steps", 5,
                        "--out", tmp_path / "run"])
    assert code == 0, err
    code, _, err = cli(["sample", tmp_path / "run", "--per-class", 100, "--out", tmp_path / "s.npz"])
    assert code == 0, err
    code, out, err = cli(["eval", tmp_path / "run", tmp_path / "s.npz", "--reference", tmp_path / "held.npz",
                          "--real", tmp_path / "train.npz", "--json", tmp_path / "e.json"])
    assert code == 0, err
    header = out.splitlines()[0]
    assert header.split()[:7] == ["set", "n", "FD", "intra-FD", "precision", "recall", "density"]
    assert "vector judges: Frechet distance and k-NN precision/recall (k=3)" in out and "held.npz (200 vectors, sha256" in out
    import json

    rows = json.loads((tmp_path / "e.json").read_text())["rows"]
    run, real = rows[str(tmp_path / "run")], rows["real train.npz"]
    assert run["frechet_distance"]["protocol"]["samples"] == 200  # one per reference condition
    assert rows[str(tmp_path / "s.npz")]["frechet_distance"]["protocol"]["samples"] == 200
    assert real["frechet_distance"]["value"] < 0.2 < run["frechet_distance"]["value"]  # 5 steps are far from the data
    assert real["precision_recall"]["value"]["precision"] > 0.8

    for judge in (["--classifier", tmp_path / "judge.pt"], []):  # the model's output kind is read before any judge
        code, _, err = cli(["eval", tmp_path / "run", *judge])
        [line] = err.strip().splitlines()
        assert code != 0 and "makes vector outputs: judge them against held-out real ones with --reference FILE" in line


def test_a_vector_run_resumes_exactly(tmp_path):
    from condgan import checkpoint as ckpt

    data = many_to_many(100)
    np.savez(tmp_path / "v.npz", outputs=data.vectors.numpy(), labels=data.conditions.numpy())
    args = [*tiny_args(), "--dataset", "tensors", "--data-root", tmp_path / "v.npz", "--batch-size", 32]
    assert cli(["train", *args, "--steps", 8, "--out", tmp_path / "whole"])[0] == 0
    assert cli(["train", *args, "--steps", 4, "--out", tmp_path / "parts"])[0] == 0
    code, _, err = cli(["train", "--out", tmp_path / "parts", "--resume", "--steps", 8])
    assert code == 0, err
    whole, parts = ckpt.read_file(tmp_path / "whole"), ckpt.read_file(tmp_path / "parts")
    for net in ("generator", "discriminator"):
        assert all(torch.equal(whole[net][k], parts[net][k]) for k in whole[net]), net
