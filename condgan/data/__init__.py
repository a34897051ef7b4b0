"""Data: dataset components (:mod:`.base`, :mod:`.sources`) and device-resident batches (:mod:`.tensors`)."""

from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet
from .sources import load_dataset, synthetic
from .tensors import TensorBatches, load_mnist, resize_images, to_float, to_unit

__all__ = ["Dataset", "DatasetError", "DatasetNotFoundError", "ImageSet", "TensorBatches", "load_dataset", "load_mnist",
           "resize_images", "synthetic", "to_float", "to_unit"]
