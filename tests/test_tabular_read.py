"""Reading tables: CSV and Parquet files of scikit-learn's bundled tables, typed, split, and each bad input's line."""

from __future__ import annotations

import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
datasets = pytest.importorskip("sklearn.datasets")

from condgan.tabular import Column, TableError, infer_spec, load_table, read_table
from condgan.tabular.read import require_pandas


def iris_frame():
    frame = datasets.load_iris(as_frame=True).frame
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[frame.pop("target")]
    return frame


def wine_frame():
    frame = datasets.load_wine(as_frame=True).frame
    frame["cultivar"] = np.array(["class_0", "class_1", "class_2"])[frame.pop("target")]
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_iris_reads_typed_and_split(tmp_path, suffix):
    frame = iris_frame()
    frame["long_petal"] = frame["petal length (cm)"] > 4
    frame["sepal_mm"] = (frame["sepal length (cm)"] * 10).round().astype(int)
    frame.loc[::10, "petal width (cm)"] = np.nan
    path = tmp_path / f"iris{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    table = load_table(path, condition="species")
    spec = table.spec
    assert spec.names == tuple(frame.columns)
    assert spec["sepal length (cm)"] == Column("sepal length (cm)", "continuous", min=4.3, max=7.9)
    assert spec["petal width (cm)"].nullable and spec["petal width (cm)"].kind == "continuous"
    assert spec["species"] == Column("species", "categorical", categories=("setosa", "versicolor", "virginica"))
    assert spec["long_petal"].kind == "boolean" and spec["sepal_mm"] == Column("sepal_mm", "integer", min=43, max=79)
    assert table.condition == ("species",) and table.condition_spec.names == ("species",)
    assert "species" not in table.output_spec.names and len(table.output_spec) == len(spec) - 1
    assert list(table.conditions.columns) == ["species"] and len(table.outputs) == 150
    assert table.outputs["petal width (cm)"].isna().sum() == 15


def test_several_condition_columns_and_overrides(tmp_path):
    frame = wine_frame()
    frame["magnesium_band"] = pd.cut(frame["magnesium"], 3, labels=["low", "mid", "high"]).astype(str)
    path = tmp_path / "wine.csv"
    frame.to_csv(path, index=False)
    table = load_table(path, condition="cultivar, magnesium_band", kinds={"magnesium": "continuous", "proline": "categorical"},
                       max_categories=200)
    assert table.condition == ("cultivar", "magnesium_band")
    assert table.spec["magnesium"].kind == "continuous"  # whole numbers, read as continuous by override
    assert table.spec["proline"].kind == "categorical" and len(table.spec["proline"].categories) == frame["proline"].nunique()
    assert load_table(path, condition=["magnesium_band", "cultivar"]).condition_spec.names == ("magnesium_band", "cultivar")
    assert infer_spec(frame)["magnesium"].kind == "integer"


def test_diabetes_regression_table_reads_as_numbers(tmp_path):
    frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
    path = tmp_path / "diabetes.parquet"
    frame.to_parquet(path)
    table = load_table(path, condition="sex", kinds={"sex": "categorical"})
    assert table.spec["sex"].categories == (1.0, 2.0)
    assert table.spec["age"].kind == "integer" and table.spec["bmi"].kind == "continuous"
    assert table.spec["target"].kind == "integer"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def bad_cases(tmp_path):
    many = "c,x\n" + "".join(f"v{i},{i % 3}\n" for i in range(12))
    return [
        (write(tmp_path, "broken.csv", 'a,b\n1,2\n3,"4,5\n6,7,8,9\n'), {}, r"broken\.csv: the CSV does not parse: "),
        (write(tmp_path, "empty.csv", ""), {}, r"empty\.csv is an empty table: no header and no rows$"),
        (write(tmp_path, "header.csv", "a,b\n"), {}, r"header\.csv is an empty table: it has a header \(a, b\) but no rows$"),
        (write(tmp_path, "ok.csv", "species,x\na,1.5\nb,2.5\n"), {"condition": "specie"},
         r"ok\.csv: condition column 'specie' does not exist; its columns: species, x$"),
        (write(tmp_path, "mixed.csv", "c,age\na,3\nb,4\na,unknown\n"), {},
         r"mixed\.csv: column 'age' mixes types: number '3' and text 'unknown'; make it one type, or override its kind"),
        (write(tmp_path, "constant.csv", "c,x,k\na,1.5,7\nb,2.5,7\n"), {}, r"constant\.csv: column 'k' is constant: every row is 7; drop it"),
        (write(tmp_path, "allnan.csv", "c,x,k\na,1.5,\nb,2.5,\n"), {}, r"allnan\.csv: column 'k' is empty: every one of its 2 rows is missing; drop it"),
        (write(tmp_path, "many.csv", many), {"condition": "x", "max_categories": 10},
         r"many\.csv: column 'c' has 12 categories, more than max_categories=10; raise max_categories"),
        (write(tmp_path, "image.png", b"\x89PNG\r\n\x1a\n\x00\x00"), {}, r"image\.png is not a table: expected a \.csv, \.tsv or \.parquet file"),
        (write(tmp_path, "binary.csv", b"\xff\xfe\x00\x81\x9f" * 40), {}, r"binary\.csv is not a table: it is not UTF-8 text"),
        (write(tmp_path, "fake.parquet", "species,x\na,1\n"), {}, r"fake\.parquet is not a Parquet table: "),
        (tmp_path, {}, r"is a directory, not a table file \(\.csv or \.parquet\)$"),
        (tmp_path / "absent.csv", {}, r"table file .*absent\.csv does not exist$"),
        (write(tmp_path, "ok2.csv", "species,x\na,1.5\nb,2.5\n"), {"condition": "x,species"},
         r"ok2\.csv: every column is a condition \(x, species\); leave at least one column as output$"),
        (write(tmp_path, "ok3.csv", "species,x\na,1.5\nb,2.5\n"), {"condition": "species", "kinds": {"y": "integer"}},
         r"ok3\.csv: kinds names column 'y', which the table does not have; its columns: species, x$"),
        (write(tmp_path, "ok4.csv", "species,x\na,1.5\nb,2.5\n"), {"condition": "species", "kinds": {"x": "float"}},
         r"ok4\.csv: column 'x': kind must be one of continuous, integer, categorical, boolean, got 'float'$"),
        (write(tmp_path, "ok5.csv", "species,x\na,1.5\nb,2.5\n"), {"condition": "species", "kinds": {"species": "continuous"}},
         r"ok5\.csv: column 'species' is continuous but holds the value 'a', which is not a number$"),
        (write(tmp_path, "ok6.csv", "species,x\na,1.5\nb,2.5\n"), {"condition": "species", "kinds": {"x": "integer"}},
         r"ok6\.csv: column 'x' is integer but holds the value 1\.5; override its kind to 'continuous'$"),
        (write(tmp_path, "nancond.csv", "species,x\na,1.5\n,2.5\nb,3\n"), {"condition": "species"},
         r"nancond\.csv: condition column 'species' is missing in 1 row\(s\); a condition must be given on every row"),
    ]


def test_each_bad_input_is_one_line(tmp_path):
    for path, options, message in bad_cases(tmp_path):
        options = dict(options)
        condition = options.pop("condition", "c")
        with pytest.raises(TableError, match=message) as info:
            load_table(path, condition, **options)
        assert "\n" not in str(info.value), path


def test_a_parquet_text_column_of_numbers_and_words_is_mixed(tmp_path):
    frame = pd.DataFrame({"c": ["a", "b", "c"], "w": ["1.5", "x", "2.5"]})
    path = tmp_path / "objects.parquet"
    frame.to_parquet(path)
    with pytest.raises(TableError, match=r"objects\.parquet: column 'w' mixes types: number '1\.5' and text 'x'"):
        load_table(path, "c")
    assert load_table(path, "c", kinds={"w": "categorical"}).spec["w"].categories == ("1.5", "2.5", "x")


def test_without_pandas_the_line_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(TableError, match=r"^reading tables needs pandas \(and pyarrow for Parquet\): pip install condgan\[table\]$"):
        require_pandas()
    with pytest.raises(TableError, match=r"pip install condgan\[table\]"):
        read_table("anything.csv")


def test_zero_one_integers_as_boolean_and_pandas_categories_keep_their_order(tmp_path):
    frame = pd.DataFrame({"c": ["a", "b", "a", "b"], "flag": [0, 1, 1, 0], "size": ["small", "large", "medium", "small"]})
    path = tmp_path / "flags.parquet"
    frame.assign(size=pd.Categorical(frame["size"], categories=["small", "medium", "large"], ordered=True)).to_parquet(path)
    table = load_table(path, "c", kinds={"flag": "boolean"})
    assert table.spec["flag"].kind == "boolean" and table.frame["flag"].tolist() == [False, True, True, False]
    assert table.spec["size"].categories == ("small", "medium", "large")
    csv = tmp_path / "flags.csv"
    frame.assign(flag=[0, 1, 2, 0]).to_csv(csv, index=False)
    with pytest.raises(TableError, match=r"flags\.csv: column 'flag' is boolean but holds the value 2; allowed: True, False \(or 0, 1\)$"):
        load_table(csv, "c", kinds={"flag": "boolean"})
