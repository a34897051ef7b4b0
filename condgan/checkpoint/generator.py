"""The generator artifact: ``generator.pt`` (or a generator ``.safetensors`` file), written for
sampling and read back into a :class:`~condgan.models.ConditionalGenerator`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from ..config import GANConfig
from ..errors import UnknownComponentError
from ..models import ConditionalGenerator
from ..resolve import output_from_plain, output_spec
from . import integrity as checks
from .configs import config_to_plain, gan_config_from_plain
from .files import (CHECKPOINT_FORMAT, FORMAT_VERSION, GENERATOR_FILE, GENERATOR_FORMAT, SAFETENSORS_SUFFIX, CheckpointError, read_file,
                    read_safetensors, resolve_checkpoint)


# -- the generator artifact ---------------------------------------------------------------------------
def build_generator(config: GANConfig) -> ConditionalGenerator:
    """The generator of ``config`` alone (the discriminator's components need not be installed)."""
    g = config.generator
    return ConditionalGenerator(
        config.spec, output_spec(config), config.latent_dim, noise=config.noise,
        conditioner=g.conditioner, conditioner_options=g.conditioner_options,
        backbone=g.backbone, backbone_options=g.backbone_options,
    )


def generator_file(config: GANConfig | Mapping[str, Any], state_dict: Mapping[str, Any], *, from_ema: bool, step: int,
                   data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The content of a generator file (see :mod:`condgan.checkpoint.files`); ``data``: the training
    data's fingerprint (:mod:`condgan.data.fingerprint`), when there is one."""
    plain = config_to_plain(config) if isinstance(config, GANConfig) else dict(config)
    output = output_spec(config if isinstance(config, GANConfig) else gan_config_from_plain(plain)).to_dict()
    return {"format": GENERATOR_FORMAT, "version": FORMAT_VERSION, "gan_config": plain, "output": output,
            "generator": dict(state_dict), "from_ema": from_ema, "step": step, **({"data": dict(data)} if data else {})}


def check_output_kind(output: Any, kinds: tuple[str, ...], reader: str, source: str | Path) -> None:
    """CheckpointError (one line) unless the output kind ``output`` is one that ``reader`` handles."""
    if output.name not in kinds:
        raise CheckpointError(f"{source} holds a generator of {output.describe()} outputs, and {reader} handles "
                              f"{', '.join(kinds)} outputs only")


def saved_output(path: str | Path) -> Any:
    """What the generator saved in ``path`` makes (its :class:`~condgan.outputs.OutputSpec`), read
    without building it: the file's ``output`` entry, else its config's (files without one: images)."""
    path = resolve_checkpoint(path)
    obj = read_safetensors(path) if path.suffix == SAFETENSORS_SUFFIX else read_file(path)
    if "output" in obj:
        return output_from_plain(obj["output"], path)
    return output_spec(gan_config_from_plain(obj["gan_config"], path))


def saved_data(source: str | Path) -> dict[str, Any] | None:
    """What a generator file or checkpoint records of its training data: the fingerprint (generator
    files; a checkpoint takes its run's ``generator.pt``), else the dataset's name (a checkpoint's
    data section), else None."""
    path = resolve_checkpoint(source)
    if path.suffix == SAFETENSORS_SUFFIX:
        return None
    obj = read_file(path)
    if isinstance(obj.get("data"), dict):
        return obj["data"]
    if obj.get("format") != CHECKPOINT_FORMAT:
        return None
    sibling = path.parent.parent / GENERATOR_FILE
    if sibling.is_file():
        record = read_file(sibling).get("data")
        if isinstance(record, dict):
            return record
    name = (obj.get("data_config") or {}).get("name")
    return {"name": name} if isinstance(name, str) else None


def load_generator(path: str | Path, *, device: torch.device | str = "cpu", outputs: tuple[str, ...] | None = None,
                   reader: str = "this reader") -> ConditionalGenerator:
    """The trained generator from a checkpoint, a run directory, a ``generator.pt`` or a generator
    ``.safetensors`` file (read without pickle), in eval mode.

    The model is rebuilt from the config stored in the file, with the EMA weights when the run
    kept an EMA. ``generator.config`` is that :class:`GANConfig` (``pixel_range`` says how to map
    samples to [0, 1]) and ``generator.output`` what it makes. ``outputs`` (e.g. ``("image",)``):
    the output kinds the caller (``reader``, for the message) handles; another is refused before
    the generator is built.

    Raises:
        CheckpointError: the file is missing, unreadable or not a condgan file, its output spec does
            not match its config, or its output kind is not one of ``outputs``.
        UnknownComponentError: the model needs a component that no installed plugin provides.

    Example:
        >>> G = condgan.load_generator("runs/a")
        >>> images = G.sample(torch.arange(10))  # (10, 1, 32, 32), in G.config.pixel_range
    """
    path = resolve_checkpoint(path)
    obj = read_safetensors(path) if path.suffix == SAFETENSORS_SUFFIX else read_file(path)
    config = gan_config_from_plain(obj["gan_config"], path)
    try:
        output = output_spec(config)
        if "output" in obj and output_from_plain(obj["output"], path) != output:
            raise CheckpointError(f"{path} is damaged: its output spec {obj['output']} does not match its model config "
                                  f"({output.describe()})")
    except UnknownComponentError as exc:
        raise UnknownComponentError(f"cannot read the generator saved in {path}: {exc}. "
                                    "Install or register the plugin that provides its output kind.") from None
    except ValueError as exc:
        raise CheckpointError(f"{path}: its output spec is unusable: {checks.first_line(exc)}") from None
    if outputs is not None:
        check_output_kind(output, outputs, reader, path)
    try:
        checks.check_model_size(lambda: build_generator(config), "generator", path)  # before allocating it
        generator = build_generator(config)
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: its model config builds no generator: {checks.first_line(exc)}") from None
    except UnknownComponentError as exc:
        raise UnknownComponentError(f"cannot rebuild the generator saved in {path}: {exc}. "
                                    "Install or register the plugin that provides it.") from None
    ema = obj["format"] == CHECKPOINT_FORMAT and obj.get("ema") is not None
    state = obj["ema"] if ema else obj["generator"]
    checks.check_state_dict(generator, state, "EMA generator" if ema else "generator", path)
    generator.load_state_dict(state)
    generator.config = config
    return generator.requires_grad_(False).to(device).eval()
