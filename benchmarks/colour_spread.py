"""How varied each class's colours are while a class-conditional image run trains (issue 27 item 3).

    PYTHONPATH=. python benchmarks/colour_spread.py --data-root runs/shapes27/shapes --out runs/spread \
        [--preset dcgan_projection_ac] [--steps 2500] [--every 500] [--set model.d_optimizer.lr=0.0008]

Trains ``--preset`` on an image folder (e.g. the coloured shapes that ``shapes_quality.py`` writes)
with a callback that, every ``--every`` steps, samples 128 images per class (fixed noise) from the
live generator in eval and in training mode and from the EMA generator (once it averages), and
prints each class's foreground colour spread: the standard deviation over the samples of their mean
colour (pixels brighter than 0.35 in [0, 1]), averaged over channels. The real coloured shapes
spread 0.16-0.17 per class (every channel uniform in [0.4, 1]); a generator that paints a class in
one colour spreads near 0. Prints the real folder's spread first; also writes ``OUT/spread.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import condgan  # noqa: E402
from condgan.commands import parse_override  # noqa: E402

PER_CLASS = 128


def colour_spread(images: torch.Tensor, num_classes: int) -> tuple[list[float], list[list[float]]]:
    """Images (K * n, C, H, W) in [0, 1], class-major -> each class's spread and mean foreground colour."""
    mask = (images.mean(1, keepdim=True) > 0.35).float()
    colour = ((images * mask).sum((2, 3)) / mask.sum((2, 3)).clamp(min=1)).unflatten(0, (num_classes, -1))  # (K, n, C)
    return colour.std(1).mean(1).tolist(), colour.mean(1).tolist()


def sample_spread(generator: nn.Module, num_classes: int, train_mode: bool) -> tuple[list[float], list[list[float]]]:
    """The spread of ``PER_CLASS`` samples per class (noise seed 1), in eval or training mode; restores the mode."""
    was = generator.training
    generator.train(train_mode)
    labels = torch.arange(num_classes).repeat_interleave(PER_CLASS)
    with torch.no_grad():
        noise = generator.sample_noise(len(labels), "cpu", torch.Generator().manual_seed(1))
        images = (generator(noise, labels) + 1) / 2
    generator.train(was)
    return colour_spread(images, num_classes)


def real_spread(root: Path) -> dict[str, float]:
    """The first ``PER_CLASS`` training images of each class folder: their spread."""
    import numpy as np
    from PIL import Image

    out = {}
    for folder in sorted(p for p in (root / "train").iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.png"))[:PER_CLASS]
        x = torch.stack([torch.from_numpy(np.array(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in files]) / 255
        out[folder.name] = round(colour_spread(x, 1)[0][0], 3)
    return out


class ColourSpread:
    """A callback: prints and keeps the colour spread of the live and EMA generators every ``every`` steps."""

    name = "colour_spread"
    every = 500
    records: list[dict] = []

    @condgan.hookimpl
    def on_step_end(self, trainer, step):
        if step % self.every:
            return
        k = trainer.gan.spec.num_classes
        views = [("live_eval", trainer.gan.generator, False), ("live_train", trainer.gan.generator, True)]
        if trainer.ema is not None and step >= trainer.ema.start:
            views.append(("ema", trainer.ema.module, False))
        record = {"step": step}
        for tag, generator, train_mode in views:
            spread, mean = sample_spread(generator, k, train_mode)
            record[tag] = {"spread": [round(v, 3) for v in spread], "mean": [[round(v, 2) for v in row] for row in mean]}
        self.records.append(record)
        print(f"step {step}: " + " | ".join(f"{tag} spread {record[tag]['spread']}" for tag, *_ in views), flush=True)


class Plugin:
    @condgan.hookimpl
    def register_callbacks(self):
        return [ColourSpread]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True, help="an image folder with train/<class>/*.png")
    parser.add_argument("--out", required=True)
    parser.add_argument("--preset", default="dcgan_projection_ac")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", type=parse_override, default=[], help="a config override KEY=VALUE")
    args = parser.parse_args()
    root = Path(args.data_root)
    if not (root / "train").is_dir():
        raise SystemExit(f"--data-root must hold train/<class>/ folders, got {root}")
    real = real_spread(root)
    print(f"real spread per class {real}", flush=True)
    ColourSpread.every = args.every
    condgan.register_plugin(Plugin())
    overrides = {"data.name": "imagefolder", "data.root": str(root), "data.image_size": 32, "steps": args.steps,
                 "epochs": 10_000, "out_dir": args.out, "callbacks": ["colour_spread"], "device": "cpu",
                 "seed": args.seed, **dict(args.set)}
    condgan.Trainer(condgan.run_config(args.preset, overrides)).train()
    result = {"preset": args.preset, "overrides": dict(args.set), "steps": args.steps, "seed": args.seed,
              "per_class_samples": PER_CLASS, "real": real, "records": ColourSpread.records}
    Path(args.out, "spread.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
