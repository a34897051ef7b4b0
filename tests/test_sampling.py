"""Sampling a trained generator: chosen conditions, truncation, interpolation, PNG files and grids, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from sampling_helpers import NAMES, cli, generator_file_for, tag_config, train_tiny_run, vector_config

import condgan
from condgan import sampling
from condgan.checkpoint import build_generator
from condgan.config import GANConfig
from condgan.sampling import SamplingError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture
def G(run_dir):
    return condgan.load_generator(run_dir)


def unit(images):
    return ((images + 1) / 2).clamp(0, 1)


def samples_of(G, labels, seed=0):
    return unit(G.sample(labels, generator=torch.Generator().manual_seed(seed)))


# -- the command line ---------------------------------------------------------------------------------
def test_sample_chosen_classes_by_index_or_name_with_a_labelled_grid(run_dir, tmp_path, G):
    npz, grid = tmp_path / "s.npz", tmp_path / "g.png"
    code, out, err = cli(["sample", run_dir, "--classes", "3,7", "--per-class", 8, "--grid", grid, "--out", npz, "--device", "cpu"])
    assert code == 0, err
    assert "wrote 16 samples" in out and "wrote a 8x2 grid" in out
    with np.load(npz) as data:
        images, labels, names = data["images"], data["labels"], data["names"]
    assert images.shape == (16, 1, 8, 8) and images.dtype == np.float32
    assert labels.tolist() == [3] * 8 + [7] * 8 and names.tolist() == ["three"] * 8 + ["seven"] * 8
    assert np.allclose(images, samples_of(G, torch.from_numpy(labels)).numpy(), atol=1e-6)
    code, _, err = cli(["sample", run_dir, "--classes", "three, seven", "--per-class", 8, "--out", tmp_path / "n.npz", "--device", "cpu"])
    with np.load(tmp_path / "n.npz") as again:
        assert code == 0 and np.array_equal(again["images"], images)  # names mean the same classes

    with Image.open(grid) as picture:
        picture = np.asarray(picture.convert("L"))
    # 2 columns x 8 rows of 8x8 tiles, scaled 6x to 48 pixels, below an 18-pixel label strip
    assert picture.shape == (18 + 8 * 10 * 6 + 2 * 6, 2 * 10 * 6 + 2 * 6)
    strip = picture[:18]
    assert (strip == 255).mean() > 0.5 and (strip < 128).any()  # white, with dark label text
    tile = picture[18 + 12:18 + 12 + 48, 12:12 + 48]  # row 0, column 0: the first sample of class 3
    assert np.abs(tile[::6, ::6] / 255.0 - images[0, 0]).max() <= 1 / 255 + 1e-6


def test_sample_writes_a_folder_of_png_files_named_with_labels(run_dir, tmp_path):
    folder = tmp_path / "pngs"
    code, out, err = cli(["sample", run_dir, "--classes", "seven,0", "--per-class", 3, "--out", f"{folder}/",
                          "--device", "cpu", "--seed", 5])
    assert code == 0, err
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["00000_seven.png", "00001_seven.png", "00002_seven.png", "00003_zero.png", "00004_zero.png", "00005_zero.png"]
    code, _, _ = cli(["sample", run_dir, "--classes", "7,0", "--per-class", 3, "--out", tmp_path / "s.npz", "--device", "cpu", "--seed", 5])
    with np.load(tmp_path / "s.npz") as data:
        images = data["images"]
    for i, name in enumerate(files):
        with Image.open(folder / name) as png:
            assert png.mode == "L" and png.size == (8, 8)
            assert np.array_equal(np.asarray(png), np.round(images[i, 0] * 255).astype(np.uint8))


def test_sample_every_class_labels_columns_with_class_names(run_dir, tmp_path):
    grid = tmp_path / "g.png"
    code, _, err = cli(["sample", run_dir, "--per-class", 3, "--grid", grid, "--device", "cpu"])
    assert code == 0, err
    with Image.open(grid) as picture:  # 10 x 3 tiles scaled 6x under a label strip (unnamed: test_cli's plain grid)
        assert picture.size == ((10 * 10 + 2) * 6, 18 + (3 * 10 + 2) * 6)


def test_sample_tags_and_vectors_from_the_command_line(tmp_path):
    tags = generator_file_for(tmp_path / "tags.pt", tag_config())
    code, _, err = cli(["sample", tags, "--tags", "smiling,hat", "--tags", "", "--tags", "blond", "--per-class", 2,
                        "--out", tmp_path / "t.npz", "--device", "cpu"])
    assert code == 0, err
    with np.load(tmp_path / "t.npz") as data:
        assert data["conditions"].tolist() == [[1, 0, 0, 1]] * 2 + [[0, 0, 0, 0]] * 2 + [[0, 1, 0, 0]] * 2
        assert data["names"].tolist() == ["smiling+hat"] * 2 + ["none"] * 2 + ["blond"] * 2
        assert "labels" not in data.files
    vectors = generator_file_for(tmp_path / "vec.pt", vector_config())
    rows = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 1.0]], dtype=np.float32)
    np.savetxt(tmp_path / "v.csv", rows, delimiter=",")
    code, _, err = cli(["sample", vectors, "--vectors", tmp_path / "v.csv", "--per-class", 2, "--out", tmp_path / "v.npz",
                        "--device", "cpu"])
    assert code == 0, err
    with np.load(tmp_path / "v.npz") as data:
        assert np.allclose(data["conditions"], np.repeat(rows, 2, axis=0)) and data["names"].tolist() == ["v0", "v0", "v1", "v1"]


@pytest.mark.parametrize("argv, message", [
    (["--classes", "ten"], "unknown class 'ten'; valid classes: zero, one, two, three, four, five, six, seven, eight, nine"),
    (["--classes", "3,12"], "class index 12 is out of range: this model has 10 classes (0..9)"),
    (["--classes", "-1"], "class index -1 is out of range"),
    (["--tags", "smiling"], "this model's condition is 'class': give classes, not tags"),
    (["--classes", "3,7,9", "--interpolate", "condition"], "give exactly two, got 3"),
    (["--frames", "f"], "--frames writes the steps of an interpolation"),
    (["--classes", "3"], None),  # nothing to write: checked without --grid below
])
def test_bad_sample_input_is_one_line(run_dir, tmp_path, argv, message):
    if message is None:
        code, _, err = cli(["sample", run_dir, "--per-class", 1, *argv, "--device", "cpu"])
        message = "nothing to write: give --out"
    else:
        code, _, err = cli(["sample", run_dir, "--per-class", 1, "--grid", tmp_path / "g.png", *argv, "--device", "cpu"])
    assert code == 1 and len(err.splitlines()) == 1 and err.startswith("condgan: error: ") and message in err, err
    assert not (tmp_path / "g.png").exists()


def test_bad_tags_vectors_and_truncation_are_one_line(tmp_path):
    tags = generator_file_for(tmp_path / "tags.pt", tag_config())
    vectors = generator_file_for(tmp_path / "vec.pt", vector_config())
    np.save(tmp_path / "short.npy", np.zeros((2, 2), dtype=np.float32))
    cases = [
        ([tags, "--tags", "smiling,beard"], 1, "unknown tag 'beard'; valid tags: smiling, blond, glasses, hat"),
        ([tags, "--tags", "7"], 1, "tag index 7 is out of range: this model has 4 tags (0..3)"),
        ([vectors, "--vectors", tmp_path / "short.npy"], 1, "have length 2, but this model's condition is a vector of 3"),
        ([vectors, "--vectors", tmp_path / "none.npy"], 1, "does not exist"),
        ([vectors], 1, "this model's condition is a float vector: give vectors"),
        ([tags, "--truncation", "0"], 2, "argument --truncation: expected a number > 0, got 0"),
        ([tags, "--truncation", "-0.5"], 2, "argument --truncation: expected a number > 0, got -0.5"),
    ]
    for argv, status, message in cases:
        code, out, err = cli(["sample", *argv, "--per-class", 1, "--grid", tmp_path / "g.png", "--device", "cpu"])
        assert code == status and len(err.splitlines()) == 1 and message in err, (argv, err)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "0.5"):
        with pytest.raises(SamplingError, match="truncation must be a number > 0"):
            sampling.truncated_normal((3,), bad)


# -- conditions ---------------------------------------------------------------------------------------
def test_conditions_from_names_indices_tags_and_vector_files(tmp_path):
    spec = GANConfig().spec
    cond = sampling.class_conditions(spec, ["three", 7, " 0 "], NAMES)
    assert cond.y.tolist() == [3, 7, 0] and cond.labels == ("three", "seven", "zero")
    assert sampling.class_conditions(spec, None).labels == tuple(str(k) for k in range(10))
    with pytest.raises(SamplingError, match="this model has no class names; give indices 0..9"):
        sampling.class_conditions(spec, "cat")
    with pytest.raises(SamplingError, match="3 class names for a 'class' condition of 10 entries"):
        sampling.class_conditions(spec, "1", ("a", "b", "c"))
    tags = tag_config().spec
    cond = sampling.tag_conditions(tags, None, tag_config().class_names)  # default: each tag alone
    assert torch.equal(cond.y, torch.eye(4)) and cond.labels == ("smiling", "blond", "glasses", "hat")
    rows = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])
    np.save(tmp_path / "v.npy", rows)
    np.savetxt(tmp_path / "v.txt", rows)
    np.savetxt(tmp_path / "v.csv", rows, delimiter=",")
    for name in ("v.npy", "v.txt", "v.csv"):
        assert torch.equal(sampling.load_vectors(tmp_path / name, 3), torch.tensor(rows, dtype=torch.float32))
    assert sampling.load_vectors(np.array([1, 2, 3]), 3).shape == (1, 3)  # one row: one vector
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan, 0.0]]))
    with pytest.raises(SamplingError, match="contain NaN or inf"):
        sampling.load_vectors(tmp_path / "nan.npy", 3)
    (tmp_path / "v.json").write_text("[1, 2, 3]")
    with pytest.raises(SamplingError, match=r"must be \.npy, \.txt, \.csv"):
        sampling.load_vectors(tmp_path / "v.json", 3)
    with pytest.raises(SamplingError, match="give one kind of condition, got classes and tags"):
        sampling.make_conditions(spec, classes="1", tags=["a"])


# -- truncation ---------------------------------------------------------------------------------------
def test_truncated_normal_is_bounded_and_has_the_truncated_normals_spread():
    rng = torch.Generator().manual_seed(0)
    for t in (0.05, 0.5, 1.0, 3.0, 40.0):
        z = sampling.truncated_normal((400, 500), t, generator=rng)
        assert z.dtype == torch.float32 and z.abs().max() <= t
        # the variance of a standard normal truncated to [-t, t]: 1 - 2 t phi(t) / (2 Phi(t) - 1)
        phi, Phi = math.exp(-t * t / 2) / math.sqrt(2 * math.pi), 0.5 * (1 + math.erf(t / math.sqrt(2)))
        expected = math.sqrt(1 - 2 * t * phi / (2 * Phi - 1))
        assert abs(z.std().item() - expected) < 0.005 * expected, t
        assert abs(z.mean().item()) < 0.01 * expected and abs((z > 0).float().mean().item() - 0.5) < 0.005


def test_truncation_reduces_diversity_and_is_seeded(G):
    cond = sampling.make_conditions(G, classes="3")
    spread = {}
    for t in (0.2, 2.0):
        images = sampling.generate(G, cond, 200, seed=1, truncation=t).images
        spread[t] = images.var(dim=0).mean().item()  # pixel variance across the samples of one class
    assert spread[0.2] < 0.5 * spread[2.0]
    z = sampling.sample_noise(G, 64, truncation=0.5, generator=torch.Generator().manual_seed(3))
    assert z.shape == (64, 8) and z.abs().max() <= 0.5
    a = sampling.generate(G, cond, 4, seed=9, truncation=0.5).images
    assert torch.equal(a, sampling.generate(G, cond, 4, seed=9, truncation=0.5).images)
    assert not torch.equal(a, sampling.generate(G, cond, 4, seed=9).images)
    uniform = build_generator(GANConfig(image_shape=(1, 8, 8), latent_dim=8, noise="uniform"))
    with pytest.raises(SamplingError, match="truncation cuts a normal z, but this model draws 'uniform' noise"):
        sampling.sample_noise(uniform, 2, truncation=0.5)


def test_cli_truncation(run_dir, tmp_path):
    code, _, err = cli(["sample", run_dir, "--classes", "3", "--per-class", 50, "--truncation", 0.2,
                        "--out", tmp_path / "t.npz", "--device", "cpu"])
    assert code == 0, err
    cli(["sample", run_dir, "--classes", "3", "--per-class", 50, "--out", tmp_path / "f.npz", "--device", "cpu"])
    with np.load(tmp_path / "t.npz") as cut, np.load(tmp_path / "f.npz") as full:
        assert cut["images"].var(axis=0).mean() < full["images"].var(axis=0).mean()


# -- interpolation ------------------------------------------------------------------------------------
def test_z_interpolation_ends_are_the_end_samples(G):
    cond = sampling.make_conditions(G, classes="2,5")
    result = sampling.interpolate_z(G, cond, 6, per_condition=3, seed=4)
    assert result.images.shape == (6, 6, 1, 8, 8)
    assert result.row_labels == ("two",) * 3 + ("five",) * 3 and result.column_labels[0] == "t=0.00"
    rng = torch.Generator().manual_seed(4)
    z0, z1 = G.sample_noise(3, "cpu", rng), G.sample_noise(3, "cpu", rng)
    for c, label in enumerate((2, 5)):
        y = torch.full((3,), label)
        assert torch.allclose(result.images[3 * c:3 * c + 3, 0], unit(G.sample(y, z=z0)), atol=1e-6)
        assert torch.allclose(result.images[3 * c:3 * c + 3, -1], unit(G.sample(y, z=z1)), atol=1e-6)
    middle = unit(G.sample(torch.full((3,), 2), z=0.6 * z0 + 0.4 * z1))
    assert torch.allclose(result.images[:3, 2], middle, atol=1e-5)  # t = 0.4


def tiny_generator(conditioner, kind="class", **backbone_options):
    config = GANConfig(condition_kind=kind, num_classes=None if kind == "vector" else 5,
                       condition_dim=3 if kind == "vector" else None, image_shape=(1, 8, 8), latent_dim=6)
    config.generator.conditioner = conditioner
    config.generator.backbone_options = {"widths": (12, 12), **backbone_options}
    generator = build_generator(config).eval()
    generator.config = config
    for p in generator.parameters():  # away from the zero initialisation of the cbn maps
        p.data.normal_(0, 0.5) if p.dim() > 1 else None
    return generator


@pytest.mark.parametrize("conditioner, kind, options", [
    ("embedding", "class", {}), ("onehot", "class", {}), ("branches", "class", {"norm": "batch"}),
    ("cbn", "class", {"norm": "batch"}), ("cbn", "multilabel", {"norm": "layer"}), ("onehot", "multilabel", {}),
    ("vector", "vector", {}), ("embedding", "class", {"norm": "batch"}),
])
def test_condition_interpolation_ends_are_the_two_conditions(conditioner, kind, options):
    G = tiny_generator(conditioner, kind, **options)
    if kind == "class":
        a, b = torch.tensor([1]), torch.tensor([4])
    elif kind == "multilabel":
        a, b = torch.tensor([[1.0, 0, 1, 0, 0]]), torch.tensor([[0.0, 1, 0, 0, 1]])
    else:
        a, b = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[-2.0, 0.0, 1.0]])
    cond = sampling.Conditions(torch.cat([a, b]), ("a", "b"))
    result = sampling.interpolate_conditions(G, cond, 5, per_condition=4, seed=2)
    assert result.images.shape == (4, 5, 1, 8, 8) and result.column_labels == ("a", "0.25", "0.50", "0.75", "b")
    z = G.sample_noise(4, "cpu", torch.Generator().manual_seed(2))
    ya, yb = a.expand(4, *a.shape[1:]), b.expand(4, *b.shape[1:])
    assert torch.allclose(result.images[:, 0], unit(G.sample(ya, z=z)), atol=1e-5)
    assert torch.allclose(result.images[:, -1], unit(G.sample(yb, z=z)), atol=1e-5)
    assert not torch.allclose(result.images[:, 2], result.images[:, 0], atol=1e-3)  # the middle is neither end


def test_class_interpolation_mixes_the_embedding():
    G = tiny_generator("embedding")
    cond = sampling.Conditions(torch.tensor([0, 3]), ("0", "3"))
    result = sampling.interpolate_conditions(G, cond, 3, per_condition=2, seed=0)
    z = G.sample_noise(2, "cpu", torch.Generator().manual_seed(0))
    code = 0.5 * (G.conditioner.embedding.weight[0] + G.conditioner.embedding.weight[3])  # the embedding halfway
    x = torch.cat([code.expand(2, -1), z], dim=1)  # the generator's input: [embedding, z]
    expected = G.backbone.head(G.backbone.features(x, None))
    assert torch.allclose(result.images[:, 1], unit(expected), atol=1e-5)


def test_class_interpolation_is_refused_for_a_conditioner_that_does_not_define_it(tmp_path, capsys):
    class Gate(condgan.Conditioner):
        """Multiplies z by a per-class gate chosen by the argmax: between two classes means nothing."""
        name = "gate"
        roles = ("generator",)

        def __init__(self, spec, role):
            super().__init__(spec, role)
            self.gate = torch.nn.Embedding(spec.num_classes, 1)

        def join(self, x, y):
            return x * self.gate(y.long())

    class Plugin:
        @condgan.hookimpl
        def register_conditioners(self):
            return [Gate]

    condgan.register_plugin(Plugin(), name="gate-plugin")
    G = tiny_generator("gate")
    cond = sampling.Conditions(torch.tensor([0, 3]), ("0", "3"))
    with pytest.raises(SamplingError, match="interpolation between classes is not defined for the conditioner 'gate' "
                                            r"\(it does not set soft_conditions\); conditioners that define it: "
                                            "branches, cbn, embedding, onehot, vector. Interpolate z instead"):
        sampling.interpolate_conditions(G, cond, 4)
    assert sampling.interpolate_z(G, cond, 4).images.shape == (2, 4, 1, 8, 8)  # z interpolation still works


def test_cli_interpolation_grid_frames_and_npz(run_dir, tmp_path, G):
    grid, frames, npz = tmp_path / "i.png", tmp_path / "frames", tmp_path / "i.npz"
    code, out, err = cli(["sample", run_dir, "--classes", "3,seven", "--per-class", 2, "--interpolate", "condition",
                          "--steps", 5, "--grid", grid, "--frames", frames, "--out", npz, "--device", "cpu", "--seed", 1])
    assert code == 0, err
    assert "wrote a 2 rows x 5 steps interpolation grid" in out and "wrote 5 frames (2 images each)" in out
    assert sorted(p.name for p in frames.iterdir()) == [f"frame_{s:03d}.png" for s in range(5)]
    with np.load(npz) as data:
        images, weights = data["images"], data["weights"]
        assert data["column_labels"].tolist() == ["three", "0.25", "0.50", "0.75", "seven"]
    assert images.shape == (2, 5, 1, 8, 8) and weights.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    z = G.sample_noise(2, "cpu", torch.Generator().manual_seed(1))
    assert np.allclose(images[:, 0], unit(G.sample(torch.tensor([3, 3]), z=z)).numpy(), atol=1e-5)
    assert np.allclose(images[:, -1], unit(G.sample(torch.tensor([7, 7]), z=z)).numpy(), atol=1e-5)
    with Image.open(frames / "frame_004.png") as frame:
        assert frame.size == (2 * 10 + 2, 10 + 2)  # the two rows' images at the last step
        tile = np.asarray(frame.convert("L"))[2:10, 2:10]
        assert np.abs(tile / 255.0 - images[0, -1, 0]).max() <= 1 / 255 + 1e-6
    with Image.open(grid) as picture:
        assert picture.width > 5 * 48 and picture.height > 2 * 48  # labelled, scaled tiles
    code, out, err = cli(["sample", run_dir, "--per-class", 1, "--interpolate", "z", "--steps", 3, "--truncation", 1.0,
                          "--out", f"{tmp_path / 'zp'}/", "--device", "cpu"])
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "zp").iterdir())
    assert len(names) == 30 and names[0] == "00000_0_zero_t=0.00.png" and names[-1] == "00029_9_nine_t=1.00.png"


@pytest.mark.parametrize("n,channels,columns", [(100, 1, 10), (7, 3, 3), (12, 1, 5), (3, 1, 10)])
def test_tile_lays_out_as_torchvision_make_grid(n, channels, columns):
    from torchvision.utils import make_grid

    from condgan.imagegrid import tile

    x = torch.rand(n, channels, 6, 5)
    assert torch.equal(tile(x, columns), make_grid(x, nrow=columns, padding=2))
