"""Write your own conditioner, register it in-process, and use it by name.

The conditioner here is FiLM-style (feature-wise linear modulation, Perez et al. 2018): instead of
concatenating a label code to the network input, it scales and shifts the input features by
amounts learned per label. It is registered through a plugin object (no packaging needed), then
composed with the built-in ``mlp`` backbone by ``condgan.build(..., conditioner="film")`` and
trained for a few steps on a synthetic conditional dataset: ten 2-D Gaussians, one per label.

Run:
    python examples/custom_conditioner.py --steps 1000
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import Tensor, nn

import condgan


class FiLMConditioner(condgan.Conditioner):
    """Scale and shift the network input by the label: ``x * (1 + gamma(y)) + beta(y)``.

    gamma and beta come from a learned label embedding through a linear layer that starts at zero,
    so the conditioner starts as the identity. It adds no features (``input_features = 0``).

    Args:
        spec: a ``class`` condition.
        role: the network conditioned (generator or discriminator).
        embedding_dim: size of the label embedding.

    Shape:
        - x: (B, F) or (B, C, H, W); y: (B,) integer; output: the shape of x. A flat input is
          modulated per feature, a conv input per channel (the same for every H, W position).

    Example:
        >>> condgan.register_plugin(FiLMPlugin())
        >>> gan = condgan.build("mnist_mlp", conditioner="film")
    """

    name = "film"
    input_features = 0

    def __init__(self, spec: condgan.ConditionSpec, role: str, *, embedding_dim: int = 16):
        super().__init__(spec, role)
        self.embedding = nn.Embedding(spec.num_classes, embedding_dim)
        self.to_film: nn.Linear | None = None

    def setup_input(self, shape: tuple[int, ...]) -> None:
        channels = shape[0]  # F of a flat input, C of a (C, H, W) one
        self.to_film = nn.Linear(self.embedding.embedding_dim, 2 * channels)
        nn.init.zeros_(self.to_film.weight)
        nn.init.zeros_(self.to_film.bias)

    def join(self, x: Tensor, y: Tensor) -> Tensor:
        gamma, beta = self.to_film(self.embedding(y.long())).chunk(2, dim=1)  # (B, C) each
        if x.dim() == 4:
            gamma, beta = gamma[:, :, None, None], beta[:, :, None, None]  # (B, C, 1, 1)
        return x * (1 + gamma) + beta


class FiLMPlugin:
    """A plugin: any object with ``@condgan.hookimpl`` functions named like the hooks."""

    @condgan.hookimpl
    def register_conditioners(self):
        return [FiLMConditioner]


def mode_centres(num_classes: int, device: torch.device) -> Tensor:
    """The label k's mode: a point on a circle of radius 0.8, (num_classes, 2)."""
    angles = torch.arange(num_classes, device=device) * 2 * math.pi / num_classes
    return 0.8 * torch.stack([angles.cos(), angles.sin()], dim=1)


def config(num_classes: int) -> condgan.GANConfig:
    """A small GAN for 2-D points, written as a "(1, 1, 2) image"; the conditioner is set by build()."""
    mlp = {"widths": (64, 64), "activation": "leaky_relu"}
    return condgan.GANConfig(
        num_classes=num_classes,
        image_shape=(1, 1, 2),
        latent_dim=4,
        generator=condgan.NetworkConfig(backbone="mlp", backbone_options={**mlp, "norm": "batch"}),
        discriminator=condgan.NetworkConfig(backbone="mlp", backbone_options=mlp),
        loss="lsgan",
        g_optimizer=condgan.OptimizerConfig("Adam", 1e-3, {"betas": (0.5, 0.999)}),
        d_optimizer=condgan.OptimizerConfig("Adam", 1e-3, {"betas": (0.5, 0.999)}),
    )


def main(argv: list[str] | None = None) -> float:
    """Register the plugin, build and train the GAN; returns the fraction of samples nearest their label's mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default 1000, a few seconds on a CPU)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--log-every", type=int, default=100, help="print the losses every N steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 2 or args.log_every < 1:
        parser.error("--steps and --log-every must be >= 1 and --batch-size >= 2")

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    num_classes = 10

    condgan.register_plugin(FiLMPlugin(), name="film-example")
    [info] = [i for i in condgan.list_components("conditioner") if i.name == "film"]
    print(f"registered conditioner {info.name!r} ({info.qualname}) from plugin {info.plugin!r}")

    gan = condgan.build(config(num_classes), conditioner="film").to(device)
    print(f"generator: {type(gan.generator.conditioner).__name__} + {type(gan.generator.backbone).__name__}, "
          f"{sum(p.numel() for p in gan.generator.parameters()):,} parameters")
    opt_g, opt_d = gan.optimizers()
    centres = mode_centres(num_classes, device)

    for step in range(1, args.steps + 1):
        y = torch.randint(0, num_classes, (args.batch_size,), device=device)
        real = (centres[y] + 0.05 * torch.randn(args.batch_size, 2, device=device)).view(-1, 1, 1, 2)
        losses = condgan.train_step(gan, real, y, opt_g, opt_d)
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step:5d}  d_loss {losses['d_loss'].item():.4f}  g_loss {losses['g_loss'].item():.4f}")

    labels = torch.arange(num_classes, device=device).repeat(100)
    points = gan.generator.sample(labels).view(-1, 2)
    nearest = torch.cdist(points, centres).argmin(dim=1)
    accuracy = (nearest == labels).float().mean().item()
    print(f"samples nearest their label's mode: {accuracy:.1%} (chance {1 / num_classes:.0%})")
    return accuracy


if __name__ == "__main__":
    main()
