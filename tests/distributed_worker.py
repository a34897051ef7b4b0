"""Run by tests/test_distributed.py under torchrun: a few distributed training steps on known data.

    torchrun --standalone --nproc_per_node=2 tests/distributed_worker.py OUT.pt [cuda]

With ``cuda`` every process trains on the first GPU and the group uses gloo (NCCL needs one GPU per
process): DistributedDataParallel's CUDA path on a machine with one GPU.

Every process trains the same tiny model on its half of each global batch, with noise and fake
labels taken from one fixed table (each process its rows), so that the run can be compared with
one process training on the whole batch. After each step the processes compare their weights;
process 0 saves its weights after each step to OUT.pt.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch.nn.utils import parameters_to_vector

import condgan
from condgan.distributed import init_from_env, process_info, shutdown
from condgan.training.step import FastStep
from condgan.training.optim import fast_optimizer_options

STEPS, BATCH = 4, 6  # BATCH: per process


def equivalence_config() -> condgan.GANConfig:
    """The tiny mnist_mlp without batch norm or dropout: per-process randomness and batch statistics
    are then the only differences from one process, and the test takes both out."""
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from training_helpers import tiny_config

    return tiny_config(**{"generator.backbone_options.norm": None, "discriminator.backbone_options.dropout": 0.0})


def fixed_draws(world_size: int, config: condgan.GANConfig):
    """Real batches, labels, noise and fake labels for every step, for the global batch."""
    g = torch.Generator().manual_seed(1)
    n = world_size * BATCH
    real = torch.rand(STEPS, n, *config.image_shape, generator=g) * 2 - 1
    y = torch.randint(0, config.num_classes, (STEPS, n), generator=g)
    z = torch.randn(STEPS, n, config.latent_dim, generator=g)
    y_fake = torch.randint(0, config.num_classes, (STEPS, n), generator=g)
    return real, y, z, y_fake


def train(gan: condgan.GAN, rows: slice, world_size: int, distributed: bool) -> list[torch.Tensor]:
    """STEPS steps on ``rows`` of each global batch; the weights after each step."""
    device = next(gan.parameters()).device
    real, y, z, y_fake = (t.to(device) for t in fixed_draws(world_size, gan.config))
    t = 0
    gan.generator.sample_noise = lambda n, device=None, generator=None: z[t, rows].clone()
    object.__setattr__(gan.spec, "sample_like", lambda labels, generator=None: y_fake[t, rows].clone())
    opt_g, opt_d = gan.optimizers(**fast_optimizer_options(device, cuda_graph=False))
    step = FastStep(gan, opt_g, opt_d, distributed=distributed, cuda_graph=False)
    weights = []
    for t in range(STEPS):
        step(real[t, rows], y[t, rows])
        weights.append(parameters_to_vector(gan.parameters()).detach().cpu().clone())
    return weights


def main(out: str, device: str = "cpu") -> None:
    if device == "cuda":
        dist.init_process_group("gloo")
        info = process_info()
    else:
        info = init_from_env(torch.device("cpu"))
    torch.manual_seed(0)
    gan = condgan.GAN(equivalence_config()).to(device)
    if info.rank == 1:  # different starting weights: DDP must broadcast process 0's
        torch.nn.init.normal_(next(gan.parameters()))
    rows = slice(info.rank * BATCH, (info.rank + 1) * BATCH)
    weights = train(gan, rows, info.world_size, distributed=True)
    del gan
    for t, w in enumerate(weights):
        gathered = [torch.empty_like(w) for _ in range(info.world_size)]
        dist.all_gather(gathered, w)
        if not all(torch.equal(gathered[0], other) for other in gathered[1:]):
            raise SystemExit(f"step {t + 1}: the processes hold different weights")
    if info.is_main:
        torch.save({"weights": weights, "world_size": info.world_size}, out)
    shutdown()


if __name__ == "__main__":
    main(*sys.argv[1:])
