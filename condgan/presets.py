"""Presets: named, complete configurations. Variants are data, not subclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import GANConfig, NetworkConfig, OptimizerConfig
from .hookspecs import hookimpl


@dataclass(frozen=True)
class Preset:
    """A named configuration; ``config()`` returns a fresh :class:`GANConfig` each call."""

    name: str
    make_config: Callable[[], GANConfig]
    description: str = ""

    def config(self) -> GANConfig:
        return self.make_config()


def mnist_mlp() -> GANConfig:
    """The widely used PyTorch MNIST MLP cGAN, reproduced exactly (see shared REFERENCE.md).

    G: [embed(y) (10), z (100)] -> 128 -> 256 -> 512 -> 1024 -> 1024, tanh, as (1, 32, 32);
    D: [image (1024), embed(y) (10)] -> 512 -> 512 -> 512 -> 1; LSGAN loss; Adam 2e-4 (0.5, 0.999).
    """
    adam = lambda: OptimizerConfig("Adam", 2e-4, {"betas": (0.5, 0.999)})  # noqa: E731
    return GANConfig(
        condition_kind="class",
        num_classes=10,
        image_shape=(1, 32, 32),
        latent_dim=100,
        noise="normal",
        generator=NetworkConfig(
            conditioner="embedding",
            conditioner_options={"embedding_dim": 10},
            backbone="mlp",
            backbone_options={
                "widths": (128, 256, 512, 1024),
                "norm": (None, "batch", "batch", "batch"),
                # The reference writes BatchNorm1d(n, 0.8): positionally that is eps, not momentum.
                # eps=0.8 is what the reference trains with, so the faithful preset keeps it.
                "norm_eps": 0.8,
                "norm_momentum": 0.1,
                "activation": "leaky_relu",
                "output_activation": "tanh",
            },
        ),
        discriminator=NetworkConfig(
            conditioner="embedding",
            conditioner_options={"embedding_dim": 10},
            backbone="mlp",
            backbone_options={
                "widths": (512, 512, 512),
                "dropout": (0.0, 0.4, 0.4),
                "activation": "leaky_relu",
                "output_activation": None,
            },
        ),
        loss="lsgan",
        g_optimizer=adam(),
        d_optimizer=adam(),
        dataset="mnist",
        batch_size=64,
        epochs=200,
        sample_every=400,
    )


@hookimpl
def register_presets():
    return [Preset("mnist_mlp", mnist_mlp, "the PyTorch reference MNIST MLP cGAN (32x32, embedding, LSGAN)")]
