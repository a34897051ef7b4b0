"""The ``ctgan`` preset (issue 23, item 3): CTGAN's recipe, with a size test against ctgan's networks."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from condgan.conditions import ConditionSpec
from condgan.models import ConditionalDiscriminator, ConditionalGenerator
from condgan.outputs import VectorOutput
from condgan.presets import ctgan
from condgan.tabular.networks import ConcatResidualMLP


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ctgan_counts(data_dim: int, cond_dim: int, embedding_dim=128, generator_dim=(256, 256), discriminator_dim=(256, 256), pac=10):
    """The parameter counts of ctgan 0.12's Generator(embedding_dim + cond_dim, generator_dim, data_dim)
    and Discriminator(data_dim + cond_dim, discriminator_dim, pac), by formula from their code:
    Residual(i, o) = Linear(i, o) + BatchNorm1d(o), the width growing by o; D's layers Linear only."""
    g, dim = 0, embedding_dim + cond_dim
    for o in generator_dim:
        g, dim = g + dim * o + o + 2 * o, dim + o
    g += dim * data_dim + data_dim
    d, dim = 0, (data_dim + cond_dim) * pac
    for o in discriminator_dim:
        d, dim = d + dim * o + o, o
    d += dim + 1
    return g, d


def build(config, data_dim: int, classes: int):
    spec, output = ConditionSpec("class", classes), VectorOutput(data_dim)
    g = ConditionalGenerator(spec, output, latent_dim=config.latent_dim, conditioner=config.generator.conditioner,
                             backbone=config.generator.backbone, backbone_options=config.generator.backbone_options)
    d = ConditionalDiscriminator(spec, output, conditioner=config.discriminator.conditioner,
                                 backbone=config.discriminator.backbone, backbone_options=config.discriminator.backbone_options)
    return g, d


@pytest.mark.parametrize("data_dim, classes", [(23, 3), (71, 7), (5, 2)])
def test_the_ctgan_preset_has_ctgans_network_sizes(data_dim, classes):
    g, d = build(ctgan().model, data_dim, classes)
    assert (n_params(g), n_params(d)) == ctgan_counts(data_dim, classes)


def test_the_formula_is_ctgans_own_classes_where_ctgan_is_installed():
    ctgan_module = pytest.importorskip("ctgan.synthesizers.ctgan")
    for data_dim, cond in [(23, 3), (71, 7)]:
        g = ctgan_module.Generator(128 + cond, (256, 256), data_dim)
        d = ctgan_module.Discriminator(data_dim + cond, (256, 256), pac=10)
        assert (n_params(g), n_params(d)) == ctgan_counts(data_dim, cond)


def test_the_ctgan_preset_is_ctgans_recipe():
    run = ctgan()
    m = run.model
    assert m.latent_dim == 128 and m.noise == "normal" and m.loss == "wgan_gp" and m.loss_options == {"gp_weight": 10.0}
    for opt in (m.g_optimizer, m.d_optimizer):
        assert (opt.name, opt.lr, opt.options) == ("Adam", 2e-4, {"betas": (0.5, 0.9), "weight_decay": 1e-6})
    assert run.training.batch_size == 500 and m.discriminator.backbone_options["pac"] == 10
    assert m.discriminator.backbone_options["dropout"] == 0.5
    assert run.data.name == "table" and run.data.options.get("continuous", "vgm") == "vgm"
    g, d = build(m, 12, 3)
    assert isinstance(g.backbone, ConcatResidualMLP) and d.pac == 10
    assert d(torch.randn(20, 12), torch.randint(0, 3, (20,))).shape == (2, 1)
    assert g(torch.randn(4, 128), torch.randint(0, 3, (4,))).shape == (4, 12)
    assert [type(m).__name__ for m in d.backbone.layers] == ["Linear", "Dropout", "LeakyReLU"] * 2  # LeakyReLU and dropout commute
    assert d.backbone.layers[2].negative_slope == 0.2


def test_the_ctgan_preset_on_a_table_has_ctgans_sizes_less_the_condition_column_it_does_not_generate(tmp_path):
    """ctgan 0.12's Generator and Discriminator, built for the same (all-discrete) table as ctgan's own
    fit builds them, against the ``ctgan`` preset's networks built by the trainer: the conditional
    vector has the same width (every discrete column's categories, the condition column's
    included); condgan's G does not generate the condition column (3 one-hot entries), so its head
    and D's first layer are smaller by exactly those entries."""
    pd = pytest.importorskip("pandas")
    ctgan_module = pytest.importorskip("ctgan.synthesizers.ctgan")
    from ctgan.data_sampler import DataSampler
    from ctgan.data_transformer import DataTransformer

    from condgan import Trainer
    from condgan.resolve import run_config

    g = torch.Generator().manual_seed(0)
    frame = pd.DataFrame({"species": [f"s{v}" for v in torch.randint(0, 3, (60,), generator=g).tolist()],
                          "a": [f"a{v}" for v in torch.randint(0, 4, (60,), generator=g).tolist()],
                          "b": [f"b{v}" for v in torch.randint(0, 2, (60,), generator=g).tolist()]})
    frame.to_csv(tmp_path / "t.csv", index=False)
    transformer = DataTransformer()
    transformer.fit(frame, ["species", "a", "b"])
    data = transformer.transform(frame)
    sampler = DataSampler(data, transformer.output_info_list, True)
    data_dim, cond_dim = transformer.output_dimensions, sampler.dim_cond_vec()
    cg = ctgan_module.Generator(128 + cond_dim, (256, 256), data_dim)
    cd = ctgan_module.Discriminator(data_dim + cond_dim, (256, 256), pac=10)

    trainer = Trainer(run_config("ctgan", {"data.root": str(tmp_path / "t.csv"), "data.options.condition": "species",
                                           "training.device": "cpu", "training.loggers": [], "training.steps": 1}))
    G, D = trainer.gan.generator, trainer.gan.discriminator
    assert (data_dim, cond_dim) == (9, 9) and G.conditioner.width == cond_dim == D.conditioner.width
    assert G.output.dim == data_dim - 3  # species is the condition, not an output
    g_features = 128 + cond_dim + 256 + 256
    assert n_params(G) == n_params(cg) - 3 * (g_features + 1)
    assert n_params(D) == n_params(cd) - 3 * 10 * 256
    assert len(trainer.batches) == 1 and next(iter(trainer.batches))[0].shape == (500, 6)  # 500 rows drawn from 60
