"""Training on several processes with ``torch.distributed`` and DistributedDataParallel.

Launch any training command with ``torchrun``; the Trainer joins the process group that torchrun
describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``), with NCCL on
CUDA and gloo on the CPU::

    torchrun --nproc_per_node=4 -m condgan train --preset mnist_mlp --data-root ./data --out runs/a

What changes with N processes (see the README's "Several GPUs or machines"):

- ``batch_size`` is per process: a step trains on N * batch_size images, each process on its own
  shard of the epoch's permutation (every process draws the same permutation from the run's seed,
  process r takes rows r*B..(r+1)*B of each global batch of N*B). The last incomplete global batch of
  an epoch is dropped (DistributedSampler's ``drop_last``); with one process nothing changes.
- G and D are each wrapped in DistributedDataParallel around the two forward passes of a step, so
  their gradients are averaged across processes before each update; D's weight gradients in G's
  update are still skipped. Every process holds the same weights after every step.
- Randomness: weights are initialised from the seed (and broadcast by DDP); noise, fake labels and
  dropout come from one stream per process, process 0's being the single-process stream and
  process r's derived from (seed, r) with :func:`rank_seed`.
- BatchNorm normalises with each process's own batch statistics (the buffers are broadcast from
  process 0 at each forward); ``TrainerConfig(sync_batchnorm=True)`` converts every batch norm to
  ``torch.nn.SyncBatchNorm`` (CUDA only, as PyTorch's SyncBatchNorm) so that statistics span the
  global batch.
- Only process 0 writes checkpoints, sample grids, ``generator.pt`` and logs. A checkpoint written
  with N processes resumes with M (the epoch's permutation is kept; the position within it is
  converted by images seen).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from .checkpoint.integrity import first_line

__all__ = ["DistributedError", "DEFAULT_TIMEOUT_S", "is_peer_failure", "ProcessInfo", "process_info", "process_device", "init_from_env", "shutdown", "rank_seed", "is_distributed", "agree_any",
           "DistributedForwards"]


#: Seconds a collective waits for the other processes (TrainerConfig.process_group_timeout's default).
DEFAULT_TIMEOUT_S = 600.0


class DistributedError(RuntimeError):
    """Another process of a torch.distributed run stalled or died: this one stopped waiting for it."""


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in the run: ``rank`` of ``world_size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that writes files (rank 0)."""
        return self.rank == 0


def is_distributed() -> bool:
    """True when a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def process_info() -> ProcessInfo:
    """Rank and world size of the initialised process group (``ProcessInfo()`` when there is none)."""
    if not (dist.is_available() and dist.is_initialized()):
        return ProcessInfo()
    return ProcessInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def init_from_env(device: torch.device, backend: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_S) -> ProcessInfo:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Does nothing when a group is already initialised or ``WORLD_SIZE`` is unset or 1. The backend
    defaults to NCCL for CUDA and gloo for the CPU. ``timeout`` (seconds) is how long a collective
    waits for the other processes before it fails (``TrainerConfig.process_group_timeout``).

    Raises:
        ValueError: ``WORLD_SIZE``/``RANK`` are not whole numbers, or a CUDA run has fewer GPUs
            than ``LOCAL_RANK`` needs.
    """
    if dist.is_available() and dist.is_initialized():
        return process_info()
    rank, world_size, local_rank = _from_env()
    if world_size <= 1:
        return ProcessInfo()
    if not dist.is_available():
        raise ValueError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local_rank} needs {local_rank + 1} GPUs, this machine has "
                             f"{torch.cuda.device_count()}: start at most that many processes per machine")
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"), timeout=datetime.timedelta(seconds=timeout))
    return ProcessInfo(rank, world_size, local_rank)


def _from_env() -> tuple[int, int, int]:
    """(RANK, WORLD_SIZE, LOCAL_RANK) as torchrun sets them; (0, 1, 0) outside torchrun."""
    try:
        return tuple(int(os.environ.get(k, d)) for k, d in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0")))
    except ValueError:
        raise ValueError("WORLD_SIZE, RANK and LOCAL_RANK must be whole numbers (torchrun sets them); got "
                         f"{os.environ.get('WORLD_SIZE')!r}, {os.environ.get('RANK')!r}, {os.environ.get('LOCAL_RANK')!r}") from None


def process_device(device: torch.device) -> torch.device:
    """Under torchrun with several processes, plain ``cuda`` means this process's GPU (``LOCAL_RANK``)."""
    if device.type == "cuda" and device.index is None:
        _, world_size, local_rank = _from_env()
        if world_size > 1:
            return torch.device("cuda", local_rank)
    return device


_PEER_FAILURE_TEXT = ("timeout", "timed out", "pair closure", "connection closed", "connection reset", "broken pipe",
                      "gloo", "nccl", "socket", "peer")


def is_peer_failure(exc: BaseException) -> bool:
    """True when ``exc`` is a collective that failed because another process stalled or died
    (``torch.distributed.DistError``, or the RuntimeError gloo raises on a timeout or a closed
    connection). Only meaningful while a process group of several processes runs."""
    if isinstance(exc, getattr(dist, "DistError", ())):
        return True
    if not isinstance(exc, RuntimeError):
        return False
    text = str(exc).lower()
    return any(word in text for word in _PEER_FAILURE_TEXT)


def shutdown() -> None:
    """Leave the process group: wait for every process, then destroy it (a no-op without one).

    Call it at the end of a distributed script after dropping the Trainer: a group left to the
    interpreter's exit can abort it (gloo's threads), turning a finished run into a failed one.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    import gc

    gc.collect()  # DistributedDataParallel wrappers (and their reducers) go first
    try:
        dist.barrier()
    except RuntimeError as exc:
        if not is_peer_failure(exc):
            raise
        raise DistributedError(f"process {dist.get_rank()} finished, but another process did not reach the end of "
                               f"the run ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
    dist.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s random stream: ``seed`` itself for rank 0 (so one process
    trains exactly as without torch.distributed), an independent stream of (seed, rank) otherwise."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(1)[0])  # < 2**32, as numpy needs


class _Pass(nn.Module):
    """One forward pass of a step as a module that owns one network's parameters (what DDP wraps)."""

    def __init__(self, net: nn.Module, fn):
        super().__init__()
        self.net = net
        self.fn = fn

    def forward(self, *args: Tensor):
        return self.fn(*args)


class DistributedForwards:
    """A step's two forward passes (``training._Forwards``) through DistributedDataParallel.

    ``generator_pass`` runs under G's DDP (G's gradients are averaged in G's backward; D is used as
    a plain module, its parameters frozen there), ``discriminator_pass`` under D's DDP.
    """

    def __init__(self, forwards, device: torch.device):
        gan = forwards.gan
        ids = [device] if device.type == "cuda" else None
        self.gan = gan
        self.generator_pass = nn.parallel.DistributedDataParallel(_Pass(gan.generator, forwards.generator_pass), device_ids=ids)
        self.discriminator_pass = nn.parallel.DistributedDataParallel(
            _Pass(gan.discriminator, forwards.discriminator_pass), device_ids=ids)
        self.fakes = forwards.fakes  # no gradients: nothing to average
        self.pairs_conditions = forwards.pairs_conditions  # the step pairs G's conditions for mode seeking


def agree_any(flags: list[bool], device: torch.device) -> list[bool]:
    """Element-wise OR of ``flags`` over all processes (one small all-reduce; a host sync)."""
    if not is_distributed():
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v) for v in t.tolist()]


def peer_failure(process: ProcessInfo, step: int, timeout: float, exc: BaseException, latest: object) -> DistributedError:
    """The one-line error of a collective that another process never joined (``latest``: the run's
    newest checkpoint, or None)."""
    reason = first_line(exc, 120)
    where = (f"the run's latest checkpoint {latest} is intact: continue with condgan train --resume" if latest is not None
             else "no checkpoint was written yet")
    return DistributedError(
        f"process {process.rank} of {process.world_size} stopped at step {step}: another process "
        f"stalled or died, and this one waited up to {timeout:g} s (process_group_timeout) for it ({reason}); "
        f"{where} (the other processes' output says what happened to them)")
