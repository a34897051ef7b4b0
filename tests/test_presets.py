"""The ``mnist_mlp`` preset: exactly the reference networks, and ``build`` with overrides.

The fidelity tests re-implement the reference networks literally (the widely used PyTorch cGAN,
see REFERENCE.md), load condgan's weights into them and compare outputs and a training step.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import condgan
from condgan.config import ConfigKeyError

N_CLASSES, LATENT_DIM, IMG_SHAPE = 10, 100, (1, 32, 32)


# -- the reference networks, written as the original script writes them (not through condgan); the
# benchmark's faithful reference loop holds them, so the test and the benchmark compare against one copy
_spec = importlib.util.spec_from_file_location(
    "reference_loop", Path(__file__).resolve().parents[1] / "benchmarks" / "reference_loop.py")
reference_loop = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference_loop)
RefGenerator, RefDiscriminator = reference_loop.Generator, reference_loop.Discriminator


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Load source's state into target, matching entries by order (names differ, structure must not)."""
    src, dst = source.state_dict(), target.state_dict()
    assert len(src) == len(dst)
    mapped = {}
    for (s_name, s_value), (d_name, d_value) in zip(src.items(), dst.items()):
        assert s_name.rsplit(".", 1)[-1] == d_name.rsplit(".", 1)[-1], (s_name, d_name)
        assert s_value.shape == d_value.shape, (s_name, d_name)
        mapped[d_name] = s_value.clone()
    target.load_state_dict(mapped)


def assert_same_state(ours: nn.Module, ref: nn.Module) -> None:
    for (name, a), (ref_name, b) in zip(ours.state_dict().items(), ref.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m: f"{name} vs {ref_name}: {m}")


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe(module: nn.Module) -> tuple:
    if isinstance(module, nn.Embedding):
        return ("Embedding", module.num_embeddings, module.embedding_dim)
    if isinstance(module, nn.Linear):
        return ("Linear", module.in_features, module.out_features)
    if isinstance(module, nn.BatchNorm1d):
        return ("BatchNorm1d", module.num_features, module.eps, module.momentum, module.affine)
    if isinstance(module, nn.LeakyReLU):
        return ("LeakyReLU", module.negative_slope)
    if isinstance(module, nn.Dropout):
        return ("Dropout", module.p)
    return (type(module).__name__,)


def layer_sequence(net) -> list[tuple]:
    """The network's layers in execution order: conditioner's embedding, backbone's layers and head."""
    cond, bb = net.conditioner, net.backbone
    modules = [cond.embedding] if hasattr(cond, "embedding") else []
    modules += [*bb.layers, bb.out, bb.out_activation]
    return [describe(m) for m in modules if not isinstance(m, nn.Identity)]


G_LAYERS = [
    ("Embedding", 10, 10),
    ("Linear", 110, 128), ("LeakyReLU", 0.2),
    ("Linear", 128, 256), ("BatchNorm1d", 256, 0.8, 0.1, True), ("LeakyReLU", 0.2),
    ("Linear", 256, 512), ("BatchNorm1d", 512, 0.8, 0.1, True), ("LeakyReLU", 0.2),
    ("Linear", 512, 1024), ("BatchNorm1d", 1024, 0.8, 0.1, True), ("LeakyReLU", 0.2),
    ("Linear", 1024, 1024), ("Tanh",),
]
D_LAYERS = [
    ("Embedding", 10, 10),
    ("Linear", 1034, 512), ("LeakyReLU", 0.2),
    ("Linear", 512, 512), ("Dropout", 0.4), ("LeakyReLU", 0.2),
    ("Linear", 512, 512), ("Dropout", 0.4), ("LeakyReLU", 0.2),
    ("Linear", 512, 1),
]


@pytest.fixture
def reference_pair():
    """condgan's mnist_mlp GAN and the literal reference networks holding the same weights."""
    gan = condgan.build("mnist_mlp")
    ref_g, ref_d = RefGenerator(), RefDiscriminator()
    copy_weights(gan.generator, ref_g)
    copy_weights(gan.discriminator, ref_d)
    return gan, ref_g, ref_d


# -- structure -----------------------------------------------------------------------------------
def test_parameter_counts():
    gan = condgan.build("mnist_mlp")
    assert count(gan.generator) == 1_757_412
    assert count(gan.discriminator) == 1_055_845
    # the literal reference has the same counts
    assert count(RefGenerator()) == 1_757_412 and count(RefDiscriminator()) == 1_055_845


def test_layer_sequence():
    gan = condgan.build("mnist_mlp")
    assert layer_sequence(gan.generator) == G_LAYERS
    assert layer_sequence(gan.discriminator) == D_LAYERS
    assert not any(isinstance(m, nn.Sigmoid) for m in gan.discriminator.modules())  # raw scores
    # the code goes first in G ([emb, z]) and last in D ([image, emb]), as in the reference
    assert gan.generator.conditioner.position == "first"
    assert gan.discriminator.conditioner.position == "last"


def test_training_settings():
    run = condgan.get_component("preset", "mnist_mlp").run_config()
    config = run.model
    assert (config.image_shape, config.latent_dim, config.num_classes, config.noise) == ((1, 32, 32), 100, 10, "normal")
    assert (run.training.batch_size, run.training.epochs, run.training.sample_every, config.loss) == (64, 200, 400, "lsgan")
    assert run.data.name == "mnist"
    gan = condgan.build("mnist_mlp")
    assert isinstance(gan.loss, condgan.LeastSquaresLoss)
    for opt, net in zip(gan.optimizers(), (gan.generator, gan.discriminator)):
        assert type(opt) is torch.optim.Adam
        [group] = opt.param_groups
        assert group["lr"] == 2e-4 and tuple(group["betas"]) == (0.5, 0.999)
        assert {id(p) for p in group["params"]} == {id(p) for p in net.parameters()}


# -- fidelity: same weights, same numbers ----------------------------------------------------------
def test_generator_matches_reference(reference_pair):
    gan, ref_g, _ = reference_pair
    G = gan.generator
    z, y = torch.randn(16, LATENT_DIM), torch.randint(0, N_CLASSES, (16,))
    for train in (True, False):
        G.train(train), ref_g.train(train)
        with torch.no_grad():
            ours, ref = G(z, y), ref_g(z, y)
        assert ours.shape == (16, *IMG_SHAPE)
        torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    assert_same_state(G, ref_g)  # BatchNorm running stats were updated identically in train mode
    G.train(), ref_g.train()
    torch.testing.assert_close(G.sample(y, z=z), ref_g.eval()(z, y), rtol=0, atol=0)  # sample() is eval mode
    assert G.training  # and puts the mode back


def test_discriminator_matches_reference(reference_pair):
    gan, _, ref_d = reference_pair
    D = gan.discriminator
    x, y = torch.rand(16, *IMG_SHAPE) * 2 - 1, torch.randint(0, N_CLASSES, (16,))
    D.eval(), ref_d.eval()
    with torch.no_grad():
        torch.testing.assert_close(D(x, y), ref_d(x, y), rtol=0, atol=0)
    D.train(), ref_d.train()
    with torch.no_grad():
        torch.manual_seed(3)
        ours = D(x, y)
        torch.manual_seed(3)
        ref = ref_d(x, y)
        torch.manual_seed(4)
        other = D(x, y)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)  # same dropout masks
    assert not torch.equal(ours, other)  # dropout is really on in train mode


def reference_step(ref_g, ref_d, opt_g, opt_d, real_imgs, labels):
    """One iteration of the reference training loop; noise and fake labels drawn as train_step draws them."""
    adversarial_loss = nn.MSELoss()
    batch_size = real_imgs.shape[0]
    valid = torch.ones(batch_size, 1)
    fake = torch.zeros(batch_size, 1)
    z = torch.randn(batch_size, LATENT_DIM)
    gen_labels = torch.randint(0, N_CLASSES, (batch_size,))

    opt_g.zero_grad()
    gen_imgs = ref_g(z, gen_labels)
    validity = ref_d(gen_imgs, gen_labels)
    g_loss = adversarial_loss(validity, valid)
    g_loss.backward()
    opt_g.step()

    opt_d.zero_grad()
    validity_real = ref_d(real_imgs, labels)
    d_real_loss = adversarial_loss(validity_real, valid)
    validity_fake = ref_d(gen_imgs.detach(), gen_labels)
    d_fake_loss = adversarial_loss(validity_fake, fake)
    d_loss = (d_real_loss + d_fake_loss) / 2
    d_loss.backward()
    opt_d.step()
    return g_loss.detach(), d_loss.detach()


def test_training_steps_match_reference(reference_pair):
    gan, ref_g, ref_d = reference_pair
    opt_g, opt_d = gan.optimizers()
    ref_opt_g = torch.optim.Adam(ref_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    ref_opt_d = torch.optim.Adam(ref_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gan.train(), ref_g.train(), ref_d.train()
    for step in range(2):  # the second step also checks Adam's state
        real = torch.rand(16, *IMG_SHAPE) * 2 - 1
        labels = torch.randint(0, N_CLASSES, (16,))
        torch.manual_seed(100 + step)  # the same z, fake labels and dropout masks on both sides
        ours = condgan.train_step(gan, real, labels, opt_g, opt_d)
        torch.manual_seed(100 + step)
        ref_g_loss, ref_d_loss = reference_step(ref_g, ref_d, ref_opt_g, ref_opt_d, real, labels)
        torch.testing.assert_close(ours["g_loss"], ref_g_loss, rtol=0, atol=0)
        torch.testing.assert_close(ours["d_loss"], ref_d_loss, rtol=0, atol=0)
        assert_same_state(gan.generator, ref_g)
        assert_same_state(gan.discriminator, ref_d)
    # and the weights did move
    assert not torch.equal(gan.generator.backbone.out.weight, condgan.build("mnist_mlp").generator.backbone.out.weight)


# -- build with other parts and overrides ----------------------------------------------------------
def test_build_with_onehot_and_bce_changes_both_networks():
    gan = condgan.build("mnist_mlp", conditioner="onehot", loss="bce")
    for net in (gan.generator, gan.discriminator):
        assert isinstance(net.conditioner, condgan.OneHotConditioner)
        assert not any(isinstance(m, nn.Embedding) for m in net.modules())
    assert isinstance(gan.loss, condgan.BCELoss)
    # the one-hot code has 10 features like the embedding, so only the embeddings' 100 weights go
    assert count(gan.generator) == 1_757_412 - 100
    assert count(gan.discriminator) == 1_055_845 - 100
    assert layer_sequence(gan.generator) == G_LAYERS[1:]
    assert layer_sequence(gan.discriminator) == D_LAYERS[1:]
    y = torch.arange(10)
    images = gan.generator.sample(y)
    assert images.shape == (10, *IMG_SHAPE) and images.abs().max() <= 1
    assert gan.discriminator(images, y).shape == (10, 1)


def test_build_with_dotted_overrides():
    gan = condgan.build(
        "mnist_mlp",
        latent_dim=16,
        num_classes=5,
        overrides={
            "generator.backbone_options.widths": (32, 64, 64, 128),
            "discriminator.backbone_options.dropout": 0.1,
            "discriminator.conditioner_options.embedding_dim": 3,
            "g_optimizer.lr": 1e-3,
            "image_shape": [1, 8, 8],
        },
    )
    assert gan.config.image_shape == (1, 8, 8)  # a list is stored as the field's tuple
    g_seq, d_seq = layer_sequence(gan.generator), layer_sequence(gan.discriminator)
    assert [s for s in g_seq if s[0] == "Linear"] == [("Linear", 26, 32), ("Linear", 32, 64), ("Linear", 64, 64), ("Linear", 64, 128), ("Linear", 128, 64)]
    assert g_seq[0] == ("Embedding", 5, 10)
    assert d_seq[0] == ("Embedding", 5, 3) and d_seq[1] == ("Linear", 67, 512)
    assert [s for s in d_seq if s[0] == "Dropout"] == [("Dropout", 0.1)] * 3
    opt_g, opt_d = gan.optimizers()
    assert opt_g.param_groups[0]["lr"] == 1e-3 and opt_d.param_groups[0]["lr"] == 2e-4
    assert gan.generator.sample(torch.arange(5)).shape == (5, 1, 8, 8)
    # the preset itself is untouched
    assert layer_sequence(condgan.build("mnist_mlp").generator) == G_LAYERS


def test_unknown_config_key_says_where_the_keys_are_in_one_short_line():
    with pytest.raises(ConfigKeyError) as info:
        condgan.build("mnist_mlp", overrides={"generator.widths": (8,)})
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'generator.widths'" in message and "'condgan config keys' lists every key" in message
    assert len(message) < 200 and "\n" not in message  # not the list of every key (issue 25: 1,461 characters)
    with pytest.raises(ConfigKeyError, match=r"'g_optimizer.lrr'; did you mean 'g_optimizer.lr'\?"):
        condgan.build("mnist_mlp", overrides={"g_optimizer.lrr": 1e-3})
    with pytest.raises(ConfigKeyError, match="'latent_dimension'"):
        condgan.build("mnist_mlp", latent_dimension=8)


def test_config_round_trip():
    config = condgan.build("mnist_mlp", conditioner="onehot", overrides={"latent_dim": 12}).config
    data = config.to_dict()
    assert data["generator"]["conditioner"] == "onehot" and data["latent_dim"] == 12
    assert condgan.GANConfig.from_dict(data) == config
    # through JSON (tuples become lists) it still builds the same networks
    restored = condgan.GANConfig.from_dict(json.loads(json.dumps(data)))
    assert restored.image_shape == config.image_shape
    rebuilt, original = condgan.build(restored), condgan.build(config)
    assert layer_sequence(rebuilt.generator) == layer_sequence(original.generator)
    assert layer_sequence(rebuilt.discriminator) == layer_sequence(original.discriminator)
    with pytest.raises(ConfigKeyError, match="'colour'"):
        condgan.GANConfig.from_dict({**data, "colour": "red"})


def test_a_whole_section_given_as_a_dict_becomes_that_section():
    gan = condgan.build("mnist_paper", overrides={"g_optimizer": {"name": "Adam", "lr": 1e-3}})
    assert gan.config.g_optimizer == condgan.OptimizerConfig("Adam", 1e-3)
    assert isinstance(gan.optimizers()[0], torch.optim.Adam)
    with pytest.raises(KeyError, match=r"in 'g_optimizer': unknown config key 'nme'"):
        condgan.build("mnist_paper", overrides={"g_optimizer": {"nme": "Adam"}})
