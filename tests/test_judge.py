"""Judges for any labelled data: kinds, files and protocol, the FID fix of issue 16, and bad input refused in one line."""

from __future__ import annotations

import pytest
import torch

from condgan import register_plugin
from condgan.conditions import ConditionSpec
from condgan.metrics import (
    classifier_outputs,
    evaluate_images,
    fid_from_features,
    judge_outputs,
    load_judge,
    load_reference,
    save_judge,
)
from condgan.metrics.judge import JudgeMismatchError
from condgan.metrics.judge_training import fit_judge, train_judge
from condgan.metrics.mnist_cnn import ClassifierHashError, fit_classifier, save_classifier

from metrics_helpers import shapes_plugin, speckle, strokes, tiny_classifier, to_uint8


def _tiny_judge(images, labels, *, epochs=3):
    images = images if images.dtype == torch.uint8 else to_uint8(images)
    return fit_judge(images, labels, ConditionSpec("class", 10), arch="mnist-cnn", epochs=epochs, batch_size=64,
                     lr=3e-3, widths=(4, 8), feature_dim=16, seed=0)[0]


def test_fixed_fid_ranks_speckled_digits_worse_where_the_old_rule_did_not():
    """Issue 16: the old rule read 32x32 images resized to 28x28. A 32x32 MNIST model learns digits enlarged
    to 32x32 by the data loader; the round trip back to 28x28 cost them more FID than 1% salt noise costs
    28x28 digits. Judges read images at their own size and see the speckle."""
    from condgan.data import resize_images

    up = lambda x: resize_images(to_uint8(x)[:, 0], 32)[:, None]  # noqa: E731 - the loader's rule for a 32x32 model
    train28, labels = strokes(1200, 28, seed=0)
    clean28, ref28 = strokes(500, 28, seed=1)[0], strokes(500, 28, seed=2)[0]
    train32, clean32, ref32 = up(train28), up(clean28), up(ref28)
    salted28, salted32 = speckle(clean28, 0.01), speckle(clean32.float() / 255, 0.01)

    old, _ = fit_classifier(train28, labels, epochs=2, batch_size=64, lr=3e-3, channels=(4, 8), feature_dim=16, seed=0)
    old_ref = classifier_outputs(old, ref28)[0]
    old_fid = lambda x: fid_from_features(classifier_outputs(old, x)[0], old_ref).value  # noqa: E731
    assert old_fid(clean32) > 1.5 * old_fid(salted28)  # the old ranking: clean 32x32 digits worse than speckled 28x28 ones

    fids = {}
    for size, train, clean, salted, ref in ((28, train28, clean28, salted28, ref28), (32, train32, clean32, salted32, ref32)):
        judge = _tiny_judge(train, labels)
        reference = judge_outputs(judge, ref)[0]
        fids[size] = [fid_from_features(judge_outputs(judge, x)[0], reference).value for x in (clean, salted)]
        assert fids[size][1] > 10 * fids[size][0], fids  # speckle is seen at both sizes
    assert fids[28][1] > 10 * fids[32][0], fids  # and the speckled 28x28 set now ranks clearly below the clean 32x32 one


def test_judge_file_round_trip_hash_and_protocol(tmp_path):
    images, labels = strokes(300, 16, seed=0)
    judge = _tiny_judge(images, labels, epochs=1)
    judge.protocol.update({"dataset": {"name": "strokes", "options": {}, "split": "train"}, "held_out": {"split": "test"}})
    sha = save_judge(judge, tmp_path / "j.pt")
    loaded = load_judge(tmp_path / "j.pt", expected_sha256=sha)
    assert loaded.sha256 == sha and loaded.image_shape == (1, 16, 16) and loaded.kind == "class"
    torch.testing.assert_close(judge_outputs(loaded, images[:20]), judge_outputs(judge, images[:20]), rtol=0, atol=0)
    payload = torch.load(tmp_path / "j.pt", weights_only=True)
    payload["state_dict"]["feature_scale"][0] *= 2  # the feature scaling is part of the hashed weights
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(ClassifierHashError, match="corrupted or was altered"):
        load_judge(tmp_path / "bad.pt")


def test_an_original_classifier_file_loads_as_a_legacy_judge_with_the_same_figures(tmp_path):
    model = tiny_classifier()
    sha = save_classifier(model, tmp_path / "clf.pt")
    judge = load_judge(tmp_path / "clf.pt")
    assert judge.legacy and judge.sha256 == sha and judge.feature_dim == 16
    images = strokes(40, 32, seed=3)[0]  # any size: the legacy rule resizes to 28x28
    torch.testing.assert_close(judge_outputs(judge, images)[0], model.eval().features(
        torch.nn.functional.interpolate(images, size=(28, 28), mode="bilinear", antialias=True, align_corners=False)))


@pytest.mark.parametrize("kind", ["class", "multilabel", "vector"])
def test_train_judge_on_a_registered_dataset_of_each_kind(kind, tmp_path):
    register_plugin(shapes_plugin(kind, n_train=800, n_test=200))
    details = train_judge("shapes", None, tmp_path / "j.pt", epochs=4, batch_size=32, seed=0)
    judge = load_judge(tmp_path / "j.pt")
    assert judge.kind == kind and judge.image_shape == (3, 16, 16) and judge.sha256 == details["sha256"]
    assert judge.protocol["dataset"]["name"] == "shapes" and judge.protocol["held_out"]["split"] == "test"
    reference = load_reference(judge, None)
    real = evaluate_images(reference.train_images, reference.train_labels, judge, reference, source="real")
    shuffled = evaluate_images(reference.train_images, reference.train_labels[torch.randperm(len(reference.train_labels))],
                               judge, reference, source="shuffled")
    assert "parzen_log_likelihood" not in real  # Parzen is MNIST's protocol only
    if kind == "class":
        assert details["held_out"]["accuracy"] > 0.9 and real["label_accuracy"].value > 0.9
        assert shuffled["label_accuracy"].value < 0.5
        assert "intra_class_fid" not in real  # 50 reference images per class: too few for 240 feature dimensions
    elif kind == "multilabel":
        assert details["held_out"]["accuracy"] > 0.85 and real["attribute_accuracy"].value > 0.85
        assert set(real["attribute_accuracy"].details["per_attribute"]) == {"square", "disc", "bar"}
        assert shuffled["attribute_accuracy"].value < 0.7
    else:
        assert details["held_out"]["r2"] > 0.7
        assert real["condition_rmse"].value < 0.5 * shuffled["condition_rmse"].value
    assert real["fid"].protocol["classifier"]["sha256"] == judge.sha256
    assert real["fid"].value < 0.5 * evaluate_images(torch.rand(800, 3, 16, 16), reference.train_labels, judge, reference,
                                                     knn=False)["fid"].value


# -- bad input: one line each --------------------------------------------------------------------------
@pytest.fixture
def shapes_judge(tmp_path):
    register_plugin(shapes_plugin("class", n_train=400, n_test=100))
    train_judge("shapes", None, tmp_path / "j.pt", epochs=1, batch_size=64)
    judge = load_judge(tmp_path / "j.pt")
    return judge, load_reference(judge, None)


def _one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_samples_of_another_size_or_channels_are_refused(shapes_judge):
    judge, reference = shapes_judge
    with pytest.raises(JudgeMismatchError) as exc:
        evaluate_images(torch.rand(200, 3, 32, 32), torch.arange(200) % 4, judge, reference)
    assert "trained on shapes at 3x16x16" in _one_line(exc) and "--image-size 32" in str(exc.value)
    with pytest.raises(JudgeMismatchError, match="images are 1x16x16"):
        evaluate_images(torch.rand(200, 1, 16, 16), torch.arange(200) % 4, judge, reference)


def test_labels_outside_the_judges_classes_are_refused(shapes_judge):
    judge, reference = shapes_judge
    with pytest.raises(JudgeMismatchError) as exc:
        evaluate_images(torch.rand(200, 3, 16, 16), torch.arange(200) % 10, judge, reference)
    assert "outside the judge's 4 classes 0..3 (square, disc, hbar, vbar)" in _one_line(exc)


def test_too_few_samples_for_the_feature_dimension_are_refused(shapes_judge):
    judge, reference = shapes_judge
    dim = judge.feature_dim
    with pytest.raises(ValueError) as exc:
        evaluate_images(torch.rand(dim, 3, 16, 16), torch.arange(dim) % 4, judge, reference)
    assert f"{dim} feature dimensions" in _one_line(exc) and f"at least {dim + 1} samples" in str(exc.value)


def test_nan_images_are_refused(shapes_judge):
    judge, reference = shapes_judge
    images = torch.rand(300, 3, 16, 16)
    images[7, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError) as exc:
        evaluate_images(images, torch.arange(300) % 4, judge, reference)
    assert "1 of 300 images contain NaN or inf (first: index 7)" in _one_line(exc)


def test_a_model_of_another_dataset_is_refused_by_eval(shapes_judge, tmp_path):
    import condgan
    from condgan.checkpoint import generator_file
    from condgan.commands.evaluate import _load_source

    judge, reference = shapes_judge
    gan = condgan.build("mnist_mlp", image_shape=(3, 16, 16), latent_dim=4, overrides={"generator.backbone_options.widths": (8, 8, 8, 8)})
    torch.save(generator_file(gan.config, gan.generator.state_dict(), from_ema=False, step=0), tmp_path / "generator.pt")
    with pytest.raises(JudgeMismatchError) as exc:
        _load_source(str(tmp_path / "generator.pt"), 10, 0, "cpu", judge=judge, reference=reference)
    assert "the samples and the judge come from different datasets (the model has 10 classes, the judge 4)" in _one_line(exc)
