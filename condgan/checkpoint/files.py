"""Checkpoint files: atomic writes, a ``latest`` pointer, reading with checks, RNG states.

A run directory holds ``checkpoints/step_0000300.pt`` files (the newest ``keep_last`` are kept),
``checkpoints/latest`` (a one-line text file naming the newest) and ``generator.pt`` (the generator
alone, for :func:`load_generator`). Every file is written to a temporary file in the same folder,
flushed to disk and renamed over its target, so a crash mid-write leaves the previous files intact.

Files are plain data for ``torch.load(weights_only=True)``: tensors, dicts, lists, tuples, strings,
numbers. A checkpoint (``format: "condgan-checkpoint"``) holds::

    gan_config, data_config,        GANConfig / DataConfig / TrainerConfig as dicts (components by
    trainer_config                  registered name); version 1 files (no data_config) are upgraded on read
    output                          what the generator makes (``OutputSpec.to_dict()``: image, vector, ...);
                                    files without it hold image models
    generator, discriminator, ema   state dicts (ema: None when EMA is off)
    opt_g, opt_d                    optimizer state dicts
    step, epoch, batch_in_epoch     the position; data_rng: the data-order generator's state at the
                                    start of that epoch; dataset_size; device_type (cpu, cuda)
    rng                             torch CPU, CUDA (all devices), numpy and python ``random`` states
    elapsed_s                       training time so far (the ``minutes`` budget counts it)

A generator file (``format: "condgan-generator"``) holds ``gan_config``, ``output``, ``generator`` and ``from_ema``.
Both hold ``data``, the training data's fingerprint (:mod:`condgan.data.fingerprint`), when the
trainer had one (data given as raw tensors has none).
The same content can live in a ``.safetensors`` file (``condgan export --format safetensors``): the
state dict as its tensors, and ``format``, ``version``, ``gan_config``, ``from_ema`` and ``step`` as
JSON strings in its metadata (the config's sequences read back as tuples); it is read without
pickle (:func:`read_safetensors`).

Both end with ``checksum``: ``"sha256:<hex>"`` over everything else they hold
(:func:`condgan.checkpoint.integrity.content_sha256`), verified by :func:`read_file`: a changed byte gives a
:class:`CheckpointError` naming the file. Files written before checksums existed have none and load
unverified.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from . import integrity as checks
from .integrity import CheckpointError

CHECKPOINT_FORMAT = "condgan-checkpoint"
GENERATOR_FORMAT = "condgan-generator"
FORMAT_VERSION = 2  # 2: the data section of its own (dataset, batch size and epochs left the model config)
CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
GENERATOR_FILE = "generator.pt"
CONFIG_FILE = "config.json"
SAFETENSORS_SUFFIX = ".safetensors"
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
# the entries each kind of file must hold (their types: integrity.FIELD_RULES)
CHECKPOINT_FIELDS = ("gan_config", "trainer_config", "generator", "discriminator", "ema", "opt_g", "opt_d", "step", "epoch",
                     "batch_in_epoch", "dataset_size", "data_rng", "rng", "elapsed_s")
GENERATOR_FIELDS = ("gan_config", "generator")

# GANConfig fields that name a registered component, and the component's kind
COMPONENT_FIELDS = {
    "generator.conditioner": "conditioner",
    "generator.backbone": "backbone",
    "discriminator.conditioner": "conditioner",
    "discriminator.backbone": "backbone",
    "loss": "loss",
    "augment": "augment",
}


# -- atomic files ---------------------------------------------------------------------------------
def atomic_write(path: str | Path, write: Callable[[Any], None]) -> Path:
    """Write ``path`` via ``write(binary_file)`` into a temporary file, fsync, then rename over ``path``.

    If ``write`` fails (or the process dies) the previous content of ``path`` is untouched and the
    temporary file is removed (when the process survives).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders; the rename is still atomic there
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_file(obj: Mapping[str, Any], path: str | Path) -> Path:
    """``torch.save(obj, path)`` atomically; a condgan file (one with ``format``) is moved to the CPU
    first and gets a ``checksum`` of its content (:func:`condgan.checkpoint.integrity.content_sha256`)."""
    if isinstance(obj, Mapping) and obj.get("format") in (CHECKPOINT_FORMAT, GENERATOR_FORMAT):
        obj = {k: v for k, v in _to_cpu(obj).items() if k != "checksum"}
        obj["checksum"] = checks.content_sha256(obj)
    return atomic_write(path, lambda f: torch.save(obj, f))


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu()
        # a view into a larger storage (a stacked group's weights, condgan.training.stacked) as its own
        # copy: torch.save writes a tensor's whole storage
        return obj.clone() if obj.untyped_storage().nbytes() > obj.numel() * obj.element_size() else obj
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


# -- run directories ------------------------------------------------------------------------------
def save_checkpoint(state: Mapping[str, Any], run_dir: str | Path, *, keep_last: int = 3) -> Path:
    """Write ``state`` as ``run_dir/checkpoints/step_<step>.pt``, point ``latest`` at it, prune old ones.

    Returns the checkpoint's path. Only files named ``step_*.pt`` are pruned (the ``keep_last``
    newest stay), and never the one ``latest`` names.
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    path = save_file(state, folder / f"step_{int(state['step']):07d}.pt")
    atomic_write(folder / LATEST, lambda f: f.write(f"{path.name}\n".encode()))
    for old in list_checkpoints(folder)[:-keep_last]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def list_checkpoints(folder: str | Path) -> list[Path]:
    """``step_*.pt`` files in ``folder``, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint that ``run_dir/checkpoints/latest`` names, or None if the run has none."""
    pointer = Path(run_dir) / CHECKPOINT_DIR / LATEST
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CheckpointError(f"{pointer} does not name a checkpoint (it holds binary data, not a file name like "
                              "step_0000100.pt)") from None
    if not _STEP_FILE.match(name):
        raise CheckpointError(f"{pointer} does not name a checkpoint (it holds {name[:80]!r})")
    path = pointer.parent / name
    if not path.is_file():
        raise CheckpointError(f"{pointer} names {name}, which is missing")
    return path


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file from a file, a run directory or a ``checkpoints`` folder (via ``latest``)."""
    path = Path(path)
    if path.is_dir():
        for run_dir in (path, path.parent):
            if (run_dir / CHECKPOINT_DIR / LATEST).is_file():
                return latest_checkpoint(run_dir)
        if (path / GENERATOR_FILE).is_file():
            return path / GENERATOR_FILE
        raise CheckpointError(f"{path} is a folder without checkpoints ({CHECKPOINT_DIR}/{LATEST} not found)")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def read_file(path: str | Path, *, formats: tuple[str, ...] = (CHECKPOINT_FORMAT, GENERATOR_FORMAT)) -> dict[str, Any]:
    """Load a condgan file with ``torch.load(weights_only=True)`` onto the CPU and check its format.

    Raises:
        CheckpointError: missing, truncated or corrupt, not plain data, not a condgan file of one
            of ``formats``, or written by a newer format version.
    """
    path = resolve_checkpoint(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): its write was cut short or the disk was full; use another "
                              "checkpoint of the run")
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives; anything else is damaged or foreign
        raise CheckpointError(f"{path} cannot be read: truncated or corrupt (not a PyTorch zip archive: cut short, "
                              "damaged, or another kind of file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path} is not a condgan checkpoint: it holds objects other than tensors and plain data "
                              f"({checks.first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - torch.load fails in many ways on a damaged file (RuntimeError, EOFError, KeyError, ...)
        raise CheckpointError(f"{path} cannot be read: truncated or corrupt ({type(exc).__name__}: "
                              f"{checks.first_line(exc)})") from None
    fmt = obj.get("format") if isinstance(obj, dict) else None
    if fmt not in formats:
        raise CheckpointError(f"{path} is not a condgan {' or '.join(formats)} file (format: {fmt!r})")
    if not isinstance(obj.get("version"), int) or obj["version"] > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {obj.get('version')!r}; this condgan reads up to {FORMAT_VERSION}")
    if "checksum" in obj:  # files written before checksums were added have none, and load unverified
        recorded = obj.pop("checksum")
        actual = checks.content_sha256(obj)
        if recorded != actual:
            raise CheckpointError(f"{path} is corrupt: its content does not match the checksum written with it "
                                  f"({str(recorded)[:80]!r}, content {actual[:20]}...); a byte changed on disk or in "
                                  "transfer: use another checkpoint of the run (or a backup)")
    checks.check_fields(obj, CHECKPOINT_FIELDS if fmt == CHECKPOINT_FORMAT else GENERATOR_FIELDS, path)
    return upgrade(obj, path)


def upgrade(obj: dict[str, Any], source: str | Path = "checkpoint") -> dict[str, Any]:
    """A file's content in the current format: version 1 kept ``dataset``, ``batch_size``,
    ``epochs`` and ``sample_every`` in the model config and the data root in the trainer config."""
    if obj["version"] >= FORMAT_VERSION:
        return obj
    model = dict(obj.get("gan_config") or {})
    moved = {k: model.pop(k) for k in ("dataset", "batch_size", "epochs", "sample_every") if k in model}
    obj = {**obj, "gan_config": model, "version": FORMAT_VERSION}
    if obj["format"] == CHECKPOINT_FORMAT:
        training = dict(obj.get("trainer_config") or {})
        data = {"name": moved.get("dataset", "mnist"), "root": training.pop("data_root", "./data"),
                "download": training.pop("download", True)}
        if "batch_size" in moved:
            training["batch_size"] = moved["batch_size"]
        if training.get("sample_every") is None and "sample_every" in moved:
            training["sample_every"] = moved["sample_every"]
        if all(training.get(k) is None for k in ("steps", "epochs", "minutes")) and "epochs" in moved:
            training["epochs"] = moved["epochs"]  # version 1 fell back to the model's epochs
        obj["trainer_config"], obj["data_config"] = training, data
    return obj


def resume_batch(state: Mapping[str, Any], world_size: int, batch_size: int, batches_per_epoch: int) -> tuple[int, str]:
    """The batch of the epoch to resume at, and a note when the layout changed ("" otherwise).

    A checkpoint written by N processes at batch B resumes with M processes at batch B' at the same
    image of the same epoch order: ``batch_in_epoch * N * B`` images were seen.
    """
    batch_in_epoch = int(state["batch_in_epoch"])
    saved = (int(state.get("world_size", 1)), int(state.get("batch_size", batch_size)))
    if saved == (world_size, batch_size):
        return batch_in_epoch, ""
    seen = batch_in_epoch * saved[0] * saved[1]
    note = (f"was written by {saved[0]} process(es) with batch {saved[1]}, this run has {world_size} x {batch_size}: "
            f"it continues from image {seen} of the epoch's order (the same weights, optimizers and data order; "
            "not bit-identical)")
    return min(seen // (world_size * batch_size), batches_per_epoch - 1), note


def read_safetensors(path: str | Path) -> dict[str, Any]:
    """A generator file's content from a ``.safetensors`` file, without pickle, its metadata checked.

    Raises:
        CheckpointError: missing, unreadable, not a condgan generator (format, version or config
            metadata missing or wrong), or the ``safetensors`` package is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"generator file {path} does not exist")
    try:
        from safetensors import safe_open
    except ImportError:
        raise CheckpointError(f"reading {path} needs the package 'safetensors', which is not installed: "
                              "pip install safetensors (or pip install 'condgan[export]')") from None
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types on a damaged file
        raise CheckpointError(f"{path} cannot be read as safetensors: truncated or corrupt ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    if metadata.get("format") != GENERATOR_FORMAT:
        raise CheckpointError(f"{path} is not a condgan generator file (metadata format: {metadata.get('format')!r}, "
                              f"expected {GENERATOR_FORMAT!r})")
    fields: dict[str, Any] = {}
    for key in ("version", "gan_config", "from_ema", "step"):
        try:
            fields[key] = json.loads(metadata[key])
        except (KeyError, ValueError):
            raise CheckpointError(f"{path}: its metadata {key!r} is missing or not JSON") from None
    version = fields["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {version!r}; this condgan reads up to {FORMAT_VERSION}")
    if not isinstance(fields["gan_config"], dict):
        raise CheckpointError(f"{path}: its metadata 'gan_config' must be a JSON object, got {type(fields['gan_config']).__name__}")
    fields["gan_config"] = _tuples(fields["gan_config"])
    if "output" in metadata:  # files written before output kinds have none: image models
        try:
            fields["output"] = json.loads(metadata["output"])
        except ValueError:
            raise CheckpointError(f"{path}: its metadata 'output' is not JSON") from None
        checks.check_fields({"output": fields["output"]}, (), path)
    return {"format": GENERATOR_FORMAT, **fields, "generator": tensors}


def _tuples(value: Any) -> Any:
    """JSON arrays as tuples, recursively: configs hold sequences as tuples (shapes, widths, betas, names)."""
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    return value


# -- RNG states ---------------------------------------------------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and numbers: torch CPU, CUDA (all devices, if any), numpy, python."""
    np_state = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": py_version, "internal": torch.tensor(py_internal, dtype=torch.int64), "gauss_next": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Set the global RNGs from :func:`capture_rng_state` output (CUDA states only where CUDA is present)."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        cuda_states = list(state["cuda"])[: torch.cuda.device_count()]
        for device, cuda_state in enumerate(cuda_states):
            torch.cuda.set_rng_state(cuda_state, device)
    npy = state["numpy"]
    np.random.set_state(("MT19937", npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))


def dataclass_from_dict(cls: type, data: Mapping[str, Any], source: str | Path) -> Any:
    """``cls(**data)`` for a config dataclass; unknown keys or bad values are a CheckpointError."""
    names = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(data, Mapping) or not all(isinstance(k, str) for k in data):
        raise CheckpointError(f"{source} is damaged: its {cls.__name__} must be a dict of field names")
    unknown = sorted(set(data) - names)
    if unknown:
        raise CheckpointError(f"{source}: unknown {cls.__name__} keys {unknown}; allowed: {sorted(names)}")
    try:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"{source}: its stored {cls.__name__} is invalid: {checks.first_line(exc)}") from None
