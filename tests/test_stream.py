"""StreamBatches: decoded from files by workers, the same batches in the same order as TensorBatches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from condgan.data import TensorBatches
from condgan.data.folders import ImageFolder
from condgan.data.stream import StreamBatches


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for k in range(23):
        cls = tmp_path / f"class{k % 3}"
        cls.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)).save(cls / f"{k:03d}.png")
    return tmp_path


def both(folder, batch_size=4, seed=3, workers=0, **kwargs):
    dataset = ImageFolder(folder)
    paths, labels, _ = dataset.files()
    data = dataset.load(channels=3, size=(8, 8))
    tensor = TensorBatches(data.images, data.conditions, batch_size, generator=torch.Generator().manual_seed(seed), **kwargs)
    stream = StreamBatches(paths, torch.tensor(labels), batch_size, channels=3, size=(8, 8), num_workers=workers,
                           generator=torch.Generator().manual_seed(seed), **kwargs)
    return tensor, stream


def assert_same(a, b):
    a, b = list(a), list(b)
    assert len(a) == len(b) > 0
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == xb.dtype == torch.float32
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_yields_tensor_batches_exactly(folder, workers):
    tensor, stream = both(folder, workers=workers)
    assert len(stream) == len(tensor) == 6
    for _ in range(2):  # two epochs: the generator moves on identically
        assert_same(tensor, stream)


def stream_kwargs(folder):
    paths, labels, _ = ImageFolder(folder).files()
    return dict(items=paths, labels=torch.tensor(labels), batch_size=4, channels=3, size=(8, 8),
                generator=torch.Generator().manual_seed(3))


def test_iterate_from_a_batch_skips_without_changing_the_order(folder):
    tensor, stream = both(folder)
    full = list(tensor)
    assert_same(full[4:], stream.iterate(4))
    assert_same(list(tensor), stream)  # the next epoch: the same draw on both sides
    tensor, _ = both(folder)
    assert_same(full[2:], tensor.iterate(2))


def test_stream_shards_as_tensor_batches_do(folder):
    seen = []
    for rank in range(2):
        tensor, stream = both(folder, batch_size=3, rank=rank, world_size=2)
        assert len(stream) == 3  # 23 // 6, the last incomplete global batch dropped
        batches = list(stream)
        assert_same(tensor, batches)
        seen.append(torch.cat([x for x, _ in batches]))
    flat = torch.cat(seen).flatten(1)
    assert len(torch.unique(flat, dim=0)) == 18  # the two processes' images are disjoint


def test_stream_checks_its_arguments(folder):
    with pytest.raises(ValueError, match="the dataset is empty"):
        StreamBatches([], torch.zeros(0), 4)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        StreamBatches(["a", "b", "c"], torch.zeros(2), 4)
    with pytest.raises(ValueError, match="23 images cannot fill one global batch of 4 processes x 8"):
        StreamBatches(**{**stream_kwargs(folder), "batch_size": 8, "world_size": 4})


def test_stream_of_celeba_tags_matches_its_decoded_set(tmp_path):
    from test_datasets import write_celeba

    from condgan.data.celeba import CelebA

    write_celeba(tmp_path)
    dataset = CelebA(tmp_path, split="all", attributes=["Smiling", "Male"])
    paths, tags, spec, names = dataset.index()
    assert spec.kind == "multilabel" and names == ("Smiling", "Male") and tags.shape == (5, 2)
    data = dataset.load(size=(8, 8))
    tensor = TensorBatches(data.images, data.conditions, 2, generator=torch.Generator().manual_seed(1))
    stream = StreamBatches(paths, tags, 2, size=(8, 8), num_workers=0, generator=torch.Generator().manual_seed(1))
    assert_same(tensor, stream)


def test_data_benchmark_runs_and_reports_every_path(tmp_path, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "data_throughput.py"
    spec = importlib.util.spec_from_file_location("data_throughput", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.main(["--images", "30", "--size", "16", "--batch", "8", "--workers", "0", "--repeats", "1", "--device", "cpu",
                      "--out", str(tmp_path / "data.json")])
    assert list(out["paths"]) == ["decode once", "resident (TensorBatches)", "stream (StreamBatches)",
                                  "torchvision ImageFolder + DataLoader"]
    assert all(r["images_per_epoch"] == 30 and r["images_per_s"] > 0 for r in out["paths"].values())
    assert json.loads((tmp_path / "data.json").read_text())["protocol"]["images"] == 30
    assert "| stream (StreamBatches) |" in capsys.readouterr().out
