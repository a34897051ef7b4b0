"""Learning is tested by learning: small conditional GANs trained for a few seconds on synthetic data
whose class is easy to read back, so that we can check that samples follow their labels.

Chance is 0.1 (ten classes); an untrained generator scores about that. Thresholds are tolerant:
with these settings every seed tried while writing the tests scored 0.9 or more.
"""

from __future__ import annotations

import math

import pytest
import torch

import condgan

NUM_CLASSES = 10


def small_gan(conditioner: str, loss: str, image_shape: tuple[int, ...], latent_dim: int) -> condgan.GAN:
    """The reference preset shrunk: two hidden layers of 64, no dropout, a faster learning rate."""
    return condgan.build("mnist_mlp", conditioner=conditioner, loss=loss, overrides={
        "image_shape": image_shape,
        "latent_dim": latent_dim,
        "generator.backbone_options.widths": (64, 64),
        "generator.backbone_options.norm": "batch",
        "discriminator.backbone_options.widths": (64, 64),
        "discriminator.backbone_options.dropout": 0.0,
        "g_optimizer.lr": 1e-3,
        "d_optimizer.lr": 1e-3,
    })


def train(gan: condgan.GAN, make_batch, steps: int, batch_size: int = 64) -> dict[str, torch.Tensor]:
    opt_g, opt_d = gan.optimizers()
    for _ in range(steps):
        y = torch.randint(0, NUM_CLASSES, (batch_size,))
        losses = condgan.train_step(gan, make_batch(y), y, opt_g, opt_d)
    return losses


def nearest(samples: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(index of the nearest centre, distance to it) for each flattened sample."""
    distances = torch.cdist(samples.flatten(1), centres.flatten(1))  # (N, K)
    return distances.argmin(1), distances.min(1).values


# -- a mixture of Gaussians whose mode is the label -----------------------------------------------
def mode_centres() -> torch.Tensor:
    """Ten modes evenly spaced on a circle of radius 0.8 (neighbours 0.49 apart): (10, 2)."""
    angles = torch.arange(NUM_CLASSES) * 2 * math.pi / NUM_CLASSES
    return 0.8 * torch.stack([angles.cos(), angles.sin()], dim=1)


@pytest.mark.parametrize("loss", ["lsgan", "bce"])
@pytest.mark.parametrize("conditioner", ["embedding", "onehot"])
def test_samples_follow_their_label_on_a_mixture_of_gaussians(conditioner, loss):
    torch.manual_seed(0)
    centres = mode_centres()
    gan = small_gan(conditioner, loss, image_shape=(1, 1, 2), latent_dim=4)  # a "2-pixel image"

    def make_batch(y):
        return (centres[y] + 0.05 * torch.randn(len(y), 2)).view(-1, 1, 1, 2)  # (B, 1, 1, 2)

    labels = torch.arange(NUM_CLASSES).repeat(50)
    before, _ = nearest(gan.generator.sample(labels), centres)
    losses = train(gan, make_batch, steps=500)
    assert all(torch.isfinite(v) for v in losses.values())

    mode, distance = nearest(gan.generator.sample(labels), centres)
    accuracy = (mode == labels).float().mean().item()
    assert (before == labels).float().mean().item() < 0.3  # untrained: about chance
    assert accuracy >= 0.6, f"samples match their label's mode {accuracy:.0%} of the time"
    for k in range(NUM_CLASSES):  # every label, not just most of them
        assert (mode[labels == k] == k).float().mean() >= 0.3, f"label {k} is not followed"
    # and the samples are realistic: near a mode (within half the gap between neighbours)
    assert (distance < 0.25).float().mean() >= 0.6


# -- 8x8 images: class k lights its own bar --------------------------------------------------------
def bar_templates() -> torch.Tensor:
    """(10, 1, 8, 8) in [-1, 1]: classes 0-7 a horizontal bar on row k, 8 and 9 the two diagonals."""
    t = -torch.ones(NUM_CLASSES, 1, 8, 8)
    for k in range(8):
        t[k, 0, k, :] = 1
    i = torch.arange(8)
    t[8, 0, i, i] = 1
    t[9, 0, i, 7 - i] = 1
    return t


def test_samples_follow_their_label_on_synthetic_images():
    torch.manual_seed(0)
    templates = bar_templates()
    gan = small_gan("embedding", "lsgan", image_shape=(1, 8, 8), latent_dim=4)

    def make_batch(y):
        return (templates[y] + 0.1 * torch.randn(len(y), 1, 8, 8)).clamp(-1, 1)

    train(gan, make_batch, steps=1500)
    labels = torch.arange(NUM_CLASSES).repeat(30)
    images = gan.generator.sample(labels)
    assert images.shape == (300, 1, 8, 8)
    predicted, _ = nearest(images, templates)
    accuracy = (predicted == labels).float().mean().item()
    assert accuracy >= 0.6, f"samples look like their label's bar {accuracy:.0%} of the time"
