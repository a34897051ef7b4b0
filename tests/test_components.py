"""Every registered component, alone and in every combination, on small random data.

The parameters are read from the registry when the tests are collected, so a new conditioner,
loss or backbone (built-in or from an installed plugin) is tested here without editing this file.
"""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
import torch.nn.functional as F

import condgan
from condgan import ConditionSpec
from condgan.plugins import Registry

BATCH = 8
IMAGE = (3, 16, 16)
NUM_CLASSES = 4
VECTOR_DIM = 5

# Small settings for backbones we know; any other backbone is built with its defaults.
SMALL_OPTIONS = {
    "mlp": {
        "generator": {"widths": (16, 16), "norm": "batch"},
        "discriminator": {"widths": (16, 16), "dropout": 0.2},
    },
    "dcgan": {"generator": {"width": 8}, "discriminator": {"width": 8}},
    "resnet": {"generator": {"width": 4}, "discriminator": {"width": 4}},
}
# Partners for a network the conditioner under test cannot condition (e.g. G with "projection").
PARTNERS = ("onehot", "embedding", "vector")

CONDITIONERS = condgan.list_components("conditioner")
LOSSES = condgan.list_components("loss")
# the combinations build image models: backbones that make images (vector/table-only ones: tests/test_outputs.py, test_tables.py)
BACKBONES = [b for b in condgan.list_components("backbone") if "image" in getattr(b.obj, "outputs", ("image",))]
CONDITIONER_KINDS = [(info, kind) for info in CONDITIONERS for kind in info.obj.kinds]


@pytest.fixture(autouse=True)
def registry():
    """The default registry (entry points included, as when collecting), fresh for each test."""
    previous = condgan.plugins.set_registry(Registry())
    try:
        yield condgan.plugins.get_registry()
    finally:
        condgan.plugins.set_registry(previous)


def make_spec(kind: str) -> ConditionSpec:
    return ConditionSpec(kind, dim=VECTOR_DIM) if kind == "vector" else ConditionSpec(kind, NUM_CLASSES)


def make_y(spec: ConditionSpec, n: int = BATCH) -> torch.Tensor:
    if spec.kind == "class":
        return torch.arange(n) % spec.num_classes
    if spec.kind == "multilabel":
        return (torch.rand(n, spec.num_classes) < 0.5).float()
    return torch.randn(n, spec.dim)


def other_y(spec: ConditionSpec, y: torch.Tensor) -> torch.Tensor:
    """A condition different from y in every row."""
    if spec.kind == "class":
        return (y + 1) % spec.num_classes
    if spec.kind == "multilabel":
        return 1 - y
    return y + 1


def conditioner_for(role: str, kind: str, preferred: str) -> str | None:
    """``preferred`` if it can condition ``role`` (a projection conditioner conditions only D),
    else a registered conditioner that can, for the same kind of condition (None if none can)."""
    registered = [i.name for i in condgan.list_components("conditioner")]
    candidates = [preferred, *[p for p in PARTNERS if p in registered], *registered]
    for name in candidates:
        cls = condgan.get_component("conditioner", name)
        if role in cls.roles and kind in cls.kinds:
            return name
    return None


def accepts_input(conditioner: str, kind: str, role: str, shape: tuple[int, ...]) -> bool:
    """Whether the conditioner takes an input of this shape: some (e.g. "branches") refuse conv
    inputs, with a ValueError from :meth:`~condgan.Conditioner.setup_input`."""
    cond = condgan.get_component("conditioner", conditioner)(make_spec(kind), role)
    try:
        cond.setup_input(shape)
    except ValueError:
        return False
    return True


def make_config(conditioner: str, kind: str, loss: str, backbone: str) -> condgan.GANConfig:
    networks = {}
    for role in ("generator", "discriminator"):
        networks[role] = condgan.NetworkConfig(
            conditioner=conditioner_for(role, kind, conditioner),
            backbone=backbone,
            backbone_options=dict(SMALL_OPTIONS.get(backbone, {}).get(role, {})),
        )
    return condgan.GANConfig(
        condition_kind=kind,
        num_classes=None if kind == "vector" else NUM_CLASSES,
        condition_dim=VECTOR_DIM if kind == "vector" else None,
        image_shape=IMAGE,
        latent_dim=8,
        loss=loss,
        **networks,
    )


def d_input_shape(backbone: str) -> tuple[int, ...]:
    return (math.prod(IMAGE),) if condgan.get_component("backbone", backbone).flat_input else IMAGE


def buildable(conditioner: str, kind: str, backbone: str) -> bool:
    """False when no conditioner can take the role left over, or D's conditioner refuses D's input."""
    d_conditioner = conditioner_for("discriminator", kind, conditioner)
    g_conditioner = conditioner_for("generator", kind, conditioner)
    return (d_conditioner is not None and g_conditioner is not None
            and accepts_input(d_conditioner, kind, "discriminator", d_input_shape(backbone)))


COMBINATIONS = [
    pytest.param(c.name, kind, l.name, b.name, id=f"{c.name}-{kind}-{l.name}-{b.name}")
    for (c, kind), l, b in itertools.product(CONDITIONER_KINDS, LOSSES, BACKBONES)
    if buildable(c.name, kind, b.name)
]
# Combinations a conditioner refuses (e.g. a flat-only one with a conv D); the loss does not matter.
REFUSED = [
    pytest.param(c.name, kind, LOSSES[0].name, b.name)
    for (c, kind), b in itertools.product(CONDITIONER_KINDS, BACKBONES)
    if not buildable(c.name, kind, b.name)
]


@pytest.mark.parametrize("conditioner, kind, loss, backbone", COMBINATIONS)
def test_combination_builds_runs_and_trains(conditioner, kind, loss, backbone):
    gan = condgan.build(make_config(conditioner, kind, loss, backbone))
    G, D = gan.generator, gan.discriminator
    spec = gan.spec
    y = make_y(spec)

    # forward
    fake = G(G.sample_noise(BATCH), y)
    assert fake.shape == (BATCH, *IMAGE) and fake.dtype == torch.float32
    assert torch.isfinite(fake).all()
    score, aux = D.judge(fake, y)
    assert score.shape == (BATCH, 1) and torch.isfinite(score).all()
    assert aux is None or (aux.dim() == 0 and torch.isfinite(aux))
    assert G.sample(y[:3]).shape == (3, *IMAGE)

    # one training step: forward and backward through both networks
    real = torch.rand(BATCH, *IMAGE) * 2 - 1
    before = {name: p.detach().clone() for name, p in gan.named_parameters()}
    losses = condgan.train_step(gan, real, y, *gan.optimizers())
    assert set(losses) >= {"g_loss", "d_loss"}
    for name, value in losses.items():
        assert value.dim() == 0 and not value.requires_grad and torch.isfinite(value), name
    for name, p in gan.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    for prefix in ("generator.", "discriminator."):
        changed = [n for n, p in gan.named_parameters() if n.startswith(prefix) and not torch.equal(p, before[n])]
        assert changed, f"no parameter of the {prefix[:-1]} changed in the step"

    # the condition reaches both networks (D's score, or its auxiliary loss: ACGAN's score ignores y)
    G.eval(), D.eval()
    with torch.no_grad():
        z = G.sample_noise(BATCH)
        y2 = other_y(spec, y)
        assert not torch.allclose(G(z, y), G(z, y2)), "the generator ignores y"
        (score, aux), (score2, aux2) = D.judge(real, y), D.judge(real, y2)
        assert not torch.allclose(score, score2) or (aux is not None and not torch.allclose(aux, aux2)), \
            "the discriminator ignores y"


def test_refused_combinations_are_clear_errors():
    """Each combination a conditioner refuses (see ``buildable``) fails at build time with a
    ValueError naming D's conditioner and the input shape it cannot take."""
    for param in REFUSED:
        conditioner, kind, loss, backbone = param.values
        d_conditioner = conditioner_for("discriminator", kind, conditioner)
        if d_conditioner is None or conditioner_for("generator", kind, conditioner) is None:
            continue  # nothing registered can partner it: there is nothing to build
        with pytest.raises(ValueError, match=f"{d_conditioner}.*{re.escape(str(d_input_shape(backbone)))}"):
            condgan.build(make_config(conditioner, kind, loss, backbone))


# -- conditioners on their own -------------------------------------------------------------------
def make_conditioner(info, kind: str, role: str, shape: tuple[int, ...]):
    cond = info.obj(make_spec(kind), role)
    cond.setup_input(shape)
    return cond


def split_code(x: torch.Tensor, out: torch.Tensor, k: int) -> torch.Tensor:
    """The code a concatenating join added: x must sit unchanged before or after it (dim 1)."""
    c = x.shape[1]
    if torch.equal(out[:, :c], x):
        return out[:, c:]
    assert torch.equal(out[:, k:], x), "join must keep x unchanged, with the code before or after it"
    return out[:, :k]


JOINS = [pytest.param(i, k, role, id=f"{i.name}-{k}-{role}") for i, k in CONDITIONER_KINDS for role in i.obj.roles]


@pytest.mark.parametrize("info, kind, role", JOINS)
def test_conditioner_join_flat_and_conv(info, kind, role):
    spec = make_spec(kind)
    y = make_y(spec, 5)
    flat, conv = torch.randn(5, 7), torch.randn(5, 3, 4, 6)

    cond_flat = make_conditioner(info, kind, role, (7,))
    out_flat = cond_flat.join(flat, y)
    assert out_flat.shape == (5, *cond_flat.joined_shape((7,)))
    assert torch.isfinite(out_flat).all()
    try:
        cond_conv = make_conditioner(info, kind, role, (3, 4, 6))
    except ValueError as exc:  # a conditioner for flat inputs only must say so, naming the shape
        assert "(3, 4, 6)" in str(exc)
        return
    out_conv = cond_conv.join(conv, y)
    assert out_conv.shape == (5, *cond_conv.joined_shape((3, 4, 6)))
    assert torch.isfinite(out_conv).all()

    k = cond_flat.input_features
    if k == 0:
        return
    # a concatenating conditioner: x unchanged plus k code features (flat) or channels (conv)
    assert cond_flat.joined_shape((7,)) == (7 + k,) and cond_conv.joined_shape((3, 4, 6)) == (3 + k, 4, 6)
    code = split_code(flat, out_flat, k)  # (5, k)
    # The conv code is the same code, broadcast over every position (same weights for both).
    cond_conv.load_state_dict(cond_flat.state_dict())
    code_map = split_code(conv, cond_conv.join(conv, y), k)  # (5, k, 4, 6)
    torch.testing.assert_close(code_map, code[:, :, None, None].expand(-1, -1, 4, 6), rtol=0, atol=0)
    # Different conditions give different codes.
    assert not torch.equal(code, split_code(flat, cond_flat.join(flat, other_y(spec, y)), k))


def test_embedding_and_onehot_codes():
    spec = ConditionSpec("class", 4)
    y = torch.tensor([0, 3, 1])
    x = torch.zeros(3, 2)
    onehot = condgan.OneHotConditioner(spec, "discriminator")
    torch.testing.assert_close(onehot.join(x, y)[:, 2:], F.one_hot(y, 4).float())
    emb = condgan.EmbeddingConditioner(spec, "generator", embedding_dim=6)
    out = emb.join(x, y)  # generator: the code first, as the reference's cat((emb(y), z))
    assert out.shape == (3, 8)
    torch.testing.assert_close(out[:, :6], emb.embedding.weight[y])
    multi = condgan.OneHotConditioner(ConditionSpec("multilabel", 4), "generator", position="last")
    tags = torch.tensor([[1.0, 0, 1, 0]])
    torch.testing.assert_close(multi.join(torch.zeros(1, 2), tags), torch.tensor([[0.0, 0, 1, 0, 1, 0]]))


def test_join_keeps_half_precision():
    cond = condgan.OneHotConditioner(ConditionSpec("class", 3), "discriminator")
    assert cond.join(torch.zeros(2, 4, dtype=torch.bfloat16), torch.tensor([0, 2])).dtype == torch.bfloat16


def test_join_rejects_other_ranks():
    cond = condgan.OneHotConditioner(ConditionSpec("class", 3), "discriminator")
    with pytest.raises(ValueError, match=r"\(B, F\) or \(B, C, H, W\).*\(2, 3, 4\)"):
        cond.join(torch.zeros(2, 3, 4), torch.tensor([0, 1]))


# -- losses --------------------------------------------------------------------------------------
@pytest.mark.parametrize("info", LOSSES, ids=lambda i: i.name)
def test_every_loss_rewards_the_right_scores(info):
    loss = info.obj()

    def generator_loss(fake, real):  # a relativistic loss judges fake scores against real ones
        return loss.generator_loss(fake, real) if loss.needs_real_scores_for_generator else loss.generator_loss(fake)

    high, low = torch.full((6, 1), 3.0), torch.full((6, 1), -3.0)
    good_d, bad_d = loss.discriminator_loss(high, low), loss.discriminator_loss(low, high)
    good_g, bad_g = generator_loss(high, low), generator_loss(low, high)
    for value in (good_d, bad_d, good_g, bad_g):
        assert value.dim() == 0 and value.dtype == torch.float32 and torch.isfinite(value)
    assert good_d < bad_d and good_g < bad_g
    # half-precision scores give float32 losses and finite gradients
    scores = torch.randn(6, 1, dtype=torch.bfloat16, requires_grad=True)
    total = loss.discriminator_loss(scores, scores.flip(0)) + generator_loss(scores, scores.flip(0))
    assert total.dtype == torch.float32
    total.backward()
    assert torch.isfinite(scores.grad.float()).all()


def log_sigmoid_manual(x: torch.Tensor) -> torch.Tensor:
    """log(sigmoid(x)) = -(max(-x, 0) + log(1 + exp(-|x|))), stable for any x."""
    x = x.double()
    return -(torch.clamp(-x, min=0) + torch.log1p(torch.exp(-x.abs())))


def test_lsgan_matches_hand_computation():
    real, fake = torch.randn(10, 1), torch.randn(10, 1)
    loss = condgan.LeastSquaresLoss()
    d = (((real - 1) ** 2).mean() + (fake**2).mean()) / 2
    torch.testing.assert_close(loss.discriminator_loss(real, fake), d)
    torch.testing.assert_close(loss.generator_loss(fake), ((fake - 1) ** 2).mean())
    mse = torch.nn.MSELoss()
    torch.testing.assert_close(
        loss.discriminator_loss(real, fake), (mse(real, torch.ones_like(real)) + mse(fake, torch.zeros_like(fake))) / 2
    )


@pytest.mark.parametrize("scale", [1.0, 30.0, 1e4])
def test_bce_matches_stable_log_sigmoid(scale):
    real = torch.randn(10, 1) * scale
    fake = torch.randn(10, 1) * scale
    if scale == 1e4:
        real[0], fake[0] = -1e4, 1e4  # the worst case for each: maximally wrong and confident
    loss = condgan.BCELoss()
    # D: -(log D(x) + log(1 - D(G(z))))/2 with D = sigmoid(score); log(1 - sigmoid(s)) = log sigmoid(-s)
    d = -(log_sigmoid_manual(real).mean() + log_sigmoid_manual(-fake).mean()) / 2
    g = -log_sigmoid_manual(fake).mean()  # non-saturating generator loss
    d_loss, g_loss = loss.discriminator_loss(real, fake), loss.generator_loss(fake)
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    torch.testing.assert_close(d_loss.double(), d, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_loss.double(), g, rtol=1e-5, atol=1e-5)


def test_bce_extreme_logits_have_finite_gradients():
    scores = torch.tensor([[-1e4], [1e4], [0.0]], requires_grad=True)
    loss = condgan.BCELoss()
    total = loss.discriminator_loss(scores, scores) + loss.generator_loss(scores)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(scores.grad).all()
    # each of D's two terms and G's term: (1e4 + 0 + log 2) / 3 (one maximally wrong score, one right, one at 0)
    assert total.item() == pytest.approx(2 * (1e4 + math.log(2)) / 3, rel=1e-6)


def test_bce_under_cpu_autocast_bfloat16():
    torch.manual_seed(1)
    layer = torch.nn.Linear(16, 1)
    x = torch.randn(32, 16) * 100  # large scores: the case an unstable loss would break
    with torch.autocast("cpu", dtype=torch.bfloat16):
        scores = layer(x)
        assert scores.dtype == torch.bfloat16
        d_loss = condgan.BCELoss().discriminator_loss(scores[:16], scores[16:])
        g_loss = condgan.BCELoss().generator_loss(scores[16:])
    assert d_loss.dtype == g_loss.dtype == torch.float32
    real, fake = scores[:16].detach().float(), scores[16:].detach().float()
    d = -(log_sigmoid_manual(real).mean() + log_sigmoid_manual(-fake).mean()) / 2
    torch.testing.assert_close(d_loss.double(), d, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(g_loss.double(), -log_sigmoid_manual(fake).mean(), rtol=1e-5, atol=1e-5)
    (d_loss + g_loss).backward()
    assert torch.isfinite(layer.weight.grad).all()
