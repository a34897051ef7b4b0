"""The reference training loop, re-implemented faithfully for timing (PyTorch-GAN's ``cgan.py``).

This is the loop that ``/work/shared/REFERENCE.md`` describes and that condgan's ``mnist_mlp``
preset reproduces: its own ``Generator``/``Discriminator`` classes (``BatchNorm1d(n, 0.8)``
included: positionally that is eps), a torchvision ``DataLoader`` over MNIST that resizes each
image with PIL, converts and normalises it on every epoch in the main process (``shuffle=True``,
batch 64, no workers), NumPy noise and labels copied to the device every step, ``.item()`` on both
losses and a formatted print every step. What differs from the original script, none of which
changes the per-step cost: the models take their sizes as arguments instead of reading a global
``opt``; ``Variable(...)`` wrappers (no-ops since PyTorch 0.4) and the legacy ``FloatTensor``
constructors are written as ``torch.tensor``/``.to``; the 10x10 sample grid saved every 400 batches
is not drawn (it costs well under 1% of 400 steps); prints go to a stream the caller chooses.

When MNIST is not under ``data_root``, :func:`mnist_or_synthetic` serves random uint8 images of
MNIST's shape through the same PIL transforms, and says so (``ReferenceLoop.data_source``).

    python benchmarks/reference_loop.py --data-root ../shared/data --steps 200
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from typing import Iterator, TextIO

import numpy as np
import torch
import torch.nn as nn
import torchvision.transforms as transforms
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets


class Generator(nn.Module):
    """The reference generator, as written there (sizes passed in instead of read from ``opt``)."""

    def __init__(self, n_classes: int = 10, latent_dim: int = 100, img_shape: tuple[int, int, int] = (1, 32, 32)):
        super(Generator, self).__init__()
        self.img_shape = img_shape
        self.label_emb = nn.Embedding(n_classes, n_classes)

        def block(in_feat, out_feat, normalize=True):
            layers = [nn.Linear(in_feat, out_feat)]
            if normalize:
                layers.append(nn.BatchNorm1d(out_feat, 0.8))  # the reference's positional 0.8 is eps
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(
            *block(latent_dim + n_classes, 128, normalize=False),
            *block(128, 256),
            *block(256, 512),
            *block(512, 1024),
            nn.Linear(1024, int(np.prod(img_shape))),
            nn.Tanh()
        )

    def forward(self, noise, labels):
        # Concatenate label embedding and image to produce input
        gen_input = torch.cat((self.label_emb(labels), noise), -1)
        img = self.model(gen_input)
        img = img.view(img.size(0), *self.img_shape)
        return img


class Discriminator(nn.Module):
    """The reference discriminator, as written there."""

    def __init__(self, n_classes: int = 10, img_shape: tuple[int, int, int] = (1, 32, 32)):
        super(Discriminator, self).__init__()
        self.label_embedding = nn.Embedding(n_classes, n_classes)
        self.model = nn.Sequential(
            nn.Linear(n_classes + int(np.prod(img_shape)), 512),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512),
            nn.Dropout(0.4),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1),
        )

    def forward(self, img, labels):
        # Concatenate label embedding and image to produce input
        d_in = torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), -1)
        validity = self.model(d_in)
        return validity


class SyntheticMNIST(Dataset):
    """Random uint8 28x28 images and labels served as PIL images, like ``datasets.MNIST`` does."""

    def __init__(self, n: int = 60000, transform=None, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.data = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        self.targets = rng.integers(0, 10, n)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img = Image.fromarray(self.data[index], mode="L")  # as datasets.MNIST.__getitem__
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[index])


def mnist_or_synthetic(data_root: str, img_size: int = 32, synthetic_size: int = 60000) -> tuple[Dataset, str]:
    """The reference's MNIST dataset with its transforms, or synthetic images of MNIST's shape.

    Returns the dataset and its source: ``"mnist"`` or ``"synthetic"``.
    """
    transform = transforms.Compose(
        [transforms.Resize(img_size), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])]
    )
    try:
        return datasets.MNIST(data_root, train=True, download=False, transform=transform), "mnist"
    except RuntimeError:  # torchvision: "Dataset not found"
        return SyntheticMNIST(synthetic_size, transform=transform), "synthetic"


class ReferenceLoop:
    """The reference loop as an endless sequence of steps: :meth:`run` trains ``n`` more.

    Args:
        data_root: torchvision MNIST layout; synthetic images of MNIST's shape when absent.
        device: where the models train.
        batch_size, img_size, lr, b1, b2, latent_dim, n_classes: the reference's options and defaults.
        out: where the per-step line is printed (default: the null device; it is formatted anyway).
        synthetic_size: how many synthetic images when MNIST is absent.
    """

    def __init__(self, data_root: str = "./data", device: str | torch.device = "cpu", *, batch_size: int = 64,
                 img_size: int = 32, lr: float = 0.0002, b1: float = 0.5, b2: float = 0.999, latent_dim: int = 100,
                 n_classes: int = 10, n_epochs: int = 200, out: TextIO | None = None, synthetic_size: int = 60000):
        self.device = torch.device(device)
        self.batch_size, self.latent_dim, self.n_classes, self.n_epochs = batch_size, latent_dim, n_classes, n_epochs
        img_shape = (1, img_size, img_size)
        # Loss functions
        self.adversarial_loss = torch.nn.MSELoss().to(self.device)
        # Initialize generator and discriminator
        self.generator = Generator(n_classes, latent_dim, img_shape).to(self.device)
        self.discriminator = Discriminator(n_classes, img_shape).to(self.device)
        # Configure data loader
        dataset, self.data_source = mnist_or_synthetic(data_root, img_size, synthetic_size)
        self.dataloader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
        # Optimizers
        self.optimizer_G = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(b1, b2))
        self.optimizer_D = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=(b1, b2))
        self.out = out if out is not None else open(os.devnull, "w")
        self._steps = self._loop()

    def run(self, n: int) -> None:
        """Train ``n`` more steps."""
        for _ in itertools.islice(self._steps, n):
            pass

    def _loop(self) -> Iterator[None]:
        generator, discriminator, adversarial_loss = self.generator, self.discriminator, self.adversarial_loss
        optimizer_G, optimizer_D, dataloader, device = self.optimizer_G, self.optimizer_D, self.dataloader, self.device
        for epoch in range(self.n_epochs):
            for i, (imgs, labels) in enumerate(dataloader):
                batch_size = imgs.shape[0]

                # Adversarial ground truths
                valid = torch.empty(batch_size, 1, device=device).fill_(1.0)
                fake = torch.empty(batch_size, 1, device=device).fill_(0.0)

                # Configure input
                real_imgs = imgs.to(device, torch.float32)
                labels = labels.to(device, torch.long)

                # -----------------
                #  Train Generator
                # -----------------

                optimizer_G.zero_grad()

                # Sample noise and labels as generator input
                z = torch.tensor(np.random.normal(0, 1, (batch_size, self.latent_dim)), dtype=torch.float32).to(device)
                gen_labels = torch.tensor(np.random.randint(0, self.n_classes, batch_size), dtype=torch.long).to(device)

                # Generate a batch of images
                gen_imgs = generator(z, gen_labels)

                # Loss measures generator's ability to fool the discriminator
                validity = discriminator(gen_imgs, gen_labels)
                g_loss = adversarial_loss(validity, valid)

                g_loss.backward()
                optimizer_G.step()

                # ---------------------
                #  Train Discriminator
                # ---------------------

                optimizer_D.zero_grad()

                # Loss for real images
                validity_real = discriminator(real_imgs, labels)
                d_real_loss = adversarial_loss(validity_real, valid)

                # Loss for fake images
                validity_fake = discriminator(gen_imgs.detach(), gen_labels)
                d_fake_loss = adversarial_loss(validity_fake, fake)

                # Total discriminator loss
                d_loss = (d_real_loss + d_fake_loss) / 2

                d_loss.backward()
                optimizer_D.step()

                print(
                    "[Epoch %d/%d] [Batch %d/%d] [D loss: %f] [G loss: %f]"
                    % (epoch, self.n_epochs, i, len(dataloader), d_loss.item(), g_loss.item()),
                    file=self.out,
                )
                yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time the reference cGAN loop (steps/s).")
    parser.add_argument("--data-root", default="./data", help="torchvision MNIST layout (synthetic images if absent)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--print", action="store_true", help="print the per-step lines to stdout")
    args = parser.parse_args(argv)
    loop = ReferenceLoop(args.data_root, args.device, batch_size=args.batch_size, out=sys.stdout if args.print else None)
    loop.run(5)  # warm-up
    if loop.device.type == "cuda":
        torch.cuda.synchronize(loop.device)
    start = time.perf_counter()
    loop.run(args.steps)
    elapsed = time.perf_counter() - start
    print(f"reference loop ({loop.data_source} data, {loop.device}, batch {args.batch_size}, "
          f"{torch.get_num_threads()} threads): {args.steps / elapsed:.2f} steps/s")


if __name__ == "__main__":
    main()
