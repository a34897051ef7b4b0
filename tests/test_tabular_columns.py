"""TableSpec and Column: plain data that survives JSON, and one line for each bad field."""

from __future__ import annotations

import json

import pytest

from condgan.tabular import Column, TableSpec, TableSpecError


def penguin_spec() -> TableSpec:
    return TableSpec([
        Column("species", "categorical", categories=("Adelie", "Chinstrap", "Gentoo")),
        Column("bill_length_mm", "continuous", min=32.1, max=59.6, nullable=True),
        Column("year", "integer", min=2007, max=2009),
        Column("male", "boolean", nullable=True),
        Column("code", "categorical", categories=(1, 2, 3)),
    ])


def test_spec_round_trips_through_json():
    spec = penguin_spec()
    data = json.loads(json.dumps(spec.to_dict()))
    assert data["kind"] == "table" and [c["name"] for c in data["columns"]] == list(spec.names)
    assert data["columns"][2] == {"name": "year", "kind": "integer", "min": 2007, "max": 2009, "nullable": False}
    assert data["columns"][3]["categories"] == [False, True]
    assert TableSpec.from_dict(data) == spec
    assert spec["year"].is_numeric and not spec["male"].is_numeric
    assert spec.select(["year", "species"]).names == ("year", "species")
    assert spec.drop(["species"]).names == ("bill_length_mm", "year", "male", "code")
    assert "code" in spec and len(spec) == 5


def test_numpy_scalars_become_plain_values():
    np = pytest.importorskip("numpy")
    col = Column("x", "integer", min=np.int64(3), max=np.int64(9))
    cat = Column("c", "categorical", categories=[np.str_("a"), np.int64(2)])
    assert type(col.min) is int and type(cat.categories[1]) is int
    json.dumps(TableSpec([col, cat]).to_dict())


@pytest.mark.parametrize("make, message", [
    (lambda: Column("", "continuous"), r"^a column name must be a non-empty string, got ''$"),
    (lambda: Column("x", "float"), r"^column 'x': kind must be one of continuous, integer, categorical, boolean, got 'float'$"),
    (lambda: Column("x", "continuous", min=3, max=1), r"^column 'x': min 3 is larger than max 1$"),
    (lambda: Column("x", "continuous", min=float("nan")), r"^column 'x': min must be a finite number, got nan$"),
    (lambda: Column("x", "integer", categories=(1, 2)), r"^column 'x': an integer column has a range \(min/max\), not categories$"),
    (lambda: Column("c", "categorical", min=0), r"^column 'c': a categorical column has categories, not a range"),
    (lambda: Column("c", "categorical"), r"^column 'c': a categorical column needs at least one category$"),
    (lambda: Column("c", "categorical", categories=("a", "a")), r"^column 'c': category 'a' is listed twice$"),
    (lambda: Column("c", "categorical", categories=("a", None)), r"^column 'c': categories must be strings, numbers or booleans \(missing values are nullable=true"),
    (lambda: Column("c", "categorical", categories="abc"), r"^column 'c': categories must be a list of values, got 'abc'$"),
    (lambda: Column("b", "boolean", categories=("no", "yes")), r"^column 'b': a boolean column's categories are \[false, true\]"),
    (lambda: Column("x", "continuous", nullable="yes"), r"^column 'x': nullable must be true or false, got 'yes'$"),
    (lambda: TableSpec([Column("x", "continuous"), Column("x", "integer")]), r"^column name 'x' appears twice; column names must be unique$"),
    (lambda: TableSpec(["x"]), r"^a table's columns must be Column objects, got str$"),
    (lambda: TableSpec.from_dict({"kind": "image", "shape": [1, 28, 28]}), r"^a table spec is a mapping with kind 'table' and a list of columns, got 'image'$"),
    (lambda: TableSpec.from_dict({"kind": "table", "columns": {"x": 1}}), r"^a table spec's columns must be a list, got dict$"),
    (lambda: TableSpec.from_dict({"kind": "table", "columns": [{"name": "x"}]}), r"^a column needs a 'kind' field, got fields name$"),
    (lambda: TableSpec.from_dict({"kind": "table", "columns": [{"name": "x", "kind": "integer", "mean": 3}]}),
     r"^column 'x' has unknown field\(s\) mean; allowed: categories, kind, max, min, name, nullable$"),
])
def test_bad_specs_are_one_line(make, message):
    with pytest.raises(TableSpecError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_unknown_column_lookup_lists_the_columns():
    with pytest.raises(KeyError, match="no column 'island'; the table's columns: species, bill_length_mm"):
        penguin_spec()["island"]


def test_importing_the_package_imports_no_table_library():
    import subprocess
    import sys

    code = "import sys, condgan.tabular; print(sorted(m for m in ('pandas', 'pyarrow', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
