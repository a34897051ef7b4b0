"""The metrics' classifier: it learns, its file carries a verified hash and protocol, foreign files are refused."""

from __future__ import annotations

import pytest
import torch

from condgan.classifier import (
    EXPECTED_PROTOCOL,
    ClassifierError,
    ClassifierHashError,
    ClassifierProtocolError,
    MnistClassifier,
    check_protocol,
    fit_classifier,
    load_classifier,
    predict,
    save_classifier,
    weights_sha256,
)
from condgan.metrics import label_accuracy

from metrics_helpers import mnist_root, synthetic_digits, tiny_classifier

needs_mnist = pytest.mark.skipif(mnist_root() is None, reason="MNIST not found ($CONDGAN_MNIST_ROOT or ../shared/data)")


def test_learns_synthetic_digits_and_label_accuracy_separates_true_from_shuffled_labels():
    model = tiny_classifier()
    images, labels = synthetic_digits(1000, seed=7)  # not the training images
    assert (predict(model, images) == labels).float().mean() > 0.95
    true = label_accuracy(model, images, labels)
    shuffled = label_accuracy(model, images, labels[torch.randperm(len(labels))])
    assert true.value > 0.95
    assert 0.04 < shuffled.value < 0.18  # chance is 10%
    assert len(true.details["per_class"]) == 10 and min(true.details["per_class"]) > 0.8
    assert true.protocol["classifier"]["sha256"] == weights_sha256(model)
    assert true.protocol["samples"] == 1000


def test_fit_is_deterministic_for_a_seed_and_leaves_the_global_rng_alone():
    images, labels = synthetic_digits(200, seed=3)
    state = torch.get_rng_state()
    a, info = fit_classifier(images, labels, epochs=0.5, batch_size=50, channels=(2, 2), feature_dim=4, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    b, _ = fit_classifier(images, labels, epochs=0.5, batch_size=50, channels=(2, 2), feature_dim=4, seed=5)
    c, _ = fit_classifier(images, labels, epochs=0.5, batch_size=50, channels=(2, 2), feature_dim=4, seed=6)
    assert weights_sha256(a) == weights_sha256(b) != weights_sha256(c)
    assert info["steps"] == 2 and info["seed"] == 5 and not a.training


def test_fit_rejects_bad_labels():
    images, labels = synthetic_digits(10)
    with pytest.raises(ValueError, match="labels must be in"):
        fit_classifier(images, labels + 10, epochs=1)
    with pytest.raises(ValueError, match="labels must have shape"):
        fit_classifier(images, labels[:5], epochs=1)


def test_hash_covers_every_weight_and_buffer():
    model = MnistClassifier(channels=(2, 2), feature_dim=4)
    before = weights_sha256(model)
    assert before == weights_sha256(model.state_dict()) and len(before) == 64
    with torch.no_grad():
        model.out.bias[0] += 1e-6
    changed = weights_sha256(model)
    assert changed != before
    model.conv[1].num_batches_tracked += 1
    assert weights_sha256(model) != changed


def test_save_and_load_round_trip(tmp_path):
    model = tiny_classifier()
    sha = save_classifier(model, tmp_path / "clf.pt", training={"note": "synthetic"})
    loaded = load_classifier(tmp_path / "clf.pt", expected_sha256=sha)
    assert loaded.sha256 == sha == weights_sha256(model)
    assert loaded.protocol["training"] == {"note": "synthetic"}
    assert loaded.protocol["input_size"] == [28, 28] and loaded.protocol["input_range"] == [0.0, 1.0]
    assert not loaded.training
    x = synthetic_digits(8)[0]
    torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed


def test_altered_weights_are_refused(tmp_path):
    path = tmp_path / "clf.pt"
    save_classifier(tiny_classifier(), path)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["out.weight"][0, 0] += 0.5
    torch.save(payload, path)
    with pytest.raises(ClassifierHashError, match="corrupted or was altered"):
        load_classifier(path)


def test_an_unexpected_hash_is_refused(tmp_path):
    save_classifier(tiny_classifier(), tmp_path / "clf.pt")
    with pytest.raises(ClassifierHashError, match="expected 00"):
        load_classifier(tmp_path / "clf.pt", expected_sha256="00" * 32)


def test_a_classifier_made_for_another_protocol_is_refused(tmp_path):
    path = tmp_path / "clf.pt"
    save_classifier(tiny_classifier(), path)
    payload = torch.load(path, weights_only=True)
    payload["protocol"]["input_range"] = [-1.0, 1.0]  # the weights (and their hash) are untouched
    torch.save(payload, path)
    with pytest.raises(ClassifierProtocolError, match=r"input_range: expected \[0.0, 1.0\], got \[-1.0, 1.0\]"):
        load_classifier(path)


def test_metrics_refuse_a_model_whose_protocol_does_not_match():
    model = tiny_classifier()
    model.protocol = {**EXPECTED_PROTOCOL, "input_size": [32, 32], "training": {}}
    images, labels = synthetic_digits(20)
    with pytest.raises(ClassifierProtocolError, match="input_size"):
        label_accuracy(model, images, labels)
    check_protocol({**EXPECTED_PROTOCOL, "input_size": (28, 28)})  # tuples and lists compare alike


def test_missing_and_foreign_files_get_clear_errors(tmp_path):
    with pytest.raises(ClassifierError, match="condgan train-classifier --data-root DIR"):
        load_classifier(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ClassifierError, match="not a readable condgan classifier"):
        load_classifier(tmp_path / "junk.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ClassifierError, match="not a condgan classifier file"):
        load_classifier(tmp_path / "other.pt")


@needs_mnist
def test_learns_real_mnist_from_a_small_subset():
    from condgan.data import load_mnist

    root = mnist_root()
    train_x, train_y = load_mnist(root, train=True, image_size=28, download=False)
    test_x, test_y = load_mnist(root, train=False, image_size=28, download=False)
    model, _ = fit_classifier(train_x[:2000], train_y[:2000], epochs=3, batch_size=64, seed=0)
    images, labels = test_x[:2000], test_y[:2000]
    true = label_accuracy(model, images, labels)
    shuffled = label_accuracy(model, images, labels[torch.randperm(len(labels))])
    assert true.value > 0.9
    assert 0.06 < shuffled.value < 0.14


@needs_mnist
def test_train_classifier_command_writes_a_loadable_judge(tmp_path, capsys):
    from condgan.cli import main
    from condgan.metrics.judge import load_judge

    out = tmp_path / "clf.pt"
    assert main(["train-classifier", "--data-root", str(mnist_root()), "--out", str(out), "--epochs", "0.05"]) == 0
    printed = capsys.readouterr()
    judge = load_judge(out)
    assert judge.sha256 in printed.out and not judge.legacy
    assert judge.protocol["architecture"] == "condgan-mnist-cnn-v1" and judge.image_shape == (1, 28, 28)
    held = judge.protocol["held_out"]
    assert held["split"] == "test" and held["images"] == 10000 and 0.3 < held["accuracy"] <= 1.0
    assert judge.protocol["dataset"]["name"] == "mnist" and judge.class_names == tuple("0123456789")
    assert "below 0.99" in printed.err  # 0.05 epochs is far too short, and the command says so
