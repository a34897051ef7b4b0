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


def mnist_paper() -> GANConfig:
    """The MNIST networks of Mirza & Osindero (2014), section 4.1.

    G: z (100, uniform on the unit hypercube) -> 200 ReLU and one-hot y -> 1,000 ReLU (the
    ``branches`` conditioner), joined -> 1,200 ReLU -> 784 sigmoid, as (1, 28, 28) in [0, 1].
    D: x -> maxout 240 units x 5 pieces and y -> maxout 50 x 5, joined -> maxout 240 x 4 -> one
    logit (the ``bce`` loss applies the sigmoid). Dropout 0.5 on D's input and hidden layers.
    SGD, batch 100, learning rate 0.1 divided by 1.00004 every step down to 1e-6, momentum 0.5
    rising to 0.7.

    Choices where the paper is silent (all configurable): the momentum ramp is linear over
    150,000 steps (250 epochs); dropout is applied in D only (the paper says both networks, the
    issue that specified this preset says D; ``generator.backbone_options.dropout`` turns it on in
    G); G's loss is the non-saturating ``-log D(G(z|y)|y)``; PyTorch's default initialisation.
    """
    sgd = lambda: OptimizerConfig(  # noqa: E731
        "SGD", 0.1, {"momentum": 0.5},
        {"lr_decay": 1.00004, "min_lr": 1e-6, "momentum_start": 0.5, "momentum_end": 0.7, "momentum_steps": 150_000},
    )
    return GANConfig(
        condition_kind="class",
        num_classes=10,
        image_shape=(1, 28, 28),
        latent_dim=100,
        noise="uniform",
        generator=NetworkConfig(
            conditioner="branches",
            conditioner_options={"x_width": 200, "y_width": 1000, "activation": "relu"},
            backbone="mlp",
            backbone_options={"widths": (1200,), "activation": "relu", "output_activation": "sigmoid"},
        ),
        discriminator=NetworkConfig(
            conditioner="branches",
            conditioner_options={"x_width": 240, "y_width": 50, "pieces": 5, "input_dropout": 0.5, "dropout": 0.5},
            backbone="mlp",
            backbone_options={"widths": (240,), "pieces": 4, "dropout": 0.5, "output_activation": None},
        ),
        loss="bce",
        g_optimizer=sgd(),
        d_optimizer=sgd(),
        dataset="mnist",
        batch_size=100,
        epochs=100,
        sample_every=600,
        pixel_range=(0.0, 1.0),
    )


@hookimpl
def register_presets():
    return [
        Preset("mnist_mlp", mnist_mlp, "the PyTorch reference MNIST MLP cGAN (32x32, embedding, LSGAN)"),
        Preset("mnist_paper", mnist_paper, "Mirza & Osindero's own MNIST networks (28x28, branches, maxout D, SGD)"),
    ]
