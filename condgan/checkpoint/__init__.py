"""Checkpoints and the files a run writes: the file format and its checked reading (:mod:`.files`,
:mod:`.integrity`), configs as plain data (:mod:`.configs`) and the generator artifact
(:mod:`.generator`). See :mod:`.files` for what each file holds.

The names below load on first use, so that importing one submodule (``condgan.checkpoint.files``)
does not import the others.
"""

from ..faces import lazy_face

__getattr__, __dir__, __all__ = lazy_face(__name__, {
    ".files": ["CHECKPOINT_FORMAT", "GENERATOR_FORMAT", "FORMAT_VERSION", "CHECKPOINT_DIR", "LATEST", "GENERATOR_FILE", "CONFIG_FILE", "SAFETENSORS_SUFFIX", "CHECKPOINT_FIELDS", "GENERATOR_FIELDS", "COMPONENT_FIELDS", "atomic_write", "save_file", "save_checkpoint", "list_checkpoints", "latest_checkpoint", "resolve_checkpoint", "read_file", "upgrade", "resume_batch", "read_safetensors", "capture_rng_state", "restore_rng_state", "dataclass_from_dict"],
    ".integrity": ["CheckpointError"],
    ".configs": ["config_to_plain", "save_run_config", "data_config_to_plain", "check_plain", "gan_config_from_plain"],
    ".generator": ["build_generator", "check_output_kind", "generator_file", "load_generator", "saved_data", "saved_output"],
})
