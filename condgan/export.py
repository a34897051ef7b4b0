"""Export a trained generator for use without condgan: TorchScript, ONNX, safetensors.

- **TorchScript** (``.torchscript.pt``) and **ONNX** (``.onnx``): a traced module taking
  ``(z, y)`` and returning images ``(B, C, H, W)`` in the run's pixel range
  (``GANConfig.pixel_range``, usually [-1, 1]), in eval mode (batch norm's running statistics, no
  dropout; spectral norms folded into the weights). The batch size is free. ``z`` is float32
  ``(B, latent_dim)``; ``y`` is int64 ``(B,)`` class indices, or float32 ``(B, K)`` tags/vectors.
  Each file carries a JSON description (key ``condgan``: latent size, noise, condition, class
  names, pixel range, the model config): TorchScript as the extra file ``condgan.json``, ONNX as
  metadata. Both are checked against the eager generator on fresh inputs before they are kept.
- **safetensors** (``.safetensors``): the generator's weights with its config as JSON metadata;
  :func:`condgan.load_generator` reads it back without pickle.

Every part either exports or is refused with one line naming it: a conditioner or backbone may
set ``not_exportable`` (a reason) to refuse, and a part that fails to trace, or whose trace does
not reproduce the eager output on new inputs (Python control flow on values, NumPy code), is named
in the error.

Example:
    >>> G = condgan.load_generator("runs/a")
    >>> export_generator(G, "runs/a/generator.onnx", "onnx").max_abs_diff < 1e-4
    True
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .checkpoint import FORMAT_VERSION, GENERATOR_FORMAT, atomic_write, config_to_plain

EXPORTED_FORMAT = "condgan-exported-generator"
METADATA_KEY = "condgan"
TORCHSCRIPT_METADATA = "condgan.json"
ONNX_OPSET = 17
#: the largest |exported - eager| accepted on the probe batch (float32 on the CPU)
TOLERANCE = 1e-4


@dataclass(frozen=True)
class ExportFormat:
    """An export format: its name, the file suffix it writes, and the packages it needs."""

    name: str
    suffix: str
    packages: tuple[str, ...]
    description: str


FORMATS = {
    "torchscript": ExportFormat("torchscript", ".torchscript.pt", (), "a traced TorchScript module (z, y) -> images"),
    "onnx": ExportFormat("onnx", ".onnx", ("onnx",), "an ONNX graph (z, y) -> images"),
    "safetensors": ExportFormat("safetensors", ".safetensors", ("safetensors",), "weights + config, loadable without pickle"),
}


class ExportError(ValueError):
    """A generator, part or format that cannot be exported (one line naming it)."""


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_generator` wrote.

    Args:
        path: the file.
        format: its format's name.
        max_abs_diff: the largest |exported - eager| on the probe batch (None: not checked, e.g.
            ONNX without onnxruntime; safetensors is checked by loading it back).
        checked_by: what ran the exported file for that check.
    """

    path: Path
    format: str
    max_abs_diff: float | None
    checked_by: str | None


def check_format(name: str) -> ExportFormat:
    """The :class:`ExportFormat` called ``name``, or an :class:`ExportError` when it is unknown or its
    package is not installed (naming the package and the install command)."""
    if name not in FORMATS:
        raise ExportError(f"unknown export format {name!r}; formats: {', '.join(FORMATS)}")
    fmt = FORMATS[name]
    for package in fmt.packages:
        try:
            importlib.import_module(package)
        except ImportError:
            raise ExportError(f"export format {name!r} needs the package {package!r}, which is not installed: "
                              f"pip install {package} (or pip install 'condgan[export]')") from None
    return fmt


def default_path(source: str | Path, fmt: str) -> Path:
    """Where ``condgan export`` writes by default: ``generator<suffix>`` in the run directory (or beside the file)."""
    source = Path(source)
    folder = source if source.is_dir() else source.parent
    if folder.name == "checkpoints":
        folder = folder.parent
    return folder / f"generator{FORMATS[fmt].suffix}"


# -- parts --------------------------------------------------------------------------------------------
def _part_name(module: nn.Module) -> str:
    from .backbones import Backbone
    from .conditioners import Conditioner

    kind = "conditioner" if isinstance(module, Conditioner) else "backbone" if isinstance(module, Backbone) else "layer"
    return f"{kind} {getattr(module, 'name', type(module).__name__)!r} ({type(module).__module__}.{type(module).__qualname__})"


def _parts(generator: nn.Module) -> list[nn.Module]:
    """The generator's conditioner, backbone, and their conditional layers."""
    from .conditioners import ConditionalLayer

    layers = [m for m in generator.modules() if isinstance(m, ConditionalLayer)]
    return [generator.conditioner, generator.backbone, *layers]


def check_exportable(generator: nn.Module) -> None:
    """An :class:`ExportError` naming the first part that declares ``not_exportable``."""
    for part in _parts(generator):
        reason = getattr(part, "not_exportable", None)
        if reason:
            raise ExportError(f"the generator's {_part_name(part)} cannot be exported: {reason}")


def _failing_part(exc: BaseException, generator: nn.Module) -> str:
    """The innermost condgan part whose code raised ``exc`` (from the traceback), or both main parts."""
    parts = {id(p): p for p in _parts(generator)}
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        owner = frame.f_locals.get("self")
        if id(owner) in parts:
            found = parts[id(owner)]
    if found is not None:
        return f"the generator's {_part_name(found)}"
    return f"the generator ({_part_name(generator.conditioner)} with {_part_name(generator.backbone)})"


def fold_parametrizations(module: nn.Module) -> nn.Module:
    """Replace every parametrized weight of ``module`` (a copy: it is changed in place) by its
    current value as a plain parameter; eval-mode spectral norm becomes the weight it divides.

    ``torch.nn.utils.parametrize`` gives each parametrized module a class of its own, which a
    deep copy shares with the original; the copy gets a fresh one first, so that folding the copy
    leaves the original untouched.
    """
    from torch.nn.utils import parametrize

    module.eval()
    for sub in list(module.modules()):
        if parametrize.is_parametrized(sub):
            cls = type(sub)
            sub.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            for name in list(sub.parametrizations.keys()):
                with torch.no_grad():
                    parametrize.remove_parametrizations(sub, name, leave_parametrized=True)
    return module


class ExportedGenerator(nn.Module):
    """The module that is traced: ``(z, y) -> images`` in the pixel range, without boundary checks.

    Args:
        generator: a :class:`~condgan.models.ConditionalGenerator`; it is copied (float32, CPU) and
            kept in eval mode, with its parametrizations (spectral norm) folded into plain weights.
    """

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = fold_parametrizations(copy.deepcopy(generator).float().cpu().requires_grad_(False))
        self.eval()

    def train(self, mode: bool = True) -> ExportedGenerator:
        """Always eval: exporters restore a module's mode after tracing, and this one must stay in eval."""
        return super().train(False)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.generator(z, y, check=False)


def description(generator: nn.Module) -> dict[str, Any]:
    """The JSON description stored in TorchScript and ONNX files (what a user needs to feed them)."""
    config = getattr(generator, "config", None)
    spec = generator.spec
    names = getattr(config, "class_names", None)
    return {
        "format": EXPORTED_FORMAT, "version": FORMAT_VERSION, "inputs": ["z", "y"], "outputs": ["images"],
        "latent_dim": generator.latent_dim, "noise": generator.noise,
        "condition": {"kind": spec.kind, "num_classes": spec.num_classes, "dim": spec.dim,
                      "dtype": "int64" if spec.kind == "class" else "float32"},
        "class_names": list(names) if names else None,
        "image_shape": list(generator.image_shape),
        "pixel_range": list(getattr(config, "pixel_range", (-1.0, 1.0))),
        "gan_config": config_to_plain(config) if config is not None else None,
    }


def probe_inputs(generator: nn.Module, batch: int, seed: int) -> tuple[Tensor, Tensor]:
    """A CPU batch (z, y) of ``batch`` random inputs that fit the generator's condition."""
    rng = torch.Generator().manual_seed(seed)
    z = generator.sample_noise(batch, "cpu", rng)
    spec = generator.spec
    if spec.kind == "class":
        y = torch.randint(0, spec.num_classes, (batch,), generator=rng)
    elif spec.kind == "multilabel":
        y = torch.randint(0, 2, (batch, spec.num_classes), generator=rng).float()
    else:
        y = torch.randn(batch, spec.dim, generator=rng)
    return z, y


@torch.no_grad()
def _check(run, wrapper: ExportedGenerator, path: Path, fmt: str, label: str) -> float:
    """Run the exported file on a fresh probe batch; an ExportError unless it matches the eager output."""
    z, y = probe_inputs(wrapper.generator, 5, seed=1)  # another batch size and values than the trace's
    expected = wrapper(z, y)
    g = wrapper.generator
    parts = f"the generator ({_part_name(g.conditioner)} with {_part_name(g.backbone)})"
    try:
        got = run(z, y)
    except Exception as exc:  # noqa: BLE001 - a runtime refusing the exported graph
        path.unlink(missing_ok=True)
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise ExportError(f"the {fmt} export of {parts} fails on another batch size ({label}: {type(exc).__name__}: {first}): "
                          "a part fixes the batch size or a value while tracing; rewrite it with torch ops "
                          "that keep the batch dimension free, or set not_exportable on it") from None
    diff = float((got - expected).abs().max()) if got.shape == expected.shape else float("inf")
    if not diff <= TOLERANCE:
        path.unlink(missing_ok=True)
        raise ExportError(f"the {fmt} export of {parts} does not reproduce it on new inputs ({label}: max |diff| {diff:.3g} "
                          f"> {TOLERANCE}): a part uses Python control flow on values or non-torch code, which tracing "
                          "cannot follow; rewrite it with torch ops or set not_exportable on it")
    return diff


# -- formats ------------------------------------------------------------------------------------------
def _trace(wrapper: ExportedGenerator, fmt: str, action) -> Any:
    """Run ``action(example_inputs)`` (a trace or an ONNX export), naming the failing part on error."""
    example = probe_inputs(wrapper.generator, 2, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings on shape checks, deprecation notes; the result is checked
        try:
            return action(example)
        except Exception as exc:  # noqa: BLE001 - tracing and ONNX conversion fail in many ways
            part = _failing_part(exc, wrapper.generator)
            message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise ExportError(f"{part} cannot be exported to {fmt}: {type(exc).__name__}: {message}") from None


def export_torchscript(generator: nn.Module, path: str | Path) -> ExportResult:
    """A traced TorchScript module ``(z, y) -> images``, with :func:`description` as ``condgan.json``."""
    path = Path(path)
    check_exportable(generator)
    wrapper = ExportedGenerator(generator)
    traced = _trace(wrapper, "torchscript", lambda example: torch.jit.trace(wrapper, example, check_trace=False))
    extra = {TORCHSCRIPT_METADATA: json.dumps(description(generator))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.save/load are deprecated in favour of torch.export
        atomic_write(path, lambda f: torch.jit.save(traced, f, _extra_files=extra))
        loaded = torch.jit.load(str(path))
    diff = _check(lambda z, y: loaded(z, y), wrapper, path, "torchscript", "torch.jit.load")
    return ExportResult(path, "torchscript", diff, "torch.jit.load")


def export_onnx(generator: nn.Module, path: str | Path, *, opset: int = ONNX_OPSET) -> ExportResult:
    """An ONNX graph ``(z, y) -> images`` with a dynamic batch axis and :func:`description` as metadata.

    Uses torch's TorchScript-based exporter (``dynamo=False``), which needs no package beyond
    ``onnx``; the file is checked with onnxruntime when it is installed.
    """
    check_format("onnx")
    import onnx

    path = Path(path)
    check_exportable(generator)
    wrapper = ExportedGenerator(generator)
    buffer = io.BytesIO()
    axes = {"z": {0: "batch"}, "y": {0: "batch"}, "images": {0: "batch"}}

    def export(example):
        torch.onnx.export(wrapper, example, buffer, dynamo=False, input_names=["z", "y"], output_names=["images"],
                          dynamic_axes=axes, opset_version=opset, do_constant_folding=True)

    _trace(wrapper, "onnx", export)
    model = onnx.load_from_string(buffer.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(description(generator))
    model.producer_name = "condgan"
    onnx.checker.check_model(model)
    atomic_write(path, lambda f: f.write(model.SerializeToString()))
    try:
        import onnxruntime
    except ImportError:
        return ExportResult(path, "onnx", None, None)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # errors come back as exceptions, not as log lines
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(z, y):
        return torch.from_numpy(session.run(["images"], {"z": z.numpy(), "y": y.numpy()})[0])

    diff = _check(run, wrapper, path, "onnx", "onnxruntime")
    return ExportResult(path, "onnx", diff, "onnxruntime")


def export_safetensors(generator: nn.Module, path: str | Path, *, step: int | None = None,
                       from_ema: bool | None = None) -> ExportResult:
    """The generator's weights (its state dict, as saved in ``generator.pt``) with its config as
    JSON metadata; :func:`condgan.load_generator` reads it back without pickle."""
    check_format("safetensors")
    from safetensors.torch import save

    from .checkpoint import load_generator

    path = Path(path)
    config = getattr(generator, "config", None)
    if config is None:
        raise ExportError("a safetensors export stores the generator's config: this generator has no .config "
                          "(load it with condgan.load_generator, or set generator.config to its GANConfig)")
    tensors = {key: value.detach().cpu().contiguous().clone() for key, value in generator.state_dict().items()}
    metadata = {"format": GENERATOR_FORMAT, "version": str(FORMAT_VERSION), "gan_config": json.dumps(config_to_plain(config)),
                "from_ema": json.dumps(from_ema), "step": json.dumps(step), "output": json.dumps(generator.output.to_dict())}
    atomic_write(path, lambda f: f.write(save(tensors, metadata=metadata)))
    wrapper = ExportedGenerator(generator)
    loaded = load_generator(path)
    diff = _check(lambda z, y: loaded(z, y, check=False), wrapper, path, "safetensors", "condgan.load_generator")
    return ExportResult(path, "safetensors", diff, "condgan.load_generator")


def export_generator(generator: nn.Module, path: str | Path, fmt: str, **options: Any) -> ExportResult:
    """Export ``generator`` to ``path`` in the format ``fmt`` (``torchscript``, ``onnx``, ``safetensors``).

    Raises:
        ExportError: an unknown format, a missing package, or a part that cannot be exported.
    """
    check_format(fmt)
    writer = {"torchscript": export_torchscript, "onnx": export_onnx, "safetensors": export_safetensors}[fmt]
    return writer(generator, path, **options)
