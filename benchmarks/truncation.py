"""Truncation's quality/diversity trade-off on the synthetic dataset, judged without a trained classifier.

``python benchmarks/truncation.py RUN`` samples a generator trained on the ``synthetic`` dataset
(class k lights cell k of a g x g grid, g = ceil(sqrt(K))) at several truncation thresholds and
prints, for each, with the protocol:

- **label accuracy**: the share of samples whose brightest cell (mean pixel value per grid cell,
  the judge) is the cell of the class asked for; real synthetic images score 1.0;
- **cell FID**: the Frechet distance between the cell-mean features (g * g values per image) of the
  samples and of real synthetic test images (the dataset's test seed), 1,000 per class on both
  sides; it rises when samples lose the real set's spread of brightness and noise;
- **pixel std**: the standard deviation across the samples of one class, averaged over pixels and
  classes (the diversity that truncation trades away).

Train the run first, e.g. (a couple of minutes on two CPU cores)::

    condgan train --dataset synthetic --set "image_shape=(1,16,16)" --set latent_dim=32 \\
        --set "generator.backbone_options.widths=(64,128,256,256)" \\
        --set "discriminator.backbone_options.widths=(256,128,64)" --steps 3000 --out runs/trunc --device cpu
"""

from __future__ import annotations

import argparse
import json
import math

import torch

import condgan
from condgan.data import synthetic
from condgan.metrics.fid import fid_from_features
from condgan.sampling import generate, make_conditions


def cell_means(images: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N, g * g) mean brightness per grid cell of (N, C, H, W) images in [0, 1] (cells as synthetic lays them out)."""
    grid = math.ceil(math.sqrt(num_classes))
    _, _, h, w = images.shape
    rows = torch.linspace(0, grid, h + 1)[:-1].floor().long()
    cols = torch.linspace(0, grid, w + 1)[:-1].floor().long()
    cell = (rows[:, None] * grid + cols[None, :]).flatten()  # (H * W,) cell of each pixel
    flat = images.mean(dim=1).flatten(1)  # (N, H * W)
    sums = torch.zeros(len(images), grid * grid).index_add_(1, cell, flat)
    return sums / torch.bincount(cell, minlength=grid * grid)


def judge(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """Label accuracy of the brightest-cell judge (cells beyond the class count are ignored)."""
    predicted = cell_means(images, num_classes)[:, :num_classes].argmax(dim=1)
    return (predicted == labels).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a run directory (or generator file) trained on the synthetic dataset")
    parser.add_argument("--per-class", type=int, default=1000)
    parser.add_argument("--thresholds", default="none,2,1,0.5,0.25,0.1")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    G = condgan.load_generator(args.run)
    K = G.spec.num_classes
    real, real_labels = synthetic(image_shape=G.image_shape, num_classes=K, train=False, per_class=args.per_class)
    real = real.float() / 255
    reference = cell_means(real, K)
    rows = [{"truncation": "real test images", "label_accuracy": judge(real, real_labels, K), "cell_fid": 0.0,
             "pixel_std": real.view(K, args.per_class, -1).std(dim=1).mean().item()}]
    conditions = make_conditions(G)
    for text in args.thresholds.split(","):
        t = None if text == "none" else float(text)
        samples = generate(G, conditions, args.per_class, seed=args.seed, truncation=t)
        labels = samples.y
        rows.append({"truncation": text, "label_accuracy": judge(samples.images, labels, K),
                     "cell_fid": fid_from_features(cell_means(samples.images, K), reference).value,
                     "pixel_std": samples.images.view(K, args.per_class, -1).std(dim=1).mean().item()})
    print("| truncation | label accuracy | cell FID | pixel std |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['truncation']} | {r['label_accuracy']:.3f} | {r['cell_fid']:.4f} | {r['pixel_std']:.3f} |")
    protocol = {"run": args.run, "per_class": args.per_class, "seed": args.seed, "judge": "brightest grid cell",
                "fid_features": "cell means", "reference": f"synthetic test split, {args.per_class} per class"}
    print(json.dumps({"protocol": protocol, "rows": rows}))


if __name__ == "__main__":
    main()
