"""Learning on the user's own data: one ``condgan train`` command per data layout, samples that follow
their conditions (a few hundred CPU steps, fixed seeds, tolerant thresholds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import condgan
from condgan.cli import main

# mnist_mlp, narrowed, with the image shape and condition left to the data (None), a higher learning rate
FIT_TO_DATA = ["--preset", "mnist_mlp", "--set", "image_shape=None", "--set", "num_classes=None",
               "--set", "generator.backbone_options.widths=(32,64,64,64)", "--set", "generator.backbone_options.norm_eps=1e-5",
               "--set", "discriminator.backbone_options.widths=(64,64,64)",
               "--set", "g_optimizer.lr=1e-3", "--set", "d_optimizer.lr=1e-3", "--batch-size", "32", "--device", "cpu"]
COLOURS = {"red": (230, 30, 30), "green": (30, 220, 30), "blue": (40, 40, 230)}


def _train(args, capsys) -> None:
    code = main(["train", *FIT_TO_DATA, *args])
    assert code == 0, capsys.readouterr().err


def test_a_folder_of_coloured_shapes_trains_with_one_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for name, colour in COLOURS.items():  # class folders of 20x20 RGB PNGs: a square of the class's colour
        folder = tmp_path / "shapes" / name
        folder.mkdir(parents=True)
        for i in range(40):
            image = rng.integers(0, 30, (20, 20, 3)).astype(np.uint8)
            x, y = rng.integers(2, 10, 2)
            side = rng.integers(6, 10)
            image[y:y + side, x:x + side] = colour
            Image.fromarray(image).save(folder / f"{i}.png")
    out = tmp_path / "run"
    _train(["--dataset", "imagefolder", "--data-root", str(tmp_path / "shapes"), "--image-size", "12", "--steps", "300",
            "--out", str(out), "--loggers", "grid"], capsys)
    G = condgan.load_generator(out)
    assert G.config.class_names == ("blue", "green", "red") and G.config.image_shape == (3, 12, 12)  # from the data
    y = torch.arange(3).repeat_interleave(50)
    x = condgan.data.to_unit(G.sample(y, generator=torch.Generator().manual_seed(0)))  # (150, 3, 12, 12)
    flat = x.flatten(2)
    brightest = flat.sum(1).topk(12, dim=1).indices  # the square's pixels
    colour = torch.stack([flat[i][:, brightest[i]].mean(1) for i in range(len(x))])  # (150, 3) RGB of the square
    wanted = torch.tensor([list(COLOURS).index(G.config.class_names[k]) for k in y.tolist()])
    assert (colour.argmax(1) == wanted).float().mean() >= 0.8
    [grid] = list((out / "samples").glob("*.png"))
    picture = np.asarray(Image.open(grid).convert("L"))
    assert (picture[:3] == 255).all() and (picture[:18] < 128).any()  # a white heading strip with the class names in it


def test_multi_attribute_tags_are_followed(tmp_path, capsys):
    # 8x8 grey images with two known attributes: "left" (left half bright) and "right" (right half bright)
    rng = np.random.default_rng(1)
    tags = rng.integers(0, 2, (400, 2)).astype(np.float32)
    images = rng.integers(0, 40, (400, 1, 8, 8)).astype(np.uint8)
    images[tags[:, 0] == 1, :, :, :4] += 180
    images[tags[:, 1] == 1, :, :, 4:] += 180
    path = tmp_path / "tags.npz"
    np.savez(path, images=images, tags=tags, class_names=np.array(["left", "right"]))
    out = tmp_path / "run"
    _train(["--dataset", "tensors", "--data-root", str(path), "--set", "condition_kind=None", "--set", "generator.conditioner=onehot",
            "--set", "discriminator.conditioner=onehot", "--steps", "800", "--out", str(out), "--loggers", ""], capsys)
    G = condgan.load_generator(out)
    assert (G.config.condition_kind, G.config.num_classes, G.config.class_names) == ("multilabel", 2, ("left", "right"))
    asked = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.float32).repeat_interleave(40, 0)
    x = condgan.data.to_unit(G.sample(asked, generator=torch.Generator().manual_seed(0)))  # (160, 1, 8, 8)
    produced = torch.stack([x[:, 0, :, :4].mean((1, 2)), x[:, 0, :, 4:].mean((1, 2))], 1) > 0.45
    assert (produced == asked.bool()).float().mean() >= 0.85


def test_scikit_learn_digits_train_and_follow_their_labels(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = tmp_path / "run"
    _train(["--dataset", "digits", "--steps", "300", "--out", str(out), "--loggers", ""], capsys)
    G = condgan.load_generator(out)
    assert G.config.image_shape == (1, 8, 8) and G.config.class_names == tuple("0123456789")
    real = condgan.get_component("dataset", "digits")(split="all").load()
    centroids = torch.stack([real.images[real.conditions == k].float().mean(0).flatten() for k in range(10)]) / 255
    y = torch.arange(10).repeat(20)
    x = condgan.data.to_unit(G.sample(y, generator=torch.Generator().manual_seed(0))).flatten(1)  # (200, 64)
    nearest = torch.cdist(x, centroids).argmin(1)
    assert (nearest == y).float().mean() >= 0.6  # chance: 0.1


def test_a_folder_too_large_for_the_memory_budget_streams_and_resumes_exactly(tmp_path, capsys):
    """storage=auto streams a set over the budget (DataLoader workers decode the files); a run
    stopped and resumed trains the same weights as one run, and equals the in-memory path."""
    rng = np.random.default_rng(2)
    for name in ("a", "b"):
        folder = tmp_path / "pics" / name
        folder.mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 255, (10, 10, 3)).astype(np.uint8)).save(folder / f"{i}.png")
    common = [*FIT_TO_DATA, "--dataset", "imagefolder", "--data-root", str(tmp_path / "pics"), "--image-size", "8",
              "--batch-size", "16", "--loggers", "", "--checkpoint-every", "3", "--set", "data.workers=0"]
    streamed = condgan.run_config("mnist_mlp", {"data.name": "imagefolder", "data.root": str(tmp_path / "pics"),
                                                "data.image_size": 8, "data.memory_budget_mb": 1e-4, "data.workers": 0,
                                                "image_shape": None, "num_classes": None, "batch_size": 16,
                                                "steps": 1, "device": "cpu", "loggers": ()})
    trainer = condgan.Trainer(streamed)
    assert type(trainer.batches).__name__ == "StreamBatches"
    assert main(["train", *common, "--set", "data.memory_budget_mb=1e-4", "--steps", "4", "--out", str(tmp_path / "s")]) == 0
    assert main(["train", "--out", str(tmp_path / "s"), "--resume", "--steps", "7", "--device", "cpu"]) == 0
    assert main(["train", *common, "--set", "data.storage='memory'", "--steps", "7", "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    resumed, memory = (condgan.load_generator(tmp_path / run).state_dict() for run in ("s", "m"))
    assert all(torch.equal(resumed[k], memory[k]) for k in memory)
    with pytest.raises(condgan.data.DatasetError, match="dataset 'digits' cannot stream"):
        condgan.Trainer(condgan.run_config("mnist_mlp", {"data.name": "digits", "data.storage": "stream", "steps": 1,
                                                         "image_shape": None, "device": "cpu", "loggers": ()}))
