"""Inception metrics through torch-fidelity, exercised with a made weights file of the same architecture."""

from __future__ import annotations

from unittest import mock

import pytest
import torch

pytest.importorskip("torch_fidelity")

from condgan.metrics.inception import (  # noqa: E402
    INCEPTION_FILE,
    INCEPTION_SHA256,
    InceptionHashError,
    InceptionMetrics,
    InceptionWeightsError,
    default_weights_path,
    file_sha256,
    inception_features,
    inception_metrics_from_features,
    load_inception,
    to_inception_input,
)


@pytest.fixture(scope="module")
def made_weights(tmp_path_factory):
    """A randomly initialised state dict of torch-fidelity's extractor (the real weights cannot be in a test)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(0)
    with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, *a, **k: None), \
            mock.patch("torch.load", return_value={}):
        net = FeatureExtractorInceptionV3("made", ["2048"], feature_extractor_weights_path="unused")
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(net.state_dict(), path)
    return path


def test_the_published_hash_is_checked_and_a_made_file_refused(made_weights):
    with pytest.raises(InceptionHashError) as exc:
        load_inception(made_weights)
    assert INCEPTION_SHA256 in str(exc.value) and "\n" not in str(exc.value)
    extractor = load_inception(made_weights, expected_sha256=file_sha256(made_weights))
    assert extractor.sha256 == file_sha256(made_weights)
    assert sum(p.numel() for p in extractor.parameters()) > 20_000_000  # the whole Inception-v3


def test_a_missing_file_says_which_file_and_where(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    assert default_weights_path() == tmp_path / "home" / "hub" / "checkpoints" / INCEPTION_FILE
    with mock.patch("torch.hub.load_state_dict_from_url", side_effect=AssertionError("download attempted")):
        with pytest.raises(InceptionWeightsError) as exc:
            load_inception()
    text = str(exc.value)
    assert "\n" not in text and INCEPTION_FILE in text and str(default_weights_path()) in text and "never downloads" in text


def test_images_go_through_torch_fidelity_as_uint8_rgb(made_weights):
    grey = torch.rand(2, 1, 20, 20)
    x = to_inception_input(grey)
    assert x.dtype == torch.uint8 and x.shape == (2, 3, 20, 20) and torch.equal(x[:, 0], x[:, 2])
    assert torch.equal(x[:, 0], (grey[:, 0] * 255).round().to(torch.uint8))
    assert torch.equal(to_inception_input(grey * 2 - 1), x)  # a tanh range is read as [-1, 1]
    extractor = load_inception(made_weights, expected_sha256=None)
    feats, logits = inception_features(extractor, grey, batch_size=1)
    assert feats.shape == (2, 2048) and logits.shape == (2, 1008) and bool(torch.isfinite(feats).all())
    # torch-fidelity's extractor on the same uint8 images gives the same features
    torch.testing.assert_close(feats, extractor(x)[0].double())


def test_frechet_distance_agrees_with_torchmetrics_and_the_metrics_read_their_features():
    fid_module = pytest.importorskip("torchmetrics.image.fid")
    from condgan.metrics import frechet_distance

    g = torch.Generator().manual_seed(0)
    mix = torch.randn(64, 64, generator=g, dtype=torch.float64) / 8
    a = torch.randn(300, 64, generator=g, dtype=torch.float64) @ mix
    b = torch.randn(300, 64, generator=g, dtype=torch.float64) @ mix * 1.3 + 0.1
    mu_a, cov_a, mu_b, cov_b = a.mean(0), torch.cov(a.T), b.mean(0), torch.cov(b.T)
    theirs = float(fid_module._compute_fid(mu_a, cov_a, mu_b, cov_b))
    assert frechet_distance(mu_a, cov_a, mu_b, cov_b) == pytest.approx(theirs, rel=1e-6) and theirs > 0.1
    logits = torch.randn(300, 1008, generator=g, dtype=torch.float64) * 3
    out = inception_metrics_from_features(a, logits, b, kid_subsets=5, kid_subset_size=200)
    assert out["inception_fid"].value == pytest.approx(theirs, rel=1e-6)
    assert inception_metrics_from_features(a, logits, a, kid_subsets=5)["inception_fid"].value == pytest.approx(0.0, abs=1e-6)
    c = torch.randn(300, 64, generator=g, dtype=torch.float64) @ mix  # a's distribution, other points
    same = inception_metrics_from_features(a, logits, c, kid_subsets=5, kid_subset_size=200)
    assert out["kid"].value > 5 * abs(same["kid"].value) and out["kid"].protocol["subset_size"] == 200
    assert 1.0 < out["inception_score"].value < 1008 and out["inception_score"].details["std"] >= 0


def test_too_few_samples_are_refused_before_any_work(made_weights):
    metrics = InceptionMetrics(made_weights, expected_sha256=file_sha256(made_weights))
    with mock.patch("condgan.metrics.inception.inception_features", side_effect=AssertionError("features computed")):
        with pytest.raises(ValueError, match="needs more samples than the judge's 2048 feature dimensions"):
            metrics.evaluate(torch.rand(100, 1, 28, 28), torch.rand(100, 1, 28, 28))
