"""``condgan eval --reference FILE``: judge vector models by their vectors against held-out real ones.

A source is a run, checkpoint or generator file of a vector model (sampled: one vector per
reference row, for that row's condition, from a seeded noise generator) or an ``.npz`` of vectors
with their conditions (``outputs`` and ``labels`` / ``conditions``, what ``condgan sample``
writes). The reference is a ``tensors`` file (``outputs`` (N, D) and one condition: the held-out
split of the training data); ``--real FILE`` adds a row for the real training vectors, the figures
a perfect generator would get. The judges (:mod:`condgan.metrics.vectors`) are printed in one
table with their protocol.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path
from typing import Any

VECTOR_READER = "condgan eval --reference"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_vector_file(path: str | Path, what: str):
    """A :class:`~condgan.data.VectorSet` from a tensors file, or one line saying why not."""
    from ..data.arrays import TensorFile

    path = Path(path)
    data = TensorFile(path).load()
    if data.output.name != "vector":
        raise ValueError(f"{what} {path} holds images; {VECTOR_READER} judges vectors: give a tensors file with 'outputs' (N, D)")
    return data


def _samples_file(path: Path, spec) -> tuple[Any, Any]:
    """(vectors, conditions) of an .npz that condgan sample wrote (outputs, labels or conditions)."""
    import numpy as np
    import torch

    with np.load(path, allow_pickle=False) as f:
        if "outputs" not in f.files:
            raise ValueError(f"{path} has no 'outputs': give the .npz that condgan sample writes for a vector model")
        key = "labels" if "labels" in f.files else "conditions" if "conditions" in f.files else None
        if key is None:
            raise ValueError(f"{path} has no 'labels' or 'conditions' for its outputs")
        vectors, y = torch.from_numpy(f["outputs"].astype(np.float32)), torch.from_numpy(f[key])
    spec.check(y.long() if key == "labels" else y.float())
    return vectors, (y.long() if key == "labels" else y.float())


def _sample(source: str, reference, seed: int, device) -> tuple[Any, Any, str]:
    """One vector per reference condition from the generator in ``source``."""
    from ..checkpoint import load_generator
    from ..sampling import Conditions, generate

    generator = load_generator(source, device=device, outputs=("vector",), reader=VECTOR_READER)
    if generator.spec != reference.spec:
        raise ValueError(f"{source} takes {generator.spec.kind} conditions of {generator.spec.width} entries, and the reference's "
                         f"are {reference.spec.kind} of {reference.spec.width}: give the held-out split of its own data")
    if generator.output.dim != reference.output.dim:
        raise ValueError(f"{source} makes vectors of {generator.output.dim} values, the reference holds {reference.output.dim}")
    y = reference.conditions
    samples = generate(generator, Conditions(y, tuple(str(i) for i in range(len(y)))), 1, seed=seed)
    return samples.images, y, f"{source} (one vector per reference condition, {len(y)}, seed {seed})"


def run_vector_eval(args: argparse.Namespace) -> int:
    import torch

    from ..metrics.vectors import evaluate_vectors
    from ..training.setup import resolve_device
    from .tables import format_table

    from ..checkpoint import check_output_kind, saved_output

    for source in args.sources:  # a model of another kind fails before the reference loads
        if Path(source).suffix != ".npz":
            check_output_kind(saved_output(source), ("vector",), VECTOR_READER, source)
    reference = load_vector_file(args.reference, "--reference")
    ref_path = Path(args.reference)
    protocol = {"reference": f"{ref_path} ({len(reference)} vectors, sha256 {_sha256(ref_path)[:16]}...)"}
    classes = reference.spec.num_classes if reference.spec.kind == "class" else None
    device = resolve_device(args.device)
    rows: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    sets: list[tuple[str, Any, Any, str]] = []
    for source in args.sources:
        path = Path(source)
        if path.suffix == ".npz" and path.is_file():
            vectors, y = _samples_file(path, reference.spec)
            sets.append((source, vectors, y, f"{source} (npz, {len(vectors)} vectors)"))
        else:
            sets.append((source, *_sample(source, reference, args.seed, device)))
    if args.real_vectors:
        real = load_vector_file(args.real_vectors, "--real")
        sets.append((f"real {Path(args.real_vectors).name}", real.vectors, real.conditions, f"{args.real_vectors} (real vectors)"))
    if not sets:
        raise ValueError("nothing to evaluate: give vector runs, checkpoints or .npz files of vectors, or --real FILE")
    for source, vectors, y, described in sets:
        start = time.perf_counter()
        name = source if len(sets) > 1 else "generated"
        rows[name] = evaluate_vectors(vectors.float().cpu(), y.cpu(), reference.vectors, reference.conditions,
                                      num_classes=classes, protocol={**protocol, "source": described})
        seconds[name] = time.perf_counter() - start
    print(format_table(rows, seconds))
    pr = next(iter(rows.values()))["precision_recall"].protocol
    print(f"vector judges: Frechet distance and k-NN precision/recall (k={pr['k']}), density/coverage (k=5) of "
          f"{FEATURES_TEXT}; reference: {protocol['reference']}"
          + ("; intra-FD: the Frechet distance within each class, averaged over classes" if classes else ""))
    if args.json_out:
        payload = {"reference": protocol["reference"], "seconds": {k: round(v, 2) for k, v in seconds.items()},
                   "rows": {name: {key: r.to_dict() for key, r in results.items()} for name, results in rows.items()},
                   "torch": torch.__version__}
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(payload, indent=1, default=str) + "\n")
        print(f"wrote {args.json_out}")
    return 0


FEATURES_TEXT = "the vectors themselves (no feature extractor; Euclidean distances)"
