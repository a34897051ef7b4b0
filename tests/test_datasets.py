"""Datasets by name: the synthetic conditional set and the checks of load_dataset."""

from __future__ import annotations

import pytest
import torch

from condgan import DuplicateComponentError, UnknownComponentError, hookimpl, list_components
from condgan.data import Dataset, load_dataset, synthetic


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
    with pytest.raises(ValueError, match=r"MNIST images are 1-channel and square: image_shape must be \(1, S, S\)"):
        load_dataset("mnist", "unused", image_shape=(3, 32, 32), num_classes=10)


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
