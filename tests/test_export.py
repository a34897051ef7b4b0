"""Export: TorchScript, ONNX and safetensors files reproduce the eager generator; refusals name the part."""

from __future__ import annotations

import json
import os
import re
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sampling_helpers import NAMES, cli, train_tiny_run

import condgan
from condgan import CheckpointError
from condgan import checkpoint as ckpt
from condgan.config import GANConfig
from condgan.export import ExportError, check_format, export_generator, probe_inputs
from condgan.plugins import list_components

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOLERANCE = 1e-5
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny_run(tmp_path_factory.mktemp("run") / "run")


def onnx_run(path, z, y):
    onnxruntime = pytest.importorskip("onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["images"], {"z": z.numpy(), "y": y.numpy()})[0])


def torchscript_run(path, z, y):
    return torch.jit.load(str(path))(z, y)


def safetensors_run(path, z, y):
    return condgan.load_generator(path)(z, y)


RUNNERS = {"torchscript": torchscript_run, "onnx": onnx_run, "safetensors": safetensors_run}
PACKAGES = {"torchscript": None, "onnx": "onnx", "safetensors": "safetensors"}


# -- the command line ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "safetensors"])
def test_cli_export_reproduces_the_eager_generator(run_dir, fmt):
    if PACKAGES[fmt]:
        pytest.importorskip(PACKAGES[fmt])
    code, out, err = cli(["export", run_dir, "--format", fmt])
    assert code == 0, err
    suffix = {"torchscript": ".torchscript.pt", "onnx": ".onnx", "safetensors": ".safetensors"}[fmt]
    path = run_dir / f"generator{suffix}"
    assert f"wrote {path}" in out and err == ""
    eager = condgan.load_generator(run_dir)
    z, y = probe_inputs(eager, 7, seed=3)
    expected = eager(z, y)
    got = RUNNERS[fmt](path, z, y)
    assert got.shape == (7, 1, 8, 8) and (got - expected).abs().max() <= TOLERANCE


def test_exported_files_describe_the_generator(run_dir, tmp_path):
    pytest.importorskip("onnx")
    import onnx

    assert cli(["export", run_dir, "--format", "onnx", "--out", tmp_path / "g.onnx"])[0] == 0
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "g.onnx")).metadata_props}
    info = json.loads(meta["condgan"])
    assert info["latent_dim"] == 8 and info["noise"] == "normal" and info["pixel_range"] == [-1.0, 1.0]
    assert info["condition"] == {"kind": "class", "num_classes": 10, "dim": None, "dtype": "int64"}
    assert info["class_names"] == list(NAMES) and info["image_shape"] == [1, 8, 8]
    assert cli(["export", run_dir, "--format", "torchscript", "--out", tmp_path / "g.pt"])[0] == 0
    extra = {"condgan.json": ""}
    torch.jit.load(str(tmp_path / "g.pt"), _extra_files=extra)
    assert json.loads(extra["condgan.json"]) == info


def test_safetensors_loads_without_pickle_and_samples_like_the_run(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("safetensors")
    path = tmp_path / "g.safetensors"
    assert cli(["export", run_dir, "--format", "safetensors", "--out", path])[0] == 0

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = condgan.load_generator(path)
    monkeypatch.undo()
    assert loaded.config == condgan.load_generator(run_dir).config
    assert loaded.config.class_names == NAMES  # JSON lists read back as the config's tuples
    code, _, err = cli(["sample", path, "--classes", "3,7", "--per-class", 4, "--out", tmp_path / "a.npz", "--device", "cpu"])
    assert code == 0, err
    cli(["sample", run_dir, "--classes", "3,7", "--per-class", 4, "--out", tmp_path / "b.npz", "--device", "cpu"])
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        assert np.array_equal(a["images"], b["images"])
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "condgan-generator" and json.loads(meta["step"]) == 40 and json.loads(meta["from_ema"]) is False


# -- every part ---------------------------------------------------------------------------------------
def combinations():
    """(conditioner, backbone, condition kind) for every registered generator part that builds together."""
    out = []
    for cond in list_components("conditioner"):
        if "generator" not in cond.obj.roles:
            continue
        for backbone in list_components("backbone"):
            if "image" in getattr(backbone.obj, "outputs", ("image",)):  # config_for builds image models
                out.append((cond.name, backbone.name, cond.obj.kinds[0]))
    return out + [("onehot", "mlp", "multilabel"), ("cbn", "dcgan", "vector")]


def config_for(conditioner, backbone, kind):
    config = GANConfig(condition_kind=kind, num_classes=None if kind == "vector" else 6,
                       condition_dim=4 if kind == "vector" else None, image_shape=(1, 16, 16), latent_dim=6)
    config.generator.conditioner = conditioner
    config.generator.backbone = backbone
    if backbone == "dcgan":  # spectral norm: folded into the exported weights
        config.generator.backbone_options = {"width": 4, "spectral_norm": True}
    elif backbone == "resnet":
        config.generator.backbone_options = {"width": 4, "max_width": 8, "spectral_norm": True}
    elif backbone == "resmlp":
        config.generator.backbone_options = {"width": 12, "blocks": 1, "norm": "batch"}
    else:
        config.generator.backbone_options = {"widths": (12, 12), "norm": "batch", "dropout": 0.3}
    if conditioner == "branches":
        config.generator.conditioner_options = {"x_width": 8, "y_width": 8, "dropout": 0.2}
    return config


@pytest.mark.parametrize("conditioner, backbone, kind", [
    ("embedding", "mlp", "class"), ("embedding", "dcgan", "class"), ("onehot", "mlp", "class"), ("onehot", "dcgan", "class"),
    ("branches", "mlp", "class"), ("branches", "dcgan", "class"), ("cbn", "mlp", "class"), ("cbn", "dcgan", "class"), ("vector", "mlp", "vector"),
    ("vector", "dcgan", "vector"), ("onehot", "mlp", "multilabel"), ("cbn", "dcgan", "vector"),
    ("embedding", "resnet", "class"), ("onehot", "resnet", "class"), ("branches", "resnet", "class"),
    ("cbn", "resnet", "class"), ("vector", "resnet", "vector"),
    ("embedding", "resmlp", "class"), ("onehot", "resmlp", "class"), ("branches", "resmlp", "class"),
    ("cbn", "resmlp", "class"), ("vector", "resmlp", "vector"),
    ("ctgan_cond", "mlp", "class"), ("ctgan_cond", "dcgan", "class"), ("ctgan_cond", "resnet", "class"),
    ("ctgan_cond", "resmlp", "class"),
])
def test_every_generator_part_exports_to_every_format(conditioner, backbone, kind, tmp_path):
    config = config_for(conditioner, backbone, kind)
    generator = ckpt.build_generator(config)
    for _ in range(3):  # train-mode passes move the batch norm statistics and spectral-norm estimates
        generator(*probe_inputs(generator, 8, seed=_))
    generator.eval().config = config
    z, y = probe_inputs(generator, 9, seed=7)
    expected = generator(z, y)
    for fmt in ("torchscript", "onnx", "safetensors"):
        if PACKAGES[fmt] and not _installed(PACKAGES[fmt]):
            continue
        if fmt == "onnx" and not _installed("onnxruntime"):
            continue
        result = export_generator(generator, tmp_path / f"g.{fmt}", fmt)
        assert result.max_abs_diff is not None and result.max_abs_diff <= 1e-4
        assert (RUNNERS[fmt](result.path, z, y) - expected).abs().max() <= TOLERANCE, fmt
    assert torch.equal(generator(z, y), expected)  # exporting left the generator as it was (spectral norm too)


def test_the_parametrized_list_covers_the_registry():
    """Every registered generator conditioner x backbone, with each condition kind it takes, is in the export test."""
    tested = {(c, b, k) for c, b, k in test_every_generator_part_exports_to_every_format.pytestmark[0].args[1]}
    assert set(combinations()) <= tested


def _installed(package):
    try:
        __import__(package)
    except ImportError:
        return False
    return True


# -- refusals -----------------------------------------------------------------------------------------
def plugin_generator(join, name, **attributes):
    """A generator whose conditioner (registered as ``name``) adds ``join(self, x, y)`` to x."""

    def init(self, spec, role):
        condgan.Conditioner.__init__(self, spec, role)
        self.table = torch.nn.Embedding(spec.num_classes, 1)

    cls = type("PluginConditioner", (condgan.Conditioner,), {"name": name, "roles": ("generator",), "__init__": init,
                                                              "join": join, **attributes})

    class Plugin:
        @condgan.hookimpl
        def register_conditioners(self):
            return [cls]

    condgan.register_plugin(Plugin(), name=f"{name}-plugin")
    config = GANConfig(image_shape=(1, 8, 8), latent_dim=4)
    config.generator.conditioner = name
    config.generator.backbone_options = {"widths": (8,)}
    generator = ckpt.build_generator(config).eval()
    generator.config = config
    return generator


def test_a_part_that_declares_itself_not_exportable_is_refused_by_name(tmp_path):
    generator = plugin_generator(lambda self, x, y: x + self.table(y), "lookup", not_exportable="it calls a remote service")
    for fmt in ("torchscript", "onnx"):
        if fmt == "onnx" and not _installed("onnx"):
            continue
        with pytest.raises(ExportError, match="the generator's conditioner 'lookup' .* cannot be exported: it calls a remote service"):
            export_generator(generator, tmp_path / "g", fmt)
    assert not (tmp_path / "g").exists()


def test_a_trace_that_does_not_follow_the_values_is_refused(tmp_path):
    def python_number(self, x, y):  # a Python float: the trace keeps the example's value as a constant
        return x + float(y.float().mean())

    def numpy_code(self, x, y):  # NumPy code: the trace keeps the example's values (and batch size)
        return x + torch.from_numpy(np.asarray(y.cpu().numpy(), dtype=np.float32))[:, None]

    for join, name, message in ((python_number, "python_number", "does not reproduce it on new inputs"),
                                (numpy_code, "numpy_code", "fails on another batch size")):
        generator = plugin_generator(join, name)
        with pytest.raises(ExportError, match=rf"the torchscript export of the generator \(conditioner '{name}' .* with backbone "
                                              rf"'mlp' .*\) {message}"):
            export_generator(generator, tmp_path / "g.pt", "torchscript")
        assert not (tmp_path / "g.pt").exists()


def test_a_part_that_fails_while_traced_is_named(tmp_path):
    def join(self, x, y):
        if torch.jit.is_tracing():
            raise RuntimeError("no tracing here")
        return x

    generator = plugin_generator(join, "shy")
    with pytest.raises(ExportError, match="the generator's conditioner 'shy' .* cannot be exported to torchscript: "
                                          "RuntimeError: no tracing here"):
        export_generator(generator, tmp_path / "g.pt", "torchscript")


def test_an_operator_onnx_lacks_is_refused_naming_the_parts(tmp_path):
    pytest.importorskip("onnx")
    generator = plugin_generator(lambda self, x, y: x * torch.vdot(self.table.weight[:, 0], self.table.weight[:, 0]), "vdot")
    with pytest.raises(ExportError, match=r"the generator \(conditioner 'vdot' .* with backbone 'mlp' .*\) cannot be exported "
                                          "to onnx: UnsupportedOperatorError: .*'aten::vdot'"):
        export_generator(generator, tmp_path / "g.onnx", "onnx")
    # TorchScript records any torch op
    assert export_generator(generator, tmp_path / "g.pt", "torchscript").max_abs_diff == 0


@pytest.mark.parametrize("fmt, package", [("onnx", "onnx"), ("safetensors", "safetensors")])
def test_an_export_format_whose_package_is_missing_is_one_line(run_dir, monkeypatch, fmt, package):
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    with pytest.raises(ExportError, match=f"export format '{fmt}' needs the package '{package}', which is not installed: "
                                          f"pip install {package}"):
        check_format(fmt)
    code, out, err = cli(["export", run_dir, "--format", fmt, "--out", run_dir / f"x.{fmt}"])
    assert code == 1 and out == "" and len(err.splitlines()) == 1 and "needs the package" in err
    assert not (run_dir / f"x.{fmt}").exists()
    code, _, err = cli(["export", run_dir, "--format", "keras"])
    assert code == 2 and "invalid choice: 'keras'" in err


def test_bad_safetensors_files_are_one_line(run_dir, tmp_path, monkeypatch):
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    good = tmp_path / "g.safetensors"
    assert cli(["export", run_dir, "--format", "safetensors", "--out", good])[0] == 0
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    cases = [
        ({**meta, "format": "something-else"}, "is not a condgan generator file (metadata format: 'something-else'"),
        ({k: v for k, v in meta.items() if k != "gan_config"}, "its metadata 'gan_config' is missing or not JSON"),
        ({**meta, "gan_config": "{not json"}, "its metadata 'gan_config' is missing or not JSON"),
        ({**meta, "gan_config": "[1, 2]"}, "'gan_config' must be a JSON object"),
        ({**meta, "version": "99"}, "has format version 99; this condgan reads up to 2"),
        ({**meta, "gan_config": json.dumps({**json.loads(meta["gan_config"]), "colour": 1})}, "unknown config key 'colour'"),
    ]
    for i, (bad_meta, message) in enumerate(cases):
        path = tmp_path / f"bad{i}.safetensors"
        save_file(tensors, str(path), metadata=bad_meta)
        with pytest.raises(CheckpointError, match=re.escape(message)):
            condgan.load_generator(path)
    wrong = dict(tensors)
    wrong.pop(next(iter(wrong)))
    save_file(wrong, str(tmp_path / "short.safetensors"), metadata=meta)
    with pytest.raises(CheckpointError, match="its generator weights do not fit the model its config builds"):
        condgan.load_generator(tmp_path / "short.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    code, _, err = cli(["sample", tmp_path / "junk.safetensors", "--per-class", 1, "--grid", tmp_path / "x.png", "--device", "cpu"])
    assert code == 1 and len(err.splitlines()) == 1 and "cannot be read as safetensors: truncated or corrupt" in err
    monkeypatch.setitem(sys.modules, "safetensors", None)
    with pytest.raises(CheckpointError, match="needs the package 'safetensors', which is not installed"):
        condgan.load_generator(good)


# -- the examples -------------------------------------------------------------------------------------
BLOCK_IMPORTS = ("import sys, runpy; sys.modules['torch'] = None; sys.modules['condgan'] = None; "
                 "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def test_onnx_example_samples_with_onnxruntime_alone(run_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    assert cli(["export", run_dir, "--format", "onnx", "--out", tmp_path / "g.onnx"])[0] == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", BLOCK_IMPORTS, str(EXAMPLES / "onnx_sample.py"), str(tmp_path / "g.onnx"),
                             "--classes", "three,7", "--per-class", "4", "--truncation", "0.5", "--out", str(tmp_path / "grid.png")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr  # with torch and condgan unimportable
    assert "4 rows x 2 columns (three, seven)" in result.stdout
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (2 * 10 + 2, 4 * 10 + 2) and np.asarray(grid).std() > 1


def test_torchscript_example_samples_without_condgan(run_dir, tmp_path):
    assert cli(["export", run_dir, "--format", "torchscript", "--out", tmp_path / "g.pt"])[0] == 0
    block_condgan = BLOCK_IMPORTS.replace("sys.modules['torch'] = None; ", "")
    result = subprocess.run([sys.executable, "-c", block_condgan, str(EXAMPLES / "torchscript_sample.py"), str(tmp_path / "g.pt"),
                             "--per-class", "2", "--out", str(tmp_path / "grid.png")],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size == (10 * 10 + 2, 2 * 10 + 2)
