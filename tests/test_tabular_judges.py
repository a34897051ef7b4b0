"""Table judges on scikit-learn's bundled tables: near 1 against themselves, clearly lower against broken copies."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")
from sklearn.datasets import load_iris, load_wine

from condgan.tabular import (
    SDMETRICS_THRESHOLDS,
    column_pair_trends,
    column_shapes,
    conditional_fidelity,
    distance_to_closest_record,
    holdout_split,
    infer_spec,
    ml_efficacy,
    quality_score,
)


def iris():
    frame = load_iris(as_frame=True).frame
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[frame.pop("target")]
    return frame


def wine_mixed(seed: int = 0):
    """Wine with a categorical target, a boolean, an integer column and missing values."""
    rng = np.random.default_rng(seed)
    frame = load_wine(as_frame=True).frame
    frame["cultivar"] = np.array(["c0", "c1", "c2"])[frame.pop("target")]
    frame["strong"] = frame["alcohol"] > 13
    frame.loc[rng.random(len(frame)) < 0.1, "ash"] = np.nan
    frame["cultivar_or_nan"] = frame["cultivar"].where(rng.random(len(frame)) > 0.1, None)
    return frame[["alcohol", "malic_acid", "ash", "magnesium", "flavanoids", "proline", "cultivar", "strong",
                  "cultivar_or_nan"]]


def shuffled_columns(frame, seed=0):
    """Every column permuted on its own: the same marginals, the joint structure destroyed."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({c: frame[c].to_numpy()[rng.permutation(len(frame))] for c in frame.columns})


def noise_columns(frame, spec, seed=0):
    """Numeric columns replaced by uniform noise over their range; categories drawn uniformly."""
    rng = np.random.default_rng(seed)
    out = {}
    for c in spec:
        if c.is_numeric:
            out[c.name] = rng.uniform(c.min, c.max, len(frame))
        else:
            out[c.name] = rng.choice(np.array(c.categories, dtype=object), len(frame))
    return pd.DataFrame(out)


def test_quality_of_a_table_against_itself_is_one_and_broken_copies_score_lower():
    frame = iris()
    spec = infer_spec(frame)
    same = quality_score(frame, frame, spec)
    assert same["score"] == pytest.approx(1) and same["column_shapes"] == 1 and same["column_pair_trends"] == 1
    assert set(same["shapes"]) == set(spec.names) and len(same["pairs"]) == 10
    shuffled = quality_score(frame, shuffled_columns(frame), spec)
    assert shuffled["column_shapes"] == pytest.approx(1)  # marginals unchanged
    assert shuffled["column_pair_trends"] < 0.8  # iris's strong correlations gone
    noise = quality_score(frame, noise_columns(frame, spec), spec)
    assert noise["column_shapes"] < 0.85 and noise["score"] < shuffled["score"]
    a, b = holdout_split(frame, 0.5, seed=0)
    halves = quality_score(a, b, spec)
    assert halves["score"] > 0.85 and halves["score"] > noise["score"] + 0.1


def test_column_scores_by_their_definitions():
    real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", None]})
    synth = pd.DataFrame({"x": [1.0, 2.0, 5.0, np.nan], "c": ["a", "b", "b", "z"]})
    spec = infer_spec(real)
    shapes = column_shapes(real, synth, spec)
    assert shapes["x"] == pytest.approx(1 - 1 / 3)  # KS of {1,2,3,4} vs {1,2,5} (NaN dropped): the CDF gap is largest, 1/3, at x=4
    assert shapes["c"] == pytest.approx(1 - 0.5 * (abs(2 / 3 - 1 / 4) + abs(1 / 3 - 1 / 2) + 1 / 4))
    pairs = column_pair_trends(real, synth, spec)
    assert 0 <= pairs[("x", "c")] <= 1
    lin = pd.DataFrame({"u": np.arange(10.0), "v": np.arange(10.0)})
    anti = pd.DataFrame({"u": np.arange(10.0), "v": -np.arange(10.0)})
    assert column_pair_trends(lin, anti, infer_spec(lin, {"u": "continuous", "v": "continuous"}))[("u", "v")] == pytest.approx(0)


def test_ml_efficacy_of_real_rows_is_near_one_and_of_broken_rows_lower():
    frame = wine_mixed()
    spec = infer_spec(frame).drop(["cultivar_or_nan"])
    train, test = holdout_split(frame, 0.3, seed=0)
    same = ml_efficacy(train, train, test, spec, target="cultivar")
    assert same["task"] == "classification" and same["metric"] == "f1_macro" and same["model"] == "HistGradientBoostingClassifier"
    assert same["real"] > 0.85 and same["ratio"] == pytest.approx(1)
    a, b = holdout_split(train, 0.5, seed=1)
    halves = ml_efficacy(a, b, test, spec, target="cultivar")
    assert halves["ratio"] > 0.85
    broken = ml_efficacy(a, shuffled_columns(b), test, spec, target="cultivar")
    assert broken["ratio"] < 0.6
    regression = ml_efficacy(train, train, test, spec, target="alcohol")
    assert regression["task"] == "regression" and regression["metric"] == "r2" and regression["ratio"] == pytest.approx(1)
    one_class = train.assign(cultivar="c0")
    assert ml_efficacy(train, one_class, test, spec, target="cultivar")["synthetic"] < 0.4  # a constant guess
    with pytest.raises(ValueError, match=r"^target column 'colour' is not in the spec; its columns: alcohol, "):
        ml_efficacy(train, train, test, spec, target="colour")


def test_conditional_fidelity_sees_rows_asked_for_the_wrong_value():
    frame = iris()
    spec = infer_spec(frame)
    same = conditional_fidelity(frame, frame, spec, "species")
    assert same["score"] == pytest.approx(1) and set(same["per_value"]) == {"setosa", "versicolor", "virginica"}
    swapped = frame.assign(species=frame["species"].map({"setosa": "virginica", "virginica": "setosa", "versicolor": "versicolor"}))
    wrong = conditional_fidelity(frame, swapped, spec, "species")
    assert wrong["per_value"]["versicolor"] == pytest.approx(1) and wrong["per_value"]["setosa"] < 0.3
    assert wrong["score"] < 0.6
    no_virginica = frame[frame["species"] != "virginica"]
    partial = conditional_fidelity(frame, no_virginica, spec, "species")
    assert partial["missing"] == ["virginica"] and partial["per_value"]["virginica"] == 0
    both = conditional_fidelity(frame.assign(big=frame["sepal length (cm)"] > 5.8), frame.assign(big=frame["sepal length (cm)"] > 5.8),
                                spec, ["species", "big"])
    assert ("setosa", False) in both["per_value"] and both["score"] == pytest.approx(1)


def test_distance_to_closest_record_counts_copies():
    frame = wine_mixed()
    spec = infer_spec(frame)
    train, holdout = holdout_split(frame, 0.3, seed=0)
    copies = distance_to_closest_record(train, train.iloc[:40], spec, holdout)
    assert copies["copies"] == 1 and copies["median_dcr"] == 0 and copies["median_dcr_ratio"] == 0
    fresh = distance_to_closest_record(train, holdout, spec, holdout)
    assert fresh["copies"] == 0 and fresh["median_dcr_ratio"] == pytest.approx(1) and fresh["baseline"] == "holdout"
    noise = distance_to_closest_record(train, noise_columns(holdout, spec), spec)
    assert noise["copies"] == 0 and noise["median_dcr_ratio"] > 1.5 and noise["baseline"] == "train leave-one-out"
    half = pd.concat([train.iloc[:30], holdout.iloc[:30]])
    assert distance_to_closest_record(train, half, spec, holdout)["copies"] == pytest.approx(0.5)


def test_agreement_with_sdmetrics_quality_report():
    pytest.importorskip("sdmetrics")
    with warnings.catch_warnings():  # 0.32 marks the single-table report deprecated; its numbers are the ones compared
        warnings.simplefilter("ignore", FutureWarning)
        from sdmetrics.reports.single_table import QualityReport

    real = wine_mixed(0)
    spec = infer_spec(real)
    rng = np.random.default_rng(3)
    synth = real.sample(frac=1.0, replace=True, random_state=1).reset_index(drop=True)
    for c in ("alcohol", "malic_acid", "ash", "proline"):
        synth[c] = synth[c] + rng.normal(0, synth[c].std() * 0.5, len(synth))
    synth["cultivar_or_nan"] = rng.choice(np.array(["c0", "c1", "c2", None], dtype=object), len(synth))
    synth = pd.concat([synth, shuffled_columns(real)], ignore_index=True)
    sdtypes = {"continuous": "numerical", "integer": "numerical", "categorical": "categorical", "boolean": "boolean"}
    metadata = {"columns": {c.name: {"sdtype": sdtypes[c.kind]} for c in spec}}
    for thresholds in ({"real_correlation_threshold": 0.0, "real_association_threshold": 0.0}, SDMETRICS_THRESHOLDS):
        report = QualityReport()
        report.real_correlation_threshold = thresholds["real_correlation_threshold"]
        report.real_association_threshold = thresholds["real_association_threshold"]
        report.generate(real, synth, metadata, verbose=False)
        ours = quality_score(real, synth, spec, **thresholds)
        theirs_shapes = report.get_details("Column Shapes").set_index("Column")["Score"]
        for name, score in ours["shapes"].items():
            assert score == pytest.approx(theirs_shapes[name], abs=1e-9), name
        details = report.get_details("Column Pair Trends")
        theirs_pairs = {f"{a} | {b}": s for a, b, s in zip(details["Column 1"], details["Column 2"], details["Score"])}
        assert set(theirs_pairs) == set(ours["pairs"])
        for key, score in ours["pairs"].items():
            if math.isnan(theirs_pairs[key]):
                assert math.isnan(score), key
            else:
                assert score == pytest.approx(theirs_pairs[key], abs=1e-9), key
        assert ours["score"] == pytest.approx(report.get_score(), abs=1e-9)
