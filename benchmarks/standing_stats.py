"""Standing batch-norm statistics for a run's saved generator (BigGAN's), written as a copy of the run.

    PYTHONPATH=. python benchmarks/standing_stats.py RUN OUT [--batches 100] [--batch-size 64]

The EMA generator's batch-norm running statistics are copied from the live G, which do not fit the
averaged weights. This re-estimates them on the saved generator itself (running statistics reset,
cumulative averages over ``--batches`` batches of noise and uniform class labels in training mode,
a fixed seed), writes ``OUT/generator.pt`` with the run's other top-level files, so that ``condgan
eval OUT`` scores it, and prints each class's mean foreground colour and its spread over 256
samples (pixels brighter than 0.35 in [0, 1]) before and after, for a class-conditional image run.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from torch import nn

import condgan
from condgan import checkpoint as ckpt


def colours(generator: nn.Module, num_classes: int, per_class: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Each class's mean foreground colour (K, C) and its mean spread over the samples (K,), in eval mode."""
    generator.eval()
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    with torch.no_grad():
        images = (generator(generator.sample_noise(len(labels), "cpu", torch.Generator().manual_seed(1)), labels) + 1) / 2
    mask = (images.mean(1, keepdim=True) > 0.35).float()
    colour = (images * mask).sum((2, 3)) / mask.sum((2, 3)).clamp(min=1)  # (N, C)
    per = colour.unflatten(0, (num_classes, per_class))  # (K, n, C)
    return per.mean(1), per.std(1).mean(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    run, out = Path(args.run), Path(args.out)
    saved = ckpt.read_file(run / ckpt.GENERATOR_FILE)  # checked: format, checksum
    generator = condgan.load_generator(run)
    k = generator.spec.num_classes
    before = colours(generator, k)
    for m in generator.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
    generator.train()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(args.batches):
            generator(generator.sample_noise(args.batch_size, "cpu", gen), torch.randint(0, k, (args.batch_size,), generator=gen))
    after = colours(generator, k)
    skip = shutil.ignore_patterns("checkpoints", "tensorboard", "samples", "run.lock")
    shutil.copytree(run, out, ignore=skip, dirs_exist_ok=True)
    content = ckpt.generator_file(ckpt.gan_config_from_plain(saved["gan_config"]), generator.state_dict(),
                                  from_ema=saved["from_ema"], step=saved["step"], data=saved["data"])
    ckpt.save_file(content, out / ckpt.GENERATOR_FILE)
    for name, (mean, spread) in (("copied", before), ("standing", after)):
        print(f"{name:9s} mean colour per class {[[round(v, 2) for v in row] for row in mean.tolist()]}; "
              f"spread {[round(v, 3) for v in spread.tolist()]}")
    print(f"wrote {out / ckpt.GENERATOR_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
