"""The paper's own MNIST preset (mnist_paper) and the general parts it is made of: maxout layers,
the 'branches' conditioner and per-step optimizer schedules."""

import math

import pytest
import torch
from torch import nn

import condgan
from condgan.layers import Dropout, Maxout
from condgan.training.optim import apply_schedule, check_schedule, scheduled


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_preset_sizes_and_structure():
    gan = condgan.build("mnist_paper")
    G, D = gan.generator, gan.discriminator
    # G: z(100)->200 and y(10)->1000, joint 1200, out 784; D: x(784)->maxout 240x5, y->maxout 50x5, joint maxout 240x4, 1
    # (+ 2 * 1200 for the batch norm of G's joint layer, the preset's one deviation from the paper)
    assert n_params(G) == (100 * 200 + 200) + (10 * 1000 + 1000) + (1200 * 1200 + 1200) + 2 * 1200 + (1200 * 784 + 784) == 2_416_384
    assert [type(m) for m in G.backbone.layers] == [nn.Linear, nn.BatchNorm1d, Dropout, nn.ReLU]
    assert n_params(D) == (784 * 1200 + 1200) + (10 * 250 + 250) + (290 * 960 + 960) + (240 + 1) == 1_224_351
    assert G.noise == "normal" and gan.config.image_shape == (1, 28, 28) and gan.config.pixel_range == (0.0, 1.0)
    assert isinstance(G.backbone.out_activation, nn.Sigmoid)
    assert [type(m) for m in G.conditioner.x_branch] == [nn.Linear, nn.ReLU, Dropout]
    assert [type(m) for m in G.conditioner.y_branch] == [nn.Linear, nn.ReLU, Dropout]
    assert [m.p for m in G.modules() if isinstance(m, Dropout)] == [0.5] * 3  # both branches, the joint layer
    x_maxout, y_maxout, joint = D.conditioner.x_branch[0], D.conditioner.y_branch[0], D.backbone.layers[0]
    assert (x_maxout.out_features, x_maxout.pieces) == (240, 5)
    assert (y_maxout.out_features, y_maxout.pieces) == (50, 5)
    assert isinstance(joint, Maxout) and (joint.out_features, joint.pieces) == (240, 4)
    dropouts = [m.p for m in D.modules() if isinstance(m, Dropout)]
    assert dropouts == [0.5] * 4  # D's input, both branches, the joint layer
    assert isinstance(gan.loss, condgan.BCELoss)
    opt_g, _ = gan.optimizers()
    assert isinstance(opt_g, torch.optim.SGD) and opt_g.param_groups[0]["momentum"] == 0.5


def test_maxout_is_the_max_over_each_units_pieces():
    torch.manual_seed(0)
    layer = Maxout(3, 2, pieces=4)
    x = torch.randn(5, 3)
    pre = x @ layer.linear.weight.T + layer.linear.bias  # (5, 8): unit u's pieces are columns 4u..4u+3
    expected = torch.stack([pre[:, 0:4].max(dim=1).values, pre[:, 4:8].max(dim=1).values], dim=1)
    torch.testing.assert_close(layer(x), expected)
    with pytest.raises(ValueError, match="pieces >= 2"):
        Maxout(3, 2, pieces=1)


def test_schedules_decay_the_learning_rate_and_ramp_the_momentum():
    schedule = condgan.build("mnist_paper").config.g_optimizer.schedule
    assert scheduled(0.1, schedule, 0) == {"lr": 0.1, "momentum": 0.5}
    at_1000 = scheduled(0.1, schedule, 1000)
    assert math.isclose(at_1000["lr"], 0.1 / 1.00004 ** 1000) and math.isclose(at_1000["momentum"], 0.5 + 0.2 * 1000 / 150_000)
    assert math.isclose(scheduled(0.1, schedule, 75_000)["momentum"], 0.6)
    late = scheduled(0.1, schedule, 10_000_000)
    assert late == {"lr": 1e-6, "momentum": 0.7}  # floor and end of the ramp
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.5)
    apply_schedule(opt, 0.1, schedule, 1000)
    assert opt.param_groups[0]["lr"] == at_1000["lr"] and opt.param_groups[0]["momentum"] == at_1000["momentum"]


@pytest.mark.parametrize("schedule, message", [
    ({"lr_decy": 1.1}, "unknown schedule key"),
    ({"momentum_start": 0.5}, "together"),
    ({"lr_decay": 0.0}, "lr_decay must be > 0"),
])
def test_bad_schedules_are_refused(schedule, message):
    with pytest.raises(ValueError, match=message):
        check_schedule(schedule)


def test_branches_refuses_a_conv_input():
    with pytest.raises(ValueError, match="needs a flat input"):
        condgan.build("mnist_acgan", overrides={"discriminator.conditioner": "branches", "discriminator.conditioner_options": {}})


def test_paper_preset_trains_a_few_steps_on_synthetic_data():
    torch.manual_seed(0)
    gan = condgan.build("mnist_paper")
    opt_g, opt_d = gan.optimizers()
    before = [p.detach().clone() for p in gan.parameters()]
    y = torch.arange(20) % 10
    real = torch.zeros(20, 1, 28, 28)
    real[torch.arange(20), 0, 2 * y, :] = 1.0  # label k lights row 2k
    for step in range(3):
        apply_schedule(opt_g, 0.1, gan.config.g_optimizer.schedule, step)
        apply_schedule(opt_d, 0.1, gan.config.d_optimizer.schedule, step)
        losses = condgan.train_step(gan, real, y, opt_g, opt_d)
        assert all(torch.isfinite(v) for v in losses.values())
    assert all(not torch.equal(a, b) for a, b in zip(before, gan.parameters()))
    samples = gan.generator.sample(torch.arange(10))
    assert samples.shape == (10, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1
