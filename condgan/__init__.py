"""condgan: a pluggable conditional-GAN library for PyTorch."""

from .backbones import MLP, Backbone
from .checkpoint import CheckpointError, load_generator
from .conditioners import ConditionalLayer, Conditioner, EmbeddingConditioner, OneHotConditioner
from .conditions import ConditionSpec
from .config import GANConfig, NetworkConfig, OptimizerConfig, apply_overrides
from .gan import GAN, build
from .hookspecs import hookimpl
from .losses import BCELoss, LeastSquaresLoss, Loss
from .models import ConditionalDiscriminator, ConditionalGenerator
from .plugins import (
    DuplicateComponentError,
    PluginError,
    UnknownComponentError,
    get_component,
    list_components,
    register_plugin,
    unregister_plugin,
)
from .presets import Preset
from .trainer import Trainer, TrainerConfig
from .training import train_step

__version__ = "0.1.0"

__all__ = [
    "Backbone", "BCELoss", "CheckpointError", "ConditionSpec", "ConditionalDiscriminator", "ConditionalGenerator",
    "ConditionalLayer", "Conditioner", "DuplicateComponentError", "EmbeddingConditioner", "GAN", "GANConfig",
    "LeastSquaresLoss", "Loss", "MLP", "NetworkConfig", "OneHotConditioner", "OptimizerConfig", "PluginError", "Preset",
    "Trainer", "TrainerConfig", "UnknownComponentError", "apply_overrides", "build", "get_component", "hookimpl",
    "list_components", "load_generator", "register_plugin", "train_step", "unregister_plugin",
]
