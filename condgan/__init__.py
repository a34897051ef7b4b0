"""condgan: a pluggable conditional-GAN library for PyTorch."""

from .augment import Augment, DiffAugment
from .backbones import DCGAN, MLP, Backbone, ResNet
from .checkpoint import CheckpointError, load_generator
from .conditioners import (
    AuxiliaryClassifierConditioner,
    BranchConditioner,
    ConditionalBatchNormConditioner,
    ConditionalLayer,
    Conditioner,
    EmbeddingConditioner,
    OneHotConditioner,
    ProjectionClassifierConditioner,
    ProjectionConditioner,
    VectorConditioner,
)
from .conditions import ConditionSpec
from .config import (
    ConfigKeyError,
    DataConfig,
    GANConfig,
    NetworkConfig,
    OptimizerConfig,
    RunConfig,
    TrainerConfig,
    apply_overrides,
)
from .data import Dataset, ImageSet
from .gan import GAN, build
from .hookspecs import hookimpl
from .losses import BCELoss, HingeLoss, LeastSquaresLoss, Loss, WassersteinGPLoss
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
from .resolve import load_dataset, run_config
from .training.guards import NonFiniteLossError, NonFiniteWeightsError
from .training.rundir import RunDirectoryError
from .training.trainer import Trainer
from .training.step import FastStep, make_step, train_step

__version__ = "0.1.0"

__all__ = [
    "Augment", "AuxiliaryClassifierConditioner", "BCELoss", "Backbone", "BranchConditioner", "CheckpointError",
    "ConditionSpec", "ConditionalBatchNormConditioner", "ConditionalDiscriminator", "ConditionalGenerator", "ConfigKeyError",
    "DataConfig", "Dataset", "DiffAugment", "ImageSet", "ResNet", "RunConfig", "run_config",
    "ConditionalLayer", "Conditioner", "DCGAN", "DuplicateComponentError", "EmbeddingConditioner", "FastStep", "GAN",
    "GANConfig", "HingeLoss", "LeastSquaresLoss", "Loss", "MLP", "NetworkConfig", "NonFiniteLossError", "NonFiniteWeightsError",
    "OneHotConditioner",
    "OptimizerConfig", "PluginError", "Preset", "ProjectionClassifierConditioner", "ProjectionConditioner", "RunDirectoryError", "Trainer", "TrainerConfig",
    "UnknownComponentError", "VectorConditioner", "WassersteinGPLoss", "apply_overrides", "build", "get_component",
    "hookimpl", "list_components", "load_dataset", "load_generator", "make_step", "register_plugin", "train_step",
    "unregister_plugin",
]
