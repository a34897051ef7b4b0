"""Sample an exported TorchScript generator with plain torch (no condgan import).

    condgan export runs/a --format torchscript                  # writes runs/a/generator.torchscript.pt
    python examples/torchscript_sample.py runs/a/generator.torchscript.pt --out grid.png

The module takes ``(z, y)``: z float32 (B, latent_dim), y int64 class indices (B,) (or float32
(B, K) tags or vectors), and returns images (B, C, H, W) in the run's pixel range; the file's
extra entry ``condgan.json`` describes it.
"""

from __future__ import annotations

import argparse
import json

import torch
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--out", default="grid.png")
    args = parser.parse_args()

    extra = {"condgan.json": ""}
    generator = torch.jit.load(args.model, _extra_files=extra)  # eval mode, CPU
    info = json.loads(extra["condgan.json"])
    if info["condition"]["kind"] != "class":
        raise SystemExit("this example draws class labels; build y as a float32 (B, K) tensor for tags or vectors")
    classes = info["condition"]["num_classes"]
    y = torch.arange(classes).repeat(args.per_class)  # row r, column k: class k
    z = torch.randn(len(y), info["latent_dim"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        images = generator(z, y)
    low, high = info["pixel_range"]
    images = ((images - low) / (high - low)).clamp(0, 1)  # (B, C, H, W) in [0, 1]
    b, c, h, w = images.shape
    canvas = torch.zeros(c, args.per_class * (h + 2) + 2, classes * (w + 2) + 2)  # black, padding 2
    for i, image in enumerate(images):
        r, k = divmod(i, classes)
        canvas[:, 2 + r * (h + 2):2 + r * (h + 2) + h, 2 + k * (w + 2):2 + k * (w + 2) + w] = image
    pixels = (canvas * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    Image.fromarray(pixels[:, :, 0] if c == 1 else pixels).save(args.out)
    print(f"wrote {args.out}: {args.per_class} rows x {classes} classes")


if __name__ == "__main__":
    main()
