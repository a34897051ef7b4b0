"""Relativistic losses (ralsgan, rahinge): their formulas, and a step that feeds G's loss the real scores.

A loss with ``needs_real_scores_for_generator`` gets D's scores on the real batch in G's update (one
more D forward, no D weight gradients); every other loss pays nothing. The fast step, the compiled
step and the CUDA graph must train exactly as a plain eager step written from the formulas.
"""

from __future__ import annotations

import copy

import pytest
import torch
from test_fast_path import assert_same_state, batches, float64, needs_cuda, small_gan  # noqa: F401 (float64: a fixture)
from throughput import record_matmuls
from torch import nn

import condgan
from condgan.losses import Loss, RelativisticAverageHingeLoss, RelativisticAverageLSGANLoss
from condgan.training.step import FastStep, train_step
from condgan.training.optim import fast_optimizer_options

RELATIVISTIC = ("ralsgan", "rahinge")

# fixed scores (B, 1): real mean 1.0, fake mean -0.5
REAL = torch.tensor([[2.0], [0.5], [0.5]])
FAKE = torch.tensor([[-1.0], [0.0], [-0.5], [-0.5]])


def test_relativistic_losses_are_registered_and_ask_for_real_scores():
    assert condgan.get_component("loss", "ralsgan") is RelativisticAverageLSGANLoss
    assert condgan.get_component("loss", "rahinge") is RelativisticAverageHingeLoss
    for name in RELATIVISTIC:
        assert condgan.get_component("loss", name).needs_real_scores_for_generator is True
    for name in ("lsgan", "bce", "hinge", "wgan_gp"):
        assert condgan.get_component("loss", name).needs_real_scores_for_generator is False
    assert Loss.needs_real_scores_for_generator is False


def test_ralsgan_values_match_hand_computed_formulas():
    # relative scores: real - mean(fake) = [2.5, 1, 1]; fake - mean(real) = [-2, -1, -1.5, -1.5]
    loss = RelativisticAverageLSGANLoss()
    d_real = ((2.5 - 1) ** 2 + 0 + 0) / 3  # E[(rel_real - 1)^2] = 0.75
    d_fake = ((-2 + 1) ** 2 + 0 + 0.25 + 0.25) / 4  # E[(rel_fake + 1)^2] = 0.375
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx((d_real + d_fake) / 2)
    g_real = ((2.5 + 1) ** 2 + 4 + 4) / 3  # E[(rel_real + 1)^2]
    g_fake = (9 + 4 + 6.25 + 6.25) / 4  # E[(rel_fake - 1)^2]
    assert loss.generator_loss(FAKE, REAL).item() == pytest.approx((g_real + g_fake) / 2)


def test_rahinge_values_match_hand_computed_formulas():
    loss = RelativisticAverageHingeLoss()
    d_real = (0 + 0 + 0) / 3  # E[relu(1 - rel_real)]: every real score beats the fakes' mean by >= 1
    d_fake = (0 + 0 + 0 + 0) / 4  # E[relu(1 + rel_fake)] with rel_fake <= -1
    assert loss.discriminator_loss(REAL, FAKE).item() == pytest.approx((d_real + d_fake) / 2)
    g_real = (3.5 + 2 + 2) / 3  # E[relu(1 + rel_real)]
    g_fake = (3 + 2 + 2.5 + 2.5) / 4  # E[relu(1 - rel_fake)]
    assert loss.generator_loss(FAKE, REAL).item() == pytest.approx((g_real + g_fake) / 2)
    # a margin that is not met: real scores barely above the fakes'
    close_real, close_fake = torch.tensor([[0.25], [0.75]]), torch.tensor([[0.0], [0.5]])  # rel_real [0, .5], rel_fake [-.5, 0]
    expected = ((1.0 + 0.5) / 2 + (0.5 + 1.0) / 2) / 2
    assert loss.discriminator_loss(close_real, close_fake).item() == pytest.approx(expected)


def test_relativistic_generator_loss_depends_on_real_scores_and_needs_them():
    for name in RELATIVISTIC:
        loss = condgan.get_component("loss", name)()
        assert loss.generator_loss(FAKE, REAL).item() != pytest.approx(loss.generator_loss(FAKE, REAL + 1).item())
        with pytest.raises(ValueError, match=f"the {name} loss needs D's scores on the real batch"):
            loss.generator_loss(FAKE)


def _generator_gradient(loss: str, real: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """G's gradient in one train_step from fixed weights and seeds (D's update does not touch it)."""
    torch.manual_seed(0)
    gan = small_gan(loss=loss)
    with torch.no_grad():  # scores of several units, so that some of rahinge's margins are met and others not
        gan.discriminator.backbone.out.weight.mul_(50)
    opt_g, opt_d = gan.optimizers()
    torch.manual_seed(1)
    train_step(gan, real, y, opt_g, opt_d)
    return [p.grad.clone() for p in gan.generator.parameters()]


@pytest.mark.parametrize("loss", [*RELATIVISTIC, "lsgan"])
def test_generator_update_uses_the_real_scores_only_for_relativistic_losses(loss):
    (real, y), = batches(1)
    other = torch.flip(real, dims=(0,))  # other real images, same labels
    other_y = y.clone()
    a, b = _generator_gradient(loss, real, y), _generator_gradient(loss, other, other_y)
    differ = max((ga - gb).abs().max().item() for ga, gb in zip(a, b))
    if loss in RELATIVISTIC:
        assert differ > 1e-6  # G's update saw the real batch
    else:
        assert differ == 0  # the control: an ordinary G loss never sees it


def _count_d_forwards(gan: condgan.GAN) -> list[int]:
    embedding = gan.discriminator.conditioner.embedding  # called once per D pass
    count = [0]
    embedding.register_forward_pre_hook(lambda module, args: count.__setitem__(0, count[0] + 1))
    return count


@pytest.mark.parametrize("loss,expected", [("lsgan", 3), ("bce", 3), ("hinge", 3), ("ralsgan", 4), ("rahinge", 4)])
def test_only_losses_that_ask_pay_an_extra_d_forward(loss, expected):
    gan = small_gan(loss=loss)
    opts = gan.optimizers(**fast_optimizer_options("cpu"))
    count = _count_d_forwards(gan)
    (real, y), = batches(1)
    FastStep(gan, *opts, joined_d_pass=False)(real, y)
    assert count[0] == expected  # D on the fakes (G's update), [D on the real batch (G's update)], D on real + fakes
    count[0] = 0
    FastStep(gan, *opts)(real, y)
    assert count[0] == expected - 1  # the default on the CPU: D's update judges real and fakes in one pass
    count[0] = 0
    train_step(gan, real, y, *opts)
    assert count[0] == expected


def test_relativistic_step_computes_no_d_weight_gradients_in_g_update():
    gan = small_gan(loss="ralsgan")
    opt_g, opt_d = gan.optimizers(**fast_optimizer_options("cpu"))
    (real, y), = batches(1)
    calls = record_matmuls(lambda: FastStep(gan, opt_g, opt_d, joined_d_pass=False)(real, y))
    # as for lsgan (tests/test_fast_path.py), plus D's 4 Linears forward only on the real batch in G's
    # update: no weight gradient (D frozen) and no input gradient (the real batch needs none)
    assert len(calls) == 5 * 3 + 4 * 2 + 4 * 1 + 2 * 4 * 3


def _relative(real_score, fake_score):
    return real_score - fake_score.mean(), fake_score - real_score.mean()


FORMULAS = {  # (D's loss, G's loss) from (rel_real, rel_fake), written out as in the docstrings
    "ralsgan": (lambda rr, rf: (((rr - 1) ** 2).mean() + ((rf + 1) ** 2).mean()) / 2,
                lambda rr, rf: (((rr + 1) ** 2).mean() + ((rf - 1) ** 2).mean()) / 2),
    "rahinge": (lambda rr, rf: (torch.relu(1 - rr).mean() + torch.relu(1 + rf).mean()) / 2,
                lambda rr, rf: (torch.relu(1 + rr).mean() + torch.relu(1 - rf).mean()) / 2),
}


def plain_relativistic_step(gan, real, y_real, opt_g, opt_d, loss):
    """The straightforward step from the formulas: standard Adam, no freezing, D run again on the real batch for G."""
    d_formula, g_formula = FORMULAS[loss]
    G, D = gan.generator, gan.discriminator
    z = torch.randn(real.shape[0], G.latent_dim, dtype=real.dtype)
    y_fake = torch.randint(0, gan.config.num_classes, (real.shape[0],))
    opt_g.zero_grad()
    fake = G(z, y_fake)
    fake_score = D(fake, y_fake)
    real_score = D(real, y_real).detach()
    g_loss = g_formula(*_relative(real_score, fake_score))
    g_loss.backward()
    opt_g.step()
    opt_d.zero_grad()
    real_score = D(real, y_real)
    fake_score = D(fake.detach(), y_fake)
    d_loss = d_formula(*_relative(real_score, fake_score))
    d_loss.backward()
    opt_d.step()
    return {"g_loss": g_loss.detach(), "d_loss": d_loss.detach()}


@pytest.mark.parametrize("loss", RELATIVISTIC)
def test_fast_step_matches_plain_step_from_the_formulas_float64(float64, loss):
    plain = small_gan(float64, loss=loss)
    fast = copy.deepcopy(plain)
    data = batches(4, dtype=float64)
    opt_plain, opt_fast = plain.optimizers(), fast.optimizers(**fast_optimizer_options("cpu"))
    torch.manual_seed(7)
    plain_losses = [plain_relativistic_step(plain, r, y, *opt_plain, loss) for r, y in data]
    torch.manual_seed(7)
    step = FastStep(fast, *opt_fast, dropout_draws="bernoulli", joined_d_pass=False)  # the plain step's draws
    fast_losses = [step(r, y) for r, y in data]
    # A relativistic loss does not change when every score moves by the same amount, so the gradient
    # of D's output bias is zero up to rounding, which Adam scales up to steps of about lr: that
    # parameter alone is compared loosely. Tolerances otherwise as in test_fast_path's float64 test.
    bias = "discriminator.backbone.out.bias"
    torch.testing.assert_close(plain.state_dict()[bias], fast.state_dict()[bias], rtol=0, atol=4 * 2e-4)
    with torch.no_grad():
        fast.state_dict()[bias].copy_(plain.state_dict()[bias])
    assert_same_state(plain, fast, rtol=1e-6, atol=1e-8)
    for lp, lf in zip(plain_losses, fast_losses):
        torch.testing.assert_close(lp["g_loss"], lf["g_loss"], rtol=1e-6, atol=0, check_dtype=False)
        torch.testing.assert_close(lp["d_loss"], lf["d_loss"], rtol=1e-6, atol=0, check_dtype=False)
    untouched = small_gan(float64, loss=loss)
    assert max((p - q).abs().max().item() for p, q in zip(plain.parameters(), untouched.parameters())) > 1e-4


def test_compiled_relativistic_step_matches_eager():
    eager = small_gan(loss="ralsgan")
    compiled = copy.deepcopy(eager)
    data = batches(3)
    opt_e = eager.optimizers(**fast_optimizer_options("cpu"))
    opt_c = compiled.optimizers(**fast_optimizer_options("cpu"))
    torch.manual_seed(5)
    step = FastStep(eager, *opt_e)
    for r, y in data:
        step(r, y)
    torch.manual_seed(5)
    step = FastStep(compiled, *opt_c, compile="default", compile_backend="aot_eager")
    for r, y in data:
        step(r, y)
    assert_same_state(eager, compiled, rtol=1e-4, atol=1e-5)


@needs_cuda
@pytest.mark.parametrize("loss", RELATIVISTIC)
def test_cuda_graph_relativistic_step_matches_eager(loss):
    torch.manual_seed(0)
    eager = small_gan(loss=loss).cuda()
    graphed = copy.deepcopy(eager)
    data = [(r.cuda(), y.cuda()) for r, y in batches(6)]
    opt_e = eager.optimizers(**fast_optimizer_options("cuda", cuda_graph=False))
    opt_c = graphed.optimizers(**fast_optimizer_options("cuda"))
    torch.manual_seed(11)
    step = FastStep(eager, *opt_e, cuda_graph=False)
    eager_losses = [step(r, y) for r, y in data]
    torch.manual_seed(11)
    step = FastStep(graphed, *opt_c, warmup_steps=2)
    graph_losses = [step(r, y) for r, y in data]
    assert step.captured
    assert_same_state(eager, graphed, rtol=1e-4, atol=1e-4)
    for le, lg in zip(eager_losses, graph_losses):
        torch.testing.assert_close(le["g_loss"], lg["g_loss"], rtol=1e-4, atol=1e-5)
