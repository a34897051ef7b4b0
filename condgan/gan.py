"""A whole conditional GAN (generator, discriminator, loss, optimizer settings) and ``build``."""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from .config import GANConfig, apply_overrides
from .resolve import output_spec, run_config
from .losses import Loss
from .models import ConditionalDiscriminator, ConditionalGenerator, construct, options
from .plugins import get_component
from .training.optim import make_optimizer


class GAN(nn.Module):
    """A conditional GAN built from a :class:`GANConfig`.

    Attributes:
        config: the configuration it was built from.
        spec, output: the condition and what the generator makes (image, vector, ...).
        generator, discriminator: the two networks.
        loss: the adversarial :class:`~condgan.losses.Loss`.
    """

    def __init__(self, config: GANConfig):
        super().__init__()
        if not isinstance(config, GANConfig):
            raise TypeError(f"config must be a GANConfig, got {type(config).__name__}")
        self.config = config
        spec, output = config.spec, output_spec(config)
        g, d = config.generator, config.discriminator
        self.generator = ConditionalGenerator(
            spec, output, config.latent_dim, noise=config.noise,
            conditioner=g.conditioner, conditioner_options=g.conditioner_options,
            backbone=g.backbone, backbone_options=g.backbone_options,
        )
        self.discriminator = ConditionalDiscriminator(
            spec, output,
            conditioner=d.conditioner, conditioner_options=d.conditioner_options,
            backbone=d.backbone, backbone_options=d.backbone_options,
            augment=config.augment, augment_options=config.augment_options,
        )
        config.check()  # a config changed after it was made (its fields are plain attributes)
        loss_cls = get_component("loss", config.loss)
        if not (isinstance(loss_cls, type) and issubclass(loss_cls, Loss)):
            raise TypeError(f"loss must be a registered name or a Loss subclass, got {config.loss!r}")
        self.loss = construct(loss_cls, **options(config.loss_options, "loss_options"))
        state = self.loss.state_module()
        if state is not None:  # kept by D: moved, saved and restored with D's weights
            self.discriminator.loss_state = state

    @property
    def spec(self):
        return self.generator.spec

    @property
    def output(self):
        """What the generator makes (:class:`~condgan.outputs.OutputSpec`)."""
        return self.generator.output

    def optimizers(self, **extra: Any) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """(G's optimizer, D's optimizer) from the config; ``extra`` options go to both (e.g. foreach)."""
        return (
            make_optimizer(self.generator.parameters(), self.config.g_optimizer, **extra),
            make_optimizer(self.discriminator.parameters(), self.config.d_optimizer, **extra),
        )


def build(
    preset: str | GANConfig = "mnist_mlp",
    *,
    conditioner: Any = None,
    conditioner_options: Mapping[str, Any] | None = None,
    backbone: Any = None,
    overrides: Mapping[str, Any] | None = None,
    **fields: Any,
) -> GAN:
    """Build a GAN from a preset name (or a config) with overrides.

    Args:
        preset: a registered preset name or a :class:`GANConfig`.
        conditioner, conditioner_options, backbone: set for both networks (names or classes).
        overrides: dotted keys, e.g. ``{"generator.backbone_options.widths": (64, 64)}``.
        **fields: top-level config fields, e.g. ``loss="bce"``, ``num_classes=5``.

    Example:
        >>> gan = build("mnist_mlp", conditioner="onehot", loss="bce")
        >>> gan.generator.sample(torch.arange(10)).shape
        torch.Size([10, 1, 32, 32])
    """
    config = preset if isinstance(preset, GANConfig) else run_config(preset).model
    dotted: dict[str, Any] = dict(fields)
    for net in ("generator", "discriminator"):
        if conditioner is not None:
            dotted[f"{net}.conditioner"] = conditioner
        if conditioner_options is not None:
            dotted[f"{net}.conditioner_options"] = dict(conditioner_options)
        if backbone is not None:
            dotted[f"{net}.backbone"] = backbone
    dotted.update(overrides or {})
    return GAN(apply_overrides(config, dotted))
