"""Reading a table: CSV or Parquet into a pandas DataFrame, its columns typed, the condition split off.

pandas (and pyarrow, for Parquet) are imported only when a table is read; without them the error
says ``pip install condgan[table]``. Every bad input is one :class:`TableError` line that names the
file, the column or the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .columns import DISCRETE, KINDS, Column, TableSpec, plain

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
MAX_CATEGORIES = 100


class TableError(ValueError):
    """A table file or column that cannot be used; the message is one line naming what is wrong."""


def require_pandas():
    """The pandas module, or one line saying how to install it."""
    try:
        import pandas
    except ImportError:  # pragma: no cover - exercised by monkeypatching sys.modules
        raise TableError("reading tables needs pandas (and pyarrow for Parquet): pip install condgan[table]") from None
    return pandas


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def read_table(path: str | Path, *, format: str | None = None):
    """Read a CSV or Parquet file into a DataFrame.

    Args:
        path: the file; its suffix (``.csv``, ``.tsv``, ``.parquet``, ``.pq``) picks the reader.
        format: ``"csv"`` or ``"parquet"`` to override the suffix.

    Returns:
        a ``pandas.DataFrame`` with at least one row and one column.

    Example:
        >>> frame = read_table("penguins.csv")  # doctest: +SKIP
    """
    pd = require_pandas()
    path = Path(path)
    if path.is_dir():
        raise TableError(f"{path} is a directory, not a table file (.csv or .parquet)")
    if not path.exists():
        raise TableError(f"table file {path} does not exist")
    fmt = format or SUFFIXES.get(path.suffix.lower())
    if fmt not in ("csv", "parquet"):
        raise TableError(f"{path} is not a table: expected a .csv, .tsv or .parquet file (or format='csv'/'parquet')")
    if fmt == "parquet":
        try:
            import pyarrow
        except ImportError:
            raise TableError(f"reading {path} needs pyarrow: pip install condgan[table]") from None
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except (OSError, ValueError, pyarrow.ArrowException) as exc:  # ArrowInvalid and friends: not Parquet
            raise TableError(f"{path} is not a Parquet table: {_one_line(exc)}") from None
    else:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        try:
            frame = pd.read_csv(path, sep=sep)
        except pd.errors.EmptyDataError:
            raise TableError(f"{path} is an empty table: no header and no rows") from None
        except pd.errors.ParserError as exc:
            raise TableError(f"{path}: the CSV does not parse: {_one_line(exc)}") from None
        except UnicodeDecodeError:
            raise TableError(f"{path} is not a table: it is not UTF-8 text (a binary file named {path.suffix}?)") from None
    if len(frame.columns) == 0:
        raise TableError(f"{path} is an empty table: it has no columns")
    if len(frame) == 0:
        raise TableError(f"{path} is an empty table: it has a header ({', '.join(map(str, frame.columns[:5]))}) but no rows")
    unnamed = [str(c) for c in frame.columns if not isinstance(c, str) or not c.strip()]
    if unnamed:
        raise TableError(f"{path}: every column needs a name (a header row), got column name(s) {', '.join(unnamed)}")
    return frame


def _is_number(text: Any) -> bool:
    if isinstance(text, bool):
        return False
    if isinstance(text, (int, float)):
        return True
    try:
        float(str(text))
        return True
    except ValueError:
        return False


def _mixed(values, where: str) -> None:
    """One line if an object column holds both numbers and text (or other Python types)."""
    types = {}
    for v in values:
        key = "number" if _is_number(v) else "boolean" if isinstance(v, bool) else "text" if isinstance(v, str) else type(v).__name__
        types.setdefault(key, v)
        if len(types) > 1:
            (a, va), (b, vb) = list(types.items())[:2]
            raise TableError(f"{where} mixes types: {a} {va!r} and {b} {vb!r}; make it one type, or override its kind "
                             f"(kinds={{...: 'categorical'}} reads every value as a category)")


def infer_column(series, *, kind: str | None = None, max_categories: int = MAX_CATEGORIES, source: str = "table") -> Column:
    """The :class:`Column` a pandas Series is, its kind inferred unless given.

    Inference: a bool column is ``boolean``; integers, and floats that are all whole numbers, are
    ``integer``; other numbers are ``continuous``; text and pandas categories are ``categorical``.

    Args:
        series: the column's values (``series.name`` is the column name).
        kind: one of ``continuous``, ``integer``, ``categorical``, ``boolean`` to override inference.
        max_categories: most categories a categorical column may have.
        source: the file name, for messages.
    """
    pd = require_pandas()
    name = str(series.name)
    where = f"{source}: column {name!r}"
    if kind is not None and kind not in KINDS:
        raise TableError(f"{where}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    values = series.dropna()
    nullable = bool(len(values) < len(series))
    if len(values) == 0:
        raise TableError(f"{where} is empty: every one of its {len(series)} rows is missing; drop it")
    if values.nunique() == 1 and not nullable:
        raise TableError(f"{where} is constant: every row is {plain(values.iloc[0])!r}; drop it (it carries nothing to learn)")
    dtype = series.dtype
    if kind is None:
        if pd.api.types.is_bool_dtype(dtype) or (dtype == object and all(isinstance(v, bool) for v in values)):
            kind = "boolean"
        elif pd.api.types.is_numeric_dtype(dtype):
            whole = pd.api.types.is_integer_dtype(dtype) or bool((values.astype(float) % 1 == 0).all())
            kind = "integer" if whole else "continuous"
        elif isinstance(dtype, pd.CategoricalDtype) or dtype == object or pd.api.types.is_string_dtype(dtype):
            _mixed(values, where)
            if all(_is_number(v) for v in values):
                kind = "integer" if all(float(v) % 1 == 0 for v in values) else "continuous"
            else:
                kind = "categorical"
        else:
            raise TableError(f"{where} has dtype {dtype}, which no column kind reads; allowed kinds: "
                             f"{', '.join(KINDS)} (convert it, or override its kind)")
    if kind in DISCRETE:
        return _discrete(values, kind, nullable, max_categories, where, name)
    try:
        numbers = pd.to_numeric(values, errors="raise").astype(float)
    except (ValueError, TypeError):
        bad = next(v for v in values if not _is_number(v))
        raise TableError(f"{where} is {kind} but holds the value {bad!r}, which is not a number") from None
    if not all(math.isfinite(v) for v in (numbers.min(), numbers.max())):
        raise TableError(f"{where} holds an infinite value; a {kind} column's values must be finite")
    lo, hi = float(numbers.min()), float(numbers.max())
    if kind == "integer":
        frac = numbers[numbers % 1 != 0]
        if len(frac):
            raise TableError(f"{where} is integer but holds the value {float(frac.iloc[0])!r}; "
                             f"override its kind to 'continuous'")
        lo, hi = int(lo), int(hi)
    return Column(name, kind, min=lo, max=hi, nullable=nullable)


def _discrete(values, kind, nullable, max_categories, where, name) -> Column:
    if kind == "boolean":
        uniq = set(values.tolist())
        if not uniq <= {True, False}:
            bad = next(v for v in values.tolist() if v not in (True, False))
            raise TableError(f"{where} is boolean but holds the value {plain(bad)!r}; allowed: True, False (or 0, 1)")
        return Column(name, "boolean", nullable=nullable)
    if hasattr(values.dtype, "categories"):  # a pandas categorical keeps its declared order
        present = set(values.unique())
        cats = [plain(v) for v in values.dtype.categories if v in present]
    else:  # sorted; values of several Python types are sorted by type name, then text
        uniq = [plain(v) for v in values.unique()]
        cats = sorted(uniq) if len({type(v) for v in uniq}) == 1 else sorted(uniq, key=lambda v: (type(v).__name__, str(v)))
    if len(cats) > max_categories:
        raise TableError(f"{where} has {len(cats)} categories, more than max_categories={max_categories}; "
                         f"raise max_categories, or override its kind to 'continuous'/'integer' if it is a number")
    return Column(name, "categorical", categories=tuple(cats), nullable=nullable)


def infer_spec(frame, kinds: Mapping[str, str] | None = None, *, max_categories: int = MAX_CATEGORIES,
               source: str = "table") -> TableSpec:
    """The :class:`TableSpec` of a DataFrame, each column's kind inferred unless ``kinds`` names it.

    Args:
        frame: the table.
        kinds: overrides, column name -> kind (``continuous``, ``integer``, ``categorical``, ``boolean``).
        max_categories: most categories a categorical column may have.
        source: the file name, for messages.

    Example:
        >>> import pandas as pd
        >>> infer_spec(pd.DataFrame({"x": [0.5, 1.5], "c": ["a", "b"]})).names
        ('x', 'c')
    """
    kinds = dict(kinds or {})
    unknown = [k for k in kinds if k not in frame.columns]
    if unknown:
        raise TableError(f"{source}: kinds names column {unknown[0]!r}, which the table does not have; "
                         f"its columns: {', '.join(map(str, frame.columns))}")
    if len(frame) == 0 or len(frame.columns) == 0:
        raise TableError(f"{source} is an empty table: {len(frame)} rows, {len(frame.columns)} columns")
    return TableSpec([infer_column(frame[c], kind=kinds.get(c), max_categories=max_categories, source=source)
                      for c in frame.columns])


def conform(frame, spec: TableSpec):
    """The frame with each column in the dtype its kind reads (numbers as float, categories as they are)."""
    pd = require_pandas()
    out = {}
    for col in spec:
        s = frame[col.name]
        if col.is_numeric:
            out[col.name] = pd.to_numeric(s, errors="raise").astype(float)
        elif col.kind == "boolean":
            out[col.name] = s.astype(object).where(s.notna(), None).map(lambda v: None if v is None else bool(v))
        else:
            out[col.name] = s.astype(object).where(s.notna(), None)
    return pd.DataFrame(out, index=frame.index)


@dataclass
class Table:
    """A table read from a file, split into its condition and output columns.

    Attributes:
        frame: every column, as read (``conform``-ed to each column's kind).
        spec: the spec of every column, in file order.
        condition: the names of the condition columns, as given.
        source: the file the table came from.
    """

    frame: Any
    spec: TableSpec
    condition: tuple
    source: str = "table"

    @property
    def condition_spec(self) -> TableSpec:
        """The condition columns' spec, in the order they were named."""
        return self.spec.select(self.condition)

    @property
    def output_spec(self) -> TableSpec:
        """The output columns' spec: every column that is not a condition, in file order."""
        return self.spec.drop(self.condition)

    @property
    def conditions(self):
        """The condition columns (a DataFrame, named order)."""
        return self.frame[list(self.condition)]

    @property
    def outputs(self):
        """The output columns (a DataFrame, file order)."""
        return self.frame[list(self.output_spec.names)]


def split_condition(spec: TableSpec, condition: str | Sequence[str], *, source: str = "table") -> tuple:
    """The condition names checked against the spec: each exists, none twice, some output is left.

    Args:
        spec: the whole table's spec.
        condition: one column name, a comma-separated list, or a list of names.
    """
    names = [condition] if isinstance(condition, str) else list(condition)
    names = [n.strip() for part in names for n in str(part).split(",") if n.strip()]
    if not names:
        raise TableError(f"{source}: no condition column given; name one of its columns: {', '.join(spec.names)}")
    for n in names:
        if n not in spec:
            raise TableError(f"{source}: condition column {n!r} does not exist; its columns: {', '.join(spec.names)}")
    if len(set(names)) != len(names):
        raise TableError(f"{source}: condition column {next(n for i, n in enumerate(names) if n in names[:i])!r} is named twice")
    if len(names) == len(spec):
        raise TableError(f"{source}: every column is a condition ({', '.join(names)}); leave at least one column as output")
    return tuple(names)


def load_table(path: str | Path, condition: str | Sequence[str], *, kinds: Mapping[str, str] | None = None,
               max_categories: int = MAX_CATEGORIES, format: str | None = None) -> Table:
    """Read a CSV/Parquet table, type its columns and split the condition column(s) from the output.

    Args:
        path: the ``.csv`` or ``.parquet`` file.
        condition: the condition column name(s): ``"species"``, ``"species,island"`` or a list.
        kinds: column kind overrides, name -> kind.
        max_categories: most categories a categorical column may have.
        format: ``"csv"`` or ``"parquet"`` to override the file suffix.

    Example:
        >>> table = load_table("penguins.csv", condition="species")  # doctest: +SKIP
        >>> table.output_spec.names  # doctest: +SKIP
        ('island', 'bill_length_mm', ...)
    """
    frame = read_table(path, format=format)
    source = str(path)
    spec = infer_spec(frame, kinds, max_categories=max_categories, source=source)
    names = split_condition(spec, condition, source=source)
    for n in names:
        if spec[n].nullable:
            missing = int(frame[n].isna().sum())
            raise TableError(f"{source}: condition column {n!r} is missing in {missing} row(s); "
                             f"a condition must be given on every row (drop those rows, or fill them)")
    return Table(frame=conform(frame, spec), spec=spec, condition=names, source=source)
