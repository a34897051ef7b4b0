"""Checks of what a checkpoint, generator or classifier file holds, before anything uses it.

A file read with ``torch.load(weights_only=True)`` can hold nothing but tensors and plain data, yet
plain data can still be wrong: a tensor of another shape or dtype than the one it is loaded into (a
fused Adam step reads past the end of an ``exp_avg`` of the wrong size and crashes the process), NaN
weights, a group of another size, a config that asks for 10^9 latent dimensions. Every loader in
condgan runs these checks first and raises :class:`CheckpointError` with one line naming the file
and what is wrong:

- :func:`check_state_dict`: a model's state dict (keys, shapes, dtypes, finite values);
- :func:`check_optimizer_state`: an optimizer's state dict against the optimizer it is loaded into
  (group count, parameters per group, each state tensor's shape and dtype against its parameter,
  scalars such as ``step``, finite values and hyperparameters);
- :func:`check_model_size`: the parameter count of the model a stored config builds, counted on
  the ``meta`` device (nothing allocated) and refused above :func:`max_parameters`;
- :func:`check_fields`: the top-level keys of a file and their types;
- :func:`content_sha256`: the checksum stored in each checkpoint and generator file (``checksum``),
  over everything the file holds, verified by :func:`condgan.checkpoint.read_file`.

:func:`nonfinite_names` is the save-time check of the Trainer (weights and optimizer states must be
finite before a file is written); it reads one flag back from the device, so it runs at save time only.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from ..errors import UnknownComponentError

#: Parameters a model rebuilt from a file may have (G and D each); ``CONDGAN_MAX_PARAMETERS`` overrides it.
MAX_PARAMETERS = 1_000_000_000

# optimizer state entries that are one number per parameter tensor, and those shaped like it
_SCALAR_STATE = ("step", "mu_product", "eta", "mu")
_PARAMETER_SHAPED_STATE = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "acc_delta",
                           "exp_inf", "sum", "ax", "prev", "step_size", "grad_avg")


class CheckpointError(RuntimeError):
    """A file that is not a readable condgan checkpoint (missing, truncated, corrupt, foreign, wrong
    version, or holding values that do not fit the model it describes)."""


def first_line(exc: BaseException | str, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (its type name when the message is empty)."""
    try:
        text = exc if isinstance(exc, str) else str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ must not hide the error itself
        text = ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return "" if isinstance(exc, str) else type(exc).__name__


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}{'...' if len(text) > 60 else ''}"


def _all_finite(tensors: list[Tensor]) -> list[bool]:
    """Per tensor: True when it holds no NaN or inf (non-float tensors are finite). One host sync."""
    floats = [(i, t) for i, t in enumerate(tensors) if t.is_floating_point() or t.is_complex()]
    ok = [True] * len(tensors)
    if floats:
        flags = torch.stack([torch.isfinite(t).all().to("cpu") for _, t in floats]).tolist()
        for (i, _), flag in zip(floats, flags):
            ok[i] = bool(flag)
    return ok


def nonfinite_names(named: Iterable[tuple[str, Tensor]]) -> list[str]:
    """Names of the tensors in ``named`` that hold NaN or inf (one host sync for all of them)."""
    named = [(name, t) for name, t in named if isinstance(t, Tensor)]
    return [name for (name, _), ok in zip(named, _all_finite([t for _, t in named])) if not ok]


# -- model state dicts ----------------------------------------------------------------------------------
def check_state_dict(module: nn.Module, state: Any, what: str, source: str | Path) -> None:
    """Raise CheckpointError unless ``state`` can be loaded into ``module`` exactly.

    The same keys, and for each a tensor of the same shape and dtype as the module's, with finite values.

    Args:
        module: the model it will be loaded into (any device; nothing is changed).
        state: the stored state dict.
        what: what it is, for the message (e.g. ``"generator"``).
        source: the file, for the message.
    """
    own = module.state_dict()
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: its {what} weights must be a dict of tensors, got {_describe(state)}")
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own), key=str)
    if missing or unexpected:
        parts = ([f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}"] if missing else []) + (
            [f"unexpected {unexpected[:4]}{' ...' if len(unexpected) > 4 else ''}"] if unexpected else [])
        raise CheckpointError(f"{source}: its {what} weights do not fit the model its config builds (keys: {'; '.join(parts)})")
    for key, mine in own.items():
        theirs = state[key]
        if not isinstance(theirs, Tensor):
            raise CheckpointError(f"{source}: its {what} weight {key!r} must be a tensor, got {_describe(theirs)}")
        if theirs.shape != mine.shape or theirs.dtype != mine.dtype:
            raise CheckpointError(f"{source}: its {what} weight {key!r} is {_describe(theirs)}, but the model its "
                                  f"config builds has {_describe(mine)}")
    bad = nonfinite_names((key, state[key]) for key in own)
    if bad:
        raise CheckpointError(f"{source}: its {what} weights hold NaN or inf ({', '.join(bad[:3])}"
                              f"{' ...' if len(bad) > 3 else ''}); the run had diverged or the file is damaged")


# -- optimizer state dicts -----------------------------------------------------------------------------
def _finite_number(value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, numbers.Real):
        return math.isfinite(value)
    if isinstance(value, (tuple, list)):
        return all(_finite_number(v) for v in value)
    return True


def check_optimizer_state(optimizer: torch.optim.Optimizer, state: Any, what: str, source: str | Path,
                          module: nn.Module | None = None) -> None:
    """Raise CheckpointError unless ``state`` (an optimizer state dict) fits ``optimizer``.

    Checked: the number of parameter groups and of parameters in each, that each saved parameter
    index is used once, that every state entry belongs to one of them, that scalars (``step``,
    ``mu_product``, ...) are single finite numbers >= 0 where they count steps, that moments
    (``exp_avg``, ``exp_avg_sq``, ``momentum_buffer``, ...) have their parameter's shape and dtype,
    that any other state tensor broadcasts to its parameter's shape (Adafactor's row and column
    variances), and that every tensor and numeric hyperparameter is finite (``lr`` >= 0).
    ``module`` (optional) names the parameters in the messages.
    """
    names = {id(p): n for n, p in module.named_parameters()} if module is not None else {}
    where = f"{source}: its {what} state"
    if not isinstance(state, Mapping) or not isinstance(state.get("param_groups"), list) or not isinstance(state.get("state"), Mapping):
        raise CheckpointError(f"{where} must be an optimizer state dict (a dict with 'state' and 'param_groups'), "
                              f"got {_describe(state)}")
    groups, own_groups = state["param_groups"], optimizer.param_groups
    if len(groups) != len(own_groups):
        raise CheckpointError(f"{where} has {len(groups)} parameter group(s), the optimizer has {len(own_groups)}")
    param_of: dict[Any, Tensor] = {}
    for g, (group, own) in enumerate(zip(groups, own_groups)):
        if not isinstance(group, Mapping) or not isinstance(group.get("params"), list):
            raise CheckpointError(f"{where}: parameter group {g} must be a dict with a 'params' list, got {_describe(group)}")
        ids = group["params"]
        if len(ids) != len(own["params"]):
            raise CheckpointError(f"{where}: parameter group {g} holds {len(ids)} parameters, the optimizer's holds "
                                  f"{len(own['params'])}")
        for index, param in zip(ids, own["params"]):
            if isinstance(index, bool) or not isinstance(index, int) or index in param_of:
                raise CheckpointError(f"{where}: parameter group {g} names parameter {index!r}, which is not a "
                                      "whole number used once")
            param_of[index] = param
        lr = group.get("lr")
        if isinstance(lr, Tensor):
            lr = float(lr.reshape(-1)[0]) if lr.numel() == 1 else None
        if not isinstance(lr, numbers.Real) or isinstance(lr, bool) or not math.isfinite(lr) or lr < 0:
            raise CheckpointError(f"{where}: parameter group {g} has lr {group.get('lr')!r}; a finite number >= 0 is needed")
        for key, value in group.items():
            if key != "params" and not (_finite_number(value) if not isinstance(value, Tensor) else not nonfinite_names([(key, value)])):
                raise CheckpointError(f"{where}: parameter group {g} has {key} = {value!r}, which is not finite")
    tensors: list[tuple[str, Tensor]] = []
    for index, slots in state["state"].items():
        if index not in param_of:
            raise CheckpointError(f"{where} holds an entry for parameter {index!r}, which no parameter group names")
        if not isinstance(slots, Mapping):
            raise CheckpointError(f"{where} for parameter {index} must be a dict, got {_describe(slots)}")
        param = param_of[index]
        for key, value in slots.items():
            label = names.get(id(param))
            name = f"parameter {index}{f' ({label})' if label else ''} {key!r}"
            if not isinstance(value, Tensor):
                if not _finite_number(value) or (key == "step" and not (isinstance(value, numbers.Real) and value >= 0)):
                    raise CheckpointError(f"{where}: {name} is {_describe(value)}; a finite number is needed")
                continue
            if key in _SCALAR_STATE:
                if value.numel() != 1 or (key != "step" and not value.is_floating_point()):
                    raise CheckpointError(f"{where}: {name} must be a single number, got {_describe(value)}")
                if key == "step" and value.numel() == 1 and bool(value.reshape(-1)[0] < 0):
                    raise CheckpointError(f"{where}: {name} is negative")
            elif key in _PARAMETER_SHAPED_STATE:
                if value.shape != param.shape or value.dtype != param.dtype:
                    raise CheckpointError(f"{where}: {name} is {_describe(value)}, but its parameter is "
                                          f"{_describe(param)}; they must match")
            elif not (value.dim() == 0 or (value.dim() == param.dim() and all(a in (1, b) for a, b in zip(value.shape, param.shape)))) \
                    or not value.is_floating_point():
                raise CheckpointError(f"{where}: {name} is {_describe(value)}, which does not fit its parameter "
                                      f"({_describe(param)})")
            tensors.append((name, value))
    bad = nonfinite_names(tensors)
    if bad:
        raise CheckpointError(f"{where} holds NaN or inf ({', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}); "
                              "the run had diverged or the file is damaged")


# -- sizes -----------------------------------------------------------------------------------------------
def max_parameters() -> int:
    """The largest model a file may describe: ``CONDGAN_MAX_PARAMETERS`` or :data:`MAX_PARAMETERS`."""
    text = os.environ.get("CONDGAN_MAX_PARAMETERS")
    if text is None:
        return MAX_PARAMETERS
    try:
        return int(float(text))
    except ValueError:
        raise ValueError(f"CONDGAN_MAX_PARAMETERS must be a number, got {text!r}") from None


_INIT_FUNCTIONS = frozenset({"normal_", "uniform_", "trunc_normal_", "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_",
                             "xavier_normal_", "orthogonal_", "sparse_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
                             "fill_", "zero_"})


class _SkipInit(TorchFunctionMode):
    """Skip in-place initialisation of meta tensors (their values do not exist; some of these ops
    take a second or two the first time they run on the meta device)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in _INIT_FUNCTIONS:
            target = args[0] if args else kwargs.get("tensor")
            if isinstance(target, Tensor) and target.is_meta:
                return target
        return func(*args, **kwargs)


def count_parameters(build: Callable[[], nn.Module]) -> int | None:
    """Parameters and buffers of the model ``build()`` makes, built on the ``meta`` device (no memory
    used, no random number drawn). None when the model cannot be built there (e.g. a plugin reads a
    value back in its constructor); errors of unknown components propagate.

    Example:
        >>> count_parameters(lambda: torch.nn.Linear(10**6, 10**6))  # 4 TB as float32: nothing allocated
        1000001000000
    """
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"), _SkipInit():
            model = build()
    except UnknownComponentError:
        raise
    except Exception:  # noqa: BLE001 - the real build reports its own error
        return None
    return sum(t.numel() for t in model.parameters()) + sum(t.numel() for t in model.buffers())


def check_model_size(build: Callable[[], nn.Module], what: str, source: str | Path) -> None:
    """Raise CheckpointError when the model a stored config builds would exceed :func:`max_parameters`
    (counted before anything is allocated)."""
    count, limit = count_parameters(build), max_parameters()
    if count is not None and count > limit:
        raise CheckpointError(f"{source}: its config asks for a {what} of {count:,} parameters and buffers "
                              f"({count * 4 / 1e9:,.1f} GB as float32), above condgan's limit of {limit:,}; the file "
                              "is damaged or foreign (set CONDGAN_MAX_PARAMETERS to allow larger models)")


# -- top-level fields ----------------------------------------------------------------------------------
def is_count(value: Any, low: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


FIELD_RULES: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "gan_config": ("a dict (the model config)", lambda v: isinstance(v, dict)),
    "trainer_config": ("a dict (the trainer config)", lambda v: isinstance(v, dict)),
    "generator": ("a dict of tensors", lambda v: isinstance(v, dict)),
    "discriminator": ("a dict of tensors", lambda v: isinstance(v, dict)),
    "ema": ("None or a dict of tensors", lambda v: v is None or isinstance(v, dict)),
    "opt_g": ("an optimizer state dict", lambda v: isinstance(v, dict)),
    "opt_d": ("an optimizer state dict", lambda v: isinstance(v, dict)),
    "step": ("a whole number >= 0", is_count),
    "epoch": ("a whole number >= 0", is_count),
    "batch_in_epoch": ("a whole number >= 0", is_count),
    "dataset_size": ("a whole number >= 1", lambda v: is_count(v, 1)),
    "data_rng": ("a uint8 tensor (a generator state)", lambda v: isinstance(v, Tensor) and v.dtype == torch.uint8 and v.dim() == 1),
    "rng": ("a dict of RNG states", lambda v: isinstance(v, dict) and {"torch", "numpy", "python"} <= set(v)),
    "elapsed_s": ("a finite number >= 0", lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
                  and math.isfinite(v) and v >= 0),
    "world_size": ("a whole number >= 1", lambda v: is_count(v, 1)),
    "batch_size": ("a whole number >= 1", lambda v: is_count(v, 1)),
    "rank_rng": ("None or a list of RNG states", lambda v: v is None or isinstance(v, list)),
    "device_type": ("a device type name", lambda v: isinstance(v, str)),
    "from_ema": ("True or False", lambda v: isinstance(v, bool)),
    "output": ("a dict (the output spec)", lambda v: isinstance(v, dict) and isinstance(v.get("kind"), str)),
}
OPTIONAL_FIELDS = ("world_size", "batch_size", "rank_rng", "device_type", "output")


def check_fields(obj: Mapping[str, Any], required: Iterable[str], source: str | Path) -> None:
    """Raise CheckpointError unless ``obj`` holds every ``required`` key, and each known key (required
    or optional) has the type :data:`FIELD_RULES` gives it."""
    for key in required:
        if key not in obj:
            raise CheckpointError(f"{source} is damaged or incomplete: it has no {key!r} entry")
    for key, value in obj.items():
        rule = FIELD_RULES.get(key)
        if rule is not None and not rule[1](value):
            raise CheckpointError(f"{source} is damaged: its {key!r} must be {rule[0]}, got {_describe(value)}")


# -- checksums -------------------------------------------------------------------------------------------
def _feed(digest, obj: Any) -> None:
    if isinstance(obj, Tensor):
        t = obj.detach()
        t = (t if t.device.type == "cpu" else t.cpu()).contiguous()
        digest.update(f"T{t.dtype}{tuple(t.shape)}|".encode())
        if t.numel():
            digest.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    elif isinstance(obj, Mapping):
        digest.update(f"D{len(obj)}|".encode())
        for key, value in obj.items():
            _feed(digest, key)
            _feed(digest, value)
    elif isinstance(obj, (list, tuple)):
        digest.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)}|".encode())
        for value in obj:
            _feed(digest, value)
    else:  # None, bool, int, float, str: repr is exact for each
        digest.update(f"{type(obj).__name__}:{obj!r}|".encode())


def content_sha256(obj: Any) -> str:
    """SHA-256 over a file's content: every tensor's dtype, shape and bytes, every key, number and
    string, with the structure (dict order included) that holds them; ``"sha256:<hex>"``.

    Computed on what ``torch.load`` returns, so it catches a changed byte wherever it changes what
    loads (tensor data, a number, a key); a byte in the zip container that changes nothing that
    loads (padding) goes unnoticed and does no harm.
    """
    digest = hashlib.sha256()
    _feed(digest, obj)
    return "sha256:" + digest.hexdigest()
