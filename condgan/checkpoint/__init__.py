"""Checkpoints and the files a run writes: the file format and its checked reading (:mod:`.files`,
:mod:`.integrity`), configs as plain data (:mod:`.configs`) and the generator artifact
(:mod:`.generator`). See :mod:`.files` for what each file holds.

The names below load on first use, so that importing one submodule (``condgan.checkpoint.files``)
does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    **dict.fromkeys(('CHECKPOINT_FORMAT', 'GENERATOR_FORMAT', 'FORMAT_VERSION', 'CHECKPOINT_DIR', 'LATEST', 'GENERATOR_FILE', 'CONFIG_FILE', 'SAFETENSORS_SUFFIX', 'CHECKPOINT_FIELDS', 'GENERATOR_FIELDS', 'COMPONENT_FIELDS', 'atomic_write', 'save_file', 'save_checkpoint', 'list_checkpoints', 'latest_checkpoint', 'resolve_checkpoint', 'read_file', 'upgrade', 'resume_batch', 'read_safetensors', 'capture_rng_state', 'restore_rng_state', 'dataclass_from_dict'), '.files'),
    **dict.fromkeys(('CheckpointError',), '.integrity'),
    **dict.fromkeys(('config_to_plain', 'save_run_config', 'data_config_to_plain', 'check_plain', 'gan_config_from_plain'), '.configs'),
    **dict.fromkeys(('build_generator', 'check_output_kind', 'generator_file', 'load_generator', 'saved_output'), '.generator'),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
