"""The modern conditioning methods, losses and backbones: each checked by hand and shown to learn.

Components: ``projection`` (Miyato & Koyama 2018), ``cbn`` (de Vries et al. 2017), ``acgan`` (Odena et
al. 2017), ``vector`` and multilabel tags, ``hinge`` and ``wgan_gp`` losses, the R1 option, spectral
norm, the ``dcgan`` backbone, and the ``mnist_dcgan_projection`` / ``mnist_acgan`` presets.

The learning tests train small GANs for a few seconds on synthetic data whose condition is easy to
read back from the samples; y reaches G or D only through the component under test, so a
component that dropped the condition would score at chance. Thresholds are tolerant: every seed
tried while writing them (0, 1, 2) scored well above.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import condgan
from condgan import ConditionSpec
from condgan.backbones import DCGAN, MLP, ClassMinibatchStd, upsamplings
from condgan.conditioners import ConditionalNorm
from condgan.layers import MinibatchStd, batch_independent
from condgan.losses import BCELoss, HingeLoss, LeastSquaresLoss, WassersteinGPLoss, gradient_penalty, r1_penalty

NUM_CLASSES = 4
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


# -- helpers --------------------------------------------------------------------------------------
def mlp_gan(g_conditioner: str, d_conditioner: str, loss: str = "lsgan", *, kind: str = "class", size: int = 8,
            g_options: dict | None = None, d_options: dict | None = None, loss_options: dict | None = None,
            lr: float = 1e-3) -> condgan.GAN:
    """A small MLP conditional GAN (two hidden layers of 64, batch norm in G) on (1, size, size) images."""
    adam = condgan.OptimizerConfig("Adam", lr, {"betas": (0.5, 0.999)})
    return condgan.build(condgan.GANConfig(
        condition_kind=kind,
        num_classes=NUM_CLASSES,
        image_shape=(1, size, size),
        latent_dim=4,
        generator=condgan.NetworkConfig(
            conditioner=g_conditioner, conditioner_options=dict(g_options or {}), backbone="mlp",
            backbone_options={"widths": (64, 64), "norm": "batch", "output_activation": "tanh"},
        ),
        discriminator=condgan.NetworkConfig(
            conditioner=d_conditioner, conditioner_options=dict(d_options or {}), backbone="mlp",
            backbone_options={"widths": (64, 64)},
        ),
        loss=loss,
        loss_options=dict(loss_options or {}),
        g_optimizer=adam,
        d_optimizer=adam,
    ))


def bar_templates(size: int = 8) -> torch.Tensor:
    """(4, 1, size, size) in [-1, 1]: class k lights the k-th quarter of the rows."""
    t = -torch.ones(NUM_CLASSES, 1, size, size)
    band = size // NUM_CLASSES
    for k in range(NUM_CLASSES):
        t[k, 0, k * band:(k + 1) * band, :] = 1
    return t


def train_on_templates(gan: condgan.GAN, templates: torch.Tensor, steps: int, batch_size: int = 64) -> dict:
    """Class-conditional training on noisy templates: label y -> templates[y] + noise."""
    opt_g, opt_d = gan.optimizers()
    losses = {}
    for _ in range(steps):
        y = torch.randint(0, NUM_CLASSES, (batch_size,))
        real = (templates[y] + 0.1 * torch.randn(batch_size, *templates.shape[1:])).clamp(-1, 1)
        losses = condgan.train_step(gan, real, y, opt_g, opt_d)
    return losses


def template_accuracy(gan: condgan.GAN, templates: torch.Tensor, per_class: int = 50) -> float:
    """How often a sample is nearest to its own label's template (chance: 1 / 4)."""
    labels = torch.arange(NUM_CLASSES).repeat(per_class)
    samples = gan.generator.sample(labels)
    nearest = torch.cdist(samples.flatten(1), templates.flatten(1)).argmin(1)
    return (nearest == labels).float().mean().item()


def assert_learns_labels(gan: condgan.GAN, steps: int, size: int = 8) -> None:
    templates = bar_templates(size)
    assert template_accuracy(gan, templates) < 0.5  # untrained: about chance
    losses = train_on_templates(gan, templates, steps)
    assert all(torch.isfinite(v) for v in losses.values())
    accuracy = template_accuracy(gan, templates)
    assert accuracy >= 0.7, f"samples match their label's template {accuracy:.0%} of the time (chance 25%)"


class LinearCritic(nn.Module):
    """D(x | y) = w . x (y ignored): its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x, y, *, check=True):
        return (x.flatten(1) * self.w).sum(1, keepdim=True)


def top_singular_value(layer: nn.Module) -> float:
    """The largest singular value of the layer's weight as spectral norm sees it: (out, in * k * k)."""
    w = layer.weight.detach()
    if isinstance(layer, nn.ConvTranspose2d):
        w = w.transpose(0, 1)
    return torch.linalg.matrix_norm(w.flatten(1), ord=2).item()


# -- the registry ---------------------------------------------------------------------------------
def test_new_components_are_registered():
    names = {(info.kind, info.name) for info in condgan.list_components()}
    for kind, name in [("conditioner", "projection"), ("conditioner", "cbn"), ("conditioner", "acgan"),
                       ("conditioner", "vector"), ("loss", "hinge"), ("loss", "wgan_gp"), ("backbone", "dcgan"),
                       ("preset", "mnist_dcgan_projection"), ("preset", "mnist_acgan")]:
        assert (kind, name) in names


@pytest.mark.parametrize("name, role", [("projection", "generator"), ("acgan", "generator"), ("cbn", "discriminator")])
def test_conditioners_refuse_the_other_network(name, role):
    with pytest.raises(ValueError, match=f"conditioner '{name}' can condition"):
        condgan.get_component("conditioner", name)(ConditionSpec("class", 3), role)


# -- projection -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["class", "multilabel", "vector"])
def test_projection_adds_the_inner_product_of_embedding_and_features(kind):
    spec = ConditionSpec(kind, dim=3) if kind == "vector" else ConditionSpec(kind, 3)
    D = condgan.ConditionalDiscriminator(spec, (1, 8, 8), conditioner="projection", backbone="mlp",
                                         backbone_options={"widths": (16, 12)})
    x = torch.randn(5, 1, 8, 8)
    y = {"class": torch.tensor([0, 1, 2, 1, 0]), "multilabel": (torch.rand(5, 3) < 0.5).float(), "vector": torch.randn(5, 3)}[kind]
    h = D.backbone.features(x.flatten(1), y)  # the conditioner joins nothing: D sees the image alone
    plain = D.backbone.head(h)
    w = D.conditioner.embed.weight  # class: (3, 12) table; otherwise a Linear's (12, 3)
    embedding = w[y] if kind == "class" else y @ w.T  # a multi-hot y sums its tags' rows
    expected = plain + (embedding * h).sum(1, keepdim=True)
    torch.testing.assert_close(D(x, y), expected)
    assert D.judge(x, y)[1] is None


def test_projection_with_spectral_norm_normalises_its_embedding():
    D = condgan.ConditionalDiscriminator(ConditionSpec("class", 10), (1, 8, 8), conditioner="projection",
                                         conditioner_options={"spectral_norm": True}, backbone_options={"widths": (16,)})
    for _ in range(30):
        D(torch.randn(4, 1, 8, 8), torch.arange(4))
    assert top_singular_value(D.conditioner.embed) == pytest.approx(1.0, abs=0.02)


def test_projection_discriminator_teaches_the_labels():
    torch.manual_seed(0)
    # y reaches D only through the projection; G needs D's label signal to follow its label
    assert_learns_labels(mlp_gan("embedding", "projection", "hinge"), steps=500)


# -- conditional batch norm -----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(6, 5), (6, 5, 3, 4)], ids=["1d", "2d"])
def test_cbn_is_batch_norm_without_affine_then_a_per_class_gain_and_bias(shape):
    spec = ConditionSpec("class", 3)
    layer = ConditionalNorm(5, spec, norm="batch", eps=1e-3, momentum=0.2)
    torch.testing.assert_close(layer.gain.weight, torch.ones(3, 5))  # starts as plain BN
    torch.testing.assert_close(layer.bias.weight, torch.zeros(3, 5))
    with torch.no_grad():
        layer.gain.weight.normal_()
        layer.bias.weight.normal_()
    reference = nn.BatchNorm2d(5, eps=1e-3, momentum=0.2, affine=False) if len(shape) == 4 else \
        nn.BatchNorm1d(5, eps=1e-3, momentum=0.2, affine=False)
    y = torch.tensor([0, 2, 1, 1, 0, 2])
    expand = (slice(None), slice(None)) + (None,) * (len(shape) - 2)
    for training in (True, False):
        layer.train(training), reference.train(training)
        h = torch.randn(shape) * 3 + 1
        expected = reference(h) * layer.gain.weight[y][expand] + layer.bias.weight[y][expand]
        torch.testing.assert_close(layer(h, y), expected)
        torch.testing.assert_close(layer.running_mean, reference.running_mean)
        torch.testing.assert_close(layer.running_var, reference.running_var)


@pytest.mark.parametrize("kind", ["multilabel", "vector"])
def test_cbn_for_tags_and_vectors_is_one_plus_a_linear_gain(kind):
    spec = ConditionSpec(kind, dim=3) if kind == "vector" else ConditionSpec(kind, 3)
    layer = ConditionalNorm(4, spec, norm="layer")
    y = torch.rand(5, 3).round() if kind == "multilabel" else torch.randn(5, 3)
    h = torch.randn(5, 4, 2, 2)
    torch.testing.assert_close(layer(h, y), F.layer_norm(h, (4, 2, 2), eps=1e-5))  # gain 1, bias 0 at first
    with torch.no_grad():
        layer.gain.weight.normal_()
        layer.bias.weight.normal_()
    gain, bias = 1 + y @ layer.gain.weight.T, y @ layer.bias.weight.T  # (5, 4)
    expected = F.layer_norm(h, (4, 2, 2), eps=1e-5) * gain[:, :, None, None] + bias[:, :, None, None]
    torch.testing.assert_close(layer(h, y), expected)


@pytest.mark.parametrize("kind", ["class", "vector"])
def test_cbn_with_an_embedding_maps_it_to_gains_and_biases(kind):
    spec = ConditionSpec(kind, dim=3) if kind == "vector" else ConditionSpec(kind, 3)
    layer = ConditionalNorm(4, spec, embedding_dim=6).eval()
    y = torch.tensor([2, 0, 1]) if kind == "class" else torch.randn(3, 3)
    h = torch.randn(3, 4, 5, 5)
    plain = F.batch_norm(h, torch.zeros(4), torch.ones(4), training=False, eps=1e-5)
    torch.testing.assert_close(layer(h, y), plain)  # gain 1, bias 0 at first, for every condition
    with torch.no_grad():
        layer.gain.weight.normal_()
        layer.bias.weight.normal_()
    code = layer.embed.weight[y] if kind == "class" else y @ layer.embed.weight.T  # (3, 6)
    gain, bias = 1 + code @ layer.gain.weight.T, code @ layer.bias.weight.T  # (3, 4)
    torch.testing.assert_close(layer(h, y), plain * gain[:, :, None, None] + bias[:, :, None, None])
    with pytest.raises(ValueError, match="cbn embedding_dim must be None or an int >= 1, got 0"):
        condgan.get_component("conditioner", "cbn")(spec, "generator", embedding_dim=0)


@pytest.mark.parametrize("backbone", ["mlp", "dcgan"])
def test_cbn_replaces_every_norm_layer_of_the_generator(backbone):
    options = {"widths": (16, 16), "norm": "batch"} if backbone == "mlp" else {"width": 8}
    G = condgan.ConditionalGenerator(ConditionSpec("class", 3), (1, 16, 16), 4, conditioner="cbn",
                                     backbone=backbone, backbone_options=options)
    norms = [m for m in G.backbone.modules() if isinstance(m, ConditionalNorm)]
    assert len(norms) == G.conditioner.norm_layers == 2
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in G.modules())
    assert G.conditioner.input_features == 0 and G.backbone.in_shape == (4,)  # nothing joined to z
    G.eval()  # running stats: the samples differ by their label only through gain and bias
    with torch.no_grad():
        for norm in norms:
            norm.gain.weight.normal_()
    z = torch.randn(3, 4)
    assert not torch.allclose(G(z, torch.tensor([0, 0, 0])), G(z, torch.tensor([1, 1, 1])))


def test_cbn_refuses_a_backbone_without_norm_layers():
    with pytest.raises(ValueError, match="conditioner 'cbn'.*has none.*norm='batch'"):
        condgan.ConditionalGenerator(ConditionSpec("class", 3), (1, 8, 8), 4, conditioner="cbn",
                                     backbone_options={"widths": (16,), "norm": None})


def test_cbn_refuses_an_unknown_norm():
    with pytest.raises(ValueError, match="conditional norm 'instance' is not supported; available: batch, layer"):
        ConditionalNorm(4, ConditionSpec("class", 3), norm="instance")


def test_cbn_generator_follows_its_labels():
    torch.manual_seed(0)
    # y reaches G only through the gains and biases of its two batch-norm layers
    assert_learns_labels(mlp_gan("cbn", "onehot", "lsgan"), steps=500)


# -- auxiliary classifier (ACGAN) -----------------------------------------------------------------
def test_acgan_auxiliary_loss_is_weighted_cross_entropy():
    D = condgan.ConditionalDiscriminator(ConditionSpec("class", 3), (1, 8, 8), conditioner="acgan",
                                         conditioner_options={"weight": 0.5}, backbone_options={"widths": (16,)})
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 2, 1, 0])
    score, aux = D.judge(x, y)
    h = D.backbone.features(x.flatten(1), y)
    torch.testing.assert_close(score, D.backbone.head(h))  # the score does not see y
    logits = h @ D.conditioner.classifier.weight.T + D.conditioner.classifier.bias
    expected = -0.5 * torch.log_softmax(logits, 1)[torch.arange(6), y].mean()
    torch.testing.assert_close(aux, expected)


def test_acgan_with_tags_uses_binary_cross_entropy_per_tag():
    D = condgan.ConditionalDiscriminator(ConditionSpec("multilabel", 3), (1, 8, 8), conditioner="acgan",
                                         backbone_options={"widths": (16,)})
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([[1.0, 0, 1], [0, 0, 0], [1, 1, 1], [0, 1, 0]])
    _, aux = D.judge(x, y)
    p = torch.sigmoid(D.conditioner.logits(D.backbone.features(x.flatten(1), y)))
    torch.testing.assert_close(aux, -(y * p.log() + (1 - y) * (1 - p).log()).mean())


def test_acgan_refuses_a_bad_weight():
    with pytest.raises(ValueError, match="acgan weight must be a number > 0, got -1"):
        condgan.get_component("conditioner", "acgan")(ConditionSpec("class", 3), "discriminator", weight=-1)


def test_acgan_classifier_teaches_the_labels():
    torch.manual_seed(0)
    # D's score ignores y: G learns its label from the classification loss alone
    assert_learns_labels(mlp_gan("onehot", "acgan", "bce"), steps=400)


def projection_ac_discriminator(weight: float = 0.5) -> condgan.ConditionalDiscriminator:
    return condgan.ConditionalDiscriminator(ConditionSpec("class", 3), (1, 8, 8), conditioner="projection_ac",
                                            conditioner_options={"weight": weight}, backbone_options={"widths": (16,)})


def test_projection_ac_scores_as_projection_and_classifies_as_acgan():
    D = projection_ac_discriminator(0.5)
    x, y = torch.randn(6, 1, 8, 8), torch.tensor([0, 1, 2, 2, 1, 0])
    score, aux = D.judge(x, y)
    h = D.backbone.features(x.flatten(1), y)
    torch.testing.assert_close(score, D.backbone.head(h) + (D.conditioner.embed(y) * h).sum(1, keepdim=True))
    expected = -0.5 * torch.log_softmax(D.conditioner.logits(h), 1)[torch.arange(6), y].mean()
    torch.testing.assert_close(aux, expected)


def test_projection_ac_classifier_learns_from_real_batches_only():
    """In D's update the classifier's gradient is that of its loss on the real batch: the fakes add nothing."""
    from condgan.training.step import _Forwards

    torch.manual_seed(0)
    gan = mlp_gan("onehot", "projection_ac", "hinge", d_options={"weight": 0.5})
    D = gan.discriminator
    real, fake = torch.randn(8, 1, 8, 8), torch.randn(8, 1, 8, 8)
    y_real, y_fake = torch.randint(0, NUM_CLASSES, (8,)), torch.randint(0, NUM_CLASSES, (8,))
    _Forwards(gan).discriminator_pass(real, y_real, fake, y_fake).backward()
    got = D.conditioner.classifier.weight.grad.clone()
    D.zero_grad()
    D.judge(real, y_real)[1].backward()
    torch.testing.assert_close(got, D.conditioner.classifier.weight.grad)
    D.zero_grad()  # the same D as ACGAN would classify the fakes too: a different gradient
    (D.judge(real, y_real)[1] + D.judge(fake, y_fake)[1]).backward()
    assert not torch.allclose(got, D.conditioner.classifier.weight.grad)


def test_projection_ac_refuses_a_bad_weight():
    with pytest.raises(ValueError, match="projection_ac weight must be a number > 0, got 0"):
        condgan.get_component("conditioner", "projection_ac")(ConditionSpec("class", 3), "discriminator", weight=0)


def test_projection_ac_teaches_the_labels():
    torch.manual_seed(0)
    # y reaches G only through the embedding of its input, D through the projection and the classifier
    assert_learns_labels(mlp_gan("onehot", "projection_ac", "hinge"), steps=400)


# -- multilabel tags ------------------------------------------------------------------------------
def tag_images(tags: torch.Tensor, size: int = 8) -> torch.Tensor:
    """Images in [-1, 1] that light the bar of each tag present: (B, 1, size, size)."""
    bars = (bar_templates(size) + 1) / 2  # (4, 1, S, S) in {0, 1}
    return torch.einsum("bk,kchw->bchw", tags, bars) * 2 - 1


def tags_shown(images: torch.Tensor) -> torch.Tensor:
    """Which bars an image lights: the mean of each bar's band above 0, (B, 4) in {0, 1}."""
    bands = images[:, 0].view(len(images), NUM_CLASSES, -1)  # (B, 4, band * S)
    return (bands.mean(2) > 0).float()


@pytest.mark.parametrize("conditioner", ["onehot", "vector"])
def test_multilabel_tags_control_which_bars_appear(conditioner):
    torch.manual_seed(0)
    gan = mlp_gan(conditioner, conditioner, "bce", kind="multilabel")
    opt_g, opt_d = gan.optimizers()
    for _ in range(500):
        tags = (torch.rand(64, NUM_CLASSES) < 0.5).float()
        real = (tag_images(tags) + 0.1 * torch.randn(64, 1, 8, 8)).clamp(-1, 1)
        condgan.train_step(gan, real, tags, opt_g, opt_d)
    tags = (torch.rand(400, NUM_CLASSES) < 0.5).float()
    shown = tags_shown(gan.generator.sample(tags))
    per_tag = (shown == tags).float().mean(0)  # chance: about 0.5
    assert per_tag.min() >= 0.75, f"tags shown correctly per tag: {per_tag.tolist()}"
    assert (shown == tags).all(1).float().mean() >= 0.5  # whole tag sets, chance 1/16


# -- vector conditions (examples/vector_condition.py) ---------------------------------------------
def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vector_conditioner_joins_a_learned_code():
    cond = condgan.get_component("conditioner", "vector")(ConditionSpec("vector", dim=3), "discriminator", features=5, activation=None)
    x, y = torch.randn(2, 4), torch.randn(2, 3)
    linear = cond.project[0]
    torch.testing.assert_close(cond.join(x, y), torch.cat([x, y @ linear.weight.T + linear.bias], 1))
    with pytest.raises(ValueError, match="features must be an int >= 1, got 0"):
        condgan.get_component("conditioner", "vector")(ConditionSpec("vector", dim=3), "generator", features=0)


def test_blob_example_measures_positions():
    example = load_example("vector_condition")
    y = torch.tensor([[-1.0, -1.0], [1.0, 0.0], [0.3, -0.6]])
    torch.testing.assert_close(example.blob_centres(example.blobs(y)), example.positions(y), atol=0.05, rtol=0)


def test_vector_condition_sets_the_blob_position():
    example = load_example("vector_condition")
    torch.manual_seed(0)
    gan = example.build_gan()
    before = example.evaluate(gan)
    example.train(gan, 300, seed=0)
    after = example.evaluate(gan)
    assert abs(before["correlation"]) < 0.3
    assert after["correlation"] >= 0.7, after
    assert after["error_px"] < 0.7 * after["baseline_px"], after


def test_vector_example_runs_as_a_script(capsys):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny model: one thread is fastest on busy cores
    result = subprocess.run([sys.executable, str(EXAMPLES / "vector_condition.py"), "--steps", "5"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "trained 5 steps" in result.stdout and "blob position vs condition: correlation" in result.stdout
    with pytest.raises(SystemExit) as exit_info:
        load_example("vector_condition").main(["--steps", "-1"])
    assert exit_info.value.code == 2 and "--steps must be >= 0, got -1" in capsys.readouterr().err


# -- losses ---------------------------------------------------------------------------------------
def test_hinge_and_wasserstein_values_by_hand():
    real, fake = torch.tensor([[2.0], [0.5], [-1.0]]), torch.tensor([[-2.0], [0.0], [1.5]])
    hinge = HingeLoss()
    # D: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5 + 2) / 3 + (0 + 1 + 2.5) / 3
    assert hinge.discriminator_loss(real, fake).item() == pytest.approx(2.5 / 3 + 3.5 / 3)
    assert hinge.generator_loss(fake).item() == pytest.approx(-(-0.5) / 3)
    wgan = WassersteinGPLoss()
    assert wgan.discriminator_loss(real, fake).item() == pytest.approx(-0.5 / 3 - 1.5 / 3)
    assert wgan.generator_loss(fake).item() == pytest.approx(0.5 / 3)


def test_bce_minimax_generator_objective():
    fake = torch.tensor([[-3.0], [0.0], [2.0]])
    minimax = BCELoss(generator_objective="minimax").generator_loss(fake)
    torch.testing.assert_close(minimax, torch.log(1 - torch.sigmoid(fake)).mean())  # log(1 - D(G(z)))
    torch.testing.assert_close(BCELoss().generator_loss(fake), -torch.log(torch.sigmoid(fake)).mean())
    # the minimax gradient vanishes where D rejects the fake confidently; the non-saturating one does not
    rejected = torch.tensor([[-8.0]], requires_grad=True)
    (g_minimax,) = torch.autograd.grad(BCELoss(generator_objective="minimax").generator_loss(rejected), rejected)
    (g_ns,) = torch.autograd.grad(BCELoss().generator_loss(rejected), rejected)
    assert abs(g_minimax.item()) < 1e-3 < 0.9 < abs(g_ns.item())
    with pytest.raises(ValueError, match="generator_objective must be one of .*'non_saturating', 'minimax'.*got 'max'"):
        BCELoss(generator_objective="max")


@pytest.mark.parametrize("bad", [{"gp_weight": -1.0}, {"r1_gamma": -0.5}, {"r1_gamma": "1"}])
def test_loss_options_are_validated(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        WassersteinGPLoss(**bad)


def test_gradient_penalty_and_r1_of_a_linear_critic_in_closed_form():
    torch.manual_seed(0)
    w = torch.randn(1 * 4 * 4) * 0.7
    critic = LinearCritic(w.view(-1))
    real, fake, y = torch.randn(6, 1, 4, 4), torch.randn(6, 1, 4, 4), torch.zeros(6, dtype=torch.long)
    norm = w.norm()
    # the input gradient is w at every interpolate: GP = (||w|| - 1)^2, whatever the random points
    gp = WassersteinGPLoss(gp_weight=10.0).penalty(critic, real, fake, y, y)
    torch.testing.assert_close(gp, 10.0 * (norm - 1) ** 2)
    gp.backward()  # the penalty trains D: d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w||
    torch.testing.assert_close(critic.w.grad, 20 * (norm - 1) * w / norm)
    critic.w.grad = None
    # R1 = gamma / 2 * ||w||^2, with any loss
    r1 = LeastSquaresLoss(r1_gamma=4.0).penalty(critic, real, fake, y, y)
    torch.testing.assert_close(r1, 2.0 * norm**2)
    r1.backward()
    torch.testing.assert_close(critic.w.grad, 4.0 * w)
    assert LeastSquaresLoss().penalty(critic, real, fake, y, y) is None  # off by default
    both = WassersteinGPLoss(gp_weight=1.0, r1_gamma=2.0).penalty(critic, real, fake, y, y)
    torch.testing.assert_close(both, (norm - 1) ** 2 + norm**2)


def finite_difference_gradient_norms(D, x: torch.Tensor, y: torch.Tensor, step: float = 1e-5) -> torch.Tensor:
    """||grad_x D(x_i | y_i)|| for each sample i, by central differences (float64): (B,)."""
    flat = x.flatten(1)
    grads = torch.zeros_like(flat)
    for j in range(flat.shape[1]):
        delta = torch.zeros_like(flat)
        delta[:, j] = step
        up = D((flat + delta).view_as(x), y, check=False)
        down = D((flat - delta).view_as(x), y, check=False)
        grads[:, j] = (up - down)[:, 0] / (2 * step)
    return grads.norm(dim=1)


@pytest.mark.parametrize("conditioner", ["projection", "embedding"])
def test_gradient_penalty_and_r1_match_finite_differences(conditioner):
    torch.manual_seed(0)
    D = condgan.ConditionalDiscriminator(ConditionSpec("class", 3), (1, 3, 3), conditioner=conditioner,
                                         backbone_options={"widths": (8, 8), "activation": "tanh"}).double().eval()
    real, y = torch.randn(5, 1, 3, 3, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])
    norms = finite_difference_gradient_norms(D, real, y)
    assert norms.std() > 0.01  # a nonlinear D: the norm varies from sample to sample
    # with fake == real every interpolate is the real point, whatever the random mixing weights
    torch.testing.assert_close(gradient_penalty(D, real, real.clone(), y), ((norms - 1) ** 2).mean())
    torch.testing.assert_close(r1_penalty(D, real, y), (norms**2).mean())


def test_gradient_penalty_uses_the_real_conditions_and_random_points_between():
    torch.manual_seed(0)
    seen = {}

    def D(x, y, *, check=True):  # records where it was asked; D(x) = 0.5 * sum(x) has gradient norm 0.5 * sqrt(n)
        seen["x"], seen["y"] = x.detach(), y
        return 0.5 * x.flatten(1).sum(1, keepdim=True)

    real, fake = torch.ones(200, 1, 2, 2), torch.zeros(200, 1, 2, 2)
    y_real, y_fake = torch.zeros(200, dtype=torch.long), torch.ones(200, dtype=torch.long)
    gp = gradient_penalty(D, real, fake, y_real)
    assert seen["y"] is y_real
    a = seen["x"][:, 0, 0, 0]  # x_hat = a * 1 + (1 - a) * 0
    assert torch.equal(seen["x"], a[:, None, None, None].expand(-1, 1, 2, 2))
    assert 0 <= a.min() and a.max() < 1 and a.std() > 0.2  # uniform points along each segment
    torch.testing.assert_close(gp, torch.tensor(0.0))  # ||grad|| = 0.5 * sqrt(4) = 1


def test_penalties_run_eagerly_inside_a_compiled_step():
    """torch.compile cannot differentiate twice; the penalty's D pass runs eagerly inside the compiled
    step (aot_eager backend: the same kernels, no C++ build) and trains as the eager step does."""
    from condgan.training.step import FastStep

    eager = mlp_gan("embedding", "projection", "wgan_gp", loss_options={"r1_gamma": 1.0})
    compiled = copy.deepcopy(eager)
    data = [(torch.rand(16, 1, 8, 8) * 2 - 1, torch.randint(0, NUM_CLASSES, (16,))) for _ in range(3)]
    for gan, options in ((eager, {}), (compiled, {"compile": "default", "compile_backend": "aot_eager"})):
        torch.manual_seed(5)
        step = FastStep(gan, *gan.optimizers(), **options)
        for real, y in data:
            losses = step(real, y)
        assert torch.isfinite(losses["d_loss"])
    # A bias just before batch norm has no effect, its gradient is rounding noise, which Adam scales
    # up to steps of about lr: it is left out. Every other weight agrees to float32 rounding, while
    # a wrong penalty gradient would move weights by about lr = 1e-3 per step.
    layers = eager.generator.backbone.layers
    noise_only = {f"generator.backbone.layers.{i}.bias" for i in range(len(layers) - 1)
                  if isinstance(layers[i + 1], nn.BatchNorm1d)}
    assert len(noise_only) == 2
    for (name, p), q in zip(eager.named_parameters(), compiled.parameters()):
        if name not in noise_only:
            torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")


def test_wgan_gp_trains_labels():
    torch.manual_seed(0)
    gan = mlp_gan("embedding", "embedding", "wgan_gp")
    assert_learns_labels(gan, steps=400)


def test_r1_with_bce_trains_labels():
    torch.manual_seed(0)
    assert_learns_labels(mlp_gan("embedding", "projection", "bce", loss_options={"r1_gamma": 1.0}), steps=400)


# -- spectral norm --------------------------------------------------------------------------------
def test_spectral_norm_option_bounds_every_layer_of_mlp_and_dcgan():
    torch.manual_seed(0)
    mlp = MLP((20,), (1,), widths=(32, 32), pieces=(1, 2), spectral_norm=True)
    dcgan_d = DCGAN((3, 16, 16), (1,), width=8, norm=None, spectral_norm=True)
    dcgan_g = DCGAN((10,), (3, 16, 16), width=8, spectral_norm=True)
    for net, x in [(mlp, torch.randn(8, 20)), (dcgan_d, torch.randn(8, 3, 16, 16)), (dcgan_g, torch.randn(8, 10))]:
        layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
        assert len(layers) >= 3
        for _ in range(50):  # one power iteration per training-mode forward
            net(x, None)
        for layer in layers:
            assert top_singular_value(layer) == pytest.approx(1.0, abs=0.02), layer
    plain = DCGAN((3, 16, 16), (1,), width=8)
    assert max(top_singular_value(m) for m in plain.modules() if isinstance(m, nn.Conv2d)) != pytest.approx(1.0, abs=0.05)


def test_spectral_norm_leaves_conditional_norm_layers_alone():
    G = condgan.ConditionalGenerator(ConditionSpec("vector", dim=3), (1, 8, 8), 4, conditioner="cbn",
                                     backbone_options={"widths": (16,), "norm": "batch", "spectral_norm": True})
    norm = next(m for m in G.modules() if isinstance(m, ConditionalNorm))
    assert not torch.nn.utils.parametrize.is_parametrized(norm.gain)
    assert torch.nn.utils.parametrize.is_parametrized(G.backbone.out)


# -- the dcgan backbone ---------------------------------------------------------------------------
@pytest.mark.parametrize("size, n, side", [(8, 1, 4), (16, 2, 4), (28, 2, 7), (32, 3, 4), (64, 4, 4)])
def test_upsamplings(size, n, side):
    assert upsamplings(size, size) == (n, side, side)


@pytest.mark.parametrize("size", [32, 64, 28])
@pytest.mark.parametrize("channels", [1, 3, 5])
def test_dcgan_shapes_both_roles(size, channels):
    G = condgan.ConditionalGenerator(ConditionSpec("class", 10), (channels, size, size), 16, conditioner="embedding",
                                     backbone="dcgan", backbone_options={"width": 4})
    D = condgan.ConditionalDiscriminator(ConditionSpec("class", 10), (channels, size, size), conditioner="embedding",
                                         backbone="dcgan", backbone_options={"width": 4})
    y = torch.arange(3)
    images = G(G.sample_noise(3), y)
    assert images.shape == (3, channels, size, size) and images.abs().max() <= 1  # tanh
    assert D.backbone.in_shape == (channels + 10, size, size)  # y joined as 10 broadcast channels
    assert D(images, y).shape == (3, 1)
    n, side, _ = upsamplings(size, size)
    assert D.backbone.feature_dim == 4 * 2 ** (n - 1) * side * side
    assert G.backbone.feature_dim == 4 * (size // 2) ** 2
    convs = [m for m in G.backbone.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(convs) == n and convs[0].in_channels == 4 * 2 ** (n - 1)


def test_dcgan_options_and_errors():
    d = DCGAN((2, 32, 32), (1,), width=8, norm="layer", activation="relu", init_std=None)
    assert any(isinstance(m, nn.GroupNorm) for m in d.modules()) and any(isinstance(m, nn.ReLU) for m in d.modules())
    g = DCGAN((10,), (1, 16, 16), width=8, output_activation="sigmoid")
    out = g(torch.randn(4, 10), None)
    assert 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="even height and width of at least 8.*got 6x6"):
        DCGAN((10,), (1, 6, 6))
    with pytest.raises(ValueError, match="unknown norm 'group'; available: None, batch, layer"):
        DCGAN((10,), (1, 16, 16), norm="group")
    with pytest.raises(ValueError, match="dcgan width must be an int >= 1, got 0"):
        DCGAN((10,), (1, 16, 16), width=0)
    with pytest.raises(ValueError, match="takes images \\(B, C, H, W\\), got input shape \\(10,\\)"):
        DCGAN((10,), (1,))


def test_minibatch_std_appends_each_groups_mean_standard_deviation():
    x = torch.randn(8, 3, 4, 4)
    out = MinibatchStd(4)(x)
    assert out.shape == (8, 4, 4, 4) and torch.equal(out[:, :3], x)
    for i in range(8):  # sample i's group: i, i + 2, i + 4, i + 6 (B / g = 2 groups)
        group = x[i % 2::2]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(out[i, 3], expected.expand(4, 4), atol=1e-6)
    six = MinibatchStd(4)(torch.randn(6, 3, 4, 4))[:, 3, 0, 0]  # 6 is not a multiple of 4: groups of 3
    assert torch.equal(six[0::2], six[0].expand(3)) and not torch.equal(six[0], six[1])
    assert torch.equal(MinibatchStd(4)(torch.randn(1, 3, 4, 4))[:, 3], torch.zeros(1, 4, 4))  # no group to compare
    same = MinibatchStd(4)(torch.randn(1, 3, 4, 4).expand(8, 3, 4, 4))[:, 3]
    assert same.max().item() < 1e-3  # identical samples: (almost) zero
    x.requires_grad_(True)
    MinibatchStd(4)(x)[:, 3].sum().backward()
    assert x.grad.abs().sum() > 0  # the statistic passes gradients back to every sample
    with pytest.raises(ValueError, match="minibatch_std group size must be an int >= 1, got 0"):
        MinibatchStd(0)


def test_dcgan_minibatch_std_option_is_a_discriminator_channel():
    d = DCGAN((3, 16, 16), (1,), width=8, norm=None, spectral_norm=True, minibatch_std=4)
    plain = DCGAN((3, 16, 16), (1,), width=8, norm=None, spectral_norm=True)
    assert d.feature_dim == plain.feature_dim + 4 * 4 and d(torch.randn(8, 3, 16, 16), None).shape == (8, 1)
    assert not batch_independent(MinibatchStd(4))  # so the step never judges real and fake in one batch with it
    with pytest.raises(ValueError, match="minibatch_std is a discriminator option"):
        DCGAN((10,), (3, 16, 16), width=8, minibatch_std=4)
    with pytest.raises(ValueError, match="dcgan minibatch_std must be a group size \\(an int >= 0\\) or 'class', got -1"):
        DCGAN((3, 16, 16), (1,), width=8, minibatch_std=-1)


@pytest.mark.parametrize("group_size", [0, 4])
def test_minibatch_std_lets_d_tell_a_collapsed_batch_from_a_varied_one(group_size):
    """Real batches: independent images; fake batches: one image repeated (the same marginal
    distribution, no variety). Only a D that sees the batch can learn to tell them apart."""
    torch.manual_seed(0)
    d = DCGAN((1, 8, 8), (1,), width=8, norm=None, minibatch_std=group_size)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)

    def batches(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, 1, 8, 8), torch.randn(1, 1, 8, 8).expand(n, 1, 8, 8)

    for _ in range(150):
        real, fake = batches()
        loss = F.softplus(-d(real, None)).mean() + F.softplus(d(fake, None)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        scores = [(d(real, None) > 0).float().mean() + (d(fake, None) < 0).float().mean() for real, fake in
                  (batches() for _ in range(20))]
    accuracy = torch.stack(scores).mean().item() / 2
    if group_size:
        assert accuracy > 0.9, f"D with minibatch std told collapsed from varied batches {accuracy:.0%} of the time"
    else:
        assert accuracy < 0.7, f"a batch-independent D cannot tell them apart, yet scored {accuracy:.0%}"


def test_class_minibatch_std_is_the_spread_within_each_class():
    h, y = torch.randn(8, 3, 2, 2), torch.tensor([0, 0, 1, 1, 1, 2, 3, 3])
    out = ClassMinibatchStd(4)(h, y)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], h)
    for k in range(4):
        members = h[y == k]
        expected = (members.var(0, unbiased=False) + 1e-8).sqrt().mean() if len(members) > 1 else torch.tensor(0.0)
        assert torch.allclose(out[y == k, 3], expected.expand(int((y == k).sum()), 2, 2), atol=1e-6)
    spec = ConditionSpec("class", num_classes=4)
    d = DCGAN((3, 16, 16), (1,), conditioner=condgan.get_component("conditioner", "projection")(spec, "discriminator"),
              width=8, norm=None, minibatch_std="class")
    assert isinstance(d.layers[-1], ClassMinibatchStd) and d(torch.randn(8, 3, 16, 16), y).shape == (8, 1)
    with pytest.raises(ValueError, match="minibatch_std='class' needs a class condition, got no conditioner"):
        DCGAN((3, 16, 16), (1,), width=8, minibatch_std="class")
    with pytest.raises(ValueError, match="or 'class', got 'batch'"):
        DCGAN((3, 16, 16), (1,), width=8, minibatch_std="batch")


def test_class_minibatch_std_lets_d_tell_one_image_per_class_from_varied_classes():
    """Fake batches: each class one image repeated, the classes mixed as in the real batches."""
    torch.manual_seed(0)
    layer = ClassMinibatchStd(4)
    d = nn.Linear(1, 1)  # a D that reads only the new channel
    opt = torch.optim.Adam(d.parameters(), lr=1e-2)
    y = torch.arange(32) % 4

    def batches() -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(32, 4, 4, 4), torch.randn(4, 4, 4, 4)[y]

    def score(h: torch.Tensor) -> torch.Tensor:
        return d(layer(h, y)[:, -1, 0, 0, None])  # (B, 1)

    for _ in range(100):
        real, fake = batches()
        loss = F.softplus(-score(real)).mean() + F.softplus(score(fake)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        right = [((score(r) > 0).float().mean() + (score(f) < 0).float().mean()) / 2 for r, f in (batches() for _ in range(10))]
    assert torch.stack(right).mean() > 0.95


def _packing_d(pac: int, num_classes: int = 4) -> condgan.models.ConditionalDiscriminator:
    return condgan.models.ConditionalDiscriminator(
        ConditionSpec("class", num_classes=num_classes), (1, 8, 8), conditioner="projection", backbone="dcgan",
        backbone_options={"width": 8, "norm": None, "pac": pac})


def test_dcgan_pac_judges_packs_of_one_class():
    torch.manual_seed(0)
    d = _packing_d(2)
    x, y = torch.randn(8, 1, 8, 8), torch.tensor([3, 0, 1, 0, 3, 1, 2, 2])
    score = d(x, y)
    assert score.shape == (4, 1) and d.pac == 2
    order = y.argsort(stable=True)  # classes 0 0 1 1 2 2 3 3: each pack holds one class
    h = d.backbone.features(x[order], y[order])
    assert h.shape == (4, d.backbone.feature_dim)
    assert torch.allclose(score, d.conditioner.output(h, d.backbone.head(h), y[order][::2]))
    # the batch handed over in class order already: the same packs, the same scores (D did the sorting above)
    again = d(x[[1, 3, 2, 5, 6, 7, 0, 4]], y[[1, 3, 2, 5, 6, 7, 0, 4]])
    assert torch.allclose(again, score, atol=1e-6)
    with pytest.raises(ValueError, match="pac=2 samples judges batches that are a multiple of 2, got a batch of 7"):
        d(x[:7], y[:7])
    with pytest.raises(ValueError, match="pac is a discriminator option"):
        DCGAN((10,), (1, 16, 16), width=8, pac=2)
    with pytest.raises(ValueError, match="pac > 1 packs samples of one class and needs a class condition, got no conditioner"):
        DCGAN((1, 8, 8), (1,), width=8, pac=2)
    with pytest.raises(ValueError, match="dcgan pac must be"):
        DCGAN((1, 8, 8), (1,), width=8, pac=0)


@pytest.mark.parametrize("pac", [1, 2])
def test_dcgan_pac_lets_d_tell_one_image_per_class_from_varied_ones(pac):
    """Fake batches: each class one image repeated, the classes shuffled as in the real batches.
    Only a D that sees two samples of a class at once can tell the two apart."""
    torch.manual_seed(0)
    d = _packing_d(pac)
    opt = torch.optim.Adam(d.parameters(), lr=1e-3)

    def batches() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 4, (32,))
        return torch.randn(32, 1, 8, 8), torch.randn(4, 1, 8, 8)[y], y

    for _ in range(150):
        real, fake, y = batches()
        loss = F.softplus(-d(real, y)).mean() + F.softplus(d(fake, y)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        right = [((d(r, y) > 0).float().mean() + (d(f, y) < 0).float().mean()) / 2 for r, f, y in (batches() for _ in range(20))]
    accuracy = torch.stack(right).mean().item()
    if pac > 1:
        assert accuracy > 0.9, f"a packing D told one image per class from varied ones {accuracy:.0%} of the time"
    else:
        assert accuracy < 0.7, f"a D that judges samples apart cannot tell them apart, yet scored {accuracy:.0%}"


def test_dcgan_projection_with_a_packing_d_learns_labels():
    """Packs of one class keep the projection's conditioning: G still follows its labels."""
    torch.manual_seed(0)
    config = condgan.apply_overrides(condgan.get_component("preset", "mnist_dcgan_projection").config(), {
        "num_classes": NUM_CLASSES, "image_shape": (1, 16, 16), "latent_dim": 8,
        "generator.backbone_options.width": 8, "discriminator.backbone_options.width": 8,
        "discriminator.backbone_options.pac": 2, "g_optimizer.lr": 1e-3, "d_optimizer.lr": 1e-3,
    })
    gan = condgan.build(config)
    assert gan.discriminator.pac == 2
    assert_learns_labels(gan, steps=250, size=16)


def test_dcgan_initialisation_is_dcgans():
    torch.manual_seed(0)
    g = DCGAN((100,), (1, 64, 64), width=16)
    weights = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, (nn.Linear, nn.ConvTranspose2d))])
    assert weights.std().item() == pytest.approx(0.02, rel=0.05)


def test_dcgan_with_projection_cbn_and_hinge_learns_labels():
    """The mnist_dcgan_projection recipe, small: conv G with cbn, SN conv D with projection, hinge."""
    torch.manual_seed(0)
    config = condgan.apply_overrides(condgan.get_component("preset", "mnist_dcgan_projection").config(), {
        "num_classes": NUM_CLASSES, "image_shape": (1, 16, 16), "latent_dim": 8,
        "generator.backbone_options.width": 8, "discriminator.backbone_options.width": 8,
        "g_optimizer.lr": 1e-3, "d_optimizer.lr": 1e-3,
    })
    assert_learns_labels(condgan.build(config), steps=250, size=16)


# -- presets --------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["mnist_dcgan_projection", "mnist_acgan"])
def test_modern_presets_build_and_step(preset):
    gan = condgan.build(preset)
    G, D = gan.generator, gan.discriminator
    assert isinstance(G.backbone, DCGAN) and isinstance(D.backbone, DCGAN)
    if preset == "mnist_dcgan_projection":
        assert (G.conditioner.name, D.conditioner.name, gan.loss.name) == ("cbn", "projection", "hinge")
        assert torch.nn.utils.parametrize.is_parametrized(D.backbone.out)
    else:
        assert (G.conditioner.name, D.conditioner.name, gan.loss.name) == ("onehot", "acgan", "bce")
    y = torch.arange(10)
    real = torch.rand(10, 1, 32, 32) * 2 - 1
    losses = condgan.train_step(gan, real, y, *gan.optimizers())
    assert all(torch.isfinite(v) for v in losses.values())
    assert G.sample(y).shape == (10, 1, 32, 32)


def test_penalties_and_cbn_under_bfloat16_autocast():
    torch.manual_seed(0)
    gan = condgan.build("mnist_dcgan_projection", loss="wgan_gp", loss_options={"r1_gamma": 1.0}, overrides={
        "image_shape": (1, 16, 16), "generator.backbone_options.width": 4, "discriminator.backbone_options.width": 4})
    losses = condgan.train_step(gan, torch.rand(8, 1, 16, 16) * 2 - 1, torch.arange(8), *gan.optimizers(),
                                autocast_dtype=torch.bfloat16)
    assert all(torch.isfinite(v) and v.dtype == torch.float32 for v in losses.values())
    assert all(torch.isfinite(p.grad).all() for p in gan.parameters() if p.grad is not None)
