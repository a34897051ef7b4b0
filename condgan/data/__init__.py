"""Data: dataset components (:mod:`.base`, built-ins registered by :mod:`.sources`), decoding and
fitting images (:mod:`.transforms`, :mod:`.decode`) and device-resident batches (:mod:`.tensors`)."""

from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet
from .sources import load_dataset, synthetic
from .tensors import TensorBatches, load_mnist, resize_images, to_float, to_unit
from .transforms import decode_image, fit_images

__all__ = ["Dataset", "DatasetError", "DatasetNotFoundError", "ImageSet", "TensorBatches", "decode_image", "fit_images",
           "load_dataset", "load_mnist", "resize_images", "synthetic", "to_float", "to_unit"]
