"""Data-path throughput: images/s of condgan's two data paths against torchvision's ImageFolder + DataLoader.

``python benchmarks/data_throughput.py --images 3000 --workers 2 --device cpu`` prints a table and
JSON. This module lives in ``benchmarks/``, outside the installed package.

What is timed
-------------
The set: a generated folder of ``--images`` 64x64 RGB pictures (``--format`` png or jpg) in 10
class folders (coloured discs and squares on noise), written once to a temporary folder (or
``--folder``) before any timing.

- **decode once** (the device-resident path's start-up cost): ``ImageFolder.load`` decoding every
  file once to uint8 at ``--size`` (threads, PIL).
- **resident** (:class:`~condgan.data.tensors.TensorBatches`): the decoded uint8 set on
  ``--device``, an epoch of shuffled batches by index, converted to float in [-1, 1].
- **stream** (:class:`~condgan.data.stream.StreamBatches`): ``--workers`` DataLoader workers decode
  each batch's files (the same pixels as the decode-once path), pinned memory on CUDA, 4 batches
  prefetched per worker, each batch copied to ``--device`` and converted to float.
- **torchvision**: ``torchvision.datasets.ImageFolder`` with ``Resize(size)``, ``CenterCrop(size)``,
  ``ToTensor()``, ``Normalize(0.5, 0.5)`` (the same resize-and-centre-crop), a ``DataLoader`` with
  the same batch size, shuffle, workers, pinned memory on CUDA, persistent workers and prefetch,
  each batch copied to ``--device``.

Every path runs one warm-up epoch (worker start-up, caches); then ``--repeats`` rounds time one
epoch of each path in turn (interleaved, so that the load of a shared machine hits all alike);
reported: the median images/s over the rounds and the slowest and fastest epoch. With
``--step``, one training step of a 64x64 RGB conv GAN (``mnist_dcgan_projection`` at
``--size``, batch ``--batch``) is timed too (2 warm-up, ``--step-repeats`` timed), and each
path's data time per batch is given as a percentage of that step (the target: under 10%).
CUDA timings synchronize before reading the clock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from condgan.data.folders import ImageFolder  # noqa: E402
from condgan.data.stream import StreamBatches  # noqa: E402
from condgan.data.tensors import TensorBatches  # noqa: E402


def make_folder(root: Path, n: int, size: int = 64, fmt: str = "png", classes: int = 10) -> Path:
    """``n`` size x size RGB pictures in ``classes`` class folders: a coloured disc or square on noise."""
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        k = i % classes
        folder = root / f"class{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        img = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
        cy, cx, r = rng.integers(size // 4, 3 * size // 4, 2).tolist() + [int(rng.integers(size // 8, size // 4))]
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r if k % 2 == 0 else (abs(yy - cy) < r) & (abs(xx - cx) < r)
        img[mask] = np.array([(40 * k) % 256, 255 - 20 * k, 128 + 12 * k], dtype=np.uint8)
        Image.fromarray(img).save(folder / f"{i:05d}.{fmt}", **({"quality": 90} if fmt == "jpg" else {}))
    return root


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_epochs(contenders: dict, device: torch.device, repeats: int) -> dict:
    """One warm-up epoch each, then ``repeats`` rounds of one timed epoch per contender (interleaved,
    so that a change in machine load hits all of them alike); images/s per epoch."""
    def epoch(make_iter) -> float:
        sync(device)
        t0 = time.perf_counter()
        count = 0
        for x, _ in make_iter():
            count += len(x)
        sync(device)
        return count / (time.perf_counter() - t0)

    for make_iter, _ in contenders.values():
        epoch(make_iter)  # warm-up: worker start-up, file cache
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, (make_iter, _) in contenders.items():
            rates[name].append(epoch(make_iter))
    return {name: {"images_per_s": statistics.median(r), "slowest": min(r), "fastest": max(r), "epochs": repeats,
                   "images_per_epoch": contenders[name][1]} for name, r in rates.items()}


def torchvision_iter(folder: Path, size: int, batch: int, workers: int, device: torch.device):
    import torchvision
    from torchvision import transforms

    tf = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size), transforms.ToTensor(),
                             transforms.Normalize([0.5] * 3, [0.5] * 3)])
    ds = torchvision.datasets.ImageFolder(str(folder), transform=tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                                         generator=torch.Generator().manual_seed(0))

    def it():
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    return it, len(ds)


def step_ms(size: int, batch: int, device: torch.device, repeats: int) -> float:
    import dataclasses

    from condgan.gan import build
    from condgan.presets import mnist_dcgan_projection
    from condgan.training.step import FastStep
    from condgan.training.optim import fast_optimizer_options

    gan = build(dataclasses.replace(mnist_dcgan_projection(), image_shape=(3, size, size))).to(device)
    opt_g, opt_d = gan.optimizers(**fast_optimizer_options(device))
    step = FastStep(gan, opt_g, opt_d)
    x = torch.rand(batch, 3, size, size, device=device) * 2 - 1
    y = torch.randint(0, 10, (batch,), device=device)
    for _ in range(2):
        step(x, y)
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        step(x, y)
        sync(device)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--format", choices=("png", "jpg"), default="png")
    p.add_argument("--folder", type=Path, help="use (or create) this folder instead of a temporary one")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch intra-op threads of the main process (default: torch's)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--step", action="store_true", help="also time one training step of a 64x64 RGB conv GAN")
    p.add_argument("--step-repeats", type=int, default=3)
    p.add_argument("--out", type=Path, help="write the JSON here too")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or Path(tmp) / "set"
        if not folder.is_dir() or not any(folder.iterdir()):
            make_folder(folder, args.images, args.size, args.format)
        dataset = ImageFolder(folder)
        paths, labels, _ = dataset.files()
        n = len(paths)

        t0 = time.perf_counter()
        data = dataset.load(channels=3, size=(args.size, args.size))
        decode_s = time.perf_counter() - t0
        results = {"decode once": {"images_per_s": n / decode_s, "seconds": decode_s, "images_per_epoch": n}}

        gen = torch.Generator(device=device).manual_seed(0)
        resident = TensorBatches(data.images, data.conditions, args.batch, device=device, generator=gen)
        stream = StreamBatches(paths, torch.tensor(labels), args.batch, channels=3, size=(args.size, args.size), device=device,
                               generator=torch.Generator(device=device).manual_seed(0), num_workers=args.workers)
        tv_iter, n_tv = torchvision_iter(folder, args.size, args.batch, args.workers, device)
        results.update(time_epochs({"resident (TensorBatches)": (lambda: iter(resident), n),
                                    "stream (StreamBatches)": (lambda: iter(stream), n),
                                    "torchvision ImageFolder + DataLoader": (tv_iter, n_tv)}, device, args.repeats))
        del stream

    out = {
        "protocol": {"images": n, "size": args.size, "format": args.format, "batch": args.batch, "workers": args.workers,
                     "repeats": args.repeats, "device": str(device), "warm_up_epochs": 1, "cpus": os.cpu_count(),
                     "threads": torch.get_num_threads(),
                     "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine()},
        "paths": results,
    }
    if args.step:
        ms = step_ms(args.size, args.batch, device, args.step_repeats)
        out["step"] = {"preset": f"mnist_dcgan_projection at (3, {args.size}, {args.size})", "batch": args.batch, "ms_per_step": ms}
        for name, r in results.items():
            if name != "decode once":
                r["data_ms_per_batch"] = 1000 * args.batch / r["images_per_s"]
                r["data_percent_of_step"] = 100 * r["data_ms_per_batch"] / ms
    print(markdown(out))
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return out


def markdown(out: dict) -> str:
    pr = out["protocol"]
    lines = [f"{pr['images']} {pr['size']}x{pr['size']} RGB {pr['format']} images, batch {pr['batch']}, {pr['workers']} workers, "
             f"device {pr['device']}, {pr['threads']} thread(s), median of {pr['repeats']} interleaved epochs after 1 warm-up", "",
             "| path | images/s | slowest | fastest |" + (" data % of step |" if "step" in out else ""),
             "|---|---|---|---|" + ("---|" if "step" in out else "")]
    for name, r in out["paths"].items():
        if name == "decode once":
            lines.append(f"| {name} | {r['images_per_s']:.0f} | | |" + (" |" if "step" in out else ""))
            continue
        row = f"| {name} | {r['images_per_s']:.0f} | {r['slowest']:.0f} | {r['fastest']:.0f} |"
        if "step" in out:
            row += f" {r['data_percent_of_step']:.1f} |"
        lines.append(row)
    if "step" in out:
        lines.append(f"\nstep: {out['step']['preset']}, batch {out['step']['batch']}: {out['step']['ms_per_step']:.1f} ms")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
