"""Sample an exported generator with onnxruntime and NumPy alone (no torch, no condgan), as a PNG grid.

Export the generator first, then run this anywhere onnxruntime, numpy and Pillow are installed:

    condgan export runs/a --format onnx                       # writes runs/a/generator.onnx
    python examples/onnx_sample.py runs/a/generator.onnx --classes 3,7 --per-class 8 --out grid.png

The ONNX file takes ``z`` (float32, (B, latent_dim)) and ``y`` (int64 class indices (B,), or
float32 (B, K) tags or vectors) and returns ``images`` (float32, (B, C, H, W)) in the run's pixel
range. Its metadata entry ``condgan`` (JSON) says the latent size, the noise, the condition, the
class names and the pixel range.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import onnxruntime
from PIL import Image


def read_description(session: onnxruntime.InferenceSession) -> dict:
    """The JSON description condgan stores in the file's metadata."""
    return json.loads(session.get_modelmeta().custom_metadata_map["condgan"])


def noise(info: dict, n: int, rng: np.random.Generator, truncation: float | None) -> np.ndarray:
    """z as the generator was trained with: N(0, 1) (optionally truncated to [-t, t]) or U[0, 1)."""
    shape = (n, info["latent_dim"])
    if info["noise"] == "uniform":
        return rng.random(shape, dtype=np.float32)
    z = rng.standard_normal(shape, dtype=np.float32)
    if truncation is not None:  # BigGAN's truncation: redraw values beyond the threshold
        while (beyond := np.abs(z) > truncation).any():
            z[beyond] = rng.standard_normal(int(beyond.sum()), dtype=np.float32)
    return z


def conditions(info: dict, classes: str | None) -> tuple[np.ndarray, list[str]]:
    """(y for one sample of each condition, a label per condition) from "3,7" or class names."""
    condition, names = info["condition"], info["class_names"]
    if condition["kind"] == "vector":
        raise SystemExit("this generator takes float vectors: build y as a (B, dim) float32 array yourself")
    count = condition["num_classes"]
    picked = list(range(count)) if not classes else [
        names.index(t) if names and t in names else int(t) for t in (t.strip() for t in classes.split(","))]
    labels = [names[k] if names else str(k) for k in picked]
    if condition["kind"] == "class":
        return np.array(picked, dtype=np.int64), labels
    return np.eye(count, dtype=np.float32)[picked], labels  # tags: each tag alone


def grid(images: np.ndarray, columns: int, padding: int = 2) -> Image.Image:
    """(N, C, H, W) images in [0, 1] tiled ``columns`` per row on black, as one PIL image."""
    n, c, h, w = images.shape
    rows = -(-n // columns)
    canvas = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), dtype=np.uint8)
    for i, image in enumerate(images):
        r, k = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        canvas[top:top + h, left:left + w] = np.round(image.transpose(1, 2, 0) * 255).astype(np.uint8)
    return Image.fromarray(canvas[:, :, 0] if c == 1 else canvas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the .onnx file written by condgan export --format onnx")
    parser.add_argument("--classes", help="class indices or names, comma separated (default: every class)")
    parser.add_argument("--per-class", type=int, default=8, help="rows of the grid: samples per class")
    parser.add_argument("--truncation", type=float, help="draw z from a normal truncated to [-T, T]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="grid.png", help="the PNG grid to write: column k is class k")
    args = parser.parse_args()

    session = onnxruntime.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    info = read_description(session)
    y_one, labels = conditions(info, args.classes)
    rng = np.random.default_rng(args.seed)
    y = np.tile(y_one, (args.per_class,) + (1,) * (y_one.ndim - 1))  # row r, column k: condition k
    z = noise(info, len(y), rng, args.truncation)
    images = session.run(["images"], {"z": z, "y": y})[0]  # (B, C, H, W) in the pixel range
    low, high = info["pixel_range"]
    images = np.clip((images - low) / (high - low), 0.0, 1.0)
    grid(images, columns=len(labels)).save(args.out)
    print(f"wrote {args.out}: {args.per_class} rows x {len(labels)} columns ({', '.join(labels)})")


if __name__ == "__main__":
    main()
