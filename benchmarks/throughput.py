"""Step-throughput benchmarks: condgan's training step against the reference loop and a matmul ceiling.

``python benchmarks/step_throughput.py --device cpu`` prints tables and JSON. This module lives in
``benchmarks/``, outside the installed package: it is tooling for the source tree, not library code.

What is timed
-------------
- **condgan**: :class:`~condgan.training.step.FastStep` with :func:`~condgan.training.optim.fast_optimizer_options`
  (the path the Trainer uses), on batches drawn from a device-resident uint8 dataset of 60,000
  images of the model's shape (random pixels: a step's work does not depend on their values).
- **reference**: ``benchmarks/reference_loop.py``, a faithful re-implementation of the reference
  loop (its DataLoader with per-image PIL resize, NumPy noise, ``.item()`` and a print per step),
  on MNIST from ``--data-root``, or on synthetic images of MNIST's shape when MNIST is absent
  (said in the output).
- **matmul ceiling**: the matrix products of one step alone. Every ``mm``/``addmm``/``bmm`` that one
  step dispatches is recorded with its shapes, strides and dtype, and replayed as bare calls on
  random tensors laid out the same way (on CUDA, as one CUDA graph), with the same threads. Two
  sets: *full*, recorded from the plain autograd step, which does the reference's work (every
  Linear's forward, weight gradient and input gradient, D's weight gradients in G's update
  included); *executed*, recorded from condgan's step, which skips D's weight gradients in G's
  update and, where only D's learned code needs one, the image columns' input gradient of D's first
  layer, and judges real and fake batches in one pass (products of 2B rows) where D allows it.
  "% of ceiling" is against the full set (the issue's definition); "% of executed" against the
  matmuls condgan actually runs (fewer and larger, so their bare replay runs at a higher rate).

FLOP convention
---------------
Counted analytically from the built model's ``nn.Linear`` layers: a Linear of ``in -> out`` at batch
``B`` costs ``2*B*in*out`` forward and twice that backward (weight gradient plus input gradient),
so 3x the forward; G is run once per step and D three times (on the fakes for G's update, on the
real batch and the fakes for D's). Bias adds, norms, activations, embeddings and the optimizer
are not counted. ``mnist_mlp`` at batch 64: G step 1.077, D step 0.810, total 1.887 GFLOP
(REFERENCE.md: about 1.08 + 0.81 = 1.89). GFLOP/s is this count over the measured time.

Timing
------
Each contender (condgan, ceilings, reference) is warmed up, calibrated to run at least
``min_time`` seconds per round, then timed for ``repeats`` rounds; the rounds interleave the
contenders, so a change in machine load hits all of them alike. Reported: the median time per
step over the rounds, the fastest and slowest round, and steps/s = 1 / median. CUDA runs are
timed with CUDA events after a synchronize.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import itertools
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode

from condgan.config import GANConfig, apply_overrides
from condgan.data import TensorBatches
from condgan.gan import GAN
from condgan.layers import batch_independent
from condgan.plugins import get_component
from condgan.training.step import FastStep, train_step
from condgan.training.optim import fast_optimizer_options

aten = torch.ops.aten
REFERENCE_LOOP = Path(__file__).resolve().parent / "reference_loop.py"
DEFAULT_BATCH_SIZES = (64, 128, 256, 512, 1024, 2048, 4096)
#: (section, batch size, what must hold) for the issue's targets; checked when measured.
TARGETS = (
    ("cpu", "speedup_vs_reference", "batch 64", 2.5),
    ("cpu", "pct_of_ceiling", "batch 64", 90.0),
    ("cpu", "pct_of_ceiling", "batch >= 256", 90.0),
    ("cuda", "speedup_vs_reference", "batch 64", 20.0),
)


# -- FLOPs ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepFlops:
    """Matmul FLOPs of one training step, by the convention of this module's docstring."""

    generator_step: float
    discriminator_step: float

    @property
    def total(self) -> float:
        return self.generator_step + self.discriminator_step


def linear_flops(gan: GAN, batch_size: int) -> StepFlops:
    """Analytic matmul FLOPs of one step from the model's Linear layers (3x forward per pass).

    Example:
        >>> round(linear_flops(build("mnist_mlp"), 64).total / 1e9, 3)
        1.887
    """
    def forward(net: nn.Module) -> float:
        return sum(2.0 * batch_size * m.in_features * m.out_features for m in net.modules() if isinstance(m, nn.Linear))

    g, d = forward(gan.generator), forward(gan.discriminator)
    return StepFlops(generator_step=3 * (g + d), discriminator_step=3 * 2 * d)


# -- recording and replaying a step's matmuls -----------------------------------------------------------
_MATMULS = (aten.mm.default, aten.addmm.default, aten.bmm.default, aten.baddbmm.default)


@dataclass(frozen=True)
class TensorLayout:
    """Shape, strides and dtype of a tensor argument (enough to rebuild one laid out the same way)."""

    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype

    def make(self, device: torch.device) -> Tensor:
        """A tensor of random values with this layout on ``device``."""
        numel = 1 + sum((s - 1) * st for s, st in zip(self.size, self.stride)) if all(self.size) else 0
        return torch.randn(numel, device=device).to(self.dtype).as_strided(self.size, self.stride)


@dataclass(frozen=True)
class MatmulCall:
    """One recorded matrix product: the aten op and its arguments' layouts (or plain values)."""

    op: Any
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...] = ()

    @property
    def flops(self) -> float:
        """2*m*k*n (times the batch for bmm), read from the two matrix arguments."""
        a, b = (self.args[0], self.args[1]) if self.op in (aten.mm.default, aten.bmm.default) else (self.args[1], self.args[2])
        batch = a.size[0] if len(a.size) == 3 else 1
        return 2.0 * batch * a.size[-2] * a.size[-1] * b.size[-1]


class _MatmulRecorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[MatmulCall] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _MATMULS:
            layout = lambda a: TensorLayout(tuple(a.shape), tuple(a.stride()), a.dtype) if isinstance(a, Tensor) else a  # noqa: E731
            self.calls.append(MatmulCall(func, tuple(layout(a) for a in args), tuple(sorted(kwargs.items()))))
        return func(*args, **kwargs)


def record_matmuls(fn: Callable[[], Any]) -> list[MatmulCall]:
    """The matrix products that ``fn()`` dispatches (forward and backward), in order."""
    recorder = _MatmulRecorder()
    with recorder:
        fn()
    return recorder.calls


class MatmulReplay:
    """Recorded matmuls as bare calls on random tensors of the same layouts: ``run(n)`` does n steps' worth.

    On CUDA the calls of one step are captured once as a CUDA graph and ``run`` replays it, so the
    ceiling is not limited by Python or launch overhead.
    """

    def __init__(self, calls: Sequence[MatmulCall], device: torch.device):
        self.device = torch.device(device)
        self.flops = sum(c.flops for c in calls)
        self.calls = [(c.op, [a.make(self.device) if isinstance(a, TensorLayout) else a for a in c.args], dict(c.kwargs))
                      for c in calls]
        self._graph = None
        if self.device.type == "cuda":
            self._call_all()  # warm-up: cuBLAS handles and workspaces before capture
            torch.cuda.synchronize(self.device)
            self._graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self._graph):
                self._call_all()

    def _call_all(self) -> None:
        for op, args, kwargs in self.calls:
            op(*args, **kwargs)

    def run(self, n: int) -> None:
        for _ in range(n):
            if self._graph is not None:
                self._graph.replay()
            else:
                self._call_all()


# -- counting ops / kernels per step ---------------------------------------------------------------------
class _OpCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


_LAUNCH_CALLS = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch",
                 "cudaMemcpyAsync", "cudaMemsetAsync")


def count_per_step(run: Callable[[int], None], device: torch.device, steps: int = 3) -> dict[str, float]:
    """Work items one step issues. CPU: aten ops dispatched (each runs as one or more CPU kernels);
    CUDA: host-side launch calls (kernels, graph launches, copies) and device kernels, from torch.profiler."""
    run(6 if device.type == "cuda" else 1)  # lazy state, and FastStep's warm-up and graph capture, outside the count
    if device.type != "cuda":
        counter = _OpCounter()
        with counter:
            run(steps)
        return {"aten_ops_per_step": counter.count / steps}
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run(steps)
        torch.cuda.synchronize(device)
    launches = kernels = 0
    for event in prof.events():
        if event.name in _LAUNCH_CALLS:
            launches += 1
        elif event.device_type == torch.autograd.DeviceType.CUDA:
            kernels += 1
    return {"launch_calls_per_step": launches / steps, "device_kernels_per_step": kernels / steps}


# -- timing -------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """Seconds per step, one value per round, and how many steps each round ran."""

    per_step: list[float]
    steps_per_round: int
    warmup_s: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.per_step)

    def summary(self) -> dict[str, Any]:
        med = self.median
        return {
            "steps_per_s": 1.0 / med,
            "ms_per_step": med * 1e3,
            "ms_min": min(self.per_step) * 1e3,
            "ms_max": max(self.per_step) * 1e3,
            "spread_pct": 100.0 * (max(self.per_step) - min(self.per_step)) / med,
            "rounds": len(self.per_step),
            "steps_per_round": self.steps_per_round,
            "warmup_s": self.warmup_s,
        }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[int], None], n: int, device: torch.device) -> float:
    """Seconds that ``run(n)`` takes (CUDA: events around it, after a synchronize)."""
    _synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run(n)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    start_s = time.perf_counter()
    run(n)
    return time.perf_counter() - start_s


def time_interleaved(runners: Mapping[str, Callable[[int], None]], device: torch.device, *, repeats: int,
                     min_time: float, warmup: int) -> dict[str, Timing]:
    """Warm up and calibrate each runner (``run(n)`` does n steps), then time them in interleaved rounds."""
    if device.type == "cuda":
        warmup = max(warmup, 6)  # FastStep's eager warm-up steps and its capture happen here, not in a timed run
    steps: dict[str, int] = {}
    warmup_s: dict[str, float] = {}
    for name, run in runners.items():
        warmup_s[name] = first = _timed(run, 1, device)
        if warmup > 1 and (first < min_time or device.type == "cuda"):  # a slow step is warm after one
            warmup_s[name] += _timed(run, warmup - 1, device)
        n, elapsed = 1, _timed(run, 1, device)
        while elapsed < min_time / 4 and n < 1 << 16:
            n *= 2
            elapsed = _timed(run, n, device)
        steps[name] = max(1, math.ceil(n * min_time / max(elapsed, 1e-9)))
    per_step: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            per_step[name].append(_timed(run, steps[name], device) / steps[name])
    return {name: Timing(per_step[name], steps[name], warmup_s[name]) for name in runners}


# -- what is timed --------------------------------------------------------------------------------------
def synthetic_data(config: GANConfig, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """n uint8 images of the config's shape and conditions of its kind (random values), on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *config.image_shape), dtype=torch.uint8, generator=gen)
    spec = config.spec
    if spec.kind == "class":
        labels = torch.randint(0, spec.num_classes, (n,), generator=gen)
    elif spec.kind == "multilabel":
        labels = torch.randint(0, 2, (n, spec.num_classes), generator=gen).float()
    else:
        labels = torch.randn(n, spec.dim, generator=gen)
    return images, labels


def plain_step(gan: GAN, real: Tensor, y_real: Tensor, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer) -> None:
    """The straightforward eager step: the reference's work (D's weight gradients in G's update included)."""
    G, D, loss = gan.generator, gan.discriminator, gan.loss
    z = G.sample_noise(real.shape[0], real.device)
    y_fake = gan.spec.sample_like(y_real)
    opt_g.zero_grad()
    fake = G(z, y_fake, check=False)
    score, aux = D.judge(fake, y_fake, check=False)
    if getattr(loss, "needs_real_scores_for_generator", False):  # a relativistic loss: D on the real batch too
        g_loss = loss.generator_loss(score, D.judge(real, y_real, check=False)[0].detach())
    else:
        g_loss = loss.generator_loss(score)
    g_loss = g_loss + (0 if aux is None else aux)
    g_loss.backward()
    opt_g.step()
    opt_d.zero_grad()
    # The reference's autograd computes the input gradient of D's whole first-layer input (the joined
    # input needs one for the embedding's columns); condgan's D.judge computes only the columns that
    # need it, unless the images themselves ask for a gradient, as these throwaway leaves do.
    real_in, fake_in = real.detach().requires_grad_(), fake.detach().requires_grad_()
    real_score, real_aux = D.judge(real_in, y_real, check=False)
    fake_score, fake_aux = D.judge(fake_in, y_fake, check=False)
    d_loss = loss.discriminator_loss(real_score, fake_score)
    for extra in (real_aux, fake_aux, loss.penalty(D, real, fake.detach(), y_real, y_fake)):
        if extra is not None:
            d_loss = d_loss + extra
    d_loss.backward()
    opt_d.step()


@dataclass
class Workload:
    """A model and a device-resident dataset; ``runner(kind)`` gives a ``run(n)`` that trains n steps.

    kinds: ``"fast"`` (FastStep, fast optimizers: the default path), ``"plain"`` (:func:`plain_step`,
    default Adam), ``"train_step"`` (:func:`~condgan.training.step.train_step`, ``adam`` options).
    """

    config: GANConfig
    batch_size: int
    device: torch.device
    dataset_size: int = 60000
    seed: int = 0
    images: Tensor = field(init=False, repr=False)
    labels: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        n = max(self.dataset_size, 2 * self.batch_size)
        images, labels = synthetic_data(self.config, n, self.seed)
        self.images, self.labels = images.to(self.device), labels.to(self.device)

    def new_gan(self) -> GAN:
        torch.manual_seed(self.seed)
        return GAN(self.config).to(self.device).train()

    def batches(self) -> Iterable[tuple[Tensor, Tensor]]:
        batches = TensorBatches(self.images, self.labels, self.batch_size, device=self.device,
                                pixel_range=self.config.pixel_range, drop_last=True,
                                generator=torch.Generator(self.device).manual_seed(self.seed))
        return itertools.chain.from_iterable(itertools.repeat(batches))  # a new order each epoch

    def runner(self, kind: str = "fast", *, adam: Mapping[str, Any] | None = None, threads: int | None = None,
               matmul_precision: str | None = None, **step_options: Any) -> Callable[[int], None]:
        gan, stream = self.new_gan(), iter(self.batches())
        if kind == "fast":
            cuda_graph = step_options.get("cuda_graph")
            opt_g, opt_d = gan.optimizers(**(adam if adam is not None else fast_optimizer_options(self.device, cuda_graph=cuda_graph)))
            step = FastStep(gan, opt_g, opt_d, **step_options)
            one = lambda real, y: step(real, y)  # noqa: E731
        elif kind == "train_step":
            opt_g, opt_d = gan.optimizers(**(adam or {}))
            one = lambda real, y: train_step(gan, real, y, opt_g, opt_d, check=False, **step_options)  # noqa: E731
        elif kind == "plain":
            opt_g, opt_d = gan.optimizers(**(adam or {}))
            one = lambda real, y: plain_step(gan, real, y, opt_g, opt_d)  # noqa: E731
        else:
            raise ValueError(f"unknown runner kind {kind!r}; use 'fast', 'train_step' or 'plain'")

        def run(n: int) -> None:
            with _settings(threads, matmul_precision):
                for _ in range(n):
                    real, y = next(stream)
                    one(real, y)
        run.gan = gan  # type: ignore[attr-defined]
        return run

    def matmuls(self, kind: str, **step_options: Any) -> list[MatmulCall]:
        """The matmuls of one step of ``kind`` ('plain': the full set; 'fast': the executed set)."""
        if kind == "fast":
            step_options = {**step_options, "cuda_graph": False, "compile": None}
        run = self.runner(kind, **step_options)
        run(1)  # lazy state (optimizer moments) first
        return record_matmuls(lambda: run(1))


@contextlib.contextmanager
def _settings(threads: int | None, matmul_precision: str | None):
    """Thread count and float32 matmul precision for a block (only what is given is touched)."""
    old_threads, old_precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    if threads is not None:
        torch.set_num_threads(threads)
    if matmul_precision is not None:
        torch.set_float32_matmul_precision(matmul_precision)
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(old_threads)
        if matmul_precision is not None:
            torch.set_float32_matmul_precision(old_precision)


def load_reference_loop(path: str | Path | None = None):
    """The ``benchmarks/reference_loop.py`` module (it ships with the source tree), or None if absent."""
    path = Path(path) if path is not None else REFERENCE_LOOP
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("condgan_reference_loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the benchmark -----------------------------------------------------------------------------------------
@dataclass
class BenchConfig:
    """What to measure. See :func:`add_arguments` for each field's meaning."""

    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    preset: str = "mnist_mlp"
    overrides: dict[str, Any] = field(default_factory=dict)
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    reference_batch_sizes: tuple[int, ...] = (64,)
    image_sizes: tuple[int, ...] = (28, 32, 64)
    class_counts: tuple[int, ...] = (10, 100, 1000)
    scaling_batch_size: int = 64
    embedding_dim: int = 10
    repeats: int = 5
    scaling_repeats: int = 3
    min_time: float = 0.5
    warmup: int = 3
    threads: int | None = None
    data_root: str = "./data"
    reference: bool = True
    reference_loop: str | None = None
    scaling: bool = True
    ablation: bool = False
    ablation_batch_sizes: tuple[int, ...] = (64, 256)
    compile: bool = False
    count_ops: bool = True
    autocast: str | None = None
    dataset_size: int = 60000
    reference_dataset_size: int = 60000
    quick: bool = False

    @classmethod
    def quick_config(cls, **changes: Any) -> BenchConfig:
        """A tiny run (seconds) that exercises every section: for tests and smoke checks."""
        values = dict(batch_sizes=(16, 32), reference_batch_sizes=(16,), image_sizes=(28, 32), class_counts=(10, 100),
                      scaling_batch_size=16, repeats=2, scaling_repeats=2, min_time=0.02, warmup=1, ablation=True,
                      ablation_batch_sizes=(16,), dataset_size=256, reference_dataset_size=256, quick=True)
        values.update(changes)
        return cls(**values)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _autocast_dtype(name: str | None) -> torch.dtype | None:
    dtypes = {None: None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if name not in dtypes:
        raise ValueError(f"autocast must be one of bf16, fp16 or None, got {name!r}")
    return dtypes[name]


class Benchmark:
    """Runs the sections of :class:`BenchConfig` and collects one JSON-able result."""

    def __init__(self, config: BenchConfig):
        self.cfg = cfg = config
        try:
            self.device = torch.device(cfg.device)
        except RuntimeError:
            self.device = None
        if self.device is None or self.device.type not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {cfg.device!r}")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch.cuda.is_available() is False")
        if cfg.threads is not None:
            if cfg.threads < 1:
                raise ValueError(f"threads must be >= 1, got {cfg.threads}")
            torch.set_num_threads(cfg.threads)
        for name, values in (("batch_sizes", cfg.batch_sizes), ("image_sizes", cfg.image_sizes),
                             ("class_counts", cfg.class_counts), ("reference_batch_sizes", cfg.reference_batch_sizes)):
            if any(int(v) < 1 for v in values):
                raise ValueError(f"{name} must be positive integers, got {values}")
        if cfg.repeats < 1 or cfg.scaling_repeats < 1 or not cfg.min_time > 0 or cfg.warmup < 1:
            raise ValueError("repeats and warmup must be >= 1 and min_time > 0")
        self.base = apply_overrides(get_component("preset", cfg.preset).config(), cfg.overrides)
        convs = {type(m).__name__ for m in GAN(self.base).modules() if isinstance(m, nn.modules.conv._ConvNd)}
        self.notes: list[str] = []
        if convs:
            self.notes.append(f"this model has {', '.join(sorted(convs))} layers: the FLOP count and the matmul ceilings "
                              "cover matrix products only, so GFLOP/s and % of ceiling leave its convolutions out")
        if cfg.reference and (cfg.preset != "mnist_mlp" or cfg.overrides):
            self.notes.append("the reference loop trains the reference model (mnist_mlp); this run times another model, "
                              "so 'vs reference loop' compares different models")
        self.step_options: dict[str, Any] = {"autocast_dtype": _autocast_dtype(cfg.autocast)}
        self.reference_module = load_reference_loop(cfg.reference_loop) if cfg.reference else None

    # -- one measured configuration ----------------------------------------------------------------
    def measure(self, config: GANConfig, batch_size: int, *, repeats: int, reference: bool = False,
                extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """condgan's fast step, its two matmul ceilings and (optionally) the reference loop, interleaved."""
        work = Workload(config, batch_size, self.device, self.cfg.dataset_size)
        full = work.matmuls("plain")
        executed = work.matmuls("fast", **self.step_options)
        flops = linear_flops(work.new_gan(), batch_size)
        runners: dict[str, Callable[[int], None]] = {
            "condgan": work.runner("fast", **self.step_options),
            "ceiling": MatmulReplay(full, self.device).run,
            "executed_ceiling": MatmulReplay(executed, self.device).run,
        }
        ref_loop = None
        if reference and self.reference_module is not None:
            ref_loop = self.reference_module.ReferenceLoop(self.cfg.data_root, self.device, batch_size=batch_size,
                                                           synthetic_size=self.cfg.reference_dataset_size)
            runners["reference"] = ref_loop.run
        timings = time_interleaved(runners, self.device, repeats=repeats, min_time=self.cfg.min_time, warmup=self.cfg.warmup)
        t = timings["condgan"]
        row: dict[str, Any] = {
            "batch_size": batch_size,
            "image_shape": list(config.image_shape),
            "num_classes": config.num_classes,
            "conditioner": _name(config.generator.conditioner),
            **(extra or {}),
            **t.summary(),
            "images_per_s": batch_size / t.median,
            "gflop_per_step": flops.total / 1e9,
            "g_step_gflop": flops.generator_step / 1e9,
            "d_step_gflop": flops.discriminator_step / 1e9,
            "gflop_per_s": flops.total / t.median / 1e9,
            "recorded_full_gflop_per_step": sum(c.flops for c in full) / 1e9,
            "executed_gflop_per_step": sum(c.flops for c in executed) / 1e9,
            "ceiling_steps_per_s": 1.0 / timings["ceiling"].median,
            "ceiling_gflop_per_s": sum(c.flops for c in full) / timings["ceiling"].median / 1e9,
            "pct_of_ceiling": 100.0 * timings["ceiling"].median / t.median,
            "executed_ceiling_steps_per_s": 1.0 / timings["executed_ceiling"].median,
            "pct_of_executed_ceiling": 100.0 * timings["executed_ceiling"].median / t.median,
            # the same ratio from each contender's fastest round: less sensitive to bursts of load
            "pct_of_ceiling_best_rounds": 100.0 * min(timings["ceiling"].per_step) / min(t.per_step),
            "ceiling_timing": timings["ceiling"].summary(),
            "executed_ceiling_timing": timings["executed_ceiling"].summary(),
        }
        if ref_loop is not None:
            r = timings["reference"]
            row["reference"] = {**r.summary(), "images_per_s": batch_size / r.median, "data": ref_loop.data_source,
                                "gflop_per_s": flops.total / r.median / 1e9,
                                "pct_of_ceiling": 100.0 * timings["ceiling"].median / r.median}
            row["speedup_vs_reference"] = r.median / t.median
            row["speedup_vs_reference_best_rounds"] = min(r.per_step) / min(t.per_step)
        return row

    def config_for(self, *, image_size: int | None = None, num_classes: int | None = None,
                   conditioner: str | None = None) -> GANConfig:
        overrides: dict[str, Any] = {}
        if image_size is not None:
            overrides["image_shape"] = (self.base.image_shape[0], image_size, image_size)
        if num_classes is not None:
            overrides["num_classes"] = num_classes
        if conditioner is not None:
            options = {"embedding_dim": self.cfg.embedding_dim} if conditioner == "embedding" else {}
            for net in ("generator", "discriminator"):
                overrides[f"{net}.conditioner"] = conditioner
                overrides[f"{net}.conditioner_options"] = options
        return apply_overrides(self.base, overrides)

    # -- sections ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        cfg = self.cfg
        started = time.perf_counter()
        result: dict[str, Any] = {"meta": self.meta()}
        if cfg.reference and self.reference_module is None:
            result["meta"]["reference_note"] = f"reference loop skipped: {cfg.reference_loop or REFERENCE_LOOP} not found"

        rows = []
        for b in cfg.batch_sizes:
            _log(f"[bench] batch size {b} ...")
            try:
                rows.append(self.measure(self.base, b, repeats=cfg.repeats, reference=b in cfg.reference_batch_sizes))
            except torch.OutOfMemoryError:
                _log(f"[bench] batch size {b}: out of memory, skipped")
                _empty_cache(self.device)
        result["batch_sizes"] = rows
        ref_rows = [r for r in rows if "reference" in r]
        if ref_rows:
            result["meta"]["reference_data"] = ref_rows[0]["reference"]["data"]

        if cfg.scaling:
            sb = cfg.scaling_batch_size
            result["image_sizes"] = []
            for s in cfg.image_sizes:
                _log(f"[bench] image size {s} ...")
                result["image_sizes"].append(self.measure(self.config_for(image_size=s), sb, repeats=cfg.scaling_repeats,
                                                          extra={"image_size": s}))
            result["classes"] = []
            for k in cfg.class_counts:
                for cond in ("onehot", "embedding"):
                    _log(f"[bench] {k} classes, {cond} ...")
                    config = self.config_for(num_classes=k, conditioner=cond)
                    result["classes"].append(self.measure(config, sb, repeats=cfg.scaling_repeats,
                                                          extra={"conditioner": cond}))
        if cfg.ablation:
            result["ablation"] = [self.ablation(b) for b in cfg.ablation_batch_sizes]
        if cfg.count_ops:
            _log("[bench] counting ops per step ...")
            result["ops_per_step"] = self.count_ops(cfg.reference_batch_sizes[0] if cfg.reference_batch_sizes else 64)
        result["targets"] = self.targets(result)
        result["meta"]["load_avg_after"] = _load_avg()
        result["meta"]["wall_s"] = time.perf_counter() - started
        return result

    def ablation(self, batch_size: int) -> dict[str, Any]:
        """What each part of the fast path buys, at one batch size (interleaved, so comparable)."""
        _log(f"[bench] ablation at batch size {batch_size} ...")
        work = Workload(self.base, batch_size, self.device, self.cfg.dataset_size)
        runners = {
            "plain eager step, default Adam": work.runner("plain"),
            # train_step: D frozen in G's update, and D.judge skips the input gradient of image
            # columns that only a learned code's columns share (the plain step does the reference's work)
            "+ D frozen in G's update, no image-column input gradient (train_step)": work.runner("train_step"),
            "+ foreach Adam": work.runner("train_step", adam={"foreach": True}),
            "+ fused Adam (called directly)": work.runner("fast", adam={"fused": True}, cuda_graph=False,
                                                         dropout_draws="bernoulli", joined_d_pass=False),
        }
        if self.device.type == "cpu":
            runners["+ uniform dropout draws"] = work.runner("fast", adam={"fused": True}, dropout_draws="uniform",
                                                             joined_d_pass=False)
            if batch_independent(work.new_gan().discriminator):
                runners["+ D's update in one joined pass (the fast path on CPU)"] = work.runner(
                    "fast", adam={"fused": True}, dropout_draws="uniform", joined_d_pass=True)
        if self.device.type == "cuda":
            runners["+ CUDA graph (the fast path)"] = work.runner("fast")
            runners["fast path + TF32 matmuls"] = work.runner("fast", matmul_precision="high")
        if self.cfg.compile:
            runners["fused Adam + torch.compile (inductor)"] = work.runner(
                "fast", adam={"fused": True}, cuda_graph=False, compile="default")
        if _bf16_ok(self.device):
            runners["fast path + bf16 autocast"] = work.runner("fast", autocast_dtype=torch.bfloat16)
        threads = torch.get_num_threads()
        if self.device.type == "cpu" and threads > 1:
            runners["fast path, 1 thread"] = work.runner("fast", threads=1)
        timings = time_interleaved(runners, self.device, repeats=self.cfg.repeats, min_time=self.cfg.min_time,
                                   warmup=self.cfg.warmup)
        base = timings["plain eager step, default Adam"].median
        variants = [{"variant": name, **t.summary(), "speedup_vs_plain": base / t.median} for name, t in timings.items()]
        return {"batch_size": batch_size, "variants": variants,
                "note": "warmup_s of a compiled variant includes its compile time"}

    def count_ops(self, batch_size: int) -> dict[str, Any]:
        work = Workload(self.base, batch_size, self.device, self.cfg.dataset_size)
        counts = {"batch_size": batch_size,
                  "plain eager step": count_per_step(work.runner("plain"), self.device),
                  "condgan fast step": count_per_step(work.runner("fast", **self.step_options), self.device)}
        if self.reference_module is not None:
            loop = self.reference_module.ReferenceLoop(self.cfg.data_root, self.device, batch_size=batch_size,
                                                       synthetic_size=self.cfg.reference_dataset_size)
            counts["reference loop"] = count_per_step(loop.run, self.device)
        return counts

    def targets(self, result: Mapping[str, Any]) -> list[dict[str, Any]]:
        rows = {r["batch_size"]: r for r in result.get("batch_sizes", [])}
        out = []
        for device, metric, where, target in TARGETS:
            if device != self.device.type:
                continue
            if where == "batch 64":
                chosen = [rows[64]] if 64 in rows else []
            else:
                chosen = [r for b, r in rows.items() if b >= 256]
            values = [r[metric] for r in chosen if metric in r]
            if not values:
                continue
            worst = min(values)
            out.append({"metric": metric, "where": where, "target": target, "value": worst, "met": worst >= target})
        return out

    def meta(self) -> dict[str, Any]:
        cfg = self.cfg
        meta = {
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": self.device.type,
            "device_name": _device_name(self.device),
            "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset (libgomp default: spin, then sleep)"),
            "load_avg_before": _load_avg(),
            "preset": cfg.preset,
            "overrides": {k: repr(v) for k, v in cfg.overrides.items()},
            "autocast": cfg.autocast,
            "repeats": cfg.repeats,
            "min_time_s": cfg.min_time,
            "quick": cfg.quick,
            "condgan_data": f"device-resident uint8 tensor of {cfg.dataset_size} images of the model's shape (random pixels)",
            "reference_data_root": cfg.data_root,
            "flop_convention": "nn.Linear matmuls only: forward 2*B*in*out, backward 2x forward (weight + input "
                               "gradients); G once, D three times per step",
        }
        if self.notes:
            meta["notes"] = list(self.notes)
        if self.device.type == "cuda":
            meta["float32_matmul_precision"] = torch.get_float32_matmul_precision()
            meta["cuda"] = torch.version.cuda
        load = meta["load_avg_before"]
        if (self.device.type == "cpu" and load and meta["threads"] > 1 and load[0] >= 0.5 * (os.cpu_count() or 1)
                and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE"):
            meta["warning"] = (f"the machine is busy (load {load[0]}) and OpenMP threads spin while waiting: on a shared "
                               "machine multi-threaded steps can slow down 10x or more; rerun with OMP_WAIT_POLICY=PASSIVE "
                               "or --threads 1")
        return meta


def _name(component: Any) -> str:
    return component if isinstance(component, str) else getattr(component, "name", getattr(component, "__name__", repr(component)))


def _bf16_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _empty_cache(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _load_avg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# -- report -------------------------------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _step_cells(r: Mapping[str, Any]) -> list[str]:
    return [f"{r['steps_per_s']:.1f}", f"{r['images_per_s']:,.0f}",
            f"{r['ms_per_step']:.2f} ({r['ms_min']:.2f}-{r['ms_max']:.2f})",
            f"{r['gflop_per_step']:.2f}", f"{r['gflop_per_s']:.1f}",
            f"{r['ceiling_steps_per_s']:.1f}", f"{r['pct_of_ceiling']:.0f}%", f"{r['pct_of_executed_ceiling']:.0f}%"]


_STEP_HEADER = ["steps/s", "images/s", "ms/step (min-max)", "GFLOP/step", "GFLOP/s", "ceiling steps/s",
                "% of ceiling", "% of executed"]


def format_report(result: Mapping[str, Any]) -> str:
    """The result as markdown: a header, then one table per section."""
    meta = result["meta"]
    parts = [
        f"condgan step throughput: preset {meta['preset']}, {meta['device']} ({meta['device_name']}), "
        f"{meta['threads']} threads of {meta['cpu_count']} CPUs (OMP_WAIT_POLICY {meta['omp_wait_policy']}), "
        f"torch {meta['torch']}, {meta['time']}",
        f"load average before/after: {meta['load_avg_before']} / {meta.get('load_avg_after')}; "
        f"{meta['repeats']} interleaved rounds of >= {meta['min_time_s']} s per contender; median and (fastest-slowest) round",
        f"FLOPs: {meta['flop_convention']}. Ceiling: the full step's matmuls (the reference's work) replayed bare; "
        "'% of executed': against the matmuls condgan's step runs (fewer: D's weight gradients in G's update and the image columns' input gradient in D's update skipped; larger: real and fakes in one D pass).",
    ]
    if "reference_note" in meta:
        parts.append(meta["reference_note"])
    if "warning" in meta:
        parts.append(f"WARNING: {meta['warning']}")
    parts += [f"NOTE: {note}" for note in meta.get("notes", [])]
    rows = result.get("batch_sizes", [])
    if rows:
        parts.append("\n### Cost against batch size\n")
        table_rows = []
        for r in rows:
            ref = r.get("reference")
            vs = f"{r['speedup_vs_reference']:.2f}x (ref {ref['steps_per_s']:.1f} steps/s, {ref['data']})" if ref else ""
            table_rows.append([r["batch_size"], *_step_cells(r), vs])
        parts.append(_table(["batch", *_STEP_HEADER, "vs reference loop"], table_rows))
        for r in rows:
            if "reference" in r and r["reference"]["data"] == "synthetic":
                parts.append("\nThe reference loop ran on synthetic uint8 images of MNIST's shape (MNIST not found under "
                             f"{meta['reference_data_root']!r}), through the same PIL transforms.")
                break
    if result.get("image_sizes"):
        parts.append(f"\n### Cost against image size (batch {result['image_sizes'][0]['batch_size']})\n")
        parts.append(_table(["image", *_STEP_HEADER],
                            [[f"{r['image_size']}x{r['image_size']}", *_step_cells(r)] for r in result["image_sizes"]]))
    if result.get("classes"):
        parts.append(f"\n### Cost against number of classes (batch {result['classes'][0]['batch_size']})\n")
        parts.append(_table(["classes", "conditioner", *_STEP_HEADER],
                            [[r["num_classes"], r["conditioner"], *_step_cells(r)] for r in result["classes"]]))
    for ab in result.get("ablation", []):
        parts.append(f"\n### What each part of the fast path buys (batch {ab['batch_size']})\n")
        parts.append(_table(["variant", "steps/s", "ms/step (min-max)", "vs plain", "warm-up s"],
                            [[v["variant"], f"{v['steps_per_s']:.1f}",
                              f"{v['ms_per_step']:.2f} ({v['ms_min']:.2f}-{v['ms_max']:.2f})",
                              f"{v['speedup_vs_plain']:.2f}x", f"{v['warmup_s']:.1f}"] for v in ab["variants"]]))
    ops = result.get("ops_per_step")
    if ops:
        parts.append(f"\n### Work items per step (batch {ops['batch_size']})\n")
        names = [k for k in ops if k != "batch_size"]
        keys = sorted({key for name in names for key in ops[name]})
        parts.append(_table(["step", *keys], [[name, *(f"{ops[name].get(k, float('nan')):.0f}" for k in keys)] for name in names]))
    if result.get("targets"):
        parts.append("\n### Targets\n")
        parts.append(_table(["metric", "where", "target", "measured (worst)", "met"],
                            [[t["metric"], t["where"], t["target"], f"{t['value']:.2f}", "yes" if t["met"] else "NO"]
                             for t in result["targets"]]))
    return "\n".join(parts) + "\n"


# -- command line -------------------------------------------------------------------------------------------
def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive whole numbers, got {text!r}")
    return values


def _override(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError):
        return key.strip(), raw.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (of ``benchmarks/step_throughput.py``)."""
    d = BenchConfig()
    parser.add_argument("--device", default=d.device, help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--preset", default=d.preset, help="preset to time (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", type=_override, default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set latent_dim=64 (repeatable)")
    parser.add_argument("--batch-sizes", type=_ints, default=None,
                        help="comma-separated (default: 64,128,...,4096)")
    parser.add_argument("--reference-batch-sizes", type=_ints, default=None,
                        help="batch sizes at which the reference loop is timed too (default: 64)")
    parser.add_argument("--image-sizes", type=_ints, default=None, help="image-size table (default: 28,32,64)")
    parser.add_argument("--classes", type=_ints, default=None, help="class-count table (default: 10,100,1000)")
    parser.add_argument("--scaling-batch-size", type=int, default=None, help="batch of the scaling tables (default: 64)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the image-size and class tables")
    parser.add_argument("--ablation", action="store_true", help="also time each part of the fast path separately")
    parser.add_argument("--compile", action="store_true",
                        help="add torch.compile (inductor) to the ablation (slow to compile on small CPUs)")
    parser.add_argument("--autocast", choices=("bf16", "fp16"), default=None, help="autocast dtype for condgan's step")
    parser.add_argument("--no-reference", action="store_true", help="do not time the reference loop")
    parser.add_argument("--reference-loop", default=None, help="path of reference_loop.py (default: the source tree's)")
    parser.add_argument("--no-count-ops", action="store_true", help="skip counting ops/kernels per step")
    parser.add_argument("--data-root", default=d.data_root,
                        help="MNIST for the reference loop, torchvision layout (default: %(default)s; synthetic "
                             "images of MNIST's shape when absent, as the output says)")
    parser.add_argument("--repeats", type=int, default=None, help=f"timed rounds (default: {d.repeats})")
    parser.add_argument("--min-time", type=float, default=None,
                        help=f"seconds per contender per round (default: {d.min_time})")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--full", action="store_true", help="longer rounds (2 s x 7) and the ablation")
    parser.add_argument("--quick", action="store_true", help="a tiny run that exercises every section (seconds)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the JSON here")
    parser.add_argument("--markdown", dest="markdown_path", default=None, help="also write the tables here")


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    config = BenchConfig.quick_config() if args.quick else BenchConfig()
    changes: dict[str, Any] = {"device": args.device, "preset": args.preset, "overrides": dict(args.overrides),
                               "data_root": args.data_root, "threads": args.threads, "autocast": args.autocast,
                               "reference": not args.no_reference, "reference_loop": args.reference_loop,
                               "count_ops": not args.no_count_ops}
    if args.full:
        changes.update(repeats=7, min_time=2.0, ablation=True)
    if args.no_scaling:
        changes["scaling"] = False
    if args.ablation:
        changes["ablation"] = True
    if args.compile:
        changes.update(compile=True, ablation=True)
    for arg, name in (("batch_sizes", "batch_sizes"), ("reference_batch_sizes", "reference_batch_sizes"),
                      ("image_sizes", "image_sizes"), ("classes", "class_counts"),
                      ("scaling_batch_size", "scaling_batch_size"), ("repeats", "repeats"), ("min_time", "min_time")):
        if getattr(args, arg) is not None:
            changes[name] = getattr(args, arg)
    for name, value in changes.items():
        setattr(config, name, value)
    return config


def run(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments; prints the tables and the JSON."""
    result = Benchmark(config_from_args(args)).run()
    report = format_report(result)
    text = json.dumps(result, indent=2)
    print(report)
    print(text)
    if args.json_path:
        Path(args.json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_path).write_text(text + "\n")
    if args.markdown_path:
        Path(args.markdown_path).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown_path).write_text(report)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="step_throughput", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
