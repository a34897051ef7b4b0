"""Fuzz the public API with random shapes, dtypes, values and config keys (hypothesis).

Every call either works (outputs of the right shape, finite for valid inputs) or raises one of the
documented error types, from condgan's own validation: ``ValueError``/``TypeError``, or a
``ConfigKeyError``/``UnknownComponentError`` (both ``KeyError``s) for config keys and component
names. An error raised inside torch (a ``RuntimeError``, an ``IndexError`` from an embedding lookup,
PyTorch's own batch-norm message), an ``AttributeError`` or an ``AssertionError`` is a failure, and
so is an invalid input that is silently accepted. Models are tiny, so each example takes milliseconds.
"""

from __future__ import annotations

import copy
import functools
import re
import traceback
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import condgan
from condgan.conditioners import ConditionalNorm
from condgan.config import ConfigKeyError, GANConfig, config_keys

FUZZ = settings(max_examples=200, deadline=None, derandomize=True)
CONDGAN_DIR = Path(condgan.__file__).resolve().parent
DOCUMENTED_ERRORS = (ValueError, TypeError, ConfigKeyError, condgan.UnknownComponentError)

# -- the models: every built-in conditioner and condition kind, tiny ----------------------------------
TINY_MLP = {"image_shape": (1, 4, 4), "latent_dim": 3,
            "generator.backbone_options.widths": (4, 4, 4, 4), "discriminator.backbone_options.widths": (4, 4, 4)}
TINY_PAPER = {"image_shape": (1, 4, 4), "latent_dim": 3,
              "generator.conditioner_options.x_width": 4, "generator.conditioner_options.y_width": 4,
              "discriminator.conditioner_options.x_width": 4, "discriminator.conditioner_options.y_width": 4,
              "generator.backbone_options.widths": (4,), "discriminator.backbone_options.widths": (4,)}
TINY_CONV = {"latent_dim": 3, "generator.backbone_options.width": 2, "discriminator.backbone_options.width": 2}
VECTOR = {"condition_kind": "vector", "num_classes": None, "condition_dim": 2}
TAGS = {"condition_kind": "multilabel", "num_classes": 3}

CASES = {  # name: (preset, build keyword arguments)
    "embedding": ("mnist_mlp", {"overrides": TINY_MLP}),
    "onehot": ("mnist_mlp", {"conditioner": "onehot", "overrides": TINY_MLP}),
    "ctgan_cond": ("mnist_mlp", {"conditioner": "ctgan_cond", "overrides": TINY_MLP}),  # CTGAN's vector, here on images
    "branches": ("mnist_paper", {"overrides": TINY_PAPER}),
    "cbn+projection": ("mnist_dcgan_projection", {"overrides": {
        **TINY_CONV, "image_shape": (1, 8, 8), "generator.conditioner_options.embedding_dim": 2}}),
    "onehot+acgan": ("mnist_acgan", {"overrides": {**TINY_CONV, "image_shape": (3, 8, 8)}}),
    "cbn+projection_ac": ("dcgan_projection_lecam", {"overrides": {
        **TINY_CONV, "image_shape": (1, 8, 8), "num_classes": 10, "generator.conditioner_options.embedding_dim": 2,
        "discriminator.conditioner": "projection_ac", "discriminator.conditioner_options": {"spectral_norm": True}}}),
    "tags:onehot+acgan": ("mnist_mlp", {**TAGS, "conditioner": "onehot", "overrides": {
        **TINY_MLP, "discriminator.conditioner": "acgan"}}),
    "tags:vector+projection": ("mnist_mlp", {**TAGS, "overrides": {
        **TINY_MLP, "generator.conditioner": "vector", "generator.conditioner_options": {"features": 2},
        "discriminator.conditioner": "projection", "discriminator.conditioner_options": {}}}),
    "vector:vector": ("mnist_mlp", {**VECTOR, "conditioner": "vector", "conditioner_options": {"features": 2},
                                    "overrides": {**TINY_MLP, "discriminator.backbone_options.norm": "batch"}}),
    "vector:cbn+projection": ("mnist_mlp", {**VECTOR, "overrides": {
        **TINY_MLP, "generator.conditioner": "cbn", "generator.conditioner_options": {},
        "discriminator.conditioner": "projection", "discriminator.conditioner_options": {}}}),
    "vector:branches": ("mnist_paper", {**VECTOR, "overrides": TINY_PAPER}),
}


@functools.lru_cache(maxsize=None)
def model(name: str) -> condgan.GAN:
    preset, kwargs = CASES[name]
    torch.manual_seed(0)
    return condgan.build(preset, **kwargs)


def test_every_builtin_conditioner_and_kind_is_fuzzed():
    conditioners = {type(net.conditioner).name for name in CASES for net in (model(name).generator, model(name).discriminator)}
    assert conditioners == {info.name for info in condgan.list_components("conditioner")}
    assert {model(name).spec.kind for name in CASES} == {"class", "multilabel", "vector"}


def flat_batch_norm(net: nn.Module) -> bool:
    """True when the network normalises (B, F) features with batch statistics (needs B >= 2 to train)."""
    return isinstance(net.backbone, condgan.MLP) and any(
        isinstance(m, nn.BatchNorm1d) or (isinstance(m, ConditionalNorm) and m.norm == "batch") for m in net.backbone.modules())


# -- inputs: a valid tensor, then at most one mutation that makes it invalid ---------------------------
FLOATS = [torch.float16, torch.float32, torch.float64, torch.bfloat16]
INTS = [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64]
NOT_FLOAT = [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64]
NON_TENSORS = ["list", "numpy", "none", "int"]


def non_tensor(kind: str, t: torch.Tensor):
    return {"list": lambda: t.tolist(), "numpy": lambda: (t.float() if t.dtype == torch.bfloat16 else t).numpy(), "none": lambda: None, "int": lambda: 3}[kind]()


@st.composite
def floats_input(draw, shape: tuple[int, ...], dtype: torch.dtype = torch.float32):
    """(value, valid): noise z or images of ``shape`` for a model of ``dtype``, possibly mutated."""
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    t = torch.randn(shape, generator=g).clamp(-3, 3).to(dtype)
    mutation = draw(st.sampled_from(["valid"] * 6 + ["dtype", "nonfinite", "rank+1", "rank-1", "size", "non-tensor", "0-dim"]))
    if mutation == "valid":
        return t, True
    if mutation == "dtype":
        other = draw(st.sampled_from([d for d in FLOATS + NOT_FLOAT if d != dtype]))
        return (t.real if other.is_complex else t).to(other), False
    if mutation == "nonfinite" and t.numel():
        t.view(-1)[draw(st.integers(0, t.numel() - 1))] = draw(st.sampled_from([float("nan"), float("inf"), -float("inf")]))
        return t, False
    if mutation == "rank+1":
        return t.unsqueeze(-1), False
    if mutation == "rank-1":
        return torch.zeros(shape[1:], dtype=dtype), False
    if mutation == "size":
        dim = draw(st.integers(1, len(shape) - 1))
        new = list(shape)
        new[dim] += draw(st.sampled_from([1, 2, -1] if shape[dim] > 1 else [1, 2]))
        return torch.zeros(new, dtype=dtype), False
    if mutation == "non-tensor":
        return non_tensor(draw(st.sampled_from(NON_TENSORS)), t), False
    if mutation == "0-dim":
        return torch.tensor(1.0, dtype=dtype), False
    return t, True  # nonfinite of an empty tensor: still valid


@st.composite
def condition(draw, spec: condgan.ConditionSpec, batch: int, *, mutate: bool = True):
    """(y, mutation): a condition for ``spec`` and ``batch``, and how it was made invalid ("valid": it was not)."""
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    if spec.kind == "class":
        y = torch.randint(0, spec.num_classes, (batch,), generator=g).to(draw(st.sampled_from(INTS)))
    elif spec.kind == "multilabel":
        y = torch.randint(0, 2, (batch, spec.width), generator=g).to(draw(st.sampled_from(FLOATS)))
    else:
        y = (torch.rand(batch, spec.width, generator=g) * 20 - 10).to(draw(st.sampled_from(FLOATS)))
    mutation = draw(st.sampled_from(["valid"] * 6 + ["value", "dtype", "shape", "batch", "non-tensor"])) if mutate else "valid"
    if mutation == "value" and batch:
        i = draw(st.integers(0, batch - 1))
        if spec.kind == "class":
            y = y.long()
            y[i] = draw(st.sampled_from([spec.num_classes, spec.num_classes + 1, 1000, -1, -2**40]))
        elif spec.kind == "multilabel":
            y = y.float()
            y[i, 0] = draw(st.sampled_from([2.0, 0.5, -1.0, float("nan"), float("inf")]))
        else:
            y[i, 0] = draw(st.sampled_from([float("nan"), float("inf"), -float("inf")]))
        return y, mutation
    if mutation == "dtype":
        bad = [torch.float32, torch.float64, torch.bool, torch.complex64] if spec.kind == "class" else NOT_FLOAT
        other = draw(st.sampled_from(bad))
        return y.to(other), mutation
    if mutation == "shape":
        return draw(st.sampled_from([y.unsqueeze(-1), y.reshape(-1) if y.dim() == 2 and spec.width > 1 else y[:, None, None],
                                     torch.zeros(batch, spec.width + 1, dtype=y.dtype), torch.zeros((), dtype=y.dtype)])), mutation
    if mutation == "batch":
        other = draw(st.sampled_from([b for b in range(6) if b != batch]))
        return (torch.zeros((other, *y.shape[1:]), dtype=y.dtype)), mutation
    if mutation == "non-tensor":
        return non_tensor(draw(st.sampled_from(NON_TENSORS)), y), mutation
    return y, "valid"


# -- the property ---------------------------------------------------------------------------------------
def raised_by_condgan(exc: BaseException) -> bool:
    """True when the innermost frame of the traceback is condgan's own code (a boundary check)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(CONDGAN_DIR)


def expect(valid: bool, call):
    """Run ``call``: it must work when ``valid``, and raise a documented error from condgan's checks when not."""
    try:
        result = call()
    except DOCUMENTED_ERRORS as exc:
        assert not valid, f"valid input refused: {type(exc).__name__}: {exc}"
        assert raised_by_condgan(exc), f"error from inside torch, not a boundary check: {type(exc).__name__}: {exc}"
        assert str(exc), "an error without a message"
        return None
    except Exception as exc:  # noqa: BLE001 - any other type is the failure this test looks for
        raise AssertionError(f"undocumented error type {type(exc).__name__}: {exc}") from exc
    assert valid, f"invalid input accepted, result {result!r:.200}"
    return result


def finite(t: torch.Tensor) -> bool:
    return bool(torch.isfinite(t).all())


# -- the networks -----------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(CASES)), batch=st.integers(0, 5), training=st.booleans())
def test_generator_forward(data, name, batch, training):
    G = model(name).generator.train(training)
    z, z_ok = data.draw(floats_input((batch, G.latent_dim)), "z")
    y, y_mutation = data.draw(condition(G.spec, batch), "y")
    y_ok = y_mutation == "valid"
    bn_one = training and batch == 1 and flat_batch_norm(G)
    with torch.no_grad():
        out = expect(z_ok and y_ok and not bn_one, lambda: G(z, y))
    if out is not None:
        assert out.shape == (batch, *G.image_shape) and out.dtype == torch.float32 and finite(out)


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(CASES)), batch=st.integers(0, 5), given_z=st.booleans())
def test_generator_sample(data, name, batch, given_z):
    G = model(name).generator.train()
    y, y_mutation = data.draw(condition(G.spec, batch), "y")
    y_ok = y_mutation == "valid"
    z, z_ok = data.draw(floats_input((batch, G.latent_dim)), "z") if given_z else (None, True)
    z_ok = z_ok or z is None  # z=None: sample draws z itself
    y_ok = y_ok or (y_mutation == "batch" and z is None)  # ... for y's own batch
    out = expect(y_ok and z_ok, lambda: G.sample(y, z=z))
    if out is not None:
        assert out.shape == (y.shape[0], *G.image_shape) and finite(out)
    assert G.training  # sample restores the mode, also after an error


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(CASES)), batch=st.integers(0, 5), training=st.booleans(),
       judge=st.booleans())
def test_discriminator(data, name, batch, training, judge):
    D = model(name).discriminator.train(training)
    x, x_ok = data.draw(floats_input((batch, *D.image_shape)), "x")
    y, y_mutation = data.draw(condition(D.spec, batch), "y")
    y_ok = y_mutation == "valid"
    valid = x_ok and y_ok and not (training and batch == 1 and flat_batch_norm(D))
    with torch.no_grad():
        out = expect(valid, (lambda: D.judge(x, y)) if judge else (lambda: D(x, y)))
    if out is not None:
        score, aux = out if judge else (out, None)
        assert score.shape == (batch, 1) and finite(score)
        if aux is not None and batch:
            assert aux.shape == () and finite(aux)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["embedding", "tags:onehot+acgan", "vector:vector"]),
       batch=st.integers(0, 5), with_batch=st.booleans())
def test_condition_spec_check(data, name, batch, with_batch):
    spec = model(name).spec
    y, mutation = data.draw(condition(spec, batch), "y")
    valid = mutation == "valid" or (mutation == "batch" and not with_batch)  # no batch to mismatch
    expect(valid, lambda: spec.check(y, batch if with_batch else None))


# -- a training step ---------------------------------------------------------------------------------------
@settings(FUZZ, max_examples=60)
@given(data=st.data(), name=st.sampled_from(sorted(CASES)), batch=st.integers(0, 5))
def test_train_step(data, name, batch):
    gan = copy.deepcopy(model(name)).train()
    opt_g, opt_d = gan.optimizers()
    real = torch.rand(batch, *gan.config.image_shape) * 2 - 1
    y, _ = data.draw(condition(gan.spec, batch, mutate=False), "y")
    before = [p.detach().clone() for p in gan.parameters()]
    bn_one = batch == 1 and (flat_batch_norm(gan.generator) or flat_batch_norm(gan.discriminator))
    losses = expect(batch > 0 and not bn_one, lambda: condgan.train_step(gan, real, y, opt_g, opt_d))
    if losses is None:  # refused before any update
        assert all(torch.equal(a, b) for a, b in zip(before, gan.parameters()))
    else:
        assert set(losses) == {"g_loss", "d_loss"} and all(v.shape == () and finite(v) for v in losses.values())
        assert all(finite(p) for p in gan.parameters())


@pytest.mark.parametrize("bad", ["image-shape", "label-range", "nan-images"])
def test_train_step_refuses_bad_data(bad):
    gan = copy.deepcopy(model("embedding"))
    opt_g, opt_d = gan.optimizers()
    real, y = torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 3])
    if bad == "image-shape":
        real = torch.rand(4, 1, 5, 4)
    elif bad == "label-range":
        y = torch.tensor([0, 1, 2, 10])
    else:
        real[0, 0, 0, 0] = float("nan")
    expect(False, lambda: condgan.train_step(gan, real, y, opt_g, opt_d))


# -- build, overrides ---------------------------------------------------------------------------------------
KEYS = config_keys(GANConfig())
OPTION_KEYS = ["generator.backbone_options.widths", "generator.backbone_options.norm", "generator.backbone_options.norm_eps",
               "discriminator.backbone_options.dropout", "discriminator.backbone_options.pieces",
               "generator.backbone_options.activation", "generator.conditioner_options.embedding_dim",
               "discriminator.conditioner_options.position", "loss_options.r1_gamma"]
VALUES = st.one_of(
    st.integers(-2, 12), st.floats(-2, 12), st.sampled_from([True, None, float("nan"), float("inf")]),
    st.sampled_from(["", "x", "batch", "layer", "onehot", "cbn", "projection", "acgan", "vector", "branches", "dcgan", "mlp",
                     "hinge", "bce", "wgan_gp", "class", "multilabel", "vector", "uniform", "first", "Adam"]),
    st.lists(st.integers(-1, 9), max_size=4).map(tuple), st.lists(st.integers(1, 9), max_size=4),
    st.dictionaries(st.sampled_from(["x", "widths", "norm", "features"]), st.integers(0, 5), max_size=2),
)


@st.composite
def misspelled(draw):
    """A config key with one character deleted, doubled or replaced (never a real key)."""
    key = draw(st.sampled_from(KEYS))
    i = draw(st.integers(0, len(key) - 1))
    edit = draw(st.sampled_from(["delete", "double", "replace"]))
    new = {"delete": key[:i] + key[i + 1:], "double": key[:i] + key[i] + key[i:],
           "replace": key[:i] + draw(st.sampled_from("xq_.")) + key[i + 1:]}[edit]
    return new


@FUZZ
@given(key=misspelled(), value=VALUES)
def test_misspelled_config_keys_are_a_config_key_error(key, value):
    if key in KEYS or any(key.startswith(k + ".") for k in KEYS if k.endswith(("options", "schedule"))):
        return  # an edit that gave a real key (or a key inside an options dict, checked by the component)
    with pytest.raises(ConfigKeyError, match=re.escape(f"unknown config key {key!r}")):
        condgan.build("mnist_mlp", overrides={**TINY_MLP, key: value})
    with pytest.raises(ConfigKeyError):
        condgan.apply_overrides(GANConfig(), {key: value})


@settings(FUZZ, max_examples=400)
@given(items=st.lists(st.tuples(st.sampled_from(KEYS + OPTION_KEYS), VALUES), min_size=1, max_size=3),
       name=st.sampled_from(["embedding", "branches", "cbn+projection", "vector:vector"]))
def test_random_overrides(items, name):
    preset, kwargs = CASES[name]
    overrides = {**kwargs.get("overrides", {}), **dict(items)}
    kwargs = {**kwargs, "overrides": overrides}
    try:
        gan = condgan.build(preset, **kwargs)
    except DOCUMENTED_ERRORS as exc:
        assert raised_by_condgan(exc), f"error from inside torch: {type(exc).__name__}: {exc}"
        return
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"undocumented error type {type(exc).__name__}: {exc}") from exc
    # it built: valid inputs must work, with outputs of the right shape
    G, D = gan.generator.eval(), gan.discriminator.eval()
    y = {"class": lambda: torch.arange(3) % gan.spec.num_classes, "multilabel": lambda: torch.ones(3, gan.spec.width),
         "vector": lambda: torch.zeros(3, gan.spec.width)}[gan.spec.kind]()
    with torch.no_grad():
        images = G.sample(y)
        assert images.shape == (3, *gan.config.image_shape)
        assert D(images, y).shape == (3, 1)
    try:
        gan.optimizers()
    except DOCUMENTED_ERRORS as exc:
        assert raised_by_condgan(exc), f"error from inside torch: {type(exc).__name__}: {exc}"


@FUZZ
@given(overrides=st.one_of(st.lists(st.integers()), st.integers(), st.text(max_size=3), st.none()),
       preset=st.sampled_from([3, None, 2.5, "mnist_mlpp", ""]))
def test_bad_build_arguments(overrides, preset):
    if overrides is not None:
        expect(False, lambda: condgan.apply_overrides(GANConfig(), overrides))
    expect(False, lambda: condgan.build(preset))
