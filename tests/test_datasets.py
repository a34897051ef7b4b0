"""Datasets by name: every built-in dataset on small files the tests write, with its bad inputs."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from condgan import DuplicateComponentError, UnknownComponentError, hookimpl, list_components
from condgan.data import Dataset, DatasetError, DatasetNotFoundError, load_dataset, synthetic
from condgan.plugins import get_component


def make(name: str, root, **kwargs) -> Dataset:
    return get_component("dataset", name)(root, **kwargs)


def test_synthetic_class_k_lights_cell_k():
    images, labels = synthetic(image_shape=(3, 12, 12), num_classes=9, per_class=5)
    assert images.shape == (45, 3, 12, 12) and images.dtype == torch.uint8
    assert torch.equal(labels, torch.arange(9).repeat_interleave(5))
    cells = images.float().view(45, 3, 3, 4, 3, 4).mean(dim=(1, 3, 5)).flatten(1)  # (45, 9): 3x3 grid of 4x4 cells
    assert torch.equal(cells.argmax(1), labels)
    assert cells.max(1).values.min() >= 160 and cells.topk(2).values[:, 1].max() <= 40
    again, _ = synthetic(image_shape=(3, 12, 12), num_classes=9, per_class=5)
    test, _ = synthetic(image_shape=(3, 12, 12), num_classes=9, per_class=5, train=False)
    assert torch.equal(images, again) and not torch.equal(images, test)  # fixed, with a separate test split


def test_load_dataset_checks_the_model_fits():
    images, labels = load_dataset("synthetic", "unused", image_shape=(1, 8, 8), num_classes=10)
    assert images.shape == (640, 1, 8, 8) and labels.dtype == torch.int64
    with pytest.raises(UnknownComponentError, match="unknown dataset 'svhn'; available: .*mnist.*synthetic"):
        load_dataset("svhn", "unused", image_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match="needs images of at least 4x4 for 10 classes, got 3x3"):
        load_dataset("synthetic", "unused", image_shape=(1, 3, 3), num_classes=10)
    with pytest.raises(DatasetNotFoundError, match=r"MNIST not found under 'unused': expected unused/MNIST/raw/train-images-idx3-ubyte"):
        load_dataset("mnist", "unused", image_shape=(3, 32, 32), num_classes=10, download=False)
    with pytest.raises(DatasetError, match=r"^dataset 'synthetic' has no option 'colour'; its options: num_classes, per_class, seed$"):
        make("synthetic", None, colour=True)
    with pytest.raises(DatasetError, match=r"^dataset 'mnist' has the split\(s\) train, test, not 'valid'$"):
        make("mnist", "unused", split="valid")


def test_datasets_are_registered_components(registry):
    class Floats(Dataset):
        name = "float_images"

    class Plugin:
        @hookimpl
        def register_datasets(self):
            return [Floats]

    registry.register(Plugin())
    assert {"mnist", "synthetic", "float_images"} <= {i.name for i in list_components("dataset")}

    class Again:
        @hookimpl
        def register_datasets(self):
            return [Floats]

    with pytest.raises(DuplicateComponentError, match="dataset name 'float_images' is registered twice"):
        registry.register(Again())


# -- MNIST family: idx files -----------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    data = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_mnist(root: Path, folder: str = "MNIST", n: int = 12, *, prefix: str = "train", compress: bool = False):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10
    raw = root / folder / "raw"
    write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress=compress)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("name,folder,first", [("mnist", "MNIST", "0"), ("fashion_mnist", "FashionMNIST", "T-shirt/top"),
                                               ("kmnist", "KMNIST", "o")])
def test_mnist_family_reads_idx_files(tmp_path, name, folder, first):
    images, labels = write_mnist(tmp_path, folder, compress=name == "kmnist")
    write_mnist(tmp_path, folder, n=5, prefix="t10k")
    data = make(name, tmp_path).load(size=(32, 32))
    assert data.images.shape == (12, 1, 32, 32) and data.images.dtype == torch.uint8
    assert data.conditions.tolist() == labels.tolist() and data.spec.kind == "class" and data.spec.num_classes == 10
    assert len(data.class_names) == 10 and data.class_names[0] == first
    pil = np.asarray(Image.fromarray(images[3]).resize((32, 32), Image.BILINEAR))  # the reference's transforms.Resize
    assert np.array_equal(data.images[3, 0].numpy(), pil)
    assert torch.equal(make(name, tmp_path).load().images[:, 0], torch.from_numpy(images))  # no size: as stored
    assert len(make(name, tmp_path, split="test").load()) == 5
    rgb = make(name, tmp_path).load(channels=3, size=(20, 36), fit="pad")
    assert rgb.images.shape == (12, 3, 20, 36) and torch.equal(rgb.images[:, 0], rgb.images[:, 2])


def test_mnist_bad_idx_files_name_the_file(tmp_path):
    images_path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    labels_path = images_path.with_name("train-labels-idx1-ubyte")
    ip, lp = re.escape(str(images_path)), re.escape(str(labels_path))

    def check(pattern):
        with pytest.raises(DatasetError, match=pattern) as info:
            make("mnist", tmp_path).load()
        assert "\n" not in str(info.value)

    write_mnist(tmp_path)
    good = images_path.read_bytes()
    images_path.write_bytes(good[:-100])
    check(rf"^{ip}: truncated: 9324 bytes, but its header says 12x28x28 uint8 values \(9424 bytes\)$")
    images_path.write_bytes(good + b"xx")
    check(rf"^{ip}: too long: 9426 bytes")
    images_path.write_bytes(b"")
    check(rf"^{ip}: the file is empty")
    images_path.write_bytes(b"<html>404 Not Found</html>")
    check(rf"^{ip}: not an idx file: magic number 3c 68 74 6d \(expected 00 00 <type> <ndim>")
    images_path.write_bytes(good[:10])
    check(rf"^{ip}: truncated: 10 bytes, shorter than its 16-byte header$")
    images_path.write_bytes(labels_path.read_bytes())
    check(rf"^{ip}: holds a 1-dimensional array, expected 3 dimensions")
    images_path.write_bytes(good)
    write_idx(labels_path, np.arange(11) % 10)
    check(rf"^{ip} holds 12 images but {lp} holds 11 labels$")
    write_idx(labels_path, np.full(12, 10))
    check(rf"^{lp}: label 10 is out of range: labels must lie in \[0, 10\)$")
    labels_path.unlink()
    labels_gz = write_idx(labels_path, np.arange(12) % 10, compress=True)
    labels_gz.write_bytes(labels_gz.read_bytes()[:-6])
    check(rf"^{re.escape(str(labels_gz))}: not a readable gzip file")
    labels_gz.unlink()
    with pytest.raises(DatasetNotFoundError, match=rf"MNIST not found under .*: expected {lp}\[.gz\]"):
        make("mnist", tmp_path).load()
