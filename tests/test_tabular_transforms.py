"""Column transforms and the table head: round trips, the VGM's modes, layouts, and the activations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")
from sklearn.datasets import load_iris

from condgan.tabular import (
    Column,
    MinMaxNormalizer,
    ModeNormalizer,
    OneHot,
    Span,
    TableTransformer,
    WithMissing,
    apply_output_activations,
    infer_spec,
)


def mixed_table(n: int = 300, seed: int = 0):
    """A table with every kind, missing values in each, and a bimodal continuous column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "bimodal": np.r_[rng.normal(-10, 1, n // 2), rng.normal(10, 1.5, n - n // 2)],
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.integers(18, 90, n).astype(float),
        "colour": rng.choice(["red", "green", "blue"], n).astype(object),
        "smoker": rng.random(n) < 0.3,
    })
    frame.loc[rng.random(n) < 0.1, "income"] = np.nan
    frame.loc[rng.random(n) < 0.1, "age"] = np.nan
    frame["colour"] = frame["colour"].where(rng.random(n) > 0.1, None)
    frame["smoker"] = frame["smoker"].astype(object).where(rng.random(n) > 0.1, None)
    return frame


def assert_same(a, b, spec, atol):
    for col in spec:
        x, y = a[col.name], b[col.name]
        assert (x.isna().to_numpy() == y.isna().to_numpy()).all(), col.name
        present = x.notna().to_numpy()
        if col.is_numeric:
            np.testing.assert_allclose(y[present].astype(float), x[present].astype(float), atol=atol, err_msg=col.name)
        else:
            assert list(y[present]) == list(x[present]), col.name


@pytest.mark.parametrize("continuous", ["vgm", "minmax"])
def test_round_trip_restores_values_categories_missingness_and_integers(continuous):
    frame = mixed_table()
    spec = infer_spec(frame)
    assert [c.kind for c in spec] == ["continuous", "continuous", "integer", "categorical", "boolean"]
    assert all(c.nullable for c in spec.columns[1:]) and not spec["bimodal"].nullable
    tt = TableTransformer(spec, continuous=continuous, seed=1)
    tt.fit(frame)
    x = tt.transform(frame)
    assert x.shape == (300, tt.output_dim) and x.dtype == np.float32
    back = tt.inverse_transform(x)
    assert list(back.columns) == list(spec.names)
    assert_same(frame, back, spec, atol=1e-4 * np.nanmax(np.abs(frame["income"])))
    assert str(back["age"].dtype) == "Int64" and str(back["smoker"].dtype) == "boolean"
    assert set(back["colour"].dropna()) <= {"red", "green", "blue"}


def test_decoded_rows_are_rounded_clipped_and_typed():
    frame = pd.DataFrame({"x": np.linspace(0, 1, 50), "n": np.arange(50), "c": ["a", "b"] * 25, "b": [True, False] * 25})
    spec = infer_spec(frame)
    tt = TableTransformer(spec, continuous="minmax").fit(frame)
    x = tt.transform(frame)
    x[:, 0] = 5.0  # past the range: clipped to max
    x[:, 1] += 0.013  # between integers: rounded
    back = tt.inverse_transform(torch.from_numpy(x))
    assert (back["x"] == 1.0).all()
    assert back["n"].dtype == np.int64 and (back["n"].to_numpy() == np.arange(50)).all()
    assert back["b"].dtype == bool and list(back["c"][:2]) == ["a", "b"]
    noise = np.random.default_rng(0).normal(size=(200, tt.output_dim)) * 3
    random_rows = tt.inverse_transform(noise)
    assert random_rows["n"].between(0, 49).all() and random_rows["x"].between(0, 1).all()


def test_continuous_columns_come_back_with_the_decimals_the_file_has():
    frame = pd.DataFrame({"mm": np.round(np.linspace(30, 60, 80), 1), "g": np.linspace(0, 1, 80) ** 2,
                          "w": np.arange(80) * 0.25})
    frame.loc[3, "mm"] = np.nan
    spec = infer_spec(frame)
    tt = TableTransformer(spec, seed=0).fit(frame)
    assert tt.decimals == {"mm": 1, "w": 2}  # g's squares have more than 6 decimals: left as they come
    noise = np.random.default_rng(1).normal(size=(300, tt.output_dim))
    back = tt.inverse_transform(noise)
    mm = back["mm"].dropna().to_numpy()
    assert np.array_equal(mm, np.round(mm, 1)) and np.array_equal(back["w"], np.round(back["w"], 2))
    assert not np.array_equal(back["g"], np.round(back["g"], 6))
    again = TableTransformer.from_state(json.loads(json.dumps(tt.state())))
    assert again.decimals == tt.decimals
    old = tt.state()
    del old["decimals"]  # a transformer saved before decimals were learned decodes as it did
    assert TableTransformer.from_state(old).decimals == {}


def test_vgm_finds_two_modes_on_a_bimodal_column_and_one_on_a_normal():
    rng = np.random.default_rng(0)
    bimodal = np.r_[rng.normal(-10, 1, 200), rng.normal(10, 1.5, 200)]
    vgm = ModeNormalizer(max_iter=100, seed=0).fit(bimodal, Column("x", "continuous"))
    assert vgm.n_modes == 2
    np.testing.assert_allclose(np.sort(vgm.means), [-10, 10], atol=0.5)
    np.testing.assert_allclose(vgm.weights, [0.5, 0.5], atol=0.05)
    assert vgm.output_info == [(1, "tanh", "value"), (2, "softmax", "mode")]
    trimodal = np.r_[rng.normal(-20, 1, 150), rng.normal(0, 2, 150), rng.normal(30, 1, 100)]
    vgm3 = ModeNormalizer(seed=0).fit(trimodal, Column("z", "continuous"))
    assert vgm3.n_modes == 3
    np.testing.assert_allclose(np.sort(vgm3.means), [-20, 0, 30], atol=0.5)
    encoded = ModeNormalizer(mode="argmax", seed=0).fit(bimodal, None).transform(bimodal)
    modes = encoded[:, 1:].argmax(1)
    assert len(set(modes[:200])) == 1 and len(set(modes[200:])) == 1 and modes[0] != modes[-1]
    assert np.abs(encoded[:, 0]).max() <= 0.99


def test_vgm_posterior_matches_scikit_learn_and_sampled_modes_follow_it():
    from sklearn.mixture import BayesianGaussianMixture

    rng = np.random.default_rng(1)
    x = np.r_[rng.normal(0, 1, 200), rng.normal(3, 1, 200)]
    vgm = ModeNormalizer(seed=0, weight_threshold=0.0).fit(x, None)
    bgm = BayesianGaussianMixture(n_components=10, weight_concentration_prior_type="dirichlet_process",
                                  weight_concentration_prior=1e-3, max_iter=100, random_state=0).fit(x[:, None])
    # the plug-in posterior of the fitted mixture; scikit-learn's uses the variational expectations
    np.testing.assert_allclose(vgm.posterior(x), bgm.predict_proba(x[:, None]), atol=1e-3)
    overlap = np.full(4000, 1.5)  # between the modes: drawn from its posterior, not always the same one
    drawn = ModeNormalizer(seed=0).fit(x, None).transform(overlap)[:, 1:].mean(0)
    np.testing.assert_allclose(drawn, ModeNormalizer(seed=0).fit(x, None).posterior(overlap[:1])[0], atol=0.03)


def test_column_transforms_alone():
    mm = MinMaxNormalizer().fit(np.array([2.0, 4.0, 6.0]))
    assert mm.transform(np.array([2.0, 6.0]))[:, 0].tolist() == [-1.0, 1.0]
    oh = OneHot().fit(None, Column("c", "categorical", categories=("a", "b"), nullable=True))
    enc = oh.transform(np.array(["b", None, "a"], dtype=object))
    assert enc.tolist() == [[0, 1, 0], [0, 0, 1], [1, 0, 0]]
    assert list(oh.inverse_transform(enc)) == ["b", None, "a"]
    with pytest.raises(ValueError, match=r"^column 'c' has the value 'z', which is not one of its categories \('a', 'b'\)$"):
        oh.transform(np.array(["z"], dtype=object))
    wm = WithMissing(MinMaxNormalizer()).fit(np.array([1.0, np.nan, 3.0]))
    enc = wm.transform(np.array([1.0, np.nan, 3.0]))
    assert enc.tolist() == [[-1, 1, 0], [0, 0, 1], [1, 1, 0]]
    assert np.isnan(wm.inverse_transform(enc)[1]) and wm.output_info[-1] == (2, "softmax", "missing")


def test_layout_names_each_span_and_state_round_trips_through_json():
    frame = mixed_table(200)
    spec = infer_spec(frame)
    tt = TableTransformer(spec, continuous="vgm", integer="minmax", seed=0).fit(frame)
    layout = tt.layout
    assert layout[0] == Span(0, 1, "tanh", "bimodal", "value") and layout[1].role == "mode"
    assert layout[1].width == tt.transforms["bimodal"].n_modes >= 2
    assert [s.stop for s in layout[:-1]] == [s.start for s in layout[1:]] and layout[-1].stop == tt.output_dim
    by_column = {c: [(s.activation, s.role) for s in layout if s.column == c] for c in spec.names}
    assert by_column["age"] == [("tanh", "value"), ("softmax", "missing")]
    assert by_column["colour"] == [("softmax", "category")] and [s.width for s in layout if s.column == "colour"] == [4]
    assert by_column["income"][-1] == ("softmax", "missing")
    again = TableTransformer.from_state(json.loads(json.dumps(tt.state())))
    assert again.layout == layout
    x = tt.transform(frame)
    pd.testing.assert_frame_equal(again.inverse_transform(x), tt.inverse_transform(x))


def test_swapping_a_component_per_column_and_bad_choices():
    frame = load_iris(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    spec = infer_spec(frame)

    class Identity(MinMaxNormalizer):
        name = "identity"

    tt = TableTransformer(spec, transforms={"petal width (cm)": Identity()}).fit(frame)
    assert isinstance(tt.transforms["petal width (cm)"], Identity)
    assert isinstance(tt.transforms["sepal width (cm)"], ModeNormalizer)
    assert isinstance(TableTransformer(spec, continuous=MinMaxNormalizer).transforms["sepal width (cm)"], MinMaxNormalizer)
    with pytest.raises(ValueError, match=r"^continuous: unknown transform 'gmm'; available: vgm, minmax \(or pass a ColumnTransform class\)$"):
        TableTransformer(spec, continuous="gmm")
    with pytest.raises(ValueError, match=r"^transforms names column 'petal', which the spec does not have"):
        TableTransformer(spec, transforms={"petal": Identity()})
    with pytest.raises(ValueError, match=r"^the table lacks column 'target'; expected columns: "):
        tt.transform(frame.drop(columns="target"))
    with pytest.raises(ValueError, match=rf"^encoded rows must have shape \(N, {tt.output_dim}\), got \(3, 2\)$"):
        tt.inverse_transform(np.zeros((3, 2)))
    with pytest.raises(RuntimeError, match="before fit"):
        TableTransformer(spec).transform(frame)


def test_output_activations_per_span():
    layout = (Span(0, 1, "tanh"), Span(1, 3, "softmax"), Span(4, 1, "tanh"), Span(5, 2, "softmax"))
    raw = (torch.randn(64, 7) * 2).requires_grad_()
    soft = apply_output_activations(raw, layout, tau=0.2)
    assert soft.shape == (64, 7)
    torch.testing.assert_close(soft[:, [0, 4]], torch.tanh(raw[:, [0, 4]]))
    torch.testing.assert_close(soft[:, 1:4].sum(1), torch.ones(64))
    torch.testing.assert_close(soft[:, 5:7].sum(1), torch.ones(64))
    assert ((soft[:, 1:4] > 0) & (soft[:, 1:4] < 1)).any()  # soft: not one-hot
    hard = apply_output_activations(raw, layout, hard=True)
    assert set(hard[:, 1:4].detach().unique().tolist()) == {0.0, 1.0} and (hard[:, 1:4].sum(1) == 1).all()
    hard[:, 1:4].mul(torch.arange(3.0)).sum().backward()
    assert raw.grad is not None and raw.grad[:, 1:4].abs().sum() > 0  # straight-through: the soft gradient
    logits = torch.tensor([[0.0, 0.0, 8.0, -8.0]]).repeat(2000, 1)  # tanh, then a group strongly on index 1
    picked = apply_output_activations(logits, (Span(0, 1, "tanh"), Span(1, 3, "softmax")), tau=1.0, hard=True)
    assert picked[:, 2].mean() > 0.99
    with pytest.raises(ValueError, match=r"^the layout covers 4 entries but raw has 7$"):
        apply_output_activations(raw, layout[:2])


def test_the_head_feeds_the_transformer():
    frame = mixed_table(200)
    tt = TableTransformer(infer_spec(frame)).fit(frame)
    fake = apply_output_activations(torch.randn(500, tt.output_dim), tt.layout, hard=True)
    rows = tt.inverse_transform(fake)
    assert len(rows) == 500 and rows["age"].dropna().between(18, 89).all()
    assert set(rows["colour"].dropna()) <= {"red", "green", "blue"} and rows["colour"].isna().any()
