"""Bad input is refused at the boundary with a clear error naming the problem."""

from __future__ import annotations

import pytest
import torch

import condgan
from condgan import ConditionSpec

SMALL = {
    "image_shape": (1, 8, 8),
    "latent_dim": 6,
    "generator.backbone_options.widths": (8, 8, 8, 8),
    "discriminator.backbone_options.widths": (8, 8, 8),
}


@pytest.fixture
def gan():
    return condgan.build("mnist_mlp", overrides=SMALL)


def labels(*values):
    return torch.tensor(values)


# -- class labels ----------------------------------------------------------------------------------
BAD_LABELS = [
    pytest.param(labels(0, 1, 2, -1), r"class label -1 is out of range: labels must lie in \[0, 10\)", id="negative"),
    pytest.param(labels(0, 10, 2, 3), r"class label 10 is out of range: labels must lie in \[0, 10\)", id="too-large"),
    pytest.param(labels(0.0, 1.0, 2.0, 3.0), r"integer tensor .*got dtype torch.float32", id="float"),
    pytest.param(labels(True, False, True, True), r"integer tensor .*got dtype torch.bool", id="bool"),
    pytest.param(labels([0, 1], [2, 3]), r"shape \(B,\), got \(2, 2\)", id="2d"),
    pytest.param(labels(0, 1, 2, 3)[:, None], r"shape \(B,\), got \(4, 1\)", id="column"),
    pytest.param(labels(0, 1, 2), r"condition batch size 3 does not match the input batch size 4", id="batch"),
    pytest.param([0, 1, 2, 3], r"must be a torch.Tensor, got list", id="list"),
]


@pytest.mark.parametrize("y, message", BAD_LABELS)
def test_generator_rejects_bad_labels(gan, y, message):
    with pytest.raises(ValueError, match=message):
        gan.generator(torch.randn(4, 6), y)


@pytest.mark.parametrize("y, message", BAD_LABELS)
def test_discriminator_rejects_bad_labels(gan, y, message):
    with pytest.raises(ValueError, match=message):
        gan.discriminator.judge(torch.rand(4, 1, 8, 8), y)


def test_sample_rejects_bad_labels(gan):
    with pytest.raises(ValueError, match="class label 12 is out of range"):
        gan.generator.sample(labels(0, 12))
    with pytest.raises(ValueError, match="integer tensor"):
        gan.generator.sample(labels(0.5))


@pytest.mark.parametrize("conditioner", ["embedding", "onehot"])
@pytest.mark.parametrize("dtype", [torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64])
def test_labels_of_any_integer_dtype_are_accepted(conditioner, dtype):
    gan = condgan.build("mnist_mlp", conditioner=conditioner, overrides=SMALL).eval()  # no dropout
    y = labels(0, 9, 5)
    images = gan.generator(torch.randn(3, 6), y.to(dtype))
    assert images.shape == (3, 1, 8, 8)
    torch.testing.assert_close(gan.discriminator(images, y.to(dtype)), gan.discriminator(images, y))


# -- images and noise ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "x, message",
    [
        pytest.param(torch.rand(4, 3, 8, 8), r"images must have shape \(B, 1, 8, 8\), got \(4, 3, 8, 8\)", id="channels"),
        pytest.param(torch.rand(4, 1, 16, 16), r"images must have shape \(B, 1, 8, 8\), got \(4, 1, 16, 16\)", id="size"),
        pytest.param(torch.rand(4, 64), r"images must have shape \(B, 1, 8, 8\), got \(4, 64\)", id="flat"),
        pytest.param(torch.rand(1, 8, 8), r"images must have shape \(B, 1, 8, 8\), got \(1, 8, 8\)", id="no-batch"),
        pytest.param(torch.randint(0, 255, (4, 1, 8, 8), dtype=torch.uint8), r"float tensor, got dtype torch.uint8", id="uint8"),
        pytest.param(torch.rand(4, 1, 8, 8).index_fill_(0, torch.tensor([2]), float("nan")), "NaN or inf", id="nan"),
        pytest.param(torch.rand(4, 1, 8, 8).index_fill_(0, torch.tensor([0]), float("inf")), "NaN or inf", id="inf"),
    ],
)
def test_discriminator_rejects_bad_images(gan, x, message):
    with pytest.raises(ValueError, match=message):
        gan.discriminator(x, labels(0, 1, 2, 3)[: x.shape[0]])


@pytest.mark.parametrize(
    "z, message",
    [
        pytest.param(torch.randn(4, 5), r"noise z must be a float tensor of shape \(B, 6\), got \(4, 5\)", id="width"),
        pytest.param(torch.randn(4, 6, 1), r"shape \(B, 6\), got \(4, 6, 1\)", id="3d"),
        pytest.param(torch.randn(6), r"shape \(B, 6\), got \(6,\)", id="1d"),
        pytest.param(torch.randint(0, 3, (4, 6)), r"float tensor .*torch.int64", id="int"),
        pytest.param(torch.randn(4, 6).index_fill_(0, torch.tensor([2]), float("nan")), "NaN or inf", id="nan"),
    ],
)
def test_generator_rejects_bad_noise(gan, z, message):
    with pytest.raises(ValueError, match=message):
        gan.generator(z, labels(0, 1, 2, 3))


def test_checks_can_be_skipped_in_the_hot_loop(gan):
    # check=False does no validation (and no host sync): the caller validated the data once.
    out = gan.generator(torch.randn(4, 6), labels(0, 1, 2, 3), check=False)
    assert gan.discriminator(out, labels(0, 1, 2, 3), check=False).shape == (4, 1)


# -- other condition kinds -------------------------------------------------------------------------
def test_multilabel_and_vector_conditions_are_checked():
    tags = ConditionSpec("multilabel", 3)
    with pytest.raises(ValueError, match="only 0 and 1"):
        tags.check(torch.tensor([[0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="float tensor, got dtype torch.int64"):
        tags.check(torch.tensor([[0, 1, 1]]))
    with pytest.raises(ValueError, match=r"shape \(B, 3\), got \(1, 2\)"):
        tags.check(torch.tensor([[0.0, 1.0]]))
    vec = ConditionSpec("vector", dim=2)
    with pytest.raises(ValueError, match="finite"):
        vec.check(torch.tensor([[0.0, float("inf")]]))
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got \(2,\)"):
        vec.check(torch.tensor([0.0, 1.0]))
    tags.check(torch.tensor([[0.0, 1.0, 1.0]]))  # valid ones pass
    vec.check(torch.tensor([[0.5, -3.0]]))


# -- ConditionSpec itself --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        pytest.param(("label", 10), {}, r"condition kind must be one of \('class', 'multilabel', 'vector'\), got 'label'", id="kind"),
        pytest.param(("class",), {}, r"'class' condition needs num_classes >= 1, got None", id="no-classes"),
        pytest.param(("class", 0), {}, r"num_classes >= 1, got 0", id="zero-classes"),
        pytest.param(("class", 2.5), {}, r"num_classes >= 1, got 2.5", id="float-classes"),
        pytest.param(("multilabel",), {}, r"'multilabel' condition needs num_classes", id="no-tags"),
        pytest.param(("vector",), {}, r"'vector' condition needs dim >= 1, got None", id="no-dim"),
        pytest.param(("vector",), {"dim": -2}, r"dim >= 1, got -2", id="negative-dim"),
    ],
)
def test_bad_condition_spec(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConditionSpec(*args, **kwargs)


def test_conditioner_refuses_a_condition_kind_it_cannot_take():
    with pytest.raises(ValueError, match=r"conditioner 'embedding' accepts conditions of kind \('class',\), got 'vector'"):
        condgan.build("mnist_mlp", condition_kind="vector", num_classes=None, condition_dim=4)
    with pytest.raises(ValueError, match="'onehot' accepts conditions of kind \\('class', 'multilabel'\\)"):
        condgan.build("mnist_mlp", conditioner="onehot", condition_kind="vector", num_classes=None, condition_dim=4)
    with pytest.raises(TypeError, match="spec must be a ConditionSpec, got int"):
        condgan.OneHotConditioner(10, "generator")
    with pytest.raises(ValueError, match="can condition generator or discriminator, not 'critic'"):
        condgan.OneHotConditioner(ConditionSpec("class", 10), "critic")


# -- components and their options -----------------------------------------------------------------
def available(kind: str) -> str:
    return ", ".join(sorted(info.name for info in condgan.list_components(kind)))


def test_unknown_component_names():
    for kwargs, kind, name in [
        ({"conditioner": "no_such_conditioner"}, "conditioner", "no_such_conditioner"),
        ({"backbone": "no_such_backbone"}, "backbone", "no_such_backbone"),
        ({"loss": "no_such_loss"}, "loss", "no_such_loss"),
    ]:
        with pytest.raises(condgan.UnknownComponentError) as info:
            condgan.build("mnist_mlp", **kwargs)
        assert str(info.value) == f"unknown {kind} {name!r}; available: {available(kind)}"
        assert "embedding" in available("conditioner") and "mlp" in available("backbone") and "lsgan" in available("loss")
    with pytest.raises(KeyError, match="unknown preset 'cifar'"):
        condgan.build("cifar")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"generator.conditioner_options.embeding_dim": 3}, r"'embedding' does not accept option\(s\) \['embeding_dim'\]; its options are: embedding_dim, position"),
        ({"discriminator.backbone_options.width": 3}, r"'mlp' does not accept option\(s\) \['width'\]; its options are: .*widths"),
        ({"loss_options": {"margin": 1.0}}, r"'lsgan' does not accept option\(s\) \['margin'\]; its options are: "),
        ({"generator.conditioner": "onehot", "generator.conditioner_options": {"embedding_dim": 4}},
         r"'onehot' does not accept option\(s\) \['embedding_dim'\]; its options are: position"),
    ],
)
def test_unknown_component_options_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        condgan.build("mnist_mlp", overrides=overrides)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"discriminator.backbone_options.dropout": 1.0}, r"dropout must lie in \[0, 1\), got 1.0"),
        ({"discriminator.backbone_options.dropout": (0.1, 0.2)}, "dropout has 2 entries but the network has 3 hidden layers"),
        ({"generator.backbone_options.norm": "group"}, "unknown norm 'group'; available: None, batch, layer"),
        ({"generator.backbone_options.activation": "swish"}, "unknown activation 'swish'; available: .*leaky_relu"),
        ({"generator.backbone_options.widths": ()}, "widths must be a non-empty sequence of positive ints"),
        ({"generator.backbone_options.widths": (8, 0)}, "widths must be a non-empty sequence of positive ints"),
        ({"generator.conditioner_options.position": "middle"}, "position must be 'first' or 'last', got 'middle'"),
        ({"noise": "gauss"}, "noise must be one of normal, uniform, got 'gauss'"),
        ({"latent_dim": 0}, r"latent_dim must be an int in \[1, 65536\], got 0"),
    ],
)
def test_bad_component_option_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        condgan.build("mnist_mlp", overrides=overrides)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="unknown optimizer 'Adamm'"):
        condgan.build("mnist_mlp", overrides={**SMALL, "g_optimizer.name": "Adamm"})
    for unusable in ("SparseAdam", "LBFGS"):
        with pytest.raises(ValueError, match=f"unknown optimizer '{unusable}'.*cannot train a GAN step"):
            condgan.build("mnist_mlp", overrides={**SMALL, "g_optimizer.name": unusable})


# -- CUDA: a clear ValueError, never a device-side assert -------------------------------------------
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_out_of_range_labels_on_cuda_are_a_value_error(gan):
    gan = gan.cuda()
    z = torch.randn(4, 6, device="cuda")
    for bad in (-1, 10):
        y = torch.tensor([0, 1, 2, bad], device="cuda")
        with pytest.raises(ValueError, match=f"class label {bad} is out of range"):
            gan.generator(z, y)
        with pytest.raises(ValueError, match=f"class label {bad} is out of range"):
            gan.discriminator(torch.rand(4, 1, 8, 8, device="cuda"), y)
        with pytest.raises(ValueError, match=f"class label {bad} is out of range"):
            gan.generator.sample(y.cpu())
    # the device is still healthy afterwards (a device-side assert would poison the context)
    out = gan.generator(z, torch.tensor([0, 1, 2, 9], device="cuda"))
    torch.cuda.synchronize()
    assert out.is_cuda and torch.isfinite(out).all()
