"""Configs as plain data: the model, data and training sections (:mod:`.schema`), their values'
checks (:mod:`.values`), learning-rate schedules (:mod:`.schedule`) and config files (:mod:`.files`).

Nothing here asks the registry: a component is named by a string (or given as a class) and resolved
where a config is turned into objects (:mod:`condgan.resolve`, :mod:`condgan.models`).
"""

from .files import read_config_file, to_toml
from .schedule import check_schedule, scheduled
from .schema import (AUTOCAST_NAMES, BEST_METRICS, COMPILE_MODES, FIT_MODES, MAX_WIDTH, MOVED_KEYS, NOISE_KINDS,
                     NONFINITE_POLICIES, SECTIONS, STORAGES, UNSUPPORTED_OPTIMIZERS, ConfigKeyError, DataConfig, GANConfig,
                     NetworkConfig, OptimizerConfig, RunConfig, TrainerConfig, all_keys, apply_overrides, check_config,
                     config_keys)
from .values import check_bool, check_choice, check_int, check_number, check_options, construct, is_int, is_number

__all__ = ["AUTOCAST_NAMES", "BEST_METRICS", "COMPILE_MODES", "FIT_MODES", "MAX_WIDTH", "MOVED_KEYS", "NOISE_KINDS",
           "NONFINITE_POLICIES", "SECTIONS", "STORAGES", "UNSUPPORTED_OPTIMIZERS", "ConfigKeyError", "DataConfig",
           "GANConfig", "NetworkConfig", "OptimizerConfig", "RunConfig", "TrainerConfig", "all_keys", "apply_overrides",
           "check_bool", "check_choice", "check_config", "check_int", "check_number", "check_options", "check_schedule",
           "config_keys", "construct", "is_int", "is_number", "read_config_file", "scheduled", "to_toml"]
