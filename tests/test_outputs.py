"""The output as a component (issue 23, item 1): output specs, the config field, backbones that say
what they make, the spec in checkpoints, and readers that refuse a kind they cannot handle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch
from sampling_helpers import cli

import condgan
from condgan import checkpoint as ckpt
from condgan.backbones import MLP
from condgan.config import GANConfig, NetworkConfig
from condgan.outputs import (
    ImageOutput,
    OutputSpec,
    OutputSpecError,
    VectorOutput,
    as_output,
)
from condgan.resolve import output_from_plain, output_spec


def vector_config(dim: int = 3, backbone: str = "mlp", **fields) -> GANConfig:
    net = NetworkConfig(conditioner="onehot", backbone=backbone, backbone_options={"widths": (8,)} if backbone == "mlp" else {})
    return GANConfig(condition_kind="class", num_classes=2, image_shape=None, output_kind="vector", output_dim=dim,
                     latent_dim=4, generator=net, discriminator=NetworkConfig(conditioner="onehot", backbone="mlp",
                                                                              backbone_options={"widths": (8,)}), **fields)


# -- specs ----------------------------------------------------------------------------------------------
def test_specs_round_trip_through_plain_data_and_the_registry():
    for spec in (ImageOutput(3, 8, 16), VectorOutput(5)):
        plain = spec.to_dict()
        assert plain["kind"] == spec.name and all(isinstance(v, (str, int)) for v in plain.values())
        assert output_from_plain(plain) == spec
    assert VectorOutput(5).shape == (5,) and ImageOutput(3, 8, 16).shape == (3, 8, 16)
    assert as_output((1, 4, 4)) == ImageOutput(1, 4, 4) and as_output((7,)) == VectorOutput(7)
    [info] = [i for i in condgan.list_components("output") if i.name == "vector"]
    assert info.obj is VectorOutput and info.plugin == "condgan.outputs"
    with pytest.raises(OutputSpecError, match="has no field 'depth'"):
        VectorOutput.from_dict({"kind": "vector", "dim": 2, "depth": 1})
    with pytest.raises(condgan.UnknownComponentError, match="unknown output .blob.; available: image, table, vector"):
        output_from_plain({"kind": "blob"})
    with pytest.raises(OutputSpecError, match=r"shape \(B, 5\), got \(2, 4\)"):
        VectorOutput(5).check(torch.zeros(2, 4))


def test_a_config_without_the_field_is_an_image_model_and_vector_fields_are_checked():
    old = GANConfig().to_dict()
    del old["output_kind"], old["output_dim"]
    config = GANConfig.from_dict(old)
    assert output_spec(config) == ImageOutput(1, 32, 32)
    assert output_spec(vector_config(6)) == VectorOutput(6)
    with pytest.raises(ValueError, match=r"image_shape \(1, 32, 32\) is for image outputs.*set image_shape to None"):
        GANConfig(output_kind="vector", output_dim=4)
    with pytest.raises(ValueError, match="output_dim \\(4\\) is for vector outputs"):
        GANConfig(output_dim=4)
    with pytest.raises(ValueError, match="leaves output_dim to the dataset"):
        GANConfig(image_shape=None, output_kind="vector").spec  # noqa: B018


# -- backbones --------------------------------------------------------------------------------------------
def test_a_backbone_says_what_it_makes_and_a_mismatch_is_one_line_at_build_time():
    assert MLP.outputs == ("image", "vector", "table") and condgan.get_component("backbone", "dcgan").outputs == ("image",)
    with pytest.raises(ValueError) as info:
        condgan.GAN(vector_config(4, backbone="dcgan"))
    message = str(info.value)
    assert "\n" not in message
    assert message == ("the generator's backbone 'dcgan' makes image outputs only, and this model's output is vector (4,): "
                       "choose a backbone for vectors (ctgan_residual, mlp, resmlp)")


@pytest.mark.parametrize("backbone", ["mlp", "resmlp"])
def test_a_vector_gan_builds_trains_a_step_and_samples_vectors(backbone):
    gan = condgan.GAN(vector_config(3, backbone=backbone))
    assert gan.output == VectorOutput(3) and gan.discriminator.output == VectorOutput(3)
    real, y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    before = [p.clone() for p in gan.generator.parameters()]
    losses = condgan.train_step(gan, real, y, *gan.optimizers())
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, gan.generator.parameters()))
    assert gan.generator.sample(torch.tensor([0, 1, 1])).shape == (3, 3)
    with pytest.raises(ValueError, match=r"shape \(B, 3\), got \(6, 4\)"):
        condgan.train_step(gan, torch.randn(6, 4), y, *gan.optimizers())


# -- checkpoints and their readers ---------------------------------------------------------------------
def test_the_generator_file_stores_the_output_spec_and_a_file_of_the_current_format_loads_as_images(tmp_path):
    gan = condgan.GAN(vector_config(3))
    content = ckpt.generator_file(gan.config, gan.generator.state_dict(), from_ema=False, step=0)
    assert content["output"] == {"kind": "vector", "dim": 3}
    ckpt.save_file(content, tmp_path / "v.pt")
    assert ckpt.load_generator(tmp_path / "v.pt").output == VectorOutput(3)

    image = condgan.build("mnist_mlp", overrides={"generator.backbone_options": {"widths": (8,)}, "latent_dim": 4})
    old = ckpt.generator_file(image.config, image.generator.state_dict(), from_ema=False, step=0)
    del old["output"], old["gan_config"]["output_kind"], old["gan_config"]["output_dim"]  # as written before output kinds
    ckpt.save_file(old, tmp_path / "old.pt")
    G = ckpt.load_generator(tmp_path / "old.pt")
    assert G.output == ImageOutput(1, 32, 32) and G.sample(torch.arange(2)).shape == (2, 1, 32, 32)

    bad = dict(content, output={"kind": "vector", "dim": 9})
    ckpt.save_file(bad, tmp_path / "bad.pt")
    with pytest.raises(ckpt.CheckpointError, match="its output spec .* does not match its model config"):
        ckpt.load_generator(tmp_path / "bad.pt")


@dataclass(frozen=True)
class PairOutput(OutputSpec):
    """A plugin output kind: two numbers."""

    name: ClassVar[str] = "pair"

    @property
    def shape(self):
        return (2,)

    def config_fields(self):
        return {"output_kind": "pair", "output_dim": None, "image_shape": None}

    @classmethod
    def from_config(cls, config):
        return cls()


class PairMLP(MLP):
    name = "pair_mlp"
    outputs = ("pair",)


class PairPlugin:
    @condgan.hookimpl
    def register_outputs(self):
        return [PairOutput]

    @condgan.hookimpl
    def register_backbones(self):
        return [PairMLP]


def test_a_plugin_output_kind_builds_and_the_readers_refuse_it_in_one_line(tmp_path):
    condgan.register_plugin(PairPlugin(), name="pairs")
    net = NetworkConfig(conditioner="onehot", backbone="pair_mlp", backbone_options={"widths": (8,)})
    gan = condgan.GAN(GANConfig(num_classes=2, image_shape=None, output_kind="pair", latent_dim=4, generator=net, discriminator=net))
    assert gan.generator.sample(torch.arange(2)).shape == (2, 2)
    ckpt.save_file(ckpt.generator_file(gan.config, gan.generator.state_dict(), from_ema=False, step=0), tmp_path / "p.pt")
    for argv, reader in [(["sample", tmp_path / "p.pt", "--per-class", 2, "--out", tmp_path / "s.npz"], "condgan sample"),
                         (["export", tmp_path / "p.pt", "--format", "torchscript", "--out", tmp_path / "p.ts"], "condgan export"),
                         (["eval", tmp_path / "p.pt", "--classifier", tmp_path / "none.pt"], "condgan eval with a judge")]:
        code, _, err = cli(argv)
        assert code != 0
        [line] = err.strip().splitlines()
        assert f"holds a generator of pair (2,) outputs, and {reader}" in line and "outputs only" in line
    assert not (tmp_path / "s.npz").exists()
    condgan.unregister_plugin("pairs")
    with pytest.raises(condgan.UnknownComponentError, match="Install or register the plugin that provides its output kind"):
        ckpt.load_generator(tmp_path / "p.pt")
