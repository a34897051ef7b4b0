"""PacGAN packing as a discriminator option (issue 23, item 3): ``mlp``'s ``pac``, the WGAN-GP
penalty on packed inputs, and the multiple-of-pac check before the first step."""

from __future__ import annotations

import pytest
import torch
from sampling_helpers import cli
from test_tables import penguins

from condgan.backbones import MLP
from condgan.conditions import ConditionSpec
from condgan.losses import WassersteinGPLoss, gradient_penalty
from condgan.models import ConditionalDiscriminator


def packed_d(pac=4, dim=6):
    return ConditionalDiscriminator(ConditionSpec("class", 3), (dim,), conditioner="onehot", backbone="mlp",
                                    backbone_options={"widths": (16, 16), "dropout": 0.5, "pac": pac})


def test_a_packed_mlp_judges_groups_of_pac_rows_concatenated():
    d = packed_d(pac=4)
    assert d.pac == 4 and d.backbone.layers[0].in_features == 4 * (6 + 3)  # pac x (row + one-hot condition)
    x, y = torch.randn(12, 6), torch.randint(0, 3, (12,))
    assert d(x, y).shape == (3, 1)
    # a pack's score depends on its own rows only
    d.eval()
    x2 = x.clone()
    x2[4:8] += 1.0
    s1, s2 = d(x, y), d(x2, y)
    assert torch.equal(s1[[0, 2]], s2[[0, 2]]) and not torch.equal(s1[1], s2[1])
    assert MLP((5,), (1,), widths=(8,))(torch.randn(3, 5), None).shape == (3, 1)  # pac=1: as before


def test_a_batch_that_is_not_a_multiple_of_pac_is_one_line():
    with pytest.raises(ValueError, match="pac=4 samples judges batches that are a multiple of 4, got a batch of 10"):
        packed_d(pac=4)(torch.randn(10, 6), torch.randint(0, 3, (10,)))
    with pytest.raises(ValueError, match="mlp pac must be"):
        MLP((5,), (1,), pac=0)


def test_the_gradient_penalty_takes_each_packs_gradient_as_a_whole():
    torch.manual_seed(0)
    d = packed_d(pac=5)
    d.eval()
    real, fake, y = torch.randn(10, 6), torch.randn(10, 6), torch.randint(0, 3, (10,))
    torch.manual_seed(1)
    gp = gradient_penalty(d, real, fake, y)
    # by hand, as CTGAN's calc_gradient_penalty: one alpha per pack, the norm over the pack's pac * dim values
    torch.manual_seed(1)
    a = torch.rand(2, 1).repeat_interleave(5, 0)
    x_hat = (a * real + (1 - a) * fake).requires_grad_(True)
    (g,) = torch.autograd.grad(d(x_hat, y, check=False).sum(), x_hat)
    expected = ((g.reshape(2, -1).norm(dim=1) - 1) ** 2).mean()
    assert torch.allclose(gp, expected, atol=1e-6)
    loss = WassersteinGPLoss(gp_weight=10.0)
    total = loss.penalty(d, real, fake, y, y)
    total.backward()
    assert d.backbone.layers[0].weight.grad.abs().sum() > 0  # the penalty trains D


def test_a_packed_discriminator_trains_a_wgan_gp_step_and_checks_the_batch_before_it(tmp_path):
    penguins(tmp_path / "p.csv", 95)
    base = ["train", "--preset", "tabular", "--dataset", "table", "--data-root", tmp_path / "p.csv",
            "--set", "data.options.condition=species", "--set", "model.loss=wgan_gp", "--set", "model.loss_options={}",
            "--set", "model.discriminator.backbone_options.pac=10", "--steps", 3, "--device", "cpu", "--seed", 0]
    code, _, err = cli(base + ["--set", "training.batch_size=32", "--out", tmp_path / "bad"])
    [line] = err.strip().splitlines()
    assert code != 0 and "batch_size 32 is not a multiple of the discriminator's pac 10" in line
    code, _, err = cli(base + ["--set", "training.batch_size=40", "--out", tmp_path / "run"])  # 95 rows: last batch of 15 dropped
    assert code == 0, err
    assert (tmp_path / "run" / "generator.pt").exists()
