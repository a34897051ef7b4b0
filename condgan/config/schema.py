"""Settings by concern: the model, the data and the training, each with one home.

- :class:`GANConfig` (section ``model``): what :func:`condgan.build` needs: the condition, image
  shape, both networks, the loss and the optimizers.
- :class:`DataConfig` (section ``data``): which dataset, where, and how its images are brought to
  the model's size.
- :class:`TrainerConfig` (section ``training``): budget, batch size, logging, checkpoints, EMA.
- :class:`RunConfig`: the three together; a preset returns one, a config file holds one, a run
  directory keeps the resolved one as ``config.json``.

Overrides use dotted keys (``model.generator.conditioner``, ``training.batch_size``); the section
may be left out where the key is found in one section only (``generator.conditioner``,
``batch_size``). One rule holds wherever overrides apply (``--set``, a config file, Python): a new
component (conditioner, backbone, loss, optimizer, dataset) starts from its own default options
unless options are given with it. Every value is checked when the config is made.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..conditions import KINDS as CONDITION_KINDS
from ..conditions import ConditionSpec
from .values import check_bool, check_choice, check_int, check_number, check_options, is_int, is_number

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
AUTOCAST_NAMES = ("bfloat16", "float16")
NONFINITE_POLICIES = ("stop", "skip")
BEST_METRICS = ("fid", "label_accuracy", "attribute_accuracy", "condition_rmse")
NOISE_KINDS = ("normal", "uniform")
FIT_MODES = ("crop", "pad", "stretch")
STORAGES = ("auto", "memory", "stream")
SECTIONS = ("model", "data", "training")
MAX_WIDTH = 65536  # latent_dim, image sides: a larger value is a typo, not a model (and would allocate gigabytes)
MOVED_KEYS = {"dataset": "data.name", "data_root": "data.root"}  # version 1 keys, for the error message
# torch.optim classes that cannot train a GAN step: sparse gradients only, or a closure per step
UNSUPPORTED_OPTIMIZERS = ("SparseAdam", "LBFGS")


def _component(options_field: str) -> dict[str, str]:
    """Field metadata: this field names a component whose options live in ``options_field``."""
    return {"options": options_field}


@dataclass
class NetworkConfig:
    """One network: its conditioner and backbone (registered names or classes) and their options."""

    conditioner: Any = field(default="embedding", metadata=_component("conditioner_options"))
    conditioner_options: dict[str, Any] = field(default_factory=dict)
    backbone: Any = field(default="mlp", metadata=_component("backbone_options"))
    backbone_options: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for name in ("conditioner", "backbone"):
            _check_component(name, getattr(self, name))
        check_options("conditioner_options", self.conditioner_options)
        check_options("backbone_options", self.backbone_options)


@dataclass
class OptimizerConfig:
    """An optimizer: a ``torch.optim`` class name (or class), its learning rate, other options, and
    a per-step schedule (see :mod:`condgan.training.optim`; empty: constant)."""

    name: Any = field(default="Adam", metadata=_component("options"))
    lr: float = 2e-4
    options: dict[str, Any] = field(default_factory=lambda: {"betas": (0.5, 0.999)})
    schedule: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        import torch

        from .schedule import check_schedule

        name = self.name
        cls = getattr(torch.optim, name, None) if isinstance(name, str) else name
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)) or getattr(cls, "__name__", "") in UNSUPPORTED_OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}: give a torch.optim class name (e.g. 'Adam', 'AdamW', 'SGD') "
                             f"or class; {', '.join(UNSUPPORTED_OPTIMIZERS)} cannot train a GAN step")
        check_number("optimizer lr", self.lr, low=0)
        check_options("optimizer options", self.options)
        check_options("optimizer schedule", self.schedule)
        check_schedule(self.schedule)


@dataclass
class GANConfig:
    """The model section: everything needed to build a conditional GAN and its optimizers.

    ``condition_kind``/``num_classes``/``condition_dim`` describe y (see
    :class:`~condgan.conditions.ConditionSpec`). ``output_kind`` names what G makes, a registered
    output kind (:mod:`condgan.outputs`): ``"image"`` (the default, and what a config without the
    field is) of ``image_shape`` (C, H, W), or ``"vector"`` of ``output_dim`` (D,) (``image_shape``
    is then None); ``output_options`` are the kind's own settings (a ``"table"``: its columns and
    fitted transforms, filled in by the ``table`` dataset). ``None`` for ``output_kind``, ``image_shape``, ``output_dim``, ``num_classes`` or
    ``condition_dim`` (and ``condition_kind``) means "the dataset's": the trainer fills them in from
    the data (:func:`fit_to_data`). ``class_names``
    name the classes or tags (from the dataset), so that samples can be asked for by name.

    Training methods: ``augment`` names a registered augmentation of D's inputs (e.g.
    ``"diffaugment"``; None: off) and ``augment_options`` are its keyword options; ``d_steps`` is
    the number of D updates per G update (n_critic; see :func:`condgan.training.step.train_step`).
    """

    condition_kind: str | None = "class"
    num_classes: int | None = 10
    condition_dim: int | None = None
    image_shape: tuple[int, int, int] | None = (1, 32, 32)
    output_kind: str | None = "image"
    output_dim: int | None = None
    output_options: dict[str, Any] = field(default_factory=dict)
    latent_dim: int = 100
    noise: str = "normal"
    generator: NetworkConfig = field(default_factory=NetworkConfig)
    discriminator: NetworkConfig = field(default_factory=NetworkConfig)
    loss: Any = field(default="lsgan", metadata=_component("loss_options"))
    loss_options: dict[str, Any] = field(default_factory=dict)
    g_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    d_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    pixel_range: tuple[float, float] = (-1.0, 1.0)
    class_names: tuple[str, ...] | None = None
    augment: Any = field(default=None, metadata=_component("augment_options"))
    augment_options: dict[str, Any] = field(default_factory=dict)
    d_steps: int = 1

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        check_choice("condition_kind", self.condition_kind, CONDITION_KINDS, optional=True)
        check_int("num_classes", self.num_classes, 1, MAX_WIDTH, optional=True)
        check_int("condition_dim", self.condition_dim, 1, MAX_WIDTH, optional=True)
        if self.image_shape is not None:
            shape = self.image_shape
            if (not isinstance(shape, (tuple, list)) or len(shape) != 3
                    or not all(is_int(s) and 1 <= s <= MAX_WIDTH for s in shape)):
                raise ValueError(f"image_shape must be None (the dataset's) or (C, H, W), three ints in [1, {MAX_WIDTH}], "
                                 f"got {shape!r}")
            self.image_shape = tuple(int(s) for s in shape)
        if self.output_kind is not None and (not isinstance(self.output_kind, str) or not self.output_kind):
            raise ValueError(f"output_kind must be None (the dataset's) or a registered output kind such as 'image' or "
                             f"'vector', got {self.output_kind!r}")
        check_int("output_dim", self.output_dim, 1, MAX_WIDTH, optional=True)
        check_options("output_options", self.output_options)
        if self.output_kind not in (None, "image") and self.image_shape is not None:
            raise ValueError(f"image_shape {self.image_shape} is for image outputs, and output_kind is {self.output_kind!r}: "
                             "set image_shape to None (null)")
        if self.output_kind == "image" and self.output_dim is not None:
            raise ValueError(f"output_dim ({self.output_dim}) is for vector outputs, and output_kind is 'image': "
                             "set output_dim to None (null), or output_kind to 'vector'")
        check_int("latent_dim", self.latent_dim, 1, MAX_WIDTH)
        check_choice("noise", self.noise, NOISE_KINDS)
        _check_component("loss", self.loss)
        check_options("loss_options", self.loss_options)
        if self.augment is not None:
            _check_component("augment", self.augment)
        check_options("augment_options", self.augment_options)
        check_int("d_steps", self.d_steps, 1, 100)
        for section in (self.generator, self.discriminator, self.g_optimizer, self.d_optimizer):
            if not dataclasses.is_dataclass(section):
                raise ValueError(f"a network or optimizer section must be a config object or a dict, got {section!r}")
        lo_hi = self.pixel_range
        if (not isinstance(lo_hi, (tuple, list)) or len(lo_hi) != 2 or not all(is_number(v) for v in lo_hi)
                or not lo_hi[0] < lo_hi[1]):
            raise ValueError(f"pixel_range must be two finite numbers (low, high) with low < high, e.g. (-1.0, 1.0), got {lo_hi!r}")
        self.pixel_range = (float(lo_hi[0]), float(lo_hi[1]))
        if self.class_names is not None:
            if isinstance(self.class_names, str) or not all(isinstance(n, str) for n in self.class_names):
                raise ValueError(f"class_names must be None or a list of strings, got {self.class_names!r}")
            self.class_names = tuple(self.class_names)
            if self.num_classes is not None and len(self.class_names) != self.num_classes:
                raise ValueError(f"{len(self.class_names)} class_names for num_classes={self.num_classes}")

    @property
    def spec(self) -> ConditionSpec:
        missing = [k for k in ("condition_kind", "output_kind") if getattr(self, k) is None]
        if self.output_kind == "image" and self.image_shape is None:
            missing.append("image_shape")
        if self.output_kind == "vector" and self.output_dim is None:
            missing.append("output_dim")
        if self.condition_kind in ("class", "multilabel") and self.num_classes is None:
            missing.append("num_classes")
        if self.condition_kind == "vector" and self.condition_dim is None:
            missing.append("condition_dim")
        if missing:
            raise ValueError(f"the model config leaves {', '.join(missing)} to the dataset: train it on a dataset "
                             "(the trainer fills them in) or set them")
        return ConditionSpec(self.condition_kind, self.num_classes, self.condition_dim)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GANConfig:
        """Rebuild a config from :meth:`to_dict` output; unknown keys are an error."""
        return apply_overrides(cls(), _flatten(data))


@dataclass
class DataConfig:
    """The data section: a registered dataset, its files, and how images reach the model's size.

    Args:
        name: a registered dataset (``condgan list dataset``) or a Dataset class.
        root: the folder (or file) holding it.
        split: which part to train on (``train``, ``test``, ... as the dataset offers).
        image_size: ``S`` or ``(H, W)`` to bring images to; None: the model's size when it has
            one, else the dataset's own.
        channels: 1 (grey) or 3 (RGB) to convert images to; None: the model's, else the dataset's.
        fit: how an image of another aspect ratio reaches ``image_size``: ``crop`` (resize the
            short side, centre-crop), ``pad`` (resize the long side, pad) or ``stretch``.
        options: the dataset's own options (e.g. ``attributes`` for CelebA).
        download: download missing files where the dataset can.
        storage: ``memory`` decodes the set once and keeps it (uint8) on the training device;
            ``stream`` decodes files in DataLoader workers, batch by batch (datasets of files:
            imagefolder, celeba); ``auto`` streams when the decoded set would exceed
            ``memory_budget_mb`` and the dataset can stream, else keeps it in memory.
        memory_budget_mb: the decoded size (MB) above which ``auto`` streams.
        workers: decoding processes of the streaming path (None: the CPUs, at most 8).
    """

    name: Any = field(default="mnist", metadata=_component("options"))
    root: str = "./data"
    split: str = "train"
    image_size: int | tuple[int, int] | None = None
    channels: int | None = None
    fit: str = "crop"
    options: dict[str, Any] = field(default_factory=dict)
    download: bool = True
    storage: str = "auto"
    memory_budget_mb: float = 4096.0
    workers: int | None = None

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        _check_component("dataset", self.name)
        check_choice("data storage", self.storage, STORAGES)
        check_number("memory_budget_mb", self.memory_budget_mb, low=0, low_open=True)
        check_int("data workers", self.workers, 0, 64, optional=True)
        if not isinstance(self.root, (str, Path)):
            raise ValueError(f"data root must be a path, got {self.root!r}")
        self.root = str(self.root)
        if not isinstance(self.split, str) or not self.split:
            raise ValueError(f"data split must be a name such as 'train' or 'test', got {self.split!r}")
        size = self.image_size
        if size is not None:
            sides = (size, size) if is_int(size) else size
            if not isinstance(sides, (tuple, list)) or len(sides) != 2 or not all(is_int(s) and 1 <= s <= MAX_WIDTH for s in sides):
                raise ValueError(f"image_size must be None, an int S or (H, W) with sides in [1, {MAX_WIDTH}], got {size!r}")
            self.image_size = int(size) if is_int(size) else (int(sides[0]), int(sides[1]))
        check_choice("data channels", self.channels, (1, 3), optional=True)
        check_choice("data fit", self.fit, FIT_MODES)
        check_options("data options", self.options)
        check_bool("data download", self.download)

    @property
    def size(self) -> tuple[int, int] | None:
        """``image_size`` as (H, W), or None."""
        if self.image_size is None:
            return None
        return (self.image_size, self.image_size) if is_int(self.image_size) else tuple(self.image_size)


@dataclass
class TrainerConfig:
    """The training section: budget, batch size, logging, checkpoints and optional extras.

    Budgets count the whole run (a resumed run continues towards them); training stops at the
    first one reached; at least one is needed to train.

    Args:
        steps: stop after this many steps (G + D updates).
        epochs: stop after this many passes over the dataset.
        minutes: stop after this much training time (the loop's wall-clock time, summed over resumes).
        batch_size: images per step (per process under torchrun).
        log_every: steps between ``on_log`` events (the loop's only host sync).
        sample_every: steps between sample grids (``on_sample``); 0: only at the end.
        checkpoint_every: steps between checkpoints; None: only at the end (and on SIGINT/SIGTERM).
        keep_last: how many periodic checkpoints to keep.
        ema_decay: keep an exponential moving average of G's weights with this decay (e.g. 0.999)
            and sample from it; None: off (as the reference).
        ema_start: BigGAN's EMA warm-up: for the first ``ema_start`` steps the average copies G's
            weights, from step ``ema_start`` on it averages them (0: from the first step).
        clip_grad_norm: clip each network's gradient norm to this value; None: off.
        autocast: ``"bfloat16"`` or ``"float16"`` autocast for the forward passes; None: off.
        compile: ``torch.compile`` the step's forward and backward passes: True (mode
            ``"default"``) or a mode name (``COMPILE_MODES``); False: eager.
        cuda_graph: capture the whole step as one CUDA graph (CUDA only; see
            ``training.FastStep``); None: on CUDA unless ``compile`` is set, an optimizer cannot be
            captured or a schedule changes what a graph cannot follow.
        seed: seeds the weights (when the trainer builds the GAN), noise, dropout and data order.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ...
        out_dir: the run directory (checkpoints, samples, TensorBoard); None: write nothing.
        loggers: names of registered loggers to run (``condgan list logger``).
        callbacks: names of registered callbacks to run (``condgan list callback``; see
            :mod:`condgan.training.events`): early stopping, custom schedules, anything event-driven.
        nonfinite: what a NaN or inf loss does: ``"stop"`` (default) stops training with
            :class:`~condgan.training.guards.NonFiniteLossError` at the next log or checkpoint step,
            before anything non-finite is saved; ``"skip"`` skips every update whose gradients
            are not finite and counts them (``skipped`` in the logged metrics). Under either policy,
            weights and optimizer states are checked before each checkpoint and ``generator.pt`` is
            written (``NonFiniteWeightsError``; one host sync per save, none in the loop).
        max_skipped_intervals: with ``nonfinite="skip"``, an interval between two log (or
            checkpoint) steps whose every update was skipped warns; this many such intervals in a
            row stop training (the run no longer trains).
        sync_batchnorm: under torch.distributed, convert the networks' ``nn.BatchNorm*`` layers to
            ``nn.SyncBatchNorm`` (CUDA only) so that their statistics span all processes' batches.
        process_group_timeout: under torch.distributed, seconds a process waits for the others in a
            collective (default 600) before a stalled or dead peer ends every process with one line
            (checkpoints are atomic, so ``latest`` stays valid); it must cover process 0's longest
            pause between steps (a checkpoint write).
        eval_every: every this many steps (a multiple of ``log_every``) and at the end, compute FID
            and label accuracy of ``eval_samples`` samples with the ``judge`` (the ``metrics``
            logger, added when this is set: :mod:`condgan.training.evaluation`); None: off.
        eval_samples: samples per evaluation (fixed noise; more than the judge's feature dimensions).
        judge: path of a judge file (``condgan train-classifier``) for ``eval_every``.
        best_metric: the metric that picks ``best.pt`` in the run directory: ``"fid"`` (lowest),
            ``"label_accuracy"`` or ``"attribute_accuracy"`` (highest), ``"condition_rmse"`` (lowest).
    """

    steps: int | None = None
    epochs: int | None = None
    minutes: float | None = None
    batch_size: int = 64
    log_every: int = 100
    sample_every: int = 400
    checkpoint_every: int | None = 2000
    keep_last: int = 3
    ema_decay: float | None = None
    ema_start: int = 0
    clip_grad_norm: float | None = None
    autocast: str | None = None
    compile: bool | str = False
    cuda_graph: bool | None = None
    seed: int = 0
    device: str = "auto"
    out_dir: str | None = None
    loggers: tuple[str, ...] = ("console", "grid", "tensorboard")
    callbacks: tuple[str, ...] = ()
    nonfinite: str = "stop"
    max_skipped_intervals: int = 3
    sync_batchnorm: bool = False
    process_group_timeout: float = 600.0
    eval_every: int | None = None
    eval_samples: int = 1000
    judge: str | None = None
    best_metric: str = "fid"

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        check_int("max_skipped_intervals", self.max_skipped_intervals, 1)
        check_number("process_group_timeout", self.process_group_timeout, low=0, low_open=True)
        for name in ("steps", "epochs", "checkpoint_every"):
            check_int(name, getattr(self, name), 1, optional=True)
        check_int("sample_every", self.sample_every, 0)
        check_int("batch_size", self.batch_size, 1, MAX_WIDTH * 16)
        check_int("log_every", self.log_every, 1)
        check_int("keep_last", self.keep_last, 1)
        check_int("seed", self.seed, 0, 2**63 - 1)
        check_int("ema_start", self.ema_start, 0)
        check_number("minutes", self.minutes, low=0, low_open=True, optional=True)
        check_number("ema_decay", self.ema_decay, low=0, high=1, low_open=True, high_open=True, optional=True)
        check_number("clip_grad_norm", self.clip_grad_norm, low=0, low_open=True, optional=True)
        check_choice("autocast", self.autocast, AUTOCAST_NAMES, optional=True)
        check_choice("compile", self.compile, (False, True, *COMPILE_MODES))
        check_choice("nonfinite", self.nonfinite, NONFINITE_POLICIES)
        check_bool("sync_batchnorm", self.sync_batchnorm)
        check_choice("cuda_graph", self.cuda_graph, (True, False), optional=True)
        if not isinstance(self.device, str):
            raise ValueError(f"device must be a name such as 'auto', 'cpu' or 'cuda:0', got {self.device!r}")
        for what in ("loggers", "callbacks"):
            names = getattr(self, what)
            names = (names,) if isinstance(names, str) else names
            if not isinstance(names, (tuple, list)) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"{what} must be a list of {what[:-1]} names, got {names!r}")
            setattr(self, what, tuple(names))
        check_int("eval_samples", self.eval_samples, 2)
        check_choice("best_metric", self.best_metric, BEST_METRICS)
        if self.judge is not None:
            if not isinstance(self.judge, (str, Path)):
                raise ValueError(f"judge must be None or the path of a judge file, got {self.judge!r}")
            self.judge = str(self.judge)
        if self.eval_every is not None:
            check_int("eval_every", self.eval_every, 1)
            if self.eval_every % self.log_every:
                raise ValueError(f"eval_every must be None or a multiple of log_every ({self.log_every}), got {self.eval_every!r}")
            if self.judge is None:
                raise ValueError("eval_every needs judge=PATH, a judge file (condgan train-classifier --dataset NAME --out PATH)")
            if "metrics" not in self.loggers:
                self.loggers = (*self.loggers, "metrics")
        if self.out_dir is not None:
            if not isinstance(self.out_dir, (str, Path)):
                raise ValueError(f"out_dir must be None or a path, got {self.out_dir!r}")
            self.out_dir = str(self.out_dir)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunConfig:
    """A whole run: the model, the data and the training sections.

    Example:
        >>> run = run_config("mnist_mlp", {"batch_size": 128, "data.root": "data"})
        >>> run.training.batch_size, run.data.name
        (128, 'mnist')
    """

    model: GANConfig = field(default_factory=GANConfig)
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainerConfig = field(default_factory=TrainerConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigKeyError(f"unknown config section(s) {unknown}; sections are {', '.join(SECTIONS)}")
        return apply_overrides(cls(), _flatten(data))


def _check_component(what: str, value: Any) -> None:
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{what} must be a registered name or a class, got ''")
    elif not callable(value):
        raise ValueError(f"{what} must be a registered name or a class, got {value!r}")


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping) and not key.endswith(("options", "schedule")):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_keys(obj: Any, prefix: str = "") -> list[str]:
    """Every dotted key that :func:`apply_overrides` accepts for ``obj``."""
    keys = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            keys += config_keys(value, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _resolve_section_keys(config: RunConfig, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys of a RunConfig with the section written out (``batch_size`` -> ``training.batch_size``)."""
    fields_of = {s: {f.name for f in dataclasses.fields(getattr(config, s))} for s in SECTIONS}
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigKeyError(f"unknown config key {key!r}: keys are dotted strings")
        head = key.split(".", 1)[0]
        if head in SECTIONS:
            out[key] = value
            continue
        homes = [s for s in SECTIONS if head in fields_of[s]]
        if len(homes) != 1:
            if homes:
                raise ConfigKeyError(f"config key {key!r} is ambiguous: write {' or '.join(f'{s}.{key}' for s in homes)}")
            if key in MOVED_KEYS:
                raise ConfigKeyError(f"config key {key!r} is now {MOVED_KEYS[key]!r}")
            raise unknown_key(key, all_keys(config), sectionless=True)
        out[f"{homes[0]}.{key}"] = value
    return out


def all_keys(config: RunConfig | None = None) -> list[str]:
    """Every key of a run config, with its section (``condgan config keys``)."""
    return config_keys(config if config is not None else RunConfig())


def apply_overrides(config: Any, overrides: Mapping[str, Any]) -> Any:
    """A copy of ``config`` with dotted keys set, e.g. ``{"generator.conditioner": "onehot"}``.

    ``config`` is any config section or a :class:`RunConfig` (whose keys may leave out a section
    where the key is found in one only). Setting a component (conditioner, backbone, loss,
    optimizer name, dataset name) to another one resets its options to {} unless the overrides
    give them too. Keys inside an ``*_options`` or ``schedule`` dict may be anything (the
    component checks them); any other unknown key raises :class:`ConfigKeyError` listing the
    allowed keys. Every section is checked afterwards (one-line ``ValueError``).
    """
    if not isinstance(overrides, Mapping):
        raise TypeError(f"overrides must be a mapping of dotted keys to values, got {type(overrides).__name__}")
    if isinstance(config, RunConfig):
        overrides = _resolve_section_keys(config, overrides)
    config = copy.deepcopy(config)
    for key, value in overrides.items():
        if not isinstance(key, str):
            raise ConfigKeyError(f"unknown config key {key!r}: keys are dotted strings; allowed: {', '.join(config_keys(config))}")
        *path, last = key.split(".")
        target: Any = config
        try:
            for part in path:
                target = target[part] if isinstance(target, dict) else _field(target, part)
            if isinstance(target, dict):
                target[last] = value
                continue
            current = _field(target, last)
            if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
                # a whole section given as a dict: a fresh section with those keys set
                value = apply_overrides(type(current)(), _flatten(value))
            elif dataclasses.is_dataclass(current) and not isinstance(value, type(current)):
                raise ValueError(f"config key {key!r} is a section: give a dict of its keys or a "
                                 f"{type(current).__name__}, got {value!r}")
            elif isinstance(current, dict) and not (value is None or isinstance(value, Mapping)):
                raise ValueError(f"config key {key!r} takes a dict (or None for {{}}), got {value!r}")
            elif isinstance(current, dict) and value is None:
                value = {}
            elif isinstance(value, list) and isinstance(current, tuple):
                value = tuple(value)
            options_field = _field_metadata(target, last).get("options")
            options_key = ".".join([*path, options_field]) if options_field else ""
            if options_field and value != current and not any(k == options_key or k.startswith(options_key + ".")
                                                              for k in overrides):
                setattr(target, options_field, {})  # a new component starts from its own defaults
            setattr(target, last, copy.deepcopy(value))
        except ConfigKeyError as exc:  # from a nested section given as a dict
            raise ConfigKeyError(f"in {key!r}: {exc}") from None
        except (KeyError, AttributeError):
            leaf = _leaf_on_path(config, path)
            if leaf is not None:  # a table where a value goes: [model.latent_dim] value = 5
                name, value_there = leaf
                raise ValueError(f"config key {name!r} takes a single value (like {value_there!r}), got a table "
                                 f"holding {key[len(name) + 1:]!r}: write {name.rsplit('.', 1)[-1]} = VALUE") from None
            raise unknown_key(key, config_keys(config)) from None
    check_config(config)
    return config


def unknown_key(key: str, allowed: list[str], *, sectionless: bool = False) -> ConfigKeyError:
    """The one-line error of an unknown key: the closest allowed keys, and where the full list is."""
    names = allowed + ([k.split(".", 1)[1] for k in allowed if "." in k] if sectionless else [])
    prefix, _, last = key.rpartition(".")
    siblings = {k.rpartition(".")[2]: k for k in names if k.rpartition(".")[0] == prefix}  # same section, last part misspelled
    close = [siblings[t] for t in difflib.get_close_matches(last, list(siblings), n=2, cutoff=0.7)]
    close = close or difflib.get_close_matches(key, names, n=2, cutoff=0.8)
    hint = f"; did you mean {' or '.join(repr(k) for k in close)}?" if close else ""
    return ConfigKeyError(f"unknown config key {key!r}{hint} ('condgan config keys' lists every key)")


def _leaf_on_path(config: Any, path: list[str]) -> tuple[str, Any] | None:
    """(dotted key, its value) of the first plain value met along ``path``, or None."""
    target: Any = config
    for i, part in enumerate(path):
        try:
            target = target[part] if isinstance(target, dict) else _field(target, part)
        except (KeyError, AttributeError, TypeError):
            return None
        if not (dataclasses.is_dataclass(target) or isinstance(target, dict)):
            return ".".join(path[: i + 1]), target
    return None


def check_config(config: Any) -> None:
    """Run every section's ``check()`` (innermost first): one-line ``ValueError`` for a bad value."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            check_config(value)
    if hasattr(config, "check"):
        config.check()


def _field_metadata(obj: Any, name: str) -> Mapping[str, Any]:
    return next(f.metadata for f in dataclasses.fields(obj) if f.name == name)


class ConfigKeyError(KeyError):
    """A config key that does not exist."""

    def __str__(self) -> str:
        return str(self.args[0])


def _field(obj: Any, name: str) -> Any:
    if not dataclasses.is_dataclass(obj) or name not in {f.name for f in dataclasses.fields(obj)}:
        raise KeyError(name)
    return getattr(obj, name)
