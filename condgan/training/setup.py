"""What a trainer sets up before its first step: the device, the seeds, the data (loaded, fitted
to the model, checked once) and its batches, and the checks that fail in a second rather than at
an epoch's last batch.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..checkpoint import configs as ckpt_configs
from ..config import AUTOCAST_NAMES, DataConfig, GANConfig, RunConfig, TrainerConfig
from ..data import ImageSet, TensorBatches, VectorSet
from ..data.fingerprint import dataset_fingerprint
from ..data.fitting import FileSet, check_dataset, fit_to_data
from ..data.stream import StreamBatches
from ..gan import GAN
from ..resolve import load_data, run_config
from .rundir import check_space

AUTOCAST_DTYPES = {name: getattr(torch, name) for name in AUTOCAST_NAMES}  # "bfloat16" -> torch.bfloat16


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; anything else as ``torch.device``, checked."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} was asked for but CUDA is not available here; use --device cpu")
    return device


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def run_sections(gan: Any, config: Any, data: Any) -> tuple[Any, TrainerConfig, Any]:
    """(model, training section, data) from the arguments, a RunConfig or a preset name, checked."""
    run = gan if isinstance(gan, RunConfig) else run_config(gan) if isinstance(gan, str) else None
    if run is not None:
        gan, config = run.model, config if config is not None else run.training
        data = data if data is not None else run.data
    config = config if config is not None else TrainerConfig()
    if not isinstance(config, TrainerConfig):
        raise TypeError(f"config must be a TrainerConfig, got {type(config).__name__}")
    if not isinstance(gan, (GAN, GANConfig)):
        raise TypeError(f"gan must be a GAN, a GANConfig, a RunConfig or a preset name, got {type(gan).__name__}")
    return gan, config, data


def build_model(gan: Any, data: Any, config: TrainerConfig, device: torch.device, out_dir: Path | None,
                is_main: bool) -> tuple[GAN, Any, Tensor, dict[str, Any] | None]:
    """(the model on ``device``, images, conditions, the data's fingerprint): load the data, build the
    model fitted to it (or fit a built one), check that a checkpoint can hold its config and that
    ``out_dir`` has room."""
    images, labels, fitted, fingerprint = load_training_data(data, gan.config if isinstance(gan, GAN) else gan)
    if isinstance(gan, GAN):
        gan.config = fitted  # a built GAN has its shape and condition; the data may add class names
    else:
        seed_everything(config.seed)
        gan = GAN(fitted)
    if out_dir is not None:
        ckpt_configs.config_to_plain(gan.config)  # a config that a checkpoint cannot hold fails now, not at the first save
    gan = gan.to(device)
    if config.sync_batchnorm:
        convert_sync_batchnorm(gan, device)
    if out_dir is not None and is_main:
        check_space(out_dir, gan.generator, gan.discriminator, ema=config.ema_decay is not None, keep_last=config.keep_last)
    return gan, images, labels, fingerprint


def load_training_data(data: Any, model: GANConfig) -> tuple[Any, Tensor, GANConfig, dict[str, Any] | None]:
    """(images or a :class:`FileSet`, conditions, the model config fitted to them, the data's
    fingerprint): a model that leaves its image shape or condition to the data takes them from it
    (raw tensors must fit the model as is, and have no fingerprint)."""
    if isinstance(data, tuple) and len(data) == 2:
        return data[0], data[1], model, None
    source, name = f"the given {type(data).__name__}", None
    if isinstance(data, DataConfig):
        shape = tuple(model.image_shape) if model.image_shape is not None else None
        source, name = f"dataset {data.name!r}", data.name
        data = load_data(data, shape)
    if isinstance(data, FileSet):  # streamed: the images are decoded batch by batch
        return data, data.conditions, fit_to_data(model, data, source), dataset_fingerprint(data, name)
    if not isinstance(data, (ImageSet, VectorSet)):
        raise TypeError(f"data must be a DataConfig, an ImageSet, a VectorSet or (images, labels), got {type(data).__name__}")
    fingerprint = dataset_fingerprint(data, name) if isinstance(data, ImageSet) else data.fingerprint  # vectors: the dataset's own
    return data.samples, data.conditions, fit_to_data(model, data, source), fingerprint


def make_batches(gan: nn.Module, images: Any, labels: Tensor, batch_size: int, *, workers: int | None, **order: Any):
    """The batches of one epoch after another: device-resident tensors, or a :class:`FileSet`
    decoded by DataLoader workers; the data is checked against ``gan`` once, here."""
    if isinstance(images, FileSet):
        gan.spec.check(labels)
        c, h, w = images.image_shape
        return StreamBatches(images.paths, labels, batch_size, channels=c, size=(h, w), fit=images.fit,
                             num_workers=workers, **order)
    check_dataset(gan, images, labels)  # validated once, before the loop
    drawn = drawn_batches(gan)
    if drawn is not None:
        return drawn(images, labels, batch_size, **order)
    return TensorBatches(images, labels, batch_size, **order)


def drawn_batches(gan: nn.Module):
    """The generator conditioner's own batch maker, ``training_batches(samples, labels, batch_size,
    **order)``, when it draws the batches itself (CTGAN's training-by-sampling: the conditional
    vector decides which rows a batch holds, drawn with replacement, every batch full); else None."""
    conditioner = getattr(getattr(gan, "generator", None), "conditioner", None)
    return getattr(conditioner, "training_batches", None)


def packed_batches(gan: nn.Module, n: int, batch_size: int) -> bool:
    """Whether the epoch's short last batch is dropped: a discriminator packing ``pac`` samples
    (PacGAN) judges multiples of ``pac`` only, so a last batch of ``n % batch_size`` rows that is not
    one is left out (the next epoch reshuffles). ValueError (one line) when no batch can be packed."""
    pac = int(getattr(getattr(gan, "discriminator", None), "pac", 1))
    if pac == 1:
        return False
    if batch_size % pac:
        raise ValueError(f"batch_size {batch_size} is not a multiple of the discriminator's pac {pac} (PacGAN packs "
                         f"{pac} samples into one judgement): use a batch_size such as {max(pac, batch_size // pac * pac)}")
    if drawn_batches(gan) is not None:  # drawn with replacement: every batch holds batch_size rows
        return False
    if n < batch_size and n % pac:
        raise ValueError(f"{n} rows make one batch of {n}, not a multiple of the discriminator's pac {pac}: use a "
                         f"batch_size that is a multiple of {pac} and at most {n} (e.g. {n // pac * pac})")
    return n > batch_size and (n % batch_size) % pac != 0


def check_batch_sizes(gan: nn.Module, labels: Tensor, batch_size: int, world_size: int, device: torch.device) -> None:
    """A batch of one in training mode breaks batch norm: find out now, not at the epoch's last batch."""
    b, n = batch_size, len(labels)
    sizes = {b} if world_size > 1 or n % b == 0 or drawn_batches(gan) is not None else {b, n % b}
    if 1 not in sizes:
        return
    probe = copy.deepcopy(gan).train()
    devices = [device] if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        try:
            y = labels[:1].to(device)
            probe.discriminator(probe.generator(probe.generator.sample_noise(1, device), y, check=False), y, check=False)
        except ValueError as exc:  # batch norm (condgan's MLP, or PyTorch's own check in other backbones)
            where = "batch_size is 1" if b == 1 else f"the last batch of each epoch holds 1 image ({n} images, batch {b})"
            raise ValueError(f"{where}, and this model cannot train on a batch of one ({exc}): use a batch_size "
                             f"from 2 up that leaves a last batch of at least 2 (n % batch_size != 1)") from None


def convert_sync_batchnorm(gan: nn.Module, device: torch.device) -> None:
    """Both networks' batch norms as ``nn.SyncBatchNorm`` (CUDA only)."""
    if device.type != "cuda":
        raise ValueError("sync_batchnorm=True needs CUDA (PyTorch's SyncBatchNorm runs on GPUs only); "
                         f"this run is on {device}: leave sync_batchnorm off")
    gan.generator = nn.SyncBatchNorm.convert_sync_batchnorm(gan.generator)
    gan.discriminator = nn.SyncBatchNorm.convert_sync_batchnorm(gan.discriminator)
