"""A dataset's fingerprint: its name, its class list and its image statistics, small enough to store
in a judge file and a generator file, so that ``condgan eval`` can tell a model trained on other
data from one trained on the judge's (issue 25).

``dataset_fingerprint(data, "mnist")`` gives::

    {"name": "mnist", "kind": "class", "num_classes": 10, "classes_sha256": "...", "channels": 1,
     "mean": [0.1307], "std": [0.3081], "images": 60000}

``classes_sha256`` hashes the condition kind, the class count and the class names (or "unnamed");
``mean``/``std`` are per channel, in [0, 1], over up to :data:`STAT_IMAGES` evenly spaced images.
Two fingerprints match (:func:`compare_fingerprints`) when names, kinds, class lists and channels
are equal and every statistic is within :data:`STAT_TOLERANCE`: a judge's held-out part left out,
another image size or another subsample still match; another dataset does not.

The trainer computes the fingerprint of the data it trains on once and stores it in every
checkpoint and generator file it writes (``data``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import torch

STAT_IMAGES = 2048  # images read for the statistics (decoded files: STAT_FILES)
STAT_FILES = 64
STAT_TOLERANCE = 0.03  # per-channel mean/std in [0, 1] units

def classes_sha256(kind: str, num_classes: int | None, class_names: Any) -> str:
    """SHA-256 of the condition kind, class count and class names (None: "unnamed")."""
    names = [str(n) for n in class_names] if class_names else "unnamed"
    text = json.dumps({"kind": kind, "num_classes": num_classes, "names": names}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _sample_images(data: Any) -> torch.Tensor:
    """Up to STAT_IMAGES evenly spaced (N, C, H, W) uint8 images of an ImageSet, or decoded from a FileSet."""
    images = getattr(data, "images", None)
    if isinstance(images, torch.Tensor):
        n = len(images)
        idx = torch.linspace(0, n - 1, min(n, STAT_IMAGES)).round().long().unique()
        return images[idx]
    from .decode import decode_files

    paths = list(data.paths)
    idx = sorted({round(i * (len(paths) - 1) / max(1, STAT_FILES - 1)) for i in range(min(len(paths), STAT_FILES))})
    c, h, w = data.image_shape
    decoded, _ = decode_files([paths[i] for i in idx], c, (h, w), getattr(data, "fit", "crop"), skip_bad=True)
    return decoded


def dataset_fingerprint(data: Any, name: Any = None) -> dict[str, Any]:
    """The fingerprint of an :class:`~condgan.data.ImageSet` (or a streamed file set) of dataset ``name``.

    Args:
        data: an ImageSet (uint8 images) or a FileSet (paths decoded for the statistics).
        name: the registered dataset's name (a Dataset class gives its ``name``); None when unknown.
    """
    spec = data.spec
    x = _sample_images(data).float() / 255.0  # (n, C, H, W)
    return {
        "name": getattr(name, "name", name), "kind": spec.kind, "num_classes": spec.num_classes,
        "classes_sha256": classes_sha256(spec.kind, spec.num_classes, data.class_names),
        "channels": int(x.shape[1]), "mean": [round(float(v), 4) for v in x.mean((0, 2, 3))],
        "std": [round(float(v), 4) for v in x.std((0, 2, 3))] if len(x) > 1 else [0.0] * int(x.shape[1]),
        "images": len(data),
    }


def compare_fingerprints(model: dict[str, Any], judge: dict[str, Any], *, tolerance: float = STAT_TOLERANCE) -> list[str]:
    """What differs between a model's data and a judge's data (empty: the same dataset), one phrase each.

    A record that holds only a name (an older file, a checkpoint's data section) is compared by name.
    """
    out = []
    if model.get("name") and judge.get("name") and model["name"] != judge["name"]:
        out.append(f"the model was trained on {model['name']!r}, the judge on {judge['name']!r}")
    if not (model.get("classes_sha256") and judge.get("classes_sha256")):  # a record of the name alone
        return out
    if model["classes_sha256"] != judge["classes_sha256"]:
        out.append(f"their class lists differ ({model.get('kind')}, {model.get('num_classes')} against "
                   f"{judge.get('kind')}, {judge.get('num_classes')}, or other names)")
    if model.get("channels") != judge.get("channels"):
        out.append(f"{model.get('channels')} against {judge.get('channels')} channels")
    else:
        for what in ("mean", "std"):
            a, b = model.get(what) or [], judge.get(what) or []
            if len(a) == len(b) and any(abs(u - v) > tolerance for u, v in zip(a, b)):
                out.append(f"pixel {what} {[round(v, 3) for v in a]} against {[round(v, 3) for v in b]}")
    return out
