"""What the checkpoint checksum costs: saving and loading a mnist_mlp checkpoint with and without it.

    python benchmarks/checksum_cost.py

Trains the mnist_mlp preset for one step on 200 synthetic 32x32 images (the weights' values do not
change the cost), then times, as the median of 7 runs on one thread: an atomic ``torch.save`` of
the trainer's state (no checksum), :func:`condgan.checkpoint.save_file` (moves to the CPU, hashes
the content with SHA-256, saves), the hash alone, ``torch.load`` of the file, and
:func:`condgan.checkpoint.read_file` (load, verify the hash, check the entries).
"""

from __future__ import annotations

import statistics
import tempfile
import time

import torch

import condgan
from condgan import Trainer, TrainerConfig
from condgan import checkpoint as ckpt
from condgan.checkpoint import integrity as checks
from condgan.data import synthetic


def median_ms(fn, n: int = 7) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp()
    config = condgan.get_component("preset", "mnist_mlp").config()
    trainer = Trainer(config, TrainerConfig(device="cpu", loggers=(), out_dir=folder, steps=1),
                      data=synthetic(image_shape=(1, 32, 32), num_classes=10, per_class=20))
    trainer.train()
    state = trainer.state_dict()
    print(f"checkpoint file: {ckpt.latest_checkpoint(folder).stat().st_size / 1e6:.1f} MB")
    print(f"save without checksum: {median_ms(lambda: ckpt.atomic_write(f'{folder}/plain.pt', lambda f: torch.save(state, f))):.0f} ms")
    print(f"save with checksum:    {median_ms(lambda: ckpt.save_file(state, f'{folder}/summed.pt')):.0f} ms")
    print(f"SHA-256 of the content alone: {median_ms(lambda: checks.content_sha256(state)):.0f} ms")
    print(f"torch.load:            {median_ms(lambda: torch.load(f'{folder}/summed.pt', map_location='cpu', weights_only=True)):.0f} ms")
    print(f"read_file (verified):  {median_ms(lambda: ckpt.read_file(f'{folder}/summed.pt')):.0f} ms")


if __name__ == "__main__":
    main()
