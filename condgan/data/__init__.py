"""Data: dataset components (:mod:`.base`, built-ins registered by :mod:`.sources`), decoding and
fitting images (:mod:`.transforms`, :mod:`.decode`) and device-resident batches (:mod:`.tensors`)."""

from .base import Dataset, DatasetError, DatasetNotFoundError, ImageSet, VectorSet
from .sources import synthetic
from .mnist import load_mnist
from .tensors import TensorBatches, to_float, to_unit
from .transforms import resize_images
from .transforms import decode_image, fit_images

__all__ = ["Dataset", "DatasetError", "DatasetNotFoundError", "ImageSet", "TensorBatches", "decode_image", "fit_images",
           "load_mnist", "resize_images", "synthetic", "to_float", "to_unit", "VectorSet"]
