"""The ``table`` dataset: a CSV or Parquet file, conditioned on a column, as encoded rows to train on.

``condgan train --preset tabular --dataset table --data-root penguins.csv --set
data.options.condition=species``: the file is read and typed by
:func:`~condgan.tabular.read.load_table`, the condition column's values become the model's
classes (their names: the values as text), and the other columns are encoded by a fitted
:class:`~condgan.tabular.transforms.TableTransformer` (CTGAN's mode-specific normalisation by
default). The rows reach the trainer as a :class:`~condgan.data.VectorSet` whose ``output`` is a
:class:`~condgan.tabular.output.TableOutput`, which keeps the transforms for writing rows back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..conditions import ConditionSpec
from ..data.base import Dataset, DatasetError, VectorSet
from ..hookspecs import hookimpl
from .output import DEFAULT_TAU, TableOutput
from .read import MAX_CATEGORIES, TableError, load_table
from .transforms import CONTINUOUS, TableTransformer


class TableDataset(Dataset):
    """Rows of a CSV or Parquet file (``root`` is the file), conditioned on one of its columns.

    Args:
        root: the ``.csv`` / ``.parquet`` file.
        split: ``"train"`` or ``"all"`` (the file is one set).
        condition: the condition column: categorical or boolean (its values are the classes).
        kinds: column kind overrides, name -> ``continuous``, ``integer``, ``categorical``, ``boolean``.
        max_categories: the most categories a categorical column may have.
        continuous: the transform of numeric columns: ``"vgm"`` (CTGAN's, default) or ``"minmax"``.
        tau: the Gumbel-softmax temperature of the generator's head.
        seed: seed of the transforms' fits.
    """

    name = "table"
    description = "rows of a CSV/Parquet file conditioned on a column (ROOT is the file; data.options.condition=COLUMN)"
    splits = ("train", "all")

    def __init__(self, root=None, *, split="train", download=False, condition: Any = None, kinds: dict | None = None,
                 max_categories: int = MAX_CATEGORIES, continuous: str = "vgm", tau: float = DEFAULT_TAU, seed: int = 0,
                 **options):
        super().__init__(root, split=split, download=download, **options)
        if condition is None:
            raise DatasetError("dataset 'table' needs its condition column: --set data.options.condition=COLUMN")
        if continuous not in CONTINUOUS:
            raise DatasetError(f"dataset 'table': continuous must be one of {', '.join(CONTINUOUS)}, got {continuous!r}")
        self.condition, self.kinds, self.max_categories = condition, dict(kinds or {}), max_categories
        self.continuous, self.tau, self.seed = continuous, float(tau), int(seed)

    def load(self, *, channels=None, size=None, fit="crop") -> VectorSet:
        if self.root is None:
            raise DatasetError("dataset 'table' reads one .csv or .parquet file (the data root)")
        try:
            table = load_table(self.root, self.condition, kinds=self.kinds, max_categories=self.max_categories)
        except TableError as exc:
            raise DatasetError(str(exc)) from None
        if len(table.condition) != 1:
            raise DatasetError(f"{self.root}: one condition column for now, got {', '.join(table.condition)}")
        column = table.condition_spec[table.condition[0]]
        if column.kind not in ("categorical", "boolean"):
            raise DatasetError(f"{self.root}: condition column {column.name!r} is {column.kind}; a condition column is "
                               "categorical or boolean (its values are the classes)")
        categories = list(column.categories)
        index = {c: i for i, c in enumerate(categories)}
        labels = torch.tensor([index[v] for v in table.conditions[column.name].tolist()], dtype=torch.long)
        transformer = TableTransformer(table.output_spec, continuous=self.continuous, seed=self.seed).fit(table.outputs)
        rows = torch.from_numpy(np.ascontiguousarray(transformer.transform(table.outputs), dtype=np.float32))
        output = TableOutput(transformer.output_dim, table.output_spec.to_dict(), transformer.state(),
                             table.condition_spec.to_dict(), table.spec.names, self.tau)
        return VectorSet(rows, labels, ConditionSpec("class", len(categories)), tuple(str(c) for c in categories), output)


@hookimpl
def register_datasets():
    return [TableDataset]
