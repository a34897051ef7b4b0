"""Train the reference MNIST MLP cGAN (the `mnist_mlp` preset).

    python examples/mnist_mlp.py --data-root ./data --epochs 200

Saves a 10x10 sample grid (row r, column k: label k) every ``--sample-every`` steps and a
checkpoint of both networks at the end, under ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

import condgan
from condgan.data import DatasetNotFoundError, TensorBatches, load_mnist, to_unit


def save_grid(gan: condgan.GAN, path: Path, z: torch.Tensor) -> None:
    """10 rows of labels 0..9: column k holds label k (the reference's grid)."""
    labels = torch.arange(10, device=z.device).repeat(10)  # (100,) = 0..9, 0..9, ...
    images = gan.generator.sample(labels, z=z)
    save_image(to_unit(images, gan.config.pixel_range), path, nrow=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="./data", help="folder holding MNIST/raw (downloaded there if missing)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sample-every", type=int, default=400, help="steps between sample grids")
    parser.add_argument("--out", default="runs/mnist_mlp")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gan = condgan.build("mnist_mlp").to(device)
    try:
        images, labels = load_mnist(args.data_root, image_size=gan.config.image_shape[-1])
    except DatasetNotFoundError as exc:
        raise SystemExit(f"error: {exc}") from None
    gan.spec.check(labels)  # validate the labels once, before the loop
    batches = TensorBatches(images, labels, gan.config.batch_size, device=device, pixel_range=gan.config.pixel_range)
    opt_g, opt_d = gan.optimizers()
    fixed_z = gan.generator.sample_noise(100, device)

    step, start = 0, time.perf_counter()
    for epoch in range(args.epochs):
        for real, y in batches:
            losses = condgan.train_step(gan, real, y, opt_g, opt_d)
            step += 1
            if step % args.sample_every == 0:
                save_grid(gan, out / f"{step:07d}.png", fixed_z)
                rate = step / (time.perf_counter() - start)
                print(f"epoch {epoch} step {step} d_loss {losses['d_loss']:.4f} g_loss {losses['g_loss']:.4f} {rate:.1f} steps/s", flush=True)
    save_grid(gan, out / "final.png", fixed_z)
    torch.save({"config": gan.config.to_dict(), "generator": gan.generator.state_dict(),
                "discriminator": gan.discriminator.state_dict()}, out / "final.pt")
    print(f"{step} steps in {time.perf_counter() - start:.0f} s; grids and final.pt in {out}")


if __name__ == "__main__":
    main()
