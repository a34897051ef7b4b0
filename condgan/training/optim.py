"""Optimizers: construction from the config, the fastest implementation per device, per-step
schedules, and what a captured CUDA graph can follow.

- :func:`make_optimizer`: the ``torch.optim`` class an :class:`~condgan.config.OptimizerConfig`
  names, at its step-0 schedule values; :func:`make_optimizers` gives a GAN's two with the fastest
  implementation each accepts (:func:`fast_optimizer_options`).
- Schedules are plain data in ``OptimizerConfig.schedule`` (so they travel in checkpoints):

  - ``lr_decay``: divide the learning rate by this factor every step (the paper: 1.00004);
  - ``min_lr``: the floor of the decayed learning rate (the paper: 1e-6);
  - ``momentum_start``, ``momentum_end``, ``momentum_steps``: momentum rises linearly from start
    to end over that many steps, then stays (the paper: 0.5 to 0.7; the length is not given).
- :func:`use_cuda_graph`: the CUDA-graph policy (a graph follows only a capturable optimizer's
  learning rate); :func:`load_optimizer_state` restores a saved state keeping this run's
  implementation flags.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import TYPE_CHECKING, Any, Mapping

import torch

from ..config.schedule import KEYS, check_schedule, scheduled  # noqa: F401 - the schedule's names, here too
from ..config.values import construct

if TYPE_CHECKING:  # pragma: no cover
    from ..config import OptimizerConfig

def apply_schedule(optimizer: torch.optim.Optimizer, lr: float, schedule: Mapping[str, Any], step: int) -> None:
    """Set every param group of ``optimizer`` to the scheduled values for ``step`` (Python floats, no sync)."""
    if not schedule:
        return
    values = scheduled(lr, schedule, step)
    for group in optimizer.param_groups:
        group.update(values)


def fast_optimizer_options(device: torch.device | str, *, cuda_graph: bool | None = None) -> dict[str, Any]:
    """Options for ``gan.optimizers(**options)``: the fastest Adam implementation for ``device``.

    ``fused=True`` on CPU and CUDA: one kernel updates every parameter. On the CPU here it took
    Adam's share of a batch-64 step from about 10 ms (the default for-loop Adam) to about 2 ms
    (see benchmarks/README.md). ``capturable=True`` is added when the step will be captured as a CUDA
    graph (``cuda_graph``; default: whenever ``device`` is CUDA), as graph capture requires.
    Other devices get ``{}`` (PyTorch's default).
    """
    device = torch.device(device)
    if device.type not in ("cpu", "cuda"):
        return {}
    options: dict[str, Any] = {"fused": True}
    if device.type == "cuda" and (cuda_graph is None or cuda_graph):
        options["capturable"] = True
    return options


def fused_adam_step(opt: torch.optim.Optimizer) -> bool:
    """``opt.step()`` for a fused Adam or AdamW on the CPU, by a direct call of its kernel; True when done.

    What ``Adam.step`` runs, less its per-step Python bookkeeping (about 0.3 ms per call here,
    3% of a batch-64 step): the same kernel on the same tensors, so the parameters and the
    optimizer state are bitwise those of ``opt.step()``. Settings are read from ``param_groups``
    at each call (schedules hold). Returns False, having done nothing, where it does not apply:
    another optimizer class or implementation, amsgrad, a tensor learning rate, a CUDA
    parameter, a parameter without state yet (the first step creates it), or step hooks.

    Example:
        >>> if not fused_adam_step(opt):
        ...     opt.step()
    """
    from torch.optim.optimizer import _global_optimizer_post_hooks, _global_optimizer_pre_hooks

    if (type(opt) not in (torch.optim.Adam, torch.optim.AdamW) or opt._optimizer_step_pre_hooks
            or opt._optimizer_step_post_hooks or _global_optimizer_pre_hooks or _global_optimizer_post_hooks):
        return False
    calls = []
    for group in opt.param_groups:
        if (not group.get("fused") or group.get("amsgrad") or group.get("capturable") or group.get("differentiable")
                or isinstance(group["lr"], torch.Tensor)):
            return False
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = opt.state.get(p)
            if (not state or not isinstance(state.get("step"), torch.Tensor) or p.device.type != "cpu"
                    or p.grad.is_sparse or p.dtype != group["params"][0].dtype):
                return False
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if params:
            decoupled = type(opt) is torch.optim.AdamW or group.get("decoupled_weight_decay", False)
            calls.append((torch._fused_adamw_ if decoupled else torch._fused_adam_, group, params, grads, exp_avgs,
                          exp_avg_sqs, steps))
    with torch.no_grad():
        for kernel, group, params, grads, exp_avgs, exp_avg_sqs, steps in calls:
            torch._foreach_add_(steps, 1)
            beta1, beta2 = group["betas"]
            kernel(params, grads, exp_avgs, exp_avg_sqs, [], steps, amsgrad=False, lr=group["lr"], beta1=beta1,
                   beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"], maximize=group["maximize"],
                   grad_scale=None, found_inf=None)
    return True


def make_optimizer(params, config: OptimizerConfig, **extra: Any) -> torch.optim.Optimizer:
    """The optimizer of ``config``, at its step-0 schedule values."""
    check_schedule(config.schedule)
    if not isinstance(config.lr, numbers.Real) or isinstance(config.lr, bool) or not 0 <= config.lr < math.inf:
        raise ValueError(f"optimizer lr must be a finite number >= 0, got {config.lr!r}")
    if not isinstance(config.options, Mapping) or not all(isinstance(key, str) for key in config.options):
        raise ValueError(f"optimizer options must be a dict of keyword options, got {config.options!r}")
    cls = config.name
    if isinstance(cls, str):
        cls = getattr(torch.optim, cls, None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise ValueError(f"unknown optimizer {config.name!r}: give a torch.optim class name (e.g. 'Adam', 'SGD') or class")
    elif not callable(cls):
        raise ValueError(f"unknown optimizer {config.name!r}: give a torch.optim class name (e.g. 'Adam', 'SGD') or class")
    try:
        optimizer = construct(cls, params, lr=config.lr, **{**config.options, **extra})
    except TypeError as exc:  # e.g. betas=0.5: the class accepts the name but not the value
        raise ValueError(f"optimizer {getattr(cls, '__name__', cls)!r} cannot be made with options {dict(config.options)}: {exc}") from None
    apply_schedule(optimizer, config.lr, config.schedule, 0)
    return optimizer


def make_optimizers(gan, device: torch.device, *, cuda_graph: bool) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """G's and D's optimizers from ``gan.config``, with the fastest implementation that each accepts
    (:func:`fast_optimizer_options`: fused kernels; capturable for a CUDA graph)."""
    fast = fast_optimizer_options(device, cuda_graph=cuda_graph)
    made = []
    for params, opt_config in ((gan.generator.parameters(), gan.config.g_optimizer),
                               (gan.discriminator.parameters(), gan.config.d_optimizer)):
        accepted, given = accepted_options(opt_config), opt_config.options
        extra = {k: v for k, v in fast.items() if k in accepted and k not in given
                 and not (k == "fused" and given.get("foreach"))}
        made.append(make_optimizer(params, opt_config, **extra))
    return made[0], made[1]


def use_cuda_graph(asked: bool | None, gan_config, device: torch.device, *, compile: Any, world_size: int) -> bool:
    """Whether the step is captured as one CUDA graph: ``asked`` (TrainerConfig.cuda_graph) when
    given and possible, else on CUDA for one process without ``compile`` when both optimizers can be
    captured and their schedules followed."""
    if world_size > 1:
        if asked:
            raise ValueError("cuda_graph=True cannot be used with several processes: the distributed step runs "
                             "eagerly under DistributedDataParallel; leave cuda_graph unset")
        return False
    configs = (gan_config.g_optimizer, gan_config.d_optimizer)
    follows = all(graph_follows_schedule(c) for c in configs)
    if asked is not None:
        if asked and not follows:
            raise ValueError("cuda_graph=True cannot follow this optimizer schedule: a graph reads a changing "
                             "learning rate only from a capturable optimizer (Adam, AdamW), and no other changing "
                             "setting (a momentum ramp); set cuda_graph=False or change the schedule")
        return asked
    capturable = all("capturable" in accepted_options(c) for c in configs)
    return device.type == "cuda" and not compile and capturable and follows


_IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping this run's implementation (fused, capturable, ...):
    a checkpoint from another device may have saved flags that this device cannot run."""
    flags = [{k: group[k] for k in _IMPLEMENTATION_FLAGS if k in group} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, own in zip(optimizer.param_groups, flags):
        group.update(own)
        on_device = bool(group.get("fused") or group.get("capturable"))  # these keep `step` with the parameters
        for param in group["params"]:
            slots = optimizer.state.get(param, {})
            if torch.is_tensor(slots.get("step")):
                slots["step"] = slots["step"].to(param.device if on_device else "cpu", torch.float32)


def graph_follows_schedule(opt_config) -> bool:
    """True when a captured CUDA graph can follow ``opt_config``'s schedule: none, or a learning-rate
    schedule alone on an optimizer that can be captured (it reads its lr from a device tensor)."""
    schedule = opt_config.schedule or {}
    if not schedule:
        return True
    return "capturable" in accepted_options(opt_config) and not any(k.startswith("momentum") for k in schedule)


def accepted_options(opt_config) -> set[str]:
    """Keyword arguments the optimizer class of ``opt_config`` takes (empty if it is not a class)."""
    cls = getattr(torch.optim, opt_config.name, None) if isinstance(opt_config.name, str) else opt_config.name
    try:
        return set(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return set()
