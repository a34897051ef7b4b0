"""The plugin system: built-ins, in-process plugins, real entry points, and the errors it reports."""

from __future__ import annotations

import sys
import textwrap
import types
import uuid
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import condgan
from condgan import hookspecs, plugins
from condgan.conditioners import OneHotConditioner
from condgan.plugins import DISABLE_AUTOLOAD_ENV, ENTRY_POINT_GROUP, KINDS, Registry

BUILTINS = {
    ("conditioner", "embedding"): ("condgan.conditioners", condgan.EmbeddingConditioner),
    ("conditioner", "onehot"): ("condgan.conditioners", condgan.OneHotConditioner),
    ("loss", "lsgan"): ("condgan.losses", condgan.LeastSquaresLoss),
    ("loss", "bce"): ("condgan.losses", condgan.BCELoss),
    ("backbone", "mlp"): ("condgan.backbones", condgan.MLP),
    ("output", "image"): ("condgan.outputs", condgan.outputs.ImageOutput),
    ("output", "vector"): ("condgan.outputs", condgan.outputs.VectorOutput),
}


# -- components an in-process plugin provides, one of each kind ---------------------------------
class ScaledOneHot(OneHotConditioner):
    """One-hot code times a constant: a conditioner that is not a built-in."""

    name = "inproc_scaled_onehot"

    def __init__(self, spec, role, *, scale: float = 2.0, position=None):
        super().__init__(spec, role, position=position)
        self.scale = scale

    def join(self, x, y):
        return self.concat(x, self.scale * self.spec.to_dense(y, x.dtype))


class HingeLoss(condgan.Loss):
    name = "inproc_hinge"

    def discriminator_loss(self, real_score, fake_score):
        return F.relu(1 - real_score.float()).mean() + F.relu(1 + fake_score.float()).mean()

    def generator_loss(self, fake_score):
        return -fake_score.float().mean()


class LinearBackbone(condgan.Backbone):
    """One hidden layer: the smallest backbone that honours the features/head split."""

    name = "inproc_one_hidden"

    def __init__(self, in_shape, out_shape, *, conditioner=None, width: int = 16):
        super().__init__(in_shape, out_shape, conditioner=conditioner)
        self.hidden = nn.Linear(int(torch.tensor(self.in_shape).prod()), width)
        self.out = nn.Linear(width, int(torch.tensor(self.out_shape).prod()))
        self.feature_dim = width

    def features(self, x, y):
        return torch.relu(self.hidden(x.flatten(1)))

    def head(self, h):
        return self.out(h).view(h.shape[0], *self.out_shape)


def tiny_config() -> condgan.GANConfig:
    return condgan.GANConfig(
        num_classes=3,
        image_shape=(1, 4, 4),
        latent_dim=5,
        generator=condgan.NetworkConfig(backbone_options={"widths": (8,)}),
        discriminator=condgan.NetworkConfig(backbone_options={"widths": (8,)}),
    )


class EverythingPlugin:
    """An in-process plugin implementing every hook (instance methods work as hook implementations)."""

    @condgan.hookimpl
    def register_conditioners(self):
        return [ScaledOneHot]

    @condgan.hookimpl
    def register_losses(self):
        return [HingeLoss]

    @condgan.hookimpl
    def register_backbones(self):
        return [LinearBackbone]

    @condgan.hookimpl
    def register_presets(self):
        return [condgan.Preset("inproc_tiny", tiny_config, "3 classes of 4x4 images")]


def names(kind: str) -> set[str]:
    return {info.name for info in condgan.list_components(kind)}


def small_batch(gan: condgan.GAN, n: int = 6):
    shape = gan.config.image_shape
    return torch.rand(n, *shape) * 2 - 1, torch.randint(0, gan.config.num_classes, (n,))


# -- built-ins -----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", list(BUILTINS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_builtins_are_registered_by_their_plugin(key):
    kind, name = key
    plugin, cls = BUILTINS[key]
    assert condgan.get_component(kind, name) is cls
    [info] = [i for i in condgan.list_components(kind) if i.name == name]
    assert (info.kind, info.obj, info.plugin) == (kind, cls, plugin)


def test_builtin_preset_is_registered_by_its_plugin():
    preset = condgan.get_component("preset", "mnist_mlp")
    assert isinstance(preset, condgan.Preset)
    assert isinstance(preset.config(), condgan.GANConfig)
    assert preset.config() is not preset.config()  # a fresh config each call
    [info] = [i for i in condgan.list_components("preset") if i.name == "mnist_mlp"]
    assert info.plugin == "condgan.presets"


def test_builtins_are_ordinary_plugins(registry):
    # Every default plugin module is registered through pluggy like any third-party plugin.
    for module_name in plugins.DEFAULT_PLUGINS:
        assert registry.pm.get_plugin(module_name) is sys.modules[module_name]


def test_every_hook_has_a_component_kind():
    # A new hook spec must get a kind (and so a registry table and the tests below).
    specs = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert specs == set(KINDS.values())


# -- in-process plugins --------------------------------------------------------------------------
def test_in_process_plugin_components_are_usable_by_name():
    before = {kind: names(kind) for kind in KINDS}
    plugin_name = condgan.register_plugin(EverythingPlugin(), name="everything")
    assert plugin_name == "everything"
    for kind, name in [("conditioner", "inproc_scaled_onehot"), ("loss", "inproc_hinge"), ("backbone", "inproc_one_hidden"), ("preset", "inproc_tiny")]:
        assert names(kind) == before[kind] | {name}
        [info] = [i for i in condgan.list_components(kind) if i.name == name]
        assert info.plugin == "everything"

    gan = condgan.build("inproc_tiny", conditioner="inproc_scaled_onehot", loss="inproc_hinge", backbone="inproc_one_hidden",
                        overrides={"generator.backbone_options": {"width": 12}, "discriminator.backbone_options": {}})
    assert isinstance(gan.generator.conditioner, ScaledOneHot)
    assert isinstance(gan.discriminator.conditioner, ScaledOneHot)
    assert isinstance(gan.generator.backbone, LinearBackbone) and gan.generator.backbone.feature_dim == 12
    assert isinstance(gan.loss, HingeLoss)
    real, y = small_batch(gan)
    losses = condgan.train_step(gan, real, y, *gan.optimizers())
    assert all(torch.isfinite(v) for v in losses.values())
    assert gan.generator.sample(torch.arange(3)).shape == (3, 1, 4, 4)

    condgan.unregister_plugin("everything")
    assert {kind: names(kind) for kind in KINDS} == before
    with pytest.raises(condgan.UnknownComponentError):
        condgan.get_component("conditioner", "inproc_scaled_onehot")


def test_module_object_as_plugin():
    module = types.ModuleType("my_condgan_plugin")
    module.register_losses = condgan.hookimpl(lambda: [HingeLoss])
    condgan.register_plugin(module)
    [info] = [i for i in condgan.list_components("loss") if i.name == "inproc_hinge"]
    assert info.plugin == "my_condgan_plugin"


def test_classes_are_accepted_wherever_names_are():
    # No registration at all: pass the classes themselves.
    gan = condgan.build(tiny_config(), conditioner=ScaledOneHot, loss=HingeLoss, backbone=LinearBackbone,
                        overrides={"generator.backbone_options": {}, "discriminator.backbone_options": {}})
    assert isinstance(gan.generator.conditioner, ScaledOneHot)
    assert isinstance(gan.discriminator.backbone, LinearBackbone)
    assert isinstance(gan.loss, HingeLoss)
    assert condgan.get_component("conditioner", ScaledOneHot) is ScaledOneHot
    assert "inproc_scaled_onehot" not in names("conditioner")
    real, y = small_batch(gan)
    assert torch.isfinite(condgan.train_step(gan, real, y, *gan.optimizers())["d_loss"])


def test_non_component_class_where_a_conditioner_is_expected_is_a_type_error():
    with pytest.raises(TypeError, match="Conditioner subclass"):
        condgan.build(tiny_config(), conditioner=nn.Linear)
    with pytest.raises(TypeError, match="Loss subclass"):
        condgan.build(tiny_config(), loss=nn.MSELoss)


# -- errors --------------------------------------------------------------------------------------
def test_duplicate_name_names_both_classes_and_leaves_registry_unchanged(registry):
    class AnotherEmbedding(OneHotConditioner):
        name = "embedding"

    class Clash:
        @condgan.hookimpl
        def register_conditioners(self):
            return [AnotherEmbedding]

    before = condgan.list_components()
    with pytest.raises(condgan.DuplicateComponentError) as info:
        condgan.register_plugin(Clash(), name="clash")
    message = str(info.value)
    assert "'embedding'" in message
    assert "condgan.conditioners.EmbeddingConditioner" in message
    assert "AnotherEmbedding" in message and "'clash'" in message
    assert isinstance(info.value, ValueError)
    assert condgan.list_components() == before
    assert registry.pm.get_plugin("clash") is None
    assert condgan.get_component("conditioner", "embedding") is condgan.EmbeddingConditioner


def test_unknown_name_is_a_key_error_listing_available_names():
    with pytest.raises(KeyError) as info:
        condgan.get_component("conditioner", "embeding")
    assert isinstance(info.value, condgan.UnknownComponentError)
    assert str(info.value) == f"unknown conditioner 'embeding'; available: {', '.join(sorted(names('conditioner')))}"
    assert "embedding, " in str(info.value) or str(info.value).endswith("embedding")
    with pytest.raises(condgan.UnknownComponentError) as info:
        condgan.build("mnist_mlp", loss="no_such_loss")
    assert str(info.value) == f"unknown loss 'no_such_loss'; available: {', '.join(sorted(names('loss')))}"
    with pytest.raises(condgan.UnknownComponentError, match="unknown preset 'mnist'; available: .*mnist_mlp"):
        condgan.build("mnist")
    with pytest.raises(ValueError, match="unknown component kind 'optimizer'"):
        condgan.get_component("optimizer", "adam")


def test_misspelled_hook_is_a_plugin_error_and_registers_nothing(registry):
    class Misspelled:
        @condgan.hookimpl
        def register_conditioner(self):  # missing the final "s"
            return [ScaledOneHot]

    before = condgan.list_components()
    with pytest.raises(condgan.PluginError, match="register_conditioner") as info:
        condgan.register_plugin(Misspelled(), name="misspelled")
    assert "register_conditioners" in str(info.value)  # the known hooks are listed
    assert registry.pm.get_plugin("misspelled") is None
    assert condgan.list_components() == before
    # The registry still works, and a correct plugin registers afterwards.
    condgan.register_plugin(EverythingPlugin(), name="everything")
    assert "inproc_scaled_onehot" in names("conditioner")


def test_hook_with_unexpected_arguments_is_a_plugin_error(registry):
    class WrongSignature:
        @condgan.hookimpl
        def register_losses(self, config):
            return [HingeLoss]

    with pytest.raises(condgan.PluginError, match="config"):
        condgan.register_plugin(WrongSignature(), name="wrong")
    assert registry.pm.get_plugin("wrong") is None


def test_component_without_name_is_a_plugin_error(registry):
    class Nameless(OneHotConditioner):
        name = ""

    class Bad:
        @condgan.hookimpl
        def register_conditioners(self):
            return [Nameless]

    with pytest.raises(condgan.PluginError, match="'bad' registered a conditioner without a `name`"):
        condgan.register_plugin(Bad(), name="bad")
    assert registry.pm.get_plugin("bad") is None


def test_registering_the_same_plugin_twice_is_an_error():
    plugin = EverythingPlugin()
    before = names("loss")
    condgan.register_plugin(plugin, name="everything")
    with pytest.raises(condgan.PluginError, match="already registered"):
        condgan.register_plugin(plugin, name="everything")
    with pytest.raises(condgan.PluginError, match="already registered"):
        condgan.register_plugin(EverythingPlugin(), name="everything")  # another object, same name
    assert names("loss") == before | {"inproc_hinge"}


def test_list_components_shows_kind_name_object_and_plugin():
    everything = condgan.list_components()
    rows = [(i.kind, i.name, i.plugin, i.qualname) for i in everything]
    for row in [
        ("conditioner", "embedding", "condgan.conditioners", "condgan.conditioners.EmbeddingConditioner"),
        ("conditioner", "onehot", "condgan.conditioners", "condgan.conditioners.OneHotConditioner"),
        ("loss", "bce", "condgan.losses", "condgan.losses.BCELoss"),
        ("loss", "lsgan", "condgan.losses", "condgan.losses.LeastSquaresLoss"),
        ("backbone", "mlp", "condgan.backbones", "condgan.backbones.MLP"),
        ("preset", "mnist_mlp", "condgan.presets", "condgan.presets.Preset"),
    ]:
        assert row in rows
    # grouped by kind in KINDS order, sorted by name within a kind; one kind alone on request
    kinds = [i.kind for i in everything]
    assert sorted(kinds, key=list(KINDS).index) == kinds
    for kind in KINDS:
        listed = condgan.list_components(kind)
        assert [i.name for i in listed] == sorted(i.name for i in everything if i.kind == kind)
        assert all(i.kind == kind and condgan.get_component(kind, i.name) is i.obj for i in listed)


# -- real entry points ---------------------------------------------------------------------------
PLUGIN_MODULE = '''
"""A third-party condgan plugin, installed as a distribution with a `condgan` entry point."""
import condgan
from condgan.conditioners import OneHotConditioner


class {cls}(OneHotConditioner):
    name = "{component}"


@condgan.hookimpl
def register_conditioners():
    return [{cls}]
'''

BROKEN_MODULE = 'raise ImportError("No module named \'a_dependency_that_is_missing\'")\n'


@pytest.fixture
def site_dir(tmp_path, monkeypatch):
    """An importable directory on sys.path where tests install distributions; imported modules are forgotten after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("condgan_test_plugin_"):
            del sys.modules[name]


def install_distribution(site, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> None:
    """Write a minimal installed distribution (``*.dist-info`` with METADATA and entry_points.txt)."""
    info = site / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


def plugin_module(tag: str) -> tuple[str, str, str]:
    """(module name, component name, source) of a good plugin with names unique to this test."""
    module = f"condgan_test_plugin_{tag}_{uuid.uuid4().hex[:8]}"
    component = f"ep_onehot_{tag}"
    return module, component, PLUGIN_MODULE.format(cls="EntryPointOneHot", component=component)


def test_entry_point_plugin_is_discovered_and_attributed(site_dir):
    module, component, source = plugin_module("good")
    install_distribution(site_dir, "condgan-demo-plugin", {"demo": module}, {module: source})

    registry = Registry(autoload=True)
    [info] = [i for i in registry.components("conditioner") if i.name == component]
    assert info.plugin == "demo"
    assert info.qualname == f"{module}.EntryPointOneHot"
    assert registry.pm.get_plugin("demo") is sys.modules[module]

    # Usable by name through the process-wide registry, like a built-in.
    plugins.set_registry(registry)
    gan = condgan.build(tiny_config(), conditioner=component)
    assert type(gan.generator.conditioner).__name__ == "EntryPointOneHot"


def test_global_registry_autoloads_entry_points(site_dir, monkeypatch):
    module, component, source = plugin_module("global")
    install_distribution(site_dir, "condgan-global-plugin", {"global_demo": module}, {module: source})
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    plugins.set_registry(None)  # the next use creates the default registry (restored by the fixture)
    assert component in names("conditioner")


def test_broken_entry_point_warns_by_name_and_others_still_load(site_dir):
    module, component, source = plugin_module("ok")
    broken = f"condgan_test_plugin_broken_{uuid.uuid4().hex[:8]}"
    install_distribution(site_dir, "condgan-mixed-plugins", {"broken_plugin": broken, "good_plugin": module},
                         {module: source, broken: BROKEN_MODULE})

    with pytest.warns(RuntimeWarning) as record:
        registry = Registry(autoload=True)
    messages = [str(w.message) for w in record if "broken_plugin" in str(w.message)]
    assert len(messages) == 1
    assert broken in messages[0] and "ImportError" in messages[0] and "a_dependency_that_is_missing" in messages[0]
    assert component in {i.name for i in registry.components("conditioner")}
    assert registry.pm.get_plugin("broken_plugin") is None
    assert {i.name for i in registry.components("loss")} == names("loss")  # built-ins intact


def test_entry_point_with_misspelled_hook_warns_and_is_skipped(site_dir):
    module = f"condgan_test_plugin_typo_{uuid.uuid4().hex[:8]}"
    source = "import condgan\n\n@condgan.hookimpl\ndef register_loss():\n    return []\n"
    install_distribution(site_dir, "condgan-typo-plugin", {"typo": module}, {module: source})
    with pytest.warns(RuntimeWarning, match="'typo'.*PluginError.*register_loss"):
        registry = Registry(autoload=True)
    assert registry.pm.get_plugin("typo") is None


def test_plugin_failure_warning_points_at_the_plugin_source(site_dir):
    broken = f"condgan_test_plugin_where_{uuid.uuid4().hex[:8]}"
    typo = f"condgan_test_plugin_wheretypo_{uuid.uuid4().hex[:8]}"
    broken_source = '"""A plugin whose import fails on line 4."""\nimport condgan\n\nraise ImportError("no module named fancy_dependency")\n'
    typo_source = "import condgan\n\n\n@condgan.hookimpl\ndef register_loss():\n    return []\n"
    install_distribution(site_dir, "condgan-where-plugins", {"broken_where": broken, "typo_where": typo},
                         {broken: broken_source, typo: typo_source})
    with pytest.warns(RuntimeWarning) as record:
        Registry(autoload=True)
    by_plugin = {name: [w for w in record if f"plugin {name!r}" in str(w.message)] for name in ("broken_where", "typo_where")}
    [failed_import], [misspelled] = by_plugin["broken_where"], by_plugin["typo_where"]
    assert (failed_import.filename, failed_import.lineno) == (str(site_dir / f"{broken}.py"), 4)
    assert misspelled.filename == str(site_dir / f"{typo}.py") and misspelled.lineno in (4, 5)  # the decorator or the def


@pytest.mark.parametrize("value", ["1", "true"])
def test_environment_variable_turns_autoload_off(site_dir, monkeypatch, value):
    module, component, source = plugin_module("env")
    install_distribution(site_dir, "condgan-env-plugin", {"env_demo": module}, {module: source})

    monkeypatch.setenv(DISABLE_AUTOLOAD_ENV, value)
    registry = Registry()
    assert component not in {i.name for i in registry.components("conditioner")}
    assert module not in sys.modules  # not even imported
    # Loading explicitly still works.
    assert "env_demo" in registry.load_entry_points()
    assert component in {i.name for i in registry.components("conditioner")}

    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # loading the good plugin warns about nothing
        assert component in {i.name for i in Registry().components("conditioner")}


# -- two installed plugins, one name ---------------------------------------------------------------
def install_two_clashing(site, tag: str) -> tuple[str, str, str]:
    """Two distributions whose entry points both register the conditioner ``ep_onehot_<tag>``; their modules."""
    component = f"ep_onehot_{tag}"
    first, second = (f"condgan_test_plugin_{tag}_{i}_{uuid.uuid4().hex[:8]}" for i in (1, 2))
    install_distribution(site, "condgan-first-pkg", {"first_ep": first},
                         {first: PLUGIN_MODULE.format(cls="FirstOneHot", component=component)})
    install_distribution(site, "condgan-second-pkg", {"second_ep": second},
                         {second: PLUGIN_MODULE.format(cls="SecondOneHot", component=component)})
    return component, first, second


def test_two_installed_plugins_with_one_name_are_an_error_naming_both(site_dir, monkeypatch):
    component, first, second = install_two_clashing(site_dir, "clash")
    monkeypatch.delenv(plugins.DISABLE_PLUGINS_ENV, raising=False)
    with pytest.raises(condgan.DuplicateComponentError) as info:
        Registry(autoload=True)
    error, message = info.value, str(info.value)
    assert (error.kind, error.name) == ("conditioner", component)
    assert {error.first.plugin, error.second.plugin} == {"first_ep", "second_ep"}
    assert f"conditioner name {component!r} is registered twice" in message
    for text in ("'first_ep'", "'second_ep'", "condgan-first-pkg 0.1", "condgan-second-pkg 0.1", "FirstOneHot", "SecondOneHot"):
        assert text in message, text
    assert f"{plugins.DISABLE_PLUGINS_ENV}={error.second.plugin}" in message
    assert "\n" not in message

    # disabling either one, as the message says, loads the other alone (the disabled one is not even imported)
    sys.modules.pop(second, None)  # imported by the failed attempt
    monkeypatch.setenv(plugins.DISABLE_PLUGINS_ENV, " second_ep , unrelated")
    registry = Registry(autoload=True)
    [entry] = [i for i in registry.components("conditioner") if i.name == component]
    assert (entry.plugin, entry.obj.__name__) == ("first_ep", "FirstOneHot")
    assert second not in sys.modules and registry.pm.is_blocked("second_ep")
    assert registry.origin("first_ep") == "entry point of distribution condgan-first-pkg 0.1"


def test_two_distributions_with_one_entry_point_name_are_an_error(site_dir):
    a, component_a, source_a = plugin_module("samename_a")
    b, component_b, source_b = plugin_module("samename_b")
    install_distribution(site_dir, "condgan-pkg-a", {"same": a}, {a: source_a})
    install_distribution(site_dir, "condgan-pkg-b", {"same": b}, {b: source_b})
    with pytest.raises(condgan.PluginError, match=r"two installed plugins are both named 'same' \(entry point of "
                                                  r"distribution condgan-pkg-[ab] 0.1, and .*condgan-pkg-[ab] 0.1\)"):
        Registry(autoload=True)


def test_cli_reports_a_plugin_conflict_as_one_line(site_dir, monkeypatch, capsys):
    from condgan.cli import main

    install_two_clashing(site_dir, "cli")
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    monkeypatch.delenv(plugins.DISABLE_PLUGINS_ENV, raising=False)
    monkeypatch.delenv("CONDGAN_TRACEBACK", raising=False)
    plugins.set_registry(None)  # the CLI creates the default registry, loading entry points (restored by the fixture)
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("condgan: error: conditioner name 'ep_onehot_cli' is registered twice")
    assert plugins.DISABLE_PLUGINS_ENV in err
    monkeypatch.setenv(plugins.DISABLE_PLUGINS_ENV, "first_ep")
    plugins.set_registry(None)
    assert main(["list", "conditioner"]) == 0
    assert "ep_onehot_cli" in capsys.readouterr().out


def test_installed_plugin_clashing_with_a_builtin_is_an_error(site_dir):
    module = f"condgan_test_plugin_builtin_{uuid.uuid4().hex[:8]}"
    install_distribution(site_dir, "condgan-clash-pkg", {"clash_ep": module},
                         {module: PLUGIN_MODULE.format(cls="MyEmbedding", component="embedding")})
    with pytest.raises(condgan.DuplicateComponentError) as info:
        Registry(autoload=True)
    message = str(info.value)
    assert "condgan.conditioners.EmbeddingConditioner (plugin 'condgan.conditioners', built into condgan)" in message
    assert "condgan-clash-pkg 0.1" in message and f"{plugins.DISABLE_PLUGINS_ENV}=clash_ep" in message


def test_builtin_plugins_cannot_be_disabled(monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_PLUGINS_ENV, "condgan.losses")
    with pytest.raises(condgan.PluginError, match="'condgan.losses', one of condgan's own plugins"):
        Registry(autoload=False)


COMMAND_AND_DATASET_MODULE = '''
"""A third-party plugin adding a subcommand and a dataset by entry point."""
import torch
import condgan
from condgan.commands import Command


class Stripes(condgan.Dataset):
    name = "{dataset}"
    description = "vertical (class 0) or horizontal (class 1) stripes"

    def load(self, *, channels=None, size=None, fit="crop"):
        h, w = size or (8, 8)
        x = torch.zeros(32, channels or 1, h, w, dtype=torch.uint8)
        x[:16, :, :, ::2] = 255
        x[16:, :, ::2, :] = 255
        return condgan.ImageSet(x, torch.arange(2).repeat_interleave(16), condgan.ConditionSpec("class", 2), ("vertical", "horizontal"))


def count(args):
    data = condgan.get_component("dataset", "{dataset}")().load()
    print(f"{{len(data)}} images in {{len(data.class_names)}} classes: {{','.join(data.class_names)}}")


@condgan.hookimpl
def register_datasets():
    return [Stripes]


@condgan.hookimpl
def register_commands():
    return [Command("{command}", "count the images of the stripes dataset", lambda parser: None, count)]
'''


def test_an_entry_point_plugin_adds_a_subcommand_and_a_dataset(site_dir, monkeypatch, tmp_path, capsys):
    from condgan.cli import main

    module = f"condgan_test_plugin_cmd_{uuid.uuid4().hex[:8]}"
    dataset, command = f"stripes_{module[-8:]}", f"count-stripes-{module[-8:]}"
    install_distribution(site_dir, "condgan-stripes", {"stripes": module},
                         {module: COMMAND_AND_DATASET_MODULE.format(dataset=dataset, command=command)})
    monkeypatch.delenv(DISABLE_AUTOLOAD_ENV, raising=False)
    plugins.set_registry(None)  # the CLI's registry loads entry points (restored by the fixture)
    assert main([command]) == 0
    assert capsys.readouterr().out.strip() == "32 images in 2 classes: vertical,horizontal"
    assert main(["list", "dataset"]) == 0 and f"{dataset}  stripes" in capsys.readouterr().out
    out = tmp_path / "run"
    code = main(["train", "--dataset", dataset, "--set", "image_shape=None", "--set", "num_classes=None",
                 "--set", "generator.backbone_options.widths=(8,8,8,8)", "--set", "discriminator.backbone_options.widths=(8,8,8)",
                 "--batch-size", "8", "--steps", "2", "--out", str(out), "--device", "cpu", "--loggers", ""])
    assert code == 0, capsys.readouterr().err
    assert condgan.load_generator(out).config.class_names == ("vertical", "horizontal")
