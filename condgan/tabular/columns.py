"""What a table's rows are: an ordered list of typed columns, as plain data.

A :class:`TableSpec` is to a table output what :class:`~condgan.conditions.ConditionSpec` is to a
condition: it names each column, its kind (``continuous``, ``integer``, ``categorical`` or
``boolean``), its range or categories and whether it may be missing. ``to_dict``/``from_dict`` turn
it into JSON-able data (a checkpoint stores it so), and every bad field is one line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("continuous", "integer", "categorical", "boolean")
NUMERIC = ("continuous", "integer")
DISCRETE = ("categorical", "boolean")


class TableSpecError(ValueError):
    """A column or table description that is not valid; the message is one line."""


def plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar it holds (so a spec is JSON-able); anything else as it is."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return item()
    return value


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


@dataclass(frozen=True)
class Column:
    """One column of a table: its name, kind, range or categories, and whether it may be missing.

    Args:
        name: the column's name in the file (a non-empty string).
        kind: ``"continuous"`` (floats), ``"integer"`` (whole numbers, rounded on the way out),
            ``"categorical"`` (one of ``categories``) or ``"boolean"`` (``False``/``True``).
        min: smallest value seen (numeric kinds; generated values are clipped to it).
        max: largest value seen (numeric kinds).
        categories: the values a categorical column takes, in a fixed order (strings, numbers or
            booleans); a boolean column's are ``(False, True)``.
        nullable: whether the column may be missing (NaN) in a row.

    Example:
        >>> Column("species", "categorical", categories=("Adelie", "Gentoo"))
        Column(name='species', kind='categorical', min=None, max=None, categories=('Adelie', 'Gentoo'), nullable=False)
    """

    name: str
    kind: str
    min: float | None = None
    max: float | None = None
    categories: tuple = ()
    nullable: bool = False

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TableSpecError(f"a column name must be a non-empty string, got {self.name!r}")
        where = f"column {self.name!r}"
        if self.kind not in KINDS:
            raise TableSpecError(f"{where}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.nullable, bool):
            raise TableSpecError(f"{where}: nullable must be true or false, got {self.nullable!r}")
        cats = self.categories
        if isinstance(cats, (str, bytes)) or not isinstance(cats, Sequence):
            raise TableSpecError(f"{where}: categories must be a list of values, got {cats!r}")
        object.__setattr__(self, "categories", tuple(plain(c) for c in cats))
        for bound in ("min", "max"):
            value = plain(getattr(self, bound))
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise TableSpecError(f"{where}: {bound} must be a finite number, got {value!r}")
            object.__setattr__(self, bound, value)
        if self.kind in NUMERIC:
            if self.categories:
                raise TableSpecError(f"{where}: {_a(self.kind)} column has a range (min/max), not categories")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise TableSpecError(f"{where}: min {self.min} is larger than max {self.max}")
        else:
            if self.min is not None or self.max is not None:
                raise TableSpecError(f"{where}: {_a(self.kind)} column has categories, not a range (min/max)")
            self._check_categories(where)

    def _check_categories(self, where: str) -> None:
        cats = self.categories
        if self.kind == "boolean":
            if cats and cats != (False, True):
                raise TableSpecError(f"{where}: a boolean column's categories are [false, true], got {list(cats)!r}")
            object.__setattr__(self, "categories", (False, True))
            return
        if len(cats) < 1:
            raise TableSpecError(f"{where}: a categorical column needs at least one category")
        for c in cats:
            if c is None or (isinstance(c, float) and math.isnan(c)) or not isinstance(c, (str, int, float, bool)):
                raise TableSpecError(
                    f"{where}: categories must be strings, numbers or booleans (missing values are "
                    f"nullable=true, not a category), got {c!r}")
        if len(set(cats)) != len(cats):
            dup = next(c for i, c in enumerate(cats) if c in cats[:i])
            raise TableSpecError(f"{where}: category {dup!r} is listed twice")

    @property
    def is_numeric(self) -> bool:
        """Whether the column is continuous or integer."""
        return self.kind in NUMERIC

    def to_dict(self) -> dict:
        """The column as JSON-able data: only the fields its kind uses."""
        out: dict = {"name": self.name, "kind": self.kind}
        if self.is_numeric:
            out.update(min=self.min, max=self.max)
        else:
            out["categories"] = list(self.categories)
        out["nullable"] = self.nullable
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> Column:
        """A column from :meth:`to_dict`'s data; an unknown or missing field is one line."""
        if not isinstance(data, Mapping):
            raise TableSpecError(f"a column must be a mapping with name and kind, got {type(data).__name__}")
        known = {"name", "kind", "min", "max", "categories", "nullable"}
        extra = sorted(set(data) - known)
        if extra:
            raise TableSpecError(f"column {data.get('name')!r} has unknown field(s) {', '.join(map(str, extra))}; "
                                 f"allowed: {', '.join(sorted(known))}")
        for needed in ("name", "kind"):
            if needed not in data:
                raise TableSpecError(f"a column needs a {needed!r} field, got fields {', '.join(map(str, data))}")
        fields = dict(data)
        if "categories" in fields and isinstance(fields["categories"], list):
            fields["categories"] = tuple(fields["categories"])
        return cls(**fields)


@dataclass(frozen=True)
class TableSpec:
    """The ordered columns of a table.

    Args:
        columns: the columns in file order; names must be unique.

    Example:
        >>> spec = TableSpec([Column("age", "integer", min=0, max=90), Column("smoker", "boolean")])
        >>> spec.names
        ('age', 'smoker')
        >>> TableSpec.from_dict(spec.to_dict()) == spec
        True
    """

    columns: tuple = field(default_factory=tuple)

    def __post_init__(self):
        cols = self.columns
        if isinstance(cols, (str, bytes, Mapping)) or not isinstance(cols, Sequence):
            raise TableSpecError(f"a table's columns must be a list of Column, got {type(cols).__name__}")
        cols = tuple(cols)
        for c in cols:
            if not isinstance(c, Column):
                raise TableSpecError(f"a table's columns must be Column objects, got {type(c).__name__}")
        seen: set = set()
        for c in cols:
            if c.name in seen:
                raise TableSpecError(f"column name {c.name!r} appears twice; column names must be unique")
            seen.add(c.name)
        object.__setattr__(self, "columns", cols)

    @property
    def names(self) -> tuple:
        """The column names, in order."""
        return tuple(c.name for c in self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"no column {name!r}; the table's columns: {', '.join(self.names)}")

    def select(self, names: Sequence[str]) -> TableSpec:
        """The spec of the named columns, in the order given."""
        return TableSpec([self[n] for n in names])

    def drop(self, names: Sequence[str]) -> TableSpec:
        """The spec without the named columns (the others keep their order)."""
        for n in names:
            self[n]  # an unknown name is one line
        return TableSpec([c for c in self.columns if c.name not in set(names)])

    def to_dict(self) -> dict:
        """The spec as JSON-able data: ``{"kind": "table", "columns": [...]}``."""
        return {"kind": "table", "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping) -> TableSpec:
        """A spec from :meth:`to_dict`'s data; anything else is one line saying what was expected."""
        if not isinstance(data, Mapping) or data.get("kind") != "table" or "columns" not in data:
            got = data.get("kind") if isinstance(data, Mapping) else type(data).__name__
            raise TableSpecError(f"a table spec is a mapping with kind 'table' and a list of columns, got {got!r}")
        cols = data["columns"]
        if not isinstance(cols, list):
            raise TableSpecError(f"a table spec's columns must be a list, got {type(cols).__name__}")
        return cls([Column.from_dict(c) for c in cols])
