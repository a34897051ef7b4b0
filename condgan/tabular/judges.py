"""Judges for tables: pure functions of a real and a synthetic DataFrame and their :class:`TableSpec`.

- :func:`column_shapes` and :func:`column_pair_trends` are SDMetrics' two quality properties,
  computed here by their definitions (KSComplement / TVComplement per column; CorrelationSimilarity /
  ContingencySimilarity per pair), and :func:`quality_score` is their mean, as SDMetrics'
  ``QualityReport`` averages its properties.
- :func:`ml_efficacy`: a scikit-learn model trained on synthetic rows and on real rows, both tested
  on held-out real rows.
- :func:`conditional_fidelity`: per condition value, the column shapes of the synthetic rows asked
  for that value against the real rows that have it.
- :func:`distance_to_closest_record`: a privacy check, how many synthetic rows copy a training row
  and how close the others come, against how close fresh real rows come.

Every score is in [0, 1] with 1 best, except the DCR figures (distances; see there).
"""

from __future__ import annotations

import itertools
import math
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from .columns import TableSpec

MAX_DECIMALS = sys.float_info.dig - 1  # SDMetrics' KSComplement rounds to this many decimals
#: The pair thresholds of SDMetrics' QualityReport (0.32) by default.
SDMETRICS_THRESHOLDS = {"real_correlation_threshold": 0.5, "real_association_threshold": 0.3}


def _check(frame, spec: TableSpec, which: str) -> None:
    missing = [n for n in spec.names if n not in frame.columns]
    if missing:
        raise ValueError(f"the {which} table lacks column {missing[0]!r}; the spec's columns: {', '.join(spec.names)}")
    if len(frame) == 0:
        raise ValueError(f"the {which} table has no rows")


def _numbers(series) -> np.ndarray:
    import pandas as pd

    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def ks_complement(real, synthetic) -> float:
    """1 - the two-sample Kolmogorov-Smirnov statistic of two numeric columns (missing values dropped)."""
    from scipy.stats import ks_2samp

    r, s = _numbers(real), _numbers(synthetic)
    r, s = np.round(r[~np.isnan(r)], MAX_DECIMALS), np.round(s[~np.isnan(s)], MAX_DECIMALS)
    if len(r) == 0 or len(s) == 0:
        return math.nan
    return float(1 - ks_2samp(r, s).statistic)


def _is_missing(v) -> bool:
    import pandas as pd

    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _present(series) -> list:
    return [v for v in series.tolist() if not _is_missing(v)]


def tv_complement(real, synthetic) -> float:
    """1 - the total variation distance of two categorical columns' frequencies (missing values dropped)."""
    r, s = Counter(_present(real)), Counter(_present(synthetic))
    if not r or not s:
        return math.nan
    nr, ns = sum(r.values()), sum(s.values())
    keys = set(r) | set(s)
    return float(1 - 0.5 * sum(abs(r.get(k, 0) / nr - s.get(k, 0) / ns) for k in keys))


def column_shapes(real, synthetic, spec: TableSpec) -> dict:
    """Each column's shape similarity: KSComplement for numeric columns, TVComplement for the others.

    Args:
        real: the real rows (a DataFrame with at least the spec's columns).
        synthetic: the synthetic rows.
        spec: the columns to judge.

    Returns:
        column name -> score in [0, 1] (NaN where a side has no values).

    Example:
        >>> column_shapes(frame, frame, spec)  # doctest: +SKIP
        {'sepal length (cm)': 1.0, ..., 'target': 1.0}
    """
    _check(real, spec, "real")
    _check(synthetic, spec, "synthetic")
    return {c.name: (ks_complement if c.is_numeric else tv_complement)(real[c.name], synthetic[c.name]) for c in spec}


def _digitize(series, edges=None):
    values = _numbers(series)
    if edges is None:
        edges = np.histogram_bin_edges(values[~np.isnan(values)])
    return np.digitize(values, bins=edges)


def correlation_similarity(real_pair, synthetic_pair, *, real_correlation_threshold: float = 0.0) -> float:
    """1 - |Pearson r (real) - Pearson r (synthetic)| / 2 over the rows where both columns are present.

    NaN when a side is constant, or when ``|r (real)|`` is at most ``real_correlation_threshold``.
    """
    from scipy.stats import pearsonr

    rs = []
    for frame in (real_pair, synthetic_pair):
        a, b = _numbers(frame.iloc[:, 0]), _numbers(frame.iloc[:, 1])
        ok = ~(np.isnan(a) | np.isnan(b))
        a, b = a[ok], b[ok]
        if len(a) < 2 or np.all(a == a[0]) or np.all(b == b[0]):
            return math.nan
        rs.append(pearsonr(a, b)[0])
        if real_correlation_threshold > 0 and abs(rs[0]) <= real_correlation_threshold:
            return math.nan
    return float(1 - abs(rs[0] - rs[1]) / 2)


def _cramers_v(counts: Counter) -> float:
    from scipy.stats.contingency import association

    rows = sorted({k[0] for k in counts}, key=repr)
    cols = sorted({k[1] for k in counts}, key=repr)
    if len(rows) < 2 or len(cols) < 2:
        return math.nan
    table = np.array([[counts.get((r, c), 0) for c in cols] for r in rows])
    return float(association(table, method="cramer"))


def contingency_similarity(real_pair, synthetic_pair, *, real_association_threshold: float = 0.0) -> float:
    """1 - the total variation distance of two columns' joint frequencies (missing is a value here).

    NaN when the real pair's Cramer's V is at most ``real_association_threshold`` (when it is > 0).
    """
    tables = []
    for frame in (real_pair, synthetic_pair):
        keys = Counter(tuple("<missing>" if _is_missing(v) else v for v in row) for row in frame.itertuples(index=False))
        if not tables and real_association_threshold > 0:
            v = _cramers_v(keys)
            if math.isnan(v) or v <= real_association_threshold:
                return math.nan
        n = sum(keys.values())
        tables.append({k: c / n for k, c in keys.items()})
    r, s = tables
    return float(1 - 0.5 * sum(abs(r.get(k, 0) - s.get(k, 0)) for k in set(r) | set(s)))


def column_pair_trends(real, synthetic, spec: TableSpec, *, shared_bins: bool = False,
                       real_correlation_threshold: float = 0.0, real_association_threshold: float = 0.0) -> dict:
    """Each column pair's similarity, SDMetrics' ColumnPairTrends.

    Two numeric columns: :func:`correlation_similarity`. Otherwise :func:`contingency_similarity`,
    a numeric column first cut into 10 bins (``numpy.histogram_bin_edges``).

    Args:
        real: the real rows.
        synthetic: the synthetic rows.
        spec: the columns to judge (every pair of them).
        shared_bins: cut both tables on the real column's bin edges. ``False`` (SDMetrics'
            QualityReport, 0.32) cuts each table on its own column's range.
        real_correlation_threshold: leave out (NaN) numeric pairs whose real ``|r|`` is at most this.
        real_association_threshold: leave out other pairs whose real Cramer's V is at most this.
            Both 0 (every pair counts) by default; SDMetrics' QualityReport (0.32) uses
            :data:`SDMETRICS_THRESHOLDS`, 0.5 and 0.3, so that only related pairs count.

    Returns:
        ``(column, column)`` -> score in [0, 1] (NaN where a correlation is undefined).
    """
    import pandas as pd

    _check(real, spec, "real")
    _check(synthetic, spec, "synthetic")
    binned = {}
    for c in spec:
        if c.is_numeric:
            edges = np.histogram_bin_edges(_numbers(real[c.name])[~np.isnan(_numbers(real[c.name]))]) if shared_bins else None
            binned[c.name] = (_digitize(real[c.name], edges), _digitize(synthetic[c.name], edges))
    scores = {}
    for a, b in itertools.combinations(spec.columns, 2):
        if a.is_numeric and b.is_numeric:
            scores[(a.name, b.name)] = correlation_similarity(
                real[[a.name, b.name]], synthetic[[a.name, b.name]], real_correlation_threshold=real_correlation_threshold)
            continue
        pair = []
        for side, frame in enumerate((real, synthetic)):
            cols = {c.name: (binned[c.name][side] if c.is_numeric else frame[c.name].to_numpy(dtype=object)) for c in (a, b)}
            pair.append(pd.DataFrame(cols))
        scores[(a.name, b.name)] = contingency_similarity(*pair, real_association_threshold=real_association_threshold)
    return scores


def _nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def quality_score(real, synthetic, spec: TableSpec, *, shared_bins: bool = False,
                  real_correlation_threshold: float = 0.0, real_association_threshold: float = 0.0) -> dict:
    """SDMetrics' quality score: the mean of the column-shape and column-pair averages.

    The keyword arguments are :func:`column_pair_trends`'s; ``**SDMETRICS_THRESHOLDS`` gives the
    numbers of SDMetrics' QualityReport with its default settings.

    Returns:
        ``{"score", "column_shapes", "column_pair_trends"}`` (floats), plus the per-column
        ``"shapes"`` and per-pair ``"pairs"`` (keyed ``"a | b"``) details.

    Example:
        >>> quality_score(real, synthetic, spec)["score"]  # doctest: +SKIP
        0.87
    """
    shapes = column_shapes(real, synthetic, spec)
    pairs = column_pair_trends(real, synthetic, spec, shared_bins=shared_bins,
                               real_correlation_threshold=real_correlation_threshold,
                               real_association_threshold=real_association_threshold) if len(spec) > 1 else {}
    shape, pair = _nanmean(shapes.values()), _nanmean(pairs.values())
    return {"score": _nanmean([shape, pair]), "column_shapes": shape, "column_pair_trends": pair,
            "shapes": shapes, "pairs": {f"{a} | {b}": s for (a, b), s in pairs.items()}}


def holdout_split(frame, test_fraction: float = 0.25, seed: int = 0):
    """A random ``(train, test)`` split of a frame's rows, for :func:`ml_efficacy` and DCR baselines."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test = max(1, round(len(frame) * test_fraction))
    return frame.iloc[order[n_test:]].reset_index(drop=True), frame.iloc[order[:n_test]].reset_index(drop=True)


def _features(frame, spec: TableSpec, names: Sequence[str]):
    """Numeric features for scikit-learn: numbers as floats, categories as their codes; NaN kept."""
    import pandas as pd

    cols, categorical = {}, []
    for n in names:
        c = spec[n]
        if c.is_numeric:
            cols[n] = _numbers(frame[n])
            categorical.append(False)
        else:
            index = {v: float(i) for i, v in enumerate(c.categories)}
            cols[n] = np.array([index.get(v, np.nan) for v in frame[n].tolist()], dtype=float)
            categorical.append(len(c.categories) <= 255)
    return pd.DataFrame(cols).to_numpy(dtype=float), np.array(categorical, dtype=bool)


def _default_model(task: str, categorical, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    mask = categorical if categorical.any() else None
    if task == "classification":
        return HistGradientBoostingClassifier(categorical_features=mask, random_state=seed, max_iter=100)
    return HistGradientBoostingRegressor(categorical_features=mask, random_state=seed, max_iter=100)


def ml_efficacy(real_train, synthetic, real_test, spec: TableSpec, target: str, *, model: Any = None,
                seed: int = 0) -> dict:
    """Machine-learning efficacy: a model trained on synthetic rows against the same model trained on real rows.

    Both models predict ``target`` from the spec's other columns and are scored on the held-out
    ``real_test`` rows: macro F1 for a categorical or boolean target (classification), R^2 for a
    numeric one (regression).

    Args:
        real_train: the real rows the generator was trained on.
        synthetic: synthetic rows (as many as ``real_train`` is the usual protocol).
        real_test: held-out real rows neither model saw (see :func:`holdout_split`).
        spec: the columns to use, ``target`` among them.
        target: the column to predict.
        model: a scikit-learn estimator to clone for both sides (default: a histogram gradient
            boosting classifier or regressor, 100 iterations, categories as categorical features).
        seed: the default model's seed.

    Returns:
        ``{"target", "task", "metric", "real", "synthetic", "ratio", "model"}``; ``ratio`` is
        ``synthetic / real`` (1: synthetic rows train as good a model as real rows).

    Example:
        >>> train, test = holdout_split(frame)  # doctest: +SKIP
        >>> ml_efficacy(train, synth, test, spec, target="species")["ratio"]  # doctest: +SKIP
        0.93
    """
    from sklearn.base import clone
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.metrics import f1_score, r2_score

    if target not in spec:
        raise ValueError(f"target column {target!r} is not in the spec; its columns: {', '.join(spec.names)}")
    for which, frame in (("real_train", real_train), ("synthetic", synthetic), ("real_test", real_test)):
        _check(frame, spec, which)
    col = spec[target]
    task = "regression" if col.is_numeric else "classification"
    names = [n for n in spec.names if n != target]
    if not names:
        raise ValueError(f"ml_efficacy needs at least one column besides the target {target!r}")

    def xy(frame):
        x, categorical = _features(frame, spec, names)
        y = _features(frame, spec, [target])[0][:, 0]
        ok = ~np.isnan(y)
        return x[ok], y[ok], categorical

    x_test, y_test, categorical = xy(real_test)
    base = model if model is not None else _default_model(task, categorical, seed)
    scores = {}
    for side, frame in (("real", real_train), ("synthetic", synthetic)):
        x, y, _ = xy(frame)
        if len(y) == 0:
            scores[side] = 0.0
            continue
        if task == "classification" and len(np.unique(y)) < 2:
            est = DummyClassifier(strategy="most_frequent")
        elif len(y) < 2:
            est = DummyRegressor() if task == "regression" else DummyClassifier(strategy="most_frequent")
        else:
            est = clone(base)
        est.fit(x, y)
        pred = est.predict(x_test)
        if task == "classification":
            scores[side] = float(f1_score(y_test, pred, average="macro", labels=np.unique(y_test)))
        else:
            scores[side] = float(r2_score(y_test, pred))
    ratio = scores["synthetic"] / scores["real"] if scores["real"] > 0 else math.nan
    return {"target": target, "task": task, "metric": "f1_macro" if task == "classification" else "r2",
            "real": scores["real"], "synthetic": scores["synthetic"], "ratio": ratio, "model": type(base).__name__}


def conditional_fidelity(real, synthetic, spec: TableSpec, condition: str | Sequence[str]) -> dict:
    """For each condition value, the column shapes of the synthetic rows asked for it against the real rows with it.

    Args:
        real: the real rows, with the condition column(s).
        synthetic: the synthetic rows, each with the condition value it was asked for.
        spec: the columns to judge (condition columns in it are left out of the comparison).
        condition: the condition column name(s).

    Returns:
        ``{"score", "per_value", "missing"}``: ``score`` is the mean over the real table's condition
        values of the mean column-shape similarity within that value; a value with no synthetic rows
        scores 0 and is listed in ``missing``. Keys of ``per_value`` are the value (a tuple for
        several condition columns).
    """
    names = [condition] if isinstance(condition, str) else list(condition)
    for n in names:
        for which, frame in (("real", real), ("synthetic", synthetic)):
            if n not in frame.columns:
                raise ValueError(f"the {which} table lacks condition column {n!r}")
    judged = TableSpec([c for c in spec if c.name not in names])
    if len(judged) == 0:
        raise ValueError("conditional_fidelity needs at least one column besides the condition")
    key = names[0] if len(names) == 1 else names
    synth_groups = {k: g for k, g in synthetic.groupby(key, sort=False, dropna=False)}
    per_value, missing = {}, []
    for value, group in real.groupby(key, sort=True, dropna=False):
        value = value[0] if isinstance(value, tuple) and len(names) == 1 else value
        fake = synth_groups.get(value)
        if fake is None or len(fake) == 0:
            per_value[value] = 0.0
            missing.append(value)
            continue
        per_value[value] = _nanmean(column_shapes(group, fake, judged).values())
    return {"score": _nanmean(per_value.values()), "per_value": per_value, "missing": missing}


def _encode_rows(frame, spec: TableSpec, ranges: dict) -> np.ndarray:
    """Rows as points whose Euclidean distance is the RMS of per-column distances in [0, 1]."""
    parts = []
    for c in spec:
        if c.is_numeric:
            lo, hi = ranges[c.name]
            v = _numbers(frame[c.name])
            missing = np.isnan(v)
            parts.append(np.where(missing, 0.0, (v - lo) / (hi - lo or 1.0))[:, None])
            parts.append(missing[:, None].astype(float))
        else:
            values = frame[c.name].tolist()
            cats = list(c.categories) + ["<missing>"]
            index = {v: i for i, v in enumerate(cats)}
            onehot = np.zeros((len(values), len(cats)))
            for row, v in enumerate(values):
                i = len(cats) - 1 if _is_missing(v) else index.get(v, len(cats) - 1)
                onehot[row, i] = 1
            parts.append(onehot / math.sqrt(2))  # a mismatch is distance 1
    return np.concatenate(parts, axis=1) / math.sqrt(len(spec))


def distance_to_closest_record(train, synthetic, spec: TableSpec, holdout=None, *, max_rows: int = 5000,
                               tolerance: float = 1e-8, seed: int = 0) -> dict:
    """Distance to the closest training record (DCR): a privacy check against copied rows.

    Rows are compared with numeric columns scaled to the training range ([0, 1]), categorical
    columns as mismatch 0/1 and missingness as its own 0/1; a row distance is the root mean square
    of the column distances, so it lies in [0, 1] (more for values outside the training range).

    Args:
        train: the real rows the generator was trained on.
        synthetic: the synthetic rows.
        spec: the columns to compare.
        holdout: real rows the generator did not see; their DCR to ``train`` is the baseline
            (without them the baseline is each training row's distance to its nearest other row).
        max_rows: compare at most this many (randomly chosen) rows of each table.
        tolerance: a synthetic row within this distance of a training row counts as a copy.
        seed: seed of the row subsampling.

    Returns:
        ``{"copies", "median_dcr", "baseline_median_dcr", "median_dcr_ratio", "baseline"}``:
        ``copies`` is the fraction of synthetic rows that copy a training row (0 is best);
        ``median_dcr_ratio`` is the synthetic median DCR over the baseline's (about 1: synthetic rows
        are as far from the training rows as fresh real rows are; near 0: they hug the training rows).
    """
    from sklearn.neighbors import NearestNeighbors

    _check(train, spec, "train")
    _check(synthetic, spec, "synthetic")
    rng = np.random.default_rng(seed)

    def sub(frame):
        return frame.iloc[np.sort(rng.choice(len(frame), max_rows, replace=False))] if len(frame) > max_rows else frame

    train, synthetic = sub(train), sub(synthetic)
    ranges = {}
    for c in spec:
        if c.is_numeric:
            v = _numbers(train[c.name])
            v = v[~np.isnan(v)]
            ranges[c.name] = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
    x_train = _encode_rows(train, spec, ranges)
    nn = NearestNeighbors(n_neighbors=min(2, len(x_train)), algorithm="ball_tree").fit(x_train)  # exact: no |x|^2-2xy+|y|^2 rounding
    d_synth = nn.kneighbors(_encode_rows(synthetic, spec, ranges), n_neighbors=1)[0][:, 0]
    if holdout is not None:
        _check(holdout, spec, "holdout")
        d_base = nn.kneighbors(_encode_rows(sub(holdout), spec, ranges), n_neighbors=1)[0][:, 0]
        baseline = "holdout"
    elif len(x_train) > 1:
        d_base = nn.kneighbors(x_train, n_neighbors=2)[0][:, 1]
        baseline = "train leave-one-out"
    else:
        d_base, baseline = np.array([math.nan]), "none"
    med, base = float(np.median(d_synth)), float(np.median(d_base))
    return {"copies": float(np.mean(d_synth <= tolerance)), "median_dcr": med, "baseline_median_dcr": base,
            "median_dcr_ratio": med / base if base > 0 else math.nan, "baseline": baseline}
