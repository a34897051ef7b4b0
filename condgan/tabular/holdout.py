"""A table run's held-out rows: the split the ``table`` dataset makes, and the record that finds them again.

``data.options.holdout=0.2`` keeps a fifth of the file's rows out of training, chosen by the
dataset's ``seed`` (:func:`split_rows`). The run records the file, its SHA-256, its row count, the
fraction and the seed (:func:`table_record`, the checkpoint's ``data`` entry), so that
``condgan eval RUN`` judges the generator against rows it never saw and the training rows
(:func:`recorded_rows`), and refuses, in one line, a file that changed since.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np


class HoldoutError(ValueError):
    """A run's held-out rows cannot be found again (no holdout, the file moved or changed); one line."""


def split_rows(n: int, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(training row numbers, held-out row numbers), each in file order: ``round(n * fraction)`` rows
    (at least one when ``fraction > 0``) of a seeded permutation (numpy's ``default_rng(seed)``) are held out.

    Example:
        >>> train, held = split_rows(10, 0.2, seed=0)
        >>> len(train), len(held)
        (8, 2)
    """
    if not 0 <= fraction < 1:
        raise HoldoutError(f"holdout must be a fraction in [0, 1) of the rows, got {fraction}")
    if fraction == 0:
        return np.arange(n), np.arange(0)
    order = np.random.default_rng(seed).permutation(n)
    n_held = max(1, round(n * fraction))
    if n_held >= n:
        raise HoldoutError(f"holdout={fraction} of {n} rows leaves no row to train on")
    return np.sort(order[n_held:]), np.sort(order[:n_held])


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def table_record(path: str | Path, rows: int, fraction: float, seed: int, condition: tuple, class_names,
                 class_counts) -> dict[str, Any]:
    """What a table run records of its data (the checkpoint's ``data``): the file (absolute path,
    SHA-256, rows), the split (``holdout``, ``seed``, ``train_rows``), the condition columns and the
    training rows per class; with ``name``/``kind``/``classes_sha256`` as every fingerprint has."""
    from ..data.fingerprint import classes_sha256

    names = [str(c) for c in class_names]
    return {"name": "table", "kind": "class", "num_classes": len(names),
            "classes_sha256": classes_sha256("class", len(names), names),
            "file": str(Path(path).resolve()), "sha256": file_sha256(path), "rows": int(rows),
            "holdout": float(fraction), "seed": int(seed), "train_rows": int(sum(class_counts)),
            "condition": list(condition), "class_counts": [int(c) for c in class_counts]}


def recorded_rows(record: dict[str, Any] | None, source: str, file: str | Path | None = None):
    """(training rows, held-out rows, the file) of the run whose data ``record`` is, read from the
    recorded file (or ``file``), checked against its SHA-256 and split as in training.

    Raises:
        HoldoutError: no record, no held-out rows, a missing file or one whose content changed.
    """
    from .read import read_table

    if not record or record.get("name") != "table" or "sha256" not in record:
        raise HoldoutError(f"{source} records no table file to find its held-out rows in: give --reference HELDOUT.csv "
                           "(and --real TRAIN.csv)")
    if not record.get("holdout"):
        raise HoldoutError(f"{source} was trained on every row of {record['file']} (data.options.holdout=0): give --reference "
                           "HELDOUT.csv (and --real TRAIN.csv), or train with --set data.options.holdout=0.2")
    path = Path(file) if file is not None else Path(record["file"])
    if not path.is_file():
        raise HoldoutError(f"{source} was trained on {record['file']}, which is not there now: give its path with --data-root FILE")
    found = file_sha256(path)
    if found != record["sha256"]:
        raise HoldoutError(f"{path} changed since {source} was trained on it (sha256 {found[:12]}..., recorded "
                           f"{record['sha256'][:12]}...): its held-out rows are lost; give --reference HELDOUT.csv")
    frame = read_table(path)
    if len(frame) != record["rows"]:  # pragma: no cover - the hash would have changed
        raise HoldoutError(f"{path} has {len(frame)} rows, the run recorded {record['rows']}")
    train, held = split_rows(len(frame), record["holdout"], record["seed"])
    return frame.iloc[train].reset_index(drop=True), frame.iloc[held].reset_index(drop=True), path
