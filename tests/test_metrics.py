"""Each metric on cases with a known answer, the image rule, the evaluation and the `condgan eval` command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from condgan.metrics import (
    GOODFELLOW_SIGMAS,
    IMAGE_RULE,
    ReferenceData,
    accuracy_from_predictions,
    density_coverage,
    evaluate_images,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    intra_class_fid,
    knn_metrics,
    load_npz,
    parzen_log_likelihood,
    parzen_log_likelihoods,
    precision_recall,
    sample_generator,
    select_sigma,
    to_metric_input,
)

from condgan.classifier import weights_sha256

from metrics_helpers import mnist_root, synthetic_digits, tiny_classifier

needs_mnist = pytest.mark.skipif(mnist_root() is None, reason="MNIST not found ($CONDGAN_MNIST_ROOT or ../shared/data)")


# -- the image rule -----------------------------------------------------------------------------------
def test_image_rule_maps_ranges_to_unit_interval():
    u8 = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(2, 1, 28, 3).reshape(2, 1, 28, 3)
    u8 = F.pad(u8, (0, 25))  # (2, 1, 28, 28)
    torch.testing.assert_close(to_metric_input(u8)[0, 0, 0, :3], torch.tensor([0.0, 0.2, 1.0]))
    tanh = torch.full((1, 1, 28, 28), -1.0)
    tanh[..., 0, 0] = 0.0
    assert to_metric_input(tanh)[0, 0, 0, 0] == 0.5 and to_metric_input(tanh)[0, 0, 1, 1] == 0.0  # [-1, 1] guessed
    unit = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(to_metric_input(unit), unit)  # [0, 1] kept
    torch.testing.assert_close(to_metric_input(unit * 255, pixel_range=(0, 255)), unit)
    with pytest.raises(ValueError, match="pass pixel_range"):
        to_metric_input(unit * 255)
    with pytest.raises(ValueError, match="C in"):
        to_metric_input(torch.rand(2, 2, 28, 28))


def test_image_rule_resizes_with_antialiased_bilinear_and_averages_colour():
    x = torch.rand(2, 1, 32, 32)
    expected = F.interpolate(x, size=(28, 28), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    torch.testing.assert_close(to_metric_input(x), expected)
    rgb = torch.stack([x[:, 0], torch.zeros_like(x[:, 0]), torch.ones_like(x[:, 0])], 1)  # (2, 3, 32, 32)
    torch.testing.assert_close(to_metric_input(rgb), to_metric_input((x + 1) / 3))
    assert to_metric_input(torch.rand(4, 64, 64)).shape == (4, 1, 28, 28)
    assert "antialias" in IMAGE_RULE


# -- Frechet distance ---------------------------------------------------------------------------------
def test_identical_feature_sets_have_zero_fid():
    f = torch.randn(2000, 32) @ torch.randn(32, 32)
    result = fid_from_features(f, f.clone(), protocol={"features": "test"})
    assert abs(result.value) < 1e-6
    assert result.protocol == {"features": "test", "samples": 2000, "reference_samples": 2000, "feature_dim": 32}


def test_fid_of_diagonal_gaussians_is_the_closed_form():
    gen = torch.Generator().manual_seed(0)
    mu1, mu2 = torch.randn(6, generator=gen, dtype=torch.float64), torch.randn(6, generator=gen, dtype=torch.float64)
    s1, s2 = torch.rand(6, generator=gen, dtype=torch.float64) + 0.1, torch.rand(6, generator=gen, dtype=torch.float64) + 0.1
    closed = float((mu1 - mu2).square().sum() + (s1 + s2 - 2 * (s1 * s2).sqrt()).sum())
    assert frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2)) == pytest.approx(closed, rel=1e-10)
    # a common rotation of both covariances changes nothing (exercises the non-diagonal path)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=torch.float64))
    c1, c2 = q @ torch.diag(s1) @ q.T, q @ torch.diag(s2) @ q.T
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(closed, rel=1e-9)
    # and samples drawn from the two Gaussians estimate it
    a = mu1 + s1.sqrt() * torch.randn(100_000, 6, generator=gen, dtype=torch.float64)
    b = mu2 + s2.sqrt() * torch.randn(100_000, 6, generator=gen, dtype=torch.float64)
    assert fid_from_features(a, b).value == pytest.approx(closed, rel=0.02, abs=0.01)


def test_fid_of_shifted_gaussians_is_the_squared_shift_and_it_is_symmetric():
    f = torch.randn(3000, 8)
    shift = torch.tensor([3.0, 0, 0, 0, 0, 0, 0, 4.0])
    assert fid_from_features(f + shift, f).value == pytest.approx(25.0, rel=1e-6)
    g = torch.randn(3000, 8) * 2
    assert fid_from_features(f, g).value == pytest.approx(fid_from_features(g, f).value, rel=1e-8)


def test_fid_handles_singular_covariances():
    f = torch.randn(500, 3) @ torch.randn(3, 10)  # rank 3 in 10 dimensions
    assert fid_from_features(f, f).value < 1e-6
    mu, cov = feature_statistics(f)
    assert cov.dtype == torch.float64 and torch.linalg.matrix_rank(cov) == 3
    torch.testing.assert_close(cov, torch.from_numpy(np.cov(f.double().numpy(), rowvar=False)))


def test_fid_validates_its_input():
    with pytest.raises(ValueError, match="at least 2 rows"):
        fid_from_features(torch.randn(1, 4), torch.randn(10, 4))
    with pytest.raises(ValueError, match="dimensions differ"):
        fid_from_features(torch.randn(10, 4), torch.randn(10, 5))
    with pytest.raises(ValueError, match="NaN"):
        fid_from_features(torch.full((10, 4), float("nan")), torch.randn(10, 4))


def test_intra_class_fid_averages_per_class_distances():
    labels = torch.arange(4).repeat_interleave(2000)
    ref = torch.randn(8000, 5) + labels[:, None].float() * 10
    fake = ref.clone()
    fake[labels == 2] += torch.tensor([2.0, 0, 0, 0, 0])  # class 2 off by a shift of length 2
    result = intra_class_fid(fake, labels, ref, labels, num_classes=4)
    assert result.details["per_class"] == pytest.approx([0, 0, 4.0, 0], abs=1e-6)
    assert result.value == pytest.approx(1.0, abs=1e-6)
    # the same features with the wrong labels are far apart, though the pooled FID is ~0
    mislabelled = intra_class_fid(fake, (labels + 1) % 4, ref, labels, num_classes=4)
    assert mislabelled.value > 50 and fid_from_features(fake, ref).value < 1.5
    with pytest.raises(ValueError, match="class 3 has 0 samples"):
        intra_class_fid(fake[labels < 3], labels[labels < 3], ref, labels, num_classes=4)


# -- Parzen window ------------------------------------------------------------------------------------
def test_parzen_matches_the_one_dimensional_closed_form():
    samples = torch.tensor([[0.0], [1.0]])
    points = torch.tensor([[0.5], [0.0]])
    ll = parzen_log_likelihoods(samples, points, 1.0)
    normal = lambda x, m: math.exp(-0.5 * (x - m) ** 2) / math.sqrt(2 * math.pi)  # noqa: E731
    assert float(ll[0]) == pytest.approx(math.log(normal(0.5, 0)), abs=1e-12)
    assert float(ll[1]) == pytest.approx(math.log(0.5 * normal(0, 0) + 0.5 * normal(0, 1)), abs=1e-12)


def test_parzen_matches_a_direct_computation_in_chunks_and_for_each_sigma():
    gen = torch.Generator().manual_seed(1)
    samples, points = torch.rand(37, 5, generator=gen), torch.rand(23, 5, generator=gen)
    sigmas = [0.05, 0.2, 1.0]
    ll = parzen_log_likelihoods(samples, points, sigmas, chunk_size=4)
    x, mu = points.double().numpy(), samples.double().numpy()
    for s, sigma in enumerate(sigmas):
        for j in range(len(x)):
            dens = np.mean([np.prod(np.exp(-(x[j] - m) ** 2 / (2 * sigma**2)) / np.sqrt(2 * np.pi * sigma**2)) for m in mu])
            assert float(ll[s, j]) == pytest.approx(np.log(dens), rel=1e-9)


def test_parzen_window_on_the_data_beats_one_on_noise():
    data, _ = synthetic_digits(600, seed=0)
    test, _ = synthetic_digits(200, seed=1)
    validation, _ = synthetic_digits(100, seed=2)
    on_data = parzen_log_likelihood(data, test, validation)
    on_noise = parzen_log_likelihood(torch.rand(600, 1, 28, 28), test, validation)
    assert on_data.value > on_noise.value + 100
    assert on_data.details["stderr"] > 0
    assert on_data.protocol["samples"] == 600 and on_data.protocol["test_samples"] == 200
    assert on_data.protocol["validation_samples"] == 100 and on_data.protocol["sigma_grid"] == list(GOODFELLOW_SIGMAS)


def test_parzen_sigma_is_the_validation_argmax_and_the_figure_is_mean_and_stderr():
    data, _ = synthetic_digits(300, seed=0)
    test, _ = synthetic_digits(50, seed=1)
    validation, _ = synthetic_digits(40, seed=2)
    flat = lambda x: x.flatten(1)  # noqa: E731 - already 28x28 in [0, 1]
    sigma, means = select_sigma(flat(data), flat(validation))
    assert sigma == GOODFELLOW_SIGMAS[int(np.argmax(means))]
    result = parzen_log_likelihood(data, test, validation)
    ll = parzen_log_likelihoods(flat(data), flat(test), sigma)
    assert result.details["sigma"] == sigma
    assert result.value == pytest.approx(float(ll.mean()), rel=1e-12)
    assert result.details["stderr"] == pytest.approx(float(ll.std(unbiased=False)) / math.sqrt(50), rel=1e-12)


def test_parzen_applies_the_image_rule_to_tanh_and_larger_images():
    data, _ = synthetic_digits(100, seed=0)
    test, _ = synthetic_digits(30, seed=1)
    val, _ = synthetic_digits(20, seed=2)
    tanh_32 = F.interpolate(data, size=(32, 32), mode="bilinear", align_corners=False) * 2 - 1
    direct = parzen_log_likelihood(to_metric_input(tanh_32), test, val)
    assert parzen_log_likelihood(tanh_32, test, val).value == pytest.approx(direct.value, rel=1e-12)
    with pytest.raises(ValueError, match="sigmas must be positive"):
        parzen_log_likelihoods(torch.rand(3, 2), torch.rand(2, 2), [0.1, 0.0])


# -- precision / recall, density / coverage -----------------------------------------------------------
def test_precision_recall_of_identical_and_disjoint_sets():
    f = torch.randn(400, 16)
    same = precision_recall(f, f.clone())
    assert same.value == {"precision": 1.0, "recall": 1.0}
    far = precision_recall(f, f + 100)
    assert far.value == {"precision": 0.0, "recall": 0.0}
    assert same.protocol["k"] == 3 and same.protocol["real_samples"] == 400


def test_precision_recall_tell_fidelity_from_diversity():
    centres = torch.tensor([[20.0 * m, 0.0] for m in range(8)])  # 8 well separated modes in 2-D
    real = centres.repeat_interleave(250, 0) + torch.randn(2000, 2)
    half = centres[:4].repeat_interleave(500, 0) + torch.randn(2000, 2)  # only half the modes, all realistic
    pr, dc = knn_metrics(real, half, chunk_size=300)
    assert pr.value["precision"] > 0.95
    assert 0.45 < pr.value["recall"] < 0.55
    assert 0.45 < dc.value["coverage"] < 0.55
    assert 0.8 < dc.value["density"] < 1.2  # the fakes are as realistic as the reals, only less diverse
    assert pr.value == precision_recall(real, half).value and dc.value == density_coverage(real, half).value


def test_density_coverage_of_identical_and_disjoint_sets():
    f = torch.randn(300, 8)
    same = density_coverage(f, f.clone())
    # each ball holds its centre and k - 1 others (the k-th lies on the boundary, where rounding decides)
    assert same.value["coverage"] == 1.0 and same.value["density"] == pytest.approx(1.0, abs=0.1)
    assert density_coverage(f, f + 100).value == {"density": 0.0, "coverage": 0.0}
    with pytest.raises(ValueError, match="more than k=5 rows"):
        density_coverage(f[:5], f)


# -- label accuracy -----------------------------------------------------------------------------------
def test_accuracy_from_predictions_overall_and_per_class():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    predictions = torch.tensor([0, 1, 1, 1, 0, 2])
    result = accuracy_from_predictions(predictions, labels, num_classes=4)
    assert result.value == pytest.approx(4 / 6)
    assert result.details["per_class"][:3] == pytest.approx([0.5, 2 / 3, 1.0]) and result.details["per_class"][3] is None
    assert result.details["per_class_counts"] == [2, 3, 1, 0]
    with pytest.raises(ValueError, match=r"labels must be in \[0, 4\)"):
        accuracy_from_predictions(predictions, labels + 3, num_classes=4)


# -- evaluation ---------------------------------------------------------------------------------------
def _synthetic_reference() -> ReferenceData:
    test_x, test_y = synthetic_digits(1000, seed=10)
    val_x, _ = synthetic_digits(100, seed=11)
    train_x, train_y = synthetic_digits(500, seed=12)
    to_u8 = lambda x: (x * 255).round().to(torch.uint8)  # noqa: E731 - stored as MNIST is
    return ReferenceData(to_u8(test_x), test_y, to_u8(val_x), to_u8(train_x), train_y,
                         {"reference": "synthetic test", "validation": "synthetic val", "real_row": "synthetic train"})


def test_evaluate_images_reports_every_metric_with_its_protocol():
    classifier, reference = tiny_classifier(), _synthetic_reference()
    real = evaluate_images(reference.train_images, reference.train_labels, classifier, reference, source="real")
    noise = evaluate_images(torch.rand(500, 1, 32, 32) * 2 - 1, reference.train_labels, classifier, reference, source="noise")
    assert set(real) == {"label_accuracy", "fid", "intra_class_fid", "precision_recall", "density_coverage", "parzen_log_likelihood"}
    for result in real.values():
        assert result.protocol["source"] == "real" and result.protocol["samples"] == 500
        assert result.protocol["image_rule"] == IMAGE_RULE
    assert real["fid"].protocol["classifier"]["sha256"] == weights_sha256(classifier)
    assert real["label_accuracy"].value > 0.95 and noise["label_accuracy"].value < 0.5
    assert real["fid"].value < noise["fid"].value / 10
    assert real["intra_class_fid"].value < noise["intra_class_fid"].value
    assert real["parzen_log_likelihood"].value > noise["parzen_log_likelihood"].value
    assert real["precision_recall"].value["precision"] > 0.8 > noise["precision_recall"].value["precision"]


def test_sample_generator_draws_per_class_in_label_order_reproducibly():
    import condgan

    gan = condgan.build("mnist_mlp", image_shape=(1, 8, 8), latent_dim=4,
                        overrides={"generator.backbone_options.widths": (8, 8, 8, 8)})
    images, labels, pixel_range = sample_generator(gan.generator, per_class=3, seed=4, batch_size=7)
    assert images.shape == (30, 1, 8, 8) and labels.tolist() == [k for k in range(10) for _ in range(3)]
    again, _, _ = sample_generator(gan.generator, per_class=3, seed=4, batch_size=7)
    torch.testing.assert_close(images, again)
    assert not torch.equal(images, sample_generator(gan.generator, per_class=3, seed=5)[0])
    assert pixel_range is None or tuple(pixel_range) == (-1.0, 1.0)


def test_load_npz_validates_the_format(tmp_path):
    images = np.random.rand(20, 1, 28, 28).astype(np.float32)
    labels = np.arange(20) % 10
    np.savez(tmp_path / "ok.npz", images=images, labels=labels)
    x, y = load_npz(tmp_path / "ok.npz")
    assert x.shape == (20, 1, 28, 28) and y.dtype == torch.int64
    np.savez(tmp_path / "tanh.npz", images=images * 2 - 1, labels=labels)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        load_npz(tmp_path / "tanh.npz")
    np.savez(tmp_path / "nolabels.npz", images=images)
    with pytest.raises(ValueError, match=r"lacks \['labels'\]"):
        load_npz(tmp_path / "nolabels.npz")


@needs_mnist
def test_eval_command_on_an_npz(tmp_path, capsys):
    import json

    from condgan.classifier import save_classifier
    from condgan.cli import main

    clf = tmp_path / "clf.pt"
    save_classifier(tiny_classifier(), clf)
    images, labels = synthetic_digits(200, seed=3)
    np.savez(tmp_path / "s.npz", images=images.numpy(), labels=labels.numpy())
    args = ["--data-root", str(mnist_root()), "--classifier", str(clf), "--no-parzen"]
    assert main(["eval", str(tmp_path / "s.npz"), *args, "--no-real", "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    generated = report["rows"]["generated"]
    assert generated["fid"]["protocol"]["samples"] == 200 and generated["fid"]["protocol"]["reference_samples"] == 10000
    assert generated["label_accuracy"]["protocol"]["classifier"]["sha256"] == report["classifier"]["sha256"]
    assert "label acc" in capsys.readouterr().out

    assert main(["eval", str(tmp_path / "s.npz"), "--data-root", str(mnist_root()), "--classifier", str(tmp_path / "none.pt")]) == 1
    assert "condgan train-classifier" in capsys.readouterr().err


def test_eval_samples_a_saved_generator_per_class(tmp_path):
    import condgan
    from condgan.checkpoint import generator_file
    from condgan.commands.evaluate import _load_source

    gan = condgan.build("mnist_mlp", latent_dim=4, overrides={"generator.backbone_options.widths": (8, 8, 8, 8)})
    torch.save(generator_file(gan.config, gan.generator.state_dict(), from_ema=False, step=0), tmp_path / "generator.pt")
    images, labels, pixel_range, source = _load_source(str(tmp_path / "generator.pt"), 20, 0, "cpu")
    assert images.shape == (200, 1, 32, 32) and labels.tolist() == [k for k in range(10) for _ in range(20)]
    assert tuple(pixel_range) == (-1.0, 1.0) and "20 samples per class" in source
    expected, _, _ = sample_generator(gan.generator, per_class=20, seed=0)
    torch.testing.assert_close(images, expected)


def test_the_range_of_a_set_is_guessed_once_not_per_batch():
    from condgan.metrics import classifier_outputs

    classifier = tiny_classifier()
    images = synthetic_digits(40, seed=2)[0] * 2 - 1  # [-1, 1]
    images[20:] = images[20:].clamp(min=0)  # the second batch alone would look like [0, 1]
    guessed, _ = classifier_outputs(classifier, images, batch_size=20)
    explicit, _ = classifier_outputs(classifier, images, batch_size=20, pixel_range=(-1.0, 1.0))
    torch.testing.assert_close(guessed, explicit)
    mixed = torch.cat([classifier_outputs(classifier, images[:20])[0], classifier_outputs(classifier, images[20:])[0]])
    assert not torch.allclose(mixed, explicit)
