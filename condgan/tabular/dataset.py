"""The ``table`` dataset: a CSV or Parquet file, conditioned on a column, as encoded rows to train on.

``condgan train --preset tabular --dataset table --data-root penguins.csv --set
data.options.condition=species``: the file is read and typed by
:func:`~condgan.tabular.read.load_table`, the condition column's values become the model's
classes (their names: the values as text), and the other columns are encoded by a fitted
:class:`~condgan.tabular.transforms.TableTransformer` (CTGAN's mode-specific normalisation by
default). The rows reach the trainer as a :class:`~condgan.data.VectorSet` whose ``output`` is a
:class:`~condgan.tabular.output.TableOutput`, which keeps the transforms for writing rows back.

Several condition columns (``condition=species,island``) make one class per combination of
their values that the file holds (named ``Adelie/Biscoe``): the condition is their joint value,
and combinations the file never holds cannot be asked for. ``holdout=0.2`` keeps a seeded fifth
of the rows out of training (:mod:`~condgan.tabular.holdout`; the transforms are fitted on the
training rows only; column kinds, ranges and categories come from the whole file), and the run
records the file's SHA-256 and the split, so ``condgan eval RUN`` judges against those rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..conditions import ConditionSpec
from ..data.base import Dataset, DatasetError, VectorSet
from ..hookspecs import hookimpl
from .holdout import HoldoutError, split_rows, table_record
from .output import DEFAULT_TAU, TableOutput
from .read import MAX_CATEGORIES, Table, TableError, load_table
from .transforms import CONTINUOUS, TableTransformer


class TableDataset(Dataset):
    """Rows of a CSV or Parquet file (``root`` is the file), conditioned on one of its columns.

    Args:
        root: the ``.csv`` / ``.parquet`` file.
        split: ``"train"`` or ``"all"`` (the file is one set).
        condition: the condition column(s), categorical or boolean: one name (its values are the
            classes), or several (``"species,island"`` or a list: a class per combination in the file).
        kinds: column kind overrides, name -> ``continuous``, ``integer``, ``categorical``, ``boolean``.
        max_categories: the most categories a categorical column may have.
        continuous: the transform of numeric columns: ``"vgm"`` (CTGAN's, default) or ``"minmax"``.
        tau: the Gumbel-softmax temperature of the generator's head.
        seed: seed of the transforms' fits and of the held-out split.
        holdout: the fraction of rows kept out of training for ``condgan eval RUN`` (0: none).
    """

    name = "table"
    description = "rows of a CSV/Parquet file conditioned on a column (ROOT is the file; data.options.condition=COLUMN)"
    splits = ("train", "all")

    def __init__(self, root=None, *, split="train", download=False, condition: Any = None, kinds: dict | None = None,
                 max_categories: int = MAX_CATEGORIES, continuous: str = "vgm", tau: float = DEFAULT_TAU, seed: int = 0,
                 holdout: float = 0.0, **options):
        super().__init__(root, split=split, download=download, **options)
        if condition is None:
            raise DatasetError("dataset 'table' needs its condition column: --set data.options.condition=COLUMN")
        if continuous not in CONTINUOUS:
            raise DatasetError(f"dataset 'table': continuous must be one of {', '.join(CONTINUOUS)}, got {continuous!r}")
        self.condition, self.kinds, self.max_categories = condition, dict(kinds or {}), max_categories
        self.continuous, self.tau, self.seed = continuous, float(tau), int(seed)
        if isinstance(holdout, bool) or not isinstance(holdout, (int, float)) or not 0 <= holdout < 1:
            raise DatasetError(f"dataset 'table': holdout is the fraction of rows kept out of training, in [0, 1), got {holdout!r}")
        self.holdout = float(holdout)

    def load(self, *, channels=None, size=None, fit="crop") -> VectorSet:
        if self.root is None:
            raise DatasetError("dataset 'table' reads one .csv or .parquet file (the data root)")
        try:
            table = load_table(self.root, self.condition, kinds=self.kinds, max_categories=self.max_categories)
        except TableError as exc:
            raise DatasetError(str(exc)) from None
        names, values, labels = condition_classes(table)
        try:
            train, _ = split_rows(len(table.frame), self.holdout, self.seed)
        except HoldoutError as exc:
            raise DatasetError(f"{self.root}: {exc}") from None
        counts = np.bincount(labels[train], minlength=len(names))
        record = table_record(self.root, len(table.frame), self.holdout, self.seed, table.condition, names, counts)
        table = Table(table.frame.iloc[train].reset_index(drop=True), table.spec, table.condition, table.source)
        transformer = TableTransformer(table.output_spec, continuous=self.continuous, seed=self.seed).fit(table.outputs)
        rows = torch.from_numpy(np.ascontiguousarray(transformer.transform(table.outputs), dtype=np.float32))
        output = TableOutput(transformer.output_dim, table.output_spec.to_dict(), transformer.state(),
                             table.condition_spec.to_dict(), table.spec.names, self.tau,
                             classes=values if len(table.condition) > 1 else None, counts=tuple(int(c) for c in counts))
        return VectorSet(rows, torch.from_numpy(labels[train]), ConditionSpec("class", len(names)), names, output,
                         fingerprint=record)


def condition_classes(table: Table) -> tuple[tuple[str, ...], tuple[tuple, ...], np.ndarray]:
    """(class names, each class's condition values, each row's class (N,) int64) of a table.

    One condition column: its categories in order (every category of the column, named by its
    value). Several: each combination of their values that some row holds, in the columns'
    category order, named by the values joined with ``/``.
    """
    columns = [table.condition_spec[n] for n in table.condition]
    for column in columns:
        if column.kind not in ("categorical", "boolean"):
            raise DatasetError(f"{table.source}: condition column {column.name!r} is {column.kind}; a condition column is "
                               "categorical or boolean (its values are the classes)")
    rank = [{c: i for i, c in enumerate(column.categories)} for column in columns]
    rows = list(zip(*(table.conditions[c.name].tolist() for c in columns)))
    if len(columns) == 1:
        values = tuple((c,) for c in columns[0].categories)
    else:
        values = tuple(sorted(set(rows), key=lambda combo: tuple(r[v] for r, v in zip(rank, combo))))
    index = {v: k for k, v in enumerate(values)}
    labels = np.array([index[r] for r in rows], dtype=np.int64)
    return tuple("/".join(str(v) for v in combo) for combo in values), values, labels

@hookimpl
def register_datasets():
    return [TableDataset]
