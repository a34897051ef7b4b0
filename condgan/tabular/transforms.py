"""Column transforms: table rows to the float vector a GAN sees, and back.

Each transform is a small swappable component with ``fit``/``transform``/``inverse_transform`` over
one column's values (a 1-D numpy array, NaN for missing) and an ``output_info``: the spans of its
encoding, each ``(width, "tanh")`` (a scalar in [-1, 1]) or ``(width, "softmax")`` (a one-hot
group). These are CTGAN's transforms:

- :class:`ModeNormalizer`: mode-specific normalisation with a variational Gaussian mixture
  (scikit-learn's ``BayesianGaussianMixture``); a value is a scalar ``alpha = (x - mu_k) / (4 sigma_k)``
  and a one-hot of its mode ``k``.
- :class:`MinMaxNormalizer`: a plain min-max scaling to [-1, 1], the simple alternative.
- :class:`OneHot`: categories (and booleans) as a one-hot group.
- :class:`WithMissing`: any numeric transform plus a 2-way ``[present, missing]`` group.

:class:`TableTransformer` fits one transform per column from a :class:`TableSpec`, restores kinds on
the way out (integers rounded, values clipped to the column's range, categories and missingness
restored) and gives the :class:`Span` layout a generator head needs;
:func:`apply_output_activations` is that head (tanh per scalar, Gumbel-softmax per group).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .columns import Column, TableSpec, plain

ACTIVATIONS = ("tanh", "softmax")


@dataclass(frozen=True)
class Span:
    """One run of the encoded vector: ``width`` entries from ``start`` with one activation.

    Args:
        start: the first index of the span in the encoded row.
        width: how many entries it covers.
        activation: ``"tanh"`` (scalars in [-1, 1]) or ``"softmax"`` (one one-hot group).
        column: the table column it encodes.
        role: what it holds: ``"value"``, ``"mode"``, ``"category"`` or ``"missing"``.
    """

    start: int
    width: int
    activation: str
    column: str = ""
    role: str = "value"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"a span's activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if self.width < 1 or self.start < 0:
            raise ValueError(f"a span needs start >= 0 and width >= 1, got start {self.start}, width {self.width}")

    @property
    def stop(self) -> int:
        return self.start + self.width

    def to_dict(self) -> dict:
        return {"start": self.start, "width": self.width, "activation": self.activation,
                "column": self.column, "role": self.role}


def _values(x) -> np.ndarray:
    arr = np.asarray(x, dtype=float).reshape(-1)
    return arr


class ColumnTransform:
    """Base class of a one-column transform; subclasses set ``name`` and fill the four methods.

    ``output_info`` lists the encoding's spans as ``(width, activation, role)`` triples, in order.
    """

    name = "column_transform"
    output_info: list

    def fit(self, values: np.ndarray, column: Column) -> ColumnTransform:
        raise NotImplementedError

    def transform(self, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def inverse_transform(self, encoded: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def output_dim(self) -> int:
        return sum(w for w, *_ in self.output_info)

    def reseed(self, seed: int) -> None:
        """Set the seed of any random choice the transform makes (none by default)."""

    def state(self) -> dict:
        """The fitted state as JSON-able data (numbers and lists)."""
        raise NotImplementedError

    def load_state(self, state: Mapping) -> ColumnTransform:
        raise NotImplementedError


class MinMaxNormalizer(ColumnTransform):
    """A numeric column scaled linearly so its range [min, max] maps to [-1, 1].

    Shape:
        - values: ``(N,)`` float, no NaN (wrap in :class:`WithMissing` for missing values).
        - encoded: ``(N, 1)`` float32.

    Example:
        >>> t = MinMaxNormalizer().fit(np.array([0.0, 5.0, 10.0]), Column("x", "continuous"))
        >>> t.transform(np.array([5.0])).tolist()
        [[0.0]]
    """

    name = "minmax"

    def __init__(self):
        self.lo = 0.0
        self.hi = 1.0
        self.output_info = [(1, "tanh", "value")]

    def fit(self, values, column=None):
        v = _values(values)
        self.lo, self.hi = float(np.min(v)), float(np.max(v))
        return self

    def _scale(self) -> float:
        return (self.hi - self.lo) / 2 or 1.0

    def transform(self, values):
        v = _values(values)
        return ((v - (self.lo + self.hi) / 2) / self._scale()).astype(np.float32)[:, None]

    def inverse_transform(self, encoded):
        a = np.clip(np.asarray(encoded, dtype=float)[:, 0], -1, 1)
        return a * self._scale() + (self.lo + self.hi) / 2

    def state(self):
        return {"lo": self.lo, "hi": self.hi}

    def load_state(self, state):
        self.lo, self.hi = float(state["lo"]), float(state["hi"])
        return self


class ModeNormalizer(ColumnTransform):
    """Mode-specific normalisation (CTGAN): a variational Gaussian mixture per continuous column.

    A ``BayesianGaussianMixture`` (Dirichlet-process prior) is fitted to the column; modes whose
    weight is below ``weight_threshold`` are dropped. A value x is encoded as the one-hot of a mode
    k, drawn from its posterior over the kept modes (``mode="sample"``, CTGAN's rule) or the most
    likely one (``mode="argmax"``), and the scalar ``alpha = (x - mu_k) / (4 sigma_k)`` clipped to
    [-0.99, 0.99]. The fitted state is only the kept modes' weights, means and deviations, so the
    posterior is computed here (the plug-in posterior of the fitted mixture; scikit-learn's
    ``predict_proba`` uses the variational expectations, within 1e-3 of it) and the state is plain
    numbers. As in CTGAN, a mode of a single row survives the threshold on tables of 200 rows or fewer.

    Args:
        n_components: most modes (CTGAN: 10; fewer when the column has fewer rows).
        weight_concentration_prior: the Dirichlet-process concentration (CTGAN: 1e-3).
        weight_threshold: modes of smaller weight are dropped (CTGAN: 0.005).
        max_iter: EM iterations for the mixture (scikit-learn's default: 100).
        max_fit_rows: fit on a random subset of at most this many rows (``None``: all rows).
        mode: ``"sample"`` or ``"argmax"``, how a value's mode is chosen in ``transform``.
        seed: seed of the mixture fit and of the mode draws.

    Shape:
        - values: ``(N,)`` float, no NaN.
        - encoded: ``(N, 1 + n_modes)`` float32: alpha, then the mode one-hot.

    Example:
        >>> x = np.r_[np.random.randn(200) - 5, np.random.randn(200) + 5]
        >>> ModeNormalizer().fit(x, Column("x", "continuous")).n_modes
        2
    """

    name = "vgm"

    def __init__(self, n_components: int = 10, weight_concentration_prior: float = 1e-3,
                 weight_threshold: float = 0.005, max_iter: int = 100, max_fit_rows: int | None = 5000,
                 mode: str = "sample", seed: int = 0):
        if mode not in ("sample", "argmax"):
            raise ValueError(f"ModeNormalizer mode must be 'sample' or 'argmax', got {mode!r}")
        self.n_components = n_components
        self.weight_concentration_prior = weight_concentration_prior
        self.weight_threshold = weight_threshold
        self.max_iter = max_iter
        self.max_fit_rows = max_fit_rows
        self.mode = mode
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self.weights = np.ones(1)
        self.means = np.zeros(1)
        self.stds = np.ones(1)
        self.output_info = [(1, "tanh", "value"), (1, "softmax", "mode")]

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    @property
    def n_modes(self) -> int:
        return len(self.means)

    def fit(self, values, column=None):
        from sklearn.mixture import BayesianGaussianMixture

        v = _values(values)
        if self.max_fit_rows is not None and len(v) > self.max_fit_rows:
            v = np.random.default_rng(self.seed).choice(v, self.max_fit_rows, replace=False)
        k = max(1, min(self.n_components, len(np.unique(v))))
        bgm = BayesianGaussianMixture(
            n_components=k, weight_concentration_prior_type="dirichlet_process",
            weight_concentration_prior=self.weight_concentration_prior, max_iter=self.max_iter,
            n_init=1, random_state=self.seed)
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            bgm.fit(v[:, None])
        keep = bgm.weights_ > self.weight_threshold
        if not keep.any():
            keep = bgm.weights_ == bgm.weights_.max()
        self.weights = bgm.weights_[keep] / bgm.weights_[keep].sum()
        self.means = bgm.means_.reshape(-1)[keep]
        self.stds = np.sqrt(bgm.covariances_.reshape(-1)[keep])
        self.output_info = [(1, "tanh", "value"), (self.n_modes, "softmax", "mode")]
        return self

    def posterior(self, values) -> np.ndarray:
        """The probability of each kept mode for each value, ``(N, n_modes)``."""
        v = _values(values)[:, None]
        z = (v - self.means[None]) / self.stds[None]
        log_p = np.log(self.weights)[None] - np.log(self.stds)[None] - 0.5 * z**2
        log_p -= log_p.max(axis=1, keepdims=True)
        p = np.exp(log_p)
        return p / p.sum(axis=1, keepdims=True)

    def transform(self, values):
        v = _values(values)
        probs = self.posterior(v)
        if self.mode == "argmax":
            k = probs.argmax(axis=1)
        else:  # one draw per row from its posterior (inverse-CDF on uniforms)
            u = self._rng.random(len(v))[:, None]
            k = np.minimum((probs.cumsum(axis=1) < u).sum(axis=1), self.n_modes - 1)
        alpha = np.clip((v - self.means[k]) / (4 * self.stds[k]), -0.99, 0.99)
        out = np.zeros((len(v), 1 + self.n_modes), dtype=np.float32)
        out[:, 0] = alpha
        out[np.arange(len(v)), 1 + k] = 1
        return out

    def inverse_transform(self, encoded):
        e = np.asarray(encoded, dtype=float)
        k = e[:, 1:].argmax(axis=1)
        return np.clip(e[:, 0], -1, 1) * 4 * self.stds[k] + self.means[k]

    def state(self):
        return {"weights": self.weights.tolist(), "means": self.means.tolist(), "stds": self.stds.tolist()}

    def load_state(self, state):
        self.weights = np.asarray(state["weights"], dtype=float)
        self.means = np.asarray(state["means"], dtype=float)
        self.stds = np.asarray(state["stds"], dtype=float)
        self.output_info = [(1, "tanh", "value"), (self.n_modes, "softmax", "mode")]
        return self


class OneHot(ColumnTransform):
    """A categorical or boolean column as one one-hot group over its categories.

    Missing values (``None``/NaN) get their own last slot when the column is nullable.

    Shape:
        - values: ``(N,)`` object array of categories.
        - encoded: ``(N, K)`` float32 (``K + 1`` with the missing slot).

    Example:
        >>> t = OneHot().fit(np.array(["a", "b"], dtype=object), Column("c", "categorical", categories=("a", "b")))
        >>> t.transform(np.array(["b"], dtype=object)).tolist()
        [[0.0, 1.0]]
    """

    name = "onehot"

    def __init__(self):
        self.categories: tuple = ()
        self.nullable = False
        self.column = ""
        self.output_info = [(1, "softmax", "category")]

    def fit(self, values, column: Column):
        self.categories = tuple(column.categories)
        self.nullable = column.nullable
        self.column = column.name
        self.output_info = [(len(self.categories) + self.nullable, "softmax", "category")]
        return self

    def transform(self, values):
        index = {c: i for i, c in enumerate(self.categories)}
        width = len(self.categories) + self.nullable
        out = np.zeros((len(values), width), dtype=np.float32)
        for row, v in enumerate(values):
            v = plain(v)
            if v is None or (isinstance(v, float) and np.isnan(v)):
                if not self.nullable:
                    raise ValueError(f"column {self.column!r} is missing in row {row}, but it is not nullable")
                out[row, -1] = 1
                continue
            i = index.get(v)
            if i is None:
                raise ValueError(f"column {self.column!r} has the value {v!r}, which is not one of its categories "
                                 f"({', '.join(map(repr, self.categories[:10]))})")
            out[row, i] = 1
        return out

    def inverse_transform(self, encoded):
        k = np.asarray(encoded).argmax(axis=1)
        lookup = list(self.categories) + ([None] if self.nullable else [])
        return np.array([lookup[i] for i in k], dtype=object)

    def state(self):
        return {"categories": list(self.categories), "nullable": self.nullable, "column": self.column}

    def load_state(self, state):
        self.categories = tuple(state["categories"])
        self.nullable = bool(state["nullable"])
        self.column = state.get("column", "")
        self.output_info = [(len(self.categories) + self.nullable, "softmax", "category")]
        return self


class WithMissing(ColumnTransform):
    """A numeric transform for a column that may be missing: the inner encoding plus ``[present, missing]``.

    The inner transform is fitted on the present values; a missing value is encoded with the
    present values' mean in the inner spans and ``[0, 1]`` in the indicator, and decoded as NaN
    whenever the indicator says missing.

    Args:
        inner: the transform of the present values (e.g. :class:`ModeNormalizer`).
    """

    def __init__(self, inner: ColumnTransform):
        self.inner = inner
        self.fill = 0.0
        self.name = f"{inner.name}+missing"

    @property
    def output_info(self):
        return list(self.inner.output_info) + [(2, "softmax", "missing")]

    def fit(self, values, column=None):
        v = _values(values)
        present = v[~np.isnan(v)]
        self.fill = float(present.mean())
        self.inner.fit(present, column)
        return self

    def transform(self, values):
        v = _values(values)
        missing = np.isnan(v)
        inner = self.inner.transform(np.where(missing, self.fill, v))
        flag = np.stack([~missing, missing], axis=1).astype(np.float32)
        return np.concatenate([inner, flag], axis=1)

    def inverse_transform(self, encoded):
        e = np.asarray(encoded)
        values = self.inner.inverse_transform(e[:, :-2]).astype(float)
        values[e[:, -1] > e[:, -2]] = np.nan
        return values

    def state(self):
        return {"fill": self.fill, "inner": self.inner.state()}

    def load_state(self, state):
        self.fill = float(state["fill"])
        self.inner.load_state(state["inner"])
        return self


#: Continuous transforms by name; a class (or any zero-argument factory) is accepted where a name is.
CONTINUOUS: dict = {"vgm": ModeNormalizer, "minmax": MinMaxNormalizer}


def _factory(choice, where: str) -> Callable[[], ColumnTransform]:
    if isinstance(choice, str):
        if choice not in CONTINUOUS:
            raise ValueError(f"{where}: unknown transform {choice!r}; available: {', '.join(CONTINUOUS)} "
                             f"(or pass a ColumnTransform class)")
        return CONTINUOUS[choice]
    if callable(choice):
        return choice
    raise ValueError(f"{where}: a transform is a name ({', '.join(CONTINUOUS)}) or a ColumnTransform class, got {choice!r}")


class TableTransformer:
    """A whole table to float rows and back, one transform per column, with the encoded layout.

    Args:
        spec: the columns to encode (e.g. a :class:`~condgan.tabular.read.Table`'s ``output_spec``).
        continuous: the transform for continuous columns: ``"vgm"`` (CTGAN's mode-specific
            normalisation, the default), ``"minmax"``, or a :class:`ColumnTransform` class/factory.
        integer: the transform for integer columns (default: the same as ``continuous``).
        transforms: per-column overrides, column name -> a transform instance.
        clip: clip numeric values to the column's [min, max] on the way out.
        seed: seed of the mixture fits and mode draws.

    A continuous column whose values all have at most 6 decimals (``39.1``, ``0.25``) comes back
    rounded to as many (``decimals``, learned by :meth:`fit`, as RDT's ``learn_rounding_scheme``).

    Shape:
        - transform: a DataFrame of ``N`` rows -> ``(N, output_dim)`` float32.
        - inverse_transform: ``(N, output_dim)`` -> a DataFrame with the spec's names, kinds and categories.

    Example:
        >>> tt = TableTransformer(spec).fit(frame)  # doctest: +SKIP
        >>> x = tt.transform(frame)  # (N, tt.output_dim)
        >>> tt.inverse_transform(x)  # the rows back, integers rounded and categories restored
    """

    def __init__(self, spec: TableSpec, continuous: Any = "vgm", integer: Any = None,
                 transforms: Mapping[str, ColumnTransform] | None = None, clip: bool = True, seed: int = 0):
        if not isinstance(spec, TableSpec):
            raise ValueError(f"TableTransformer needs a TableSpec, got {type(spec).__name__}")
        self.spec = spec
        self.clip = clip
        self.seed = seed
        overrides = dict(transforms or {})
        unknown = [n for n in overrides if n not in spec]
        if unknown:
            raise ValueError(f"transforms names column {unknown[0]!r}, which the spec does not have; "
                             f"its columns: {', '.join(spec.names)}")
        cont = _factory(continuous, "continuous")
        whole = _factory(integer, "integer") if integer is not None else cont
        self.transforms: dict = {}
        for i, col in enumerate(spec):
            if col.name in overrides:
                t = overrides[col.name]
            elif col.is_numeric:
                t = (cont if col.kind == "continuous" else whole)()
                t.reseed(seed + i)
            else:
                t = OneHot()
            if col.is_numeric and col.nullable and not isinstance(t, WithMissing):
                t = WithMissing(t)
            self.transforms[col.name] = t
        self.decimals: dict[str, int] = {}
        self.fitted = False

    def _check_frame(self, frame) -> None:
        missing = [n for n in self.spec.names if n not in frame.columns]
        if missing:
            raise ValueError(f"the table lacks column {missing[0]!r}; expected columns: {', '.join(self.spec.names)}")

    def fit(self, frame) -> TableTransformer:
        """Fit every column's transform on the frame's rows."""
        self._check_frame(frame)
        for col in self.spec:
            series = frame[col.name]
            values = series.to_numpy(dtype=float, na_value=np.nan) if col.is_numeric else series.to_numpy(dtype=object)
            if len(values) == 0:
                raise ValueError(f"cannot fit column {col.name!r} on zero rows")
            self.transforms[col.name].fit(values, col)
            if col.kind == "continuous":
                places = decimal_places(values)
                if places is not None:
                    self.decimals[col.name] = places
        self.fitted = True
        return self

    @property
    def layout(self) -> tuple:
        """The encoded row's spans, in order: which entries are tanh scalars and which softmax groups."""
        spans, start = [], 0
        for col in self.spec:
            for width, activation, role in self.transforms[col.name].output_info:
                spans.append(Span(start, width, activation, col.name, role))
                start += width
        return tuple(spans)

    @property
    def output_dim(self) -> int:
        """The length of an encoded row."""
        return sum(s.width for s in self.layout)

    def transform(self, frame) -> np.ndarray:
        """The frame's rows as an ``(N, output_dim)`` float32 array."""
        if not self.fitted:
            raise RuntimeError("TableTransformer.transform before fit: call fit(frame) first")
        self._check_frame(frame)
        parts = []
        for col in self.spec:
            series = frame[col.name]
            values = series.to_numpy(dtype=float, na_value=np.nan) if col.is_numeric else series.to_numpy(dtype=object)
            parts.append(self.transforms[col.name].transform(values))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def inverse_transform(self, encoded) -> Any:
        """Encoded rows back to a DataFrame: integers rounded, bounds clipped, categories and NaN restored."""
        import pandas as pd

        if isinstance(encoded, Tensor):
            encoded = encoded.detach().cpu().numpy()
        e = np.asarray(encoded, dtype=float)
        if e.ndim != 2 or e.shape[1] != self.output_dim:
            raise ValueError(f"encoded rows must have shape (N, {self.output_dim}), got {e.shape}")
        out, start = {}, 0
        for col in self.spec:
            t = self.transforms[col.name]
            width = t.output_dim
            out[col.name] = self._restore(col, t.inverse_transform(e[:, start:start + width]), pd)
            start += width
        return pd.DataFrame(out)

    def _restore(self, col: Column, values, pd):
        if col.is_numeric:
            v = np.asarray(values, dtype=float)
            if self.clip and col.min is not None and col.max is not None:
                v = np.clip(v, col.min, col.max)
            if col.kind == "integer":
                v = np.round(v)
                return pd.array(np.where(np.isnan(v), None, v), dtype="Int64") if col.nullable else v.astype(np.int64)
            return np.round(v, self.decimals[col.name]) if col.name in self.decimals else v
        if col.kind == "boolean":
            return pd.array(list(values), dtype="boolean") if col.nullable else np.asarray(values, dtype=bool)
        return pd.Series(list(values), dtype=object).infer_objects()

    def state(self) -> dict:
        """The fitted transformer as JSON-able data: the spec, and each column's transform and state."""
        return {"spec": self.spec.to_dict(), "clip": self.clip, "seed": self.seed, "decimals": dict(self.decimals),
                "columns": [{"name": n, "transform": type(t.inner if isinstance(t, WithMissing) else t).__name__,
                             "missing": isinstance(t, WithMissing), "state": t.state()}
                            for n, t in self.transforms.items()]}

    @classmethod
    def from_state(cls, state: Mapping) -> TableTransformer:
        """A fitted transformer from :meth:`state`'s data (built-in transforms only)."""
        classes = {c.__name__: c for c in (ModeNormalizer, MinMaxNormalizer, OneHot)}
        spec = TableSpec.from_dict(state["spec"])
        transforms = {}
        for entry in state["columns"]:
            if entry["transform"] not in classes:
                raise ValueError(f"column {entry['name']!r}: transform {entry['transform']!r} is not built in; "
                                 f"built in: {', '.join(classes)}")
            t = classes[entry["transform"]]()
            t = WithMissing(t) if entry["missing"] else t
            transforms[entry["name"]] = t.load_state(entry["state"])
        tt = cls(spec, transforms=transforms, clip=state["clip"], seed=state["seed"])
        tt.decimals = {str(k): int(v) for k, v in state.get("decimals", {}).items()}  # older states: none, values unrounded
        tt.fitted = True
        return tt


def decimal_places(values: np.ndarray, most: int = 6) -> int | None:
    """The fewest decimals (0 to ``most``) that hold every finite value exactly, or None."""
    finite = values[np.isfinite(values)]
    for places in range(most + 1):
        if np.allclose(np.round(finite, places), finite, rtol=0, atol=1e-9 * max(1.0, float(np.abs(finite).max(initial=0)))):
            return places
    return None


def apply_output_activations(raw: Tensor, layout: Sequence[Span], tau: float = 0.2, hard: bool = False) -> Tensor:
    """The generator's output head for tables: tanh on scalar spans, Gumbel-softmax on one-hot groups.

    Args:
        raw: the generator's unactivated output.
        layout: the spans (a :class:`TableTransformer`'s ``layout``), covering ``raw``'s last dim.
        tau: the Gumbel-softmax temperature (CTGAN: 0.2).
        hard: one-hot samples forward with the soft gradient backward (straight-through).

    Shape:
        - raw: ``(B, D)`` with ``D = layout[-1].stop``; output: ``(B, D)``.

    Example:
        >>> layout = (Span(0, 1, "tanh"), Span(1, 3, "softmax"))
        >>> apply_output_activations(torch.randn(4, 4), layout, hard=True)[:, 1:].sum(1)
        tensor([1., 1., 1., 1.])
    """
    if raw.dim() != 2:
        raise ValueError(f"raw must have shape (B, D), got {tuple(raw.shape)}")
    if not layout or layout[-1].stop != raw.shape[1]:
        width = layout[-1].stop if layout else 0
        raise ValueError(f"the layout covers {width} entries but raw has {raw.shape[1]}")
    parts = []
    for span in layout:
        piece = raw[:, span.start:span.stop]
        if span.activation == "tanh":
            parts.append(torch.tanh(piece))
        else:
            parts.append(F.gumbel_softmax(piece, tau=tau, hard=hard, dim=1))
    return torch.cat(parts, dim=1)  # (B, D)
