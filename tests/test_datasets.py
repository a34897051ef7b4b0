"""Datasets by name: every built-in dataset on small files the tests write, with its bad inputs."""

from __future__ import annotations

import gzip
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from condgan import DuplicateComponentError, UnknownComponentError, hookimpl, list_components
from condgan.conditions import ConditionSpec
from condgan.data import Dataset, DatasetError, DatasetNotFoundError, synthetic
from condgan.resolve import load_dataset
from condgan.plugins import get_component


def make(name: str, root, **kwargs) -> Dataset:
    return get_component("dataset", name)(root, **kwargs)


def test_synthetic_class_k_lights_cell_k():
    images, labels = synthetic(image_shape=(3, 12, 12), num_classes=9, per_class=5)
    assert images.shape == (45, 3, 12, 12) and images.dtype == torch.uint8
    assert torch.equal(labels, torch.arange(9).repeat_interleave(5))
    cells = images.float().view(45, 3, 3, 4, 3, 4).mean(dim=(1, 3, 5)).flatten(1)  # (45, 9): 3x3 grid of 4x4 cells
    assert torch.equal(cells.argmax(1), labels)
    assert cells.max(1).values.min() >= 160 and cells.topk(2).values[:, 1].max() <= 40
    again, _ = synthetic(image_shape=(3, 12, 12), num_classes=9, per_class=5)
    test, _ = synthetic(image_shape=(3, 12, 12), num_classes=9, per_class=5, train=False)
    assert torch.equal(images, again) and not torch.equal(images, test)  # fixed, with a separate test split


def test_load_dataset_checks_the_model_fits():
    images, labels = load_dataset("synthetic", "unused", image_shape=(1, 8, 8), num_classes=10)
    assert images.shape == (640, 1, 8, 8) and labels.dtype == torch.int64
    with pytest.raises(UnknownComponentError, match="unknown dataset 'svhn'; available: .*mnist.*synthetic"):
        load_dataset("svhn", "unused", image_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match="needs images of at least 4x4 for 10 classes, got 3x3"):
        load_dataset("synthetic", "unused", image_shape=(1, 3, 3), num_classes=10)
    with pytest.raises(DatasetNotFoundError, match=r"MNIST not found under 'unused' \(expected unused/MNIST/raw/train-images-idx3-ubyte"):
        load_dataset("mnist", "unused", image_shape=(3, 32, 32), num_classes=10, download=False)
    with pytest.raises(DatasetError, match=r"^dataset 'synthetic' has no option 'colour'; its options: num_classes, per_class, seed$"):
        make("synthetic", None, colour=True)
    with pytest.raises(DatasetError, match=r"^dataset 'mnist' has the split\(s\) train, test, not 'valid'$"):
        make("mnist", "unused", split="valid")


def test_datasets_are_registered_components(registry):
    class Floats(Dataset):
        name = "float_images"

    class Plugin:
        @hookimpl
        def register_datasets(self):
            return [Floats]

    registry.register(Plugin())
    assert {"mnist", "synthetic", "float_images"} <= {i.name for i in list_components("dataset")}

    class Again:
        @hookimpl
        def register_datasets(self):
            return [Floats]

    with pytest.raises(DuplicateComponentError, match="dataset name 'float_images' is registered twice"):
        registry.register(Again())


# -- MNIST family: idx files -----------------------------------------------------------------------------
def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    data = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_mnist(root: Path, folder: str = "MNIST", n: int = 12, *, prefix: str = "train", compress: bool = False):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), np.arange(n) % 10
    raw = root / folder / "raw"
    write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress=compress)
    write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("name,folder,first", [("mnist", "MNIST", "0"), ("fashion_mnist", "FashionMNIST", "T-shirt/top"),
                                               ("kmnist", "KMNIST", "o")])
def test_mnist_family_reads_idx_files(tmp_path, name, folder, first):
    images, labels = write_mnist(tmp_path, folder, compress=name == "kmnist")
    write_mnist(tmp_path, folder, n=5, prefix="t10k")
    data = make(name, tmp_path).load(size=(32, 32))
    assert data.images.shape == (12, 1, 32, 32) and data.images.dtype == torch.uint8
    assert data.conditions.tolist() == labels.tolist() and data.spec.kind == "class" and data.spec.num_classes == 10
    assert len(data.class_names) == 10 and data.class_names[0] == first
    pil = np.asarray(Image.fromarray(images[3]).resize((32, 32), Image.BILINEAR))  # the reference's transforms.Resize
    assert np.array_equal(data.images[3, 0].numpy(), pil)
    assert torch.equal(make(name, tmp_path).load().images[:, 0], torch.from_numpy(images))  # no size: as stored
    assert len(make(name, tmp_path, split="test").load()) == 5
    rgb = make(name, tmp_path).load(channels=3, size=(20, 36), fit="pad")
    assert rgb.images.shape == (12, 3, 20, 36) and torch.equal(rgb.images[:, 0], rgb.images[:, 2])


def test_mnist_bad_idx_files_name_the_file(tmp_path):
    images_path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    labels_path = images_path.with_name("train-labels-idx1-ubyte")
    ip, lp = re.escape(str(images_path)), re.escape(str(labels_path))

    def check(pattern):
        with pytest.raises(DatasetError, match=pattern) as info:
            make("mnist", tmp_path).load()
        assert "\n" not in str(info.value)

    write_mnist(tmp_path)
    good = images_path.read_bytes()
    images_path.write_bytes(good[:-100])
    check(rf"^{ip}: truncated: 9324 bytes, but its header says 12x28x28 uint8 values \(9424 bytes\)$")
    images_path.write_bytes(good + b"xx")
    check(rf"^{ip}: too long: 9426 bytes")
    images_path.write_bytes(b"")
    check(rf"^{ip}: the file is empty")
    images_path.write_bytes(b"<html>404 Not Found</html>")
    check(rf"^{ip}: not an idx file: magic number 3c 68 74 6d \(expected 00 00 <type> <ndim>")
    images_path.write_bytes(good[:10])
    check(rf"^{ip}: truncated: 10 bytes, shorter than its 16-byte header$")
    images_path.write_bytes(labels_path.read_bytes())
    check(rf"^{ip}: holds a 1-dimensional array, expected 3 dimensions")
    images_path.write_bytes(good)
    write_idx(labels_path, np.arange(11) % 10)
    check(rf"^{ip} holds 12 images but {lp} holds 11 labels$")
    write_idx(labels_path, np.full(12, 10))
    check(rf"^{lp}: label 10 is out of range: labels must lie in \[0, 10\)$")
    labels_path.unlink()
    labels_gz = write_idx(labels_path, np.arange(12) % 10, compress=True)
    labels_gz.write_bytes(labels_gz.read_bytes()[:-6])
    check(rf"^{re.escape(str(labels_gz))}: not a readable gzip file")
    labels_gz.unlink()
    with pytest.raises(DatasetNotFoundError, match=rf"MNIST not found under .* \(expected {lp}\[.gz\]"):
        make("mnist", tmp_path).load()


# -- imagefolder -------------------------------------------------------------------------------------------
def write_image(path: Path, colour, *, mode: str = "RGB", size=(24, 20), fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour[:3] if isinstance(colour, tuple) else colour)
    if mode == "RGBA":
        img = Image.new("RGBA", size, colour)
    elif mode == "P":
        img = img.convert("P", palette=Image.ADAPTIVE)
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(path, fmt)
    return path


def write_folder(root: Path) -> None:
    write_image(root / "blue" / "a.png", (0, 0, 250))
    write_image(root / "blue" / "sub" / "b.JPG", (0, 0, 250))  # searched recursively, any case
    write_image(root / "blue" / "c.webp", (0, 0, 250), mode="P")
    write_image(root / "grey" / "a.bmp", (128, 128, 128), mode="L")
    write_image(root / "grey" / "b.png", (128, 128, 128), mode="LA")
    write_image(root / "red" / "a.png", (250, 0, 0, 255), mode="RGBA")
    write_image(root / "red" / "b.jpeg", (250, 0, 0), size=(40, 20))
    (root / "red" / "notes.txt").write_text("not an image, ignored")
    (root / "red" / ".hidden.png").write_bytes(b"ignored")


def test_imagefolder_reads_classes_in_name_order_and_converts_every_mode(tmp_path):
    write_folder(tmp_path)
    data = make("imagefolder", tmp_path).load(channels=3, size=(16, 12))
    assert data.images.shape == (7, 3, 16, 12) and data.images.dtype == torch.uint8
    assert data.class_names == ("blue", "grey", "red") and data.conditions.tolist() == [0, 0, 0, 1, 1, 2, 2]
    assert data.spec.kind == "class" and data.spec.num_classes == 3
    mean = data.images.float().mean(dim=(2, 3))  # (7, 3): each image's colour
    assert (mean[:3, 2] > 230).all() and (mean[:3, :2] < 20).all()
    assert ((mean[3:5] - 128).abs() < 3).all()  # grey, LA, as RGB
    assert (mean[5:, 0] > 230).all() and (mean[5:, 1:] < 20).all()
    grey = make("imagefolder", tmp_path, split="all").load(channels=1, size=(8, 8), fit="pad")
    assert grey.images.shape == (7, 1, 8, 8)
    assert grey.images[6, 0, 0].max() == 0 and grey.images[6, 0, 4].min() > 60  # the 40x20 image padded with black rows


def test_imagefolder_split_subfolders(tmp_path):
    for split, n in (("train", 3), ("test", 1)):
        for k in range(n):
            write_image(tmp_path / split / "a" / f"{k}.png", (10, 10, 10), size=(8, 8))
            write_image(tmp_path / split / "b" / f"{k}.png", (200, 10, 10), size=(8, 8))
    write_image(tmp_path / "test" / "c" / "0.png", (1, 2, 3), size=(8, 8))
    assert len(make("imagefolder", tmp_path).load()) == 6
    test = make("imagefolder", tmp_path, split="test").load()
    assert test.class_names == ("a", "b", "c") and test.image_shape == (3, 8, 8)
    both = make("imagefolder", tmp_path, split="all").load()
    assert len(both) == 9 and both.class_names == ("a", "b", "c")
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(tmp_path))} has no valid/ subfolder \(it has test/, train/\)$"):
        make("imagefolder", tmp_path, split="valid").load()


def test_imagefolder_bad_inputs(tmp_path):
    root = tmp_path / "set"
    with pytest.raises(DatasetNotFoundError, match=r"image folder '.*set' does not exist"):
        make("imagefolder", root).load()
    root.mkdir()
    (root / "loose.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(root))} has no class subfolders: put each class's images in"):
        make("imagefolder", root).load()
    write_image(root / "a" / "1.png", (1, 2, 3), size=(8, 8))
    write_image(root / "a" / "2.png", (1, 2, 3), size=(10, 8))
    (root / "b").mkdir()
    (root / "b" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match=rf"^class folder {re.escape(str(root / 'b'))} holds no images \(files ending in \.png"):
        make("imagefolder", root).load()
    write_image(root / "b" / "1.png", (1, 2, 3), size=(8, 8))
    with pytest.raises(DatasetError, match=r"^images of different sizes and no size given: .*a/1.png is 8x8, .*a/2.png is 8x10; "
                                           r"give an image size"):
        make("imagefolder", root).load()
    assert make("imagefolder", root).load(size=(8, 8)).image_shape == (3, 8, 8)
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(root))} holds class folders directly, which is one split: hold out a part of it \(option holdout=0.1\), use split 'train' or 'all'"):
        make("imagefolder", root, split="test").load()

    good = (root / "a" / "1.png").read_bytes()
    (root / "b" / "2.png").write_bytes(good[: len(good) // 2])  # truncated
    (root / "b" / "3.jpg").write_text("this is text, not a JPEG")
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(root / 'b' / '2.png'))}: not a readable image \(.*\); "
                                           r"to skip unreadable files, pass --set data.options.skip_bad=True \(condgan train\), "
                                           r"--options skip_bad=True \(condgan train-classifier\) or skip_bad=True \(Python\)$") as info:
        make("imagefolder", root).load(size=(8, 8))
    assert "\n" not in str(info.value)
    dataset = make("imagefolder", root, skip_bad=True)
    with pytest.warns(RuntimeWarning, match=r"skipped 2 unreadable image\(s\) of 5 in .*set \(first: .*b/2.png: "):
        data = dataset.load(size=(8, 8))
    assert len(data) == 3 and data.conditions.tolist() == [0, 0, 1] and [p.name for p in dataset.skipped] == ["2.png", "3.jpg"]
    with pytest.raises(DatasetError, match=r"^dataset 'imagefolder' has no option 'size'; its options: skip_bad, holdout, holdout_seed, exclude_judge, single_class$"):
        make("imagefolder", root, size=8)


# -- CIFAR: pickled batches ------------------------------------------------------------------------------
class Py2Array:
    """Pickles as numpy 1 under python 2 wrote CIFAR's arrays: numpy.core.multiarray._reconstruct, data as a str."""

    def __init__(self, array):
        self.array = array

    def __reduce__(self):
        from condgan.data.cifar import _reconstruct

        a = self.array
        return (_reconstruct(), (np.ndarray, (0,), "b"), (1, a.shape, a.dtype, False, a.tobytes().decode("latin1")))


def dump(path: Path, obj, *, py2: bool = False) -> None:
    import pickle

    path.parent.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(obj, protocol=2 if py2 else 4)
    if py2:
        data = data.replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
        assert b"numpy.core.multiarray\n_reconstruct" in data and b"_codecs" not in data
    path.write_bytes(data)


def cifar_images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def write_cifar10(root: Path, n: int = 4) -> Path:
    folder = root / "cifar-10-batches-py"
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    dump(folder / "batches.meta", {"label_names": names, "num_cases_per_batch": n, "num_vis": 3072})
    for k in range(1, 6):
        data = cifar_images(n, k)
        dump(folder / f"data_batch_{k}", {"batch_label": f"training batch {k} of 5", "labels": [(k + i) % 10 for i in range(n)],
                                          "data": Py2Array(data) if k == 1 else data, "filenames": [f"{i}.png" for i in range(n)]},
             py2=k == 1)
    dump(folder / "test_batch", {"labels": list(range(n)), "data": cifar_images(n, 9)})
    return folder


def test_cifar10_reads_the_pickled_batches(tmp_path):
    write_cifar10(tmp_path)
    data = make("cifar10", tmp_path).load()
    assert data.images.shape == (20, 3, 32, 32) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[0].flatten(), torch.from_numpy(cifar_images(4, 1)[0]))  # the python-2 style batch
    assert torch.equal(data.images[4].flatten(), torch.from_numpy(cifar_images(4, 2)[0]))
    assert data.conditions[:5].tolist() == [1, 2, 3, 4, 2] and data.class_names[0] == "airplane"
    test = make("cifar10", tmp_path, split="test").load(channels=1, size=(16, 24))
    assert test.images.shape == (4, 1, 16, 24) and test.conditions.tolist() == [0, 1, 2, 3]


def test_cifar100_fine_and_coarse_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    dump(folder / "meta", {"fine_label_names": [f"fine{k}" for k in range(100)], "coarse_label_names": [f"coarse{k}" for k in range(20)]})
    for split, n in (("train", 6), ("test", 2)):
        dump(folder / split, {"data": cifar_images(n, 0), "fine_labels": [99 - i for i in range(n)], "coarse_labels": [19 - i for i in range(n)]})
    fine = make("cifar100", tmp_path).load(size=(8, 8))
    assert fine.images.shape == (6, 3, 8, 8) and fine.spec.num_classes == 100 and fine.conditions[0] == 99
    assert fine.class_names[99] == "fine99"
    coarse = make("cifar100", tmp_path, split="test", labels="coarse").load()
    assert coarse.spec.num_classes == 20 and coarse.conditions.tolist() == [19, 18] and len(coarse.class_names) == 20
    with pytest.raises(DatasetError, match=r"^dataset 'cifar100': labels must be 'fine' or 'coarse', got 'medium'$"):
        make("cifar100", tmp_path, labels="medium")


def test_cifar_refuses_hostile_and_damaged_pickles(tmp_path):
    import os

    folder = write_cifar10(tmp_path)
    batch = folder / "data_batch_3"
    esc = re.escape(str(batch))

    def check(pattern, error=DatasetError):
        with pytest.raises(error, match=pattern) as info:
            make("cifar10", tmp_path).load()
        assert "\n" not in str(info.value)

    marker = tmp_path / "hacked"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    dump(batch, {"data": Evil(), "labels": []})
    check(rf"^{esc}: not a readable CIFAR pickle \(it refers to (posix|os)\.system; only dicts, lists, strings, numbers and numpy "
          r"arrays are read from it\)$")
    assert not marker.exists()
    batch.write_bytes(batch.read_bytes()[:20])
    check(rf"^{esc}: not a readable CIFAR pickle")
    dump(batch, [1, 2, 3])
    check(rf"^{esc}: a CIFAR file holds a dict, this one holds a list$")
    dump(batch, {"data": np.zeros((4, 1024), np.uint8), "labels": [0] * 4})
    check(rf"^{esc}: 'data' must be an \(N, 3072\) uint8 array, got \(4, 1024\) uint8$")
    dump(batch, {"data": cifar_images(4, 0).astype(np.float32), "labels": [0] * 4})
    check(rf"^{esc}: 'data' must be an \(N, 3072\) uint8 array, got \(4, 3072\) float32$")
    dump(batch, {"data": cifar_images(4, 0), "labels": [0] * 3})
    check(rf"^{esc}: 'labels' must hold one integer label per image \(4\), got \(3,\)$")
    dump(batch, {"data": cifar_images(4, 0), "labels": [0, 1, 10, 2]})
    check(rf"^{esc}: label 10 is out of range: 'labels' must lie in \[0, 10\)$")
    batch.unlink()
    check(rf"^{esc} is missing \(cifar10's train split is data_batch_1, .*\)$", DatasetNotFoundError)
    (folder / "batches.meta").unlink()
    check(r"^cifar10 not found: expected .*cifar-10-batches-py/batches.meta \(torchvision's layout", DatasetNotFoundError)


# -- CelebA: attribute files and JPEGs -------------------------------------------------------------------
CELEBA_ATTRS = ["Bald", "Smiling", "Male"]


def write_celeba(root: Path, rows=None) -> Path:
    folder = root / "celeba"
    rows = rows or [("000001.jpg", (1, -1, 1), 0), ("000002.jpg", (-1, 1, 1), 0), ("000003.jpg", (-1, 1, -1), 1),
                    ("000004.jpg", (1, 1, -1), 2), ("000005.jpg", (-1, -1, -1), 0)]
    for k, (name, _, _) in enumerate(rows):
        write_image(folder / "img_align_celeba" / name, (40 * k, 100, 200), size=(18, 22))  # 18 wide, 22 high, as 178x218
    body = "".join(f"{name} " + " ".join(f"{v:2d}" for v in vals) + "\n" for name, vals, _ in rows)
    (folder / "list_attr_celeba.txt").write_text(f"{len(rows)}\n" + " ".join(CELEBA_ATTRS) + " \n" + body)
    (folder / "list_eval_partition.txt").write_text("".join(f"{name} {p}\n" for name, _, p in rows))
    return folder


def test_celeba_attributes_as_tags_or_one_class(tmp_path):
    write_celeba(tmp_path)
    data = make("celeba", tmp_path, attributes=["Male", "Smiling"]).load(size=(16, 16))
    assert data.images.shape == (3, 3, 16, 16) and data.spec.kind == "multilabel" and data.spec.num_classes == 2
    assert data.class_names == ("Male", "Smiling") and data.conditions.dtype == torch.float32
    assert data.conditions.tolist() == [[1, 0], [1, 1], [0, 0]]  # images 1, 2 and 5: the train partition
    assert (data.images[1, 0].float().mean() - 40).abs() < 3  # each image stays with its own row
    every = make("celeba", tmp_path, split="all").load()
    assert every.images.shape == (5, 3, 22, 18) and every.class_names == tuple(CELEBA_ATTRS)
    smiling = make("celeba", tmp_path, split="test", attribute="Smiling").load(channels=1, size=(8, 8))
    assert smiling.spec == ConditionSpec("class", 2) and smiling.class_names == ("not Smiling", "Smiling")
    assert smiling.images.shape == (1, 1, 8, 8) and smiling.conditions.tolist() == [1]
    assert make("celeba", tmp_path / "celeba", split="valid", attributes="Bald, Male").load().conditions.tolist() == [[0, 0]]


def test_celeba_bad_inputs(tmp_path):
    folder = write_celeba(tmp_path)
    attr, part = folder / "list_attr_celeba.txt", folder / "list_eval_partition.txt"
    with pytest.raises(DatasetError, match=r"^unknown CelebA attribute\(s\) 'Smile'; the attributes in list_attr_celeba.txt "
                                           r"are: Bald, Smiling, Male$"):
        make("celeba", tmp_path, attributes=["Smile", "Male"]).load()
    with pytest.raises(DatasetError, match=r"^dataset 'celeba': give attributes=\[...\] \(multi-hot\) or attribute=NAME"):
        make("celeba", tmp_path, attributes=["Male"], attribute="Bald")
    (folder / "img_align_celeba" / "000002.jpg").unlink()
    with pytest.raises(DatasetError, match=r"^1 image\(s\) listed in list_attr_celeba.txt are missing from .*img_align_celeba "
                                           r"\(first: 000002.jpg\)$"):
        make("celeba", tmp_path).load()
    write_image(folder / "img_align_celeba" / "000002.jpg", (0, 0, 0), size=(18, 22))
    part.write_text(part.read_text() + "000009.jpg 0\n")
    with pytest.raises(DatasetError, match=r"^1 image\(s\) of the train split in list_eval_partition.txt have no row in "
                                           r"list_attr_celeba.txt \(first: 000009.jpg\): labels are missing for them$"):
        make("celeba", tmp_path).load()
    part.write_text("000001.jpg 3\n")
    with pytest.raises(DatasetError, match=r"list_eval_partition.txt: line 1 must be '<image> 0\|1\|2'"):
        make("celeba", tmp_path).load()
    part.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"^the partition file .*list_eval_partition.txt is missing \(needed for split 'train'"):
        make("celeba", tmp_path).load()
    good = attr.read_text()
    attr.write_text(good.replace("000003.jpg -1  1 -1", "000003.jpg -1  0 -1"))
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(attr))}: line 5 has the value '0'; attribute values are 1 or -1$"):
        make("celeba", tmp_path, split="all").load()
    attr.write_text(good.replace("000003.jpg -1  1 -1", "000003.jpg -1  1"))
    with pytest.raises(DatasetError, match=r"line 5 has 2 values, expected 3 \(one per attribute\)$"):
        make("celeba", tmp_path, split="all").load()
    attr.write_text("6\n" + good.split("\n", 1)[1])
    with pytest.raises(DatasetError, match=r"line 1 says 6 images, but the file has 5 rows$"):
        make("celeba", tmp_path, split="all").load()
    attr.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"^the attribute file .*celeba/list_attr_celeba.txt is missing"):
        make("celeba", tmp_path, split="all").load()
    with pytest.raises(DatasetNotFoundError, match=r"^celeba not found: expected the folder .*elsewhere/celeba/img_align_celeba"):
        make("celeba", tmp_path / "elsewhere").load()


# -- tensors: .npz / .pt files ---------------------------------------------------------------------------
def test_tensors_reads_npz_and_pt_with_each_condition(tmp_path):
    rng = np.random.default_rng(0)
    floats = rng.random((6, 1, 8, 8)).astype(np.float32)  # what condgan sample writes: float in [0, 1]
    np.savez(tmp_path / "samples.npz", images=floats, labels=np.arange(6) % 3)
    data = make("tensors", tmp_path / "samples.npz").load()
    assert data.images.dtype == torch.uint8 and data.image_shape == (1, 8, 8)
    assert torch.equal(data.images, torch.from_numpy(np.rint(floats * 255).astype(np.uint8)))
    assert data.spec == ConditionSpec("class", 3) and data.class_names is None
    assert make("tensors", tmp_path / "samples.npz", num_classes=10).load().spec.num_classes == 10

    images = rng.integers(0, 256, (5, 3, 12, 10), dtype=np.uint8)
    tags = (rng.random((5, 4)) > 0.5).astype(np.uint8)
    np.savez(tmp_path / "tags.npz", images=images, tags=tags, class_names=np.array(["a", "b", "c", "d"]))
    data = make("tensors", tmp_path / "tags.npz").load(channels=3, size=(8, 8))
    assert data.images.shape == (5, 3, 8, 8) and data.spec == ConditionSpec("multilabel", 4)
    assert data.class_names == ("a", "b", "c", "d") and torch.equal(data.conditions, torch.from_numpy(tags).float())

    vectors = torch.randn(5, 7)
    torch.save({"images": torch.from_numpy(images), "vectors": vectors}, tmp_path / "vectors.pt")
    data = make("tensors", tmp_path / "vectors.pt").load(channels=1)
    assert data.images.shape == (5, 1, 12, 10) and data.spec == ConditionSpec("vector", dim=7)
    assert torch.equal(data.conditions, vectors)
    torch.save({"images": torch.from_numpy(images), "labels": torch.tensor([0, 1, 1, 0, 1]), "class_names": ["cat", "dog"]},
               tmp_path / "labels.pt")
    assert make("tensors", tmp_path / "labels.pt").load().class_names == ("cat", "dog")


class UnsafeObject:
    """An arbitrary object in a .pt file: torch.load(weights_only=True) refuses it."""


def test_tensors_bad_files(tmp_path):
    images = np.zeros((4, 3, 8, 8), np.uint8)

    def check(name, pattern, error=DatasetError, **arrays):
        path = tmp_path / name
        if arrays:
            np.savez(path, **arrays)
        with pytest.raises(error, match=pattern) as info:
            make("tensors", path).load()
        assert "\n" not in str(info.value)

    check("a.npz", r"^.*a.npz has no 'images' or 'outputs': expected 'images' \(N, C, H, W\) or 'outputs' \(N, D\) float, and "
          r"one of 'labels' \(N,\) int, 'tags' \(N, K\) 0/1, 'vectors' \(N, D\) float; it holds 'labels', 'x'$", x=images,
          labels=np.zeros(4, int))
    check("b.npz", r"^.*b.npz holds no condition: expected 'images' .*; it holds 'images'$", images=images)
    check("c.npz", r"holds 2 conditions \(labels, tags\); keep one", images=images, labels=np.zeros(4, int), tags=np.zeros((4, 2)))
    check("d.npz", r"float 'images' must lie in \[0, 1\] \(as condgan sample writes them\), these lie in \[-1, 1\]$",
          images=np.linspace(-1, 1, 4 * 3 * 64).reshape(4, 3, 8, 8), labels=np.zeros(4, int))
    check("e.npz", r"'images' must be \(N, C, H, W\) with C in 1..4, got shape \(4, 8, 8\)$", images=images[:, 0], labels=np.zeros(4, int))
    check("f.npz", r"4 images but 3 labels: each image needs one$", images=images, labels=np.zeros(3, int))
    check("g.npz", r"'tags' must be \(N, K\) of 0 and 1, got shape \(4, 2\) with other values$", images=images, tags=np.full((4, 2), 2))
    check("h.npz", r"label 5 is out of range: labels must lie in \[0, 2\)$", images=images, labels=np.array([0, 1, 5, 0]),
          class_names=np.array(["x", "y"]))
    check("i.npz", r"'labels' must be \(N,\) integers, got shape \(4,\) float64$", images=images, labels=np.zeros(4))
    np.savez(tmp_path / "j.npz", images=np.array([object()] * 4, dtype=object), labels=np.zeros(4, int))
    check("j.npz", r"^.*j.npz: 'images' is an array of objects \(rows of different lengths\?\), which is read only as numbers")
    (tmp_path / "k.npz").write_bytes(b"PK\x03\x04 garbage")
    check("k.npz", r"^.*k.npz: not a readable .npz file")

    torch.save({"images": torch.zeros(4, 3, 8, 8, dtype=torch.uint8), "labels": UnsafeObject()}, tmp_path / "l.pt")
    check("l.pt", r"^.*l.pt: not a readable .pt file of tensors \(.*UnsafeObject")  # weights_only refuses arbitrary objects
    torch.save([1, 2], tmp_path / "m.pt")
    check("m.pt", r"a .pt dataset holds a dict of tensors .*, this one holds a list$")
    check("missing.npz", r"missing.npz does not exist$", DatasetNotFoundError)
    with pytest.raises(DatasetError, match=r"^dataset 'tensors' reads one .npz or .pt file \(the data root\), got '.*folder'$"):
        make("tensors", tmp_path / "folder").load()


# -- digits (scikit-learn) ----------------------------------------------------------------------------------
def test_digits_from_scikit_learn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    raw = sklearn_datasets.load_digits()
    train, test = make("digits", None).load(), make("digits", None, split="test").load(size=(16, 16))
    assert train.images.shape == (1438, 1, 8, 8) and test.images.shape == (359, 1, 16, 16)
    assert len(make("digits", "ignored", split="all").load()) == 1797
    assert train.images.dtype == torch.uint8 and train.images.max() == 255 and train.class_names[3] == "3"
    assert torch.equal(train.images[0, 0], torch.from_numpy(np.rint(raw.images[0] * 255 / 16).astype(np.uint8)))
    assert test.conditions[0] == raw.target[4] and train.spec == ConditionSpec("class", 10)


def test_digits_without_scikit_learn_is_one_line(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(DatasetError, match=r"^dataset 'digits' needs scikit-learn, which is not installed: pip install scikit-learn"):
        make("digits", None).load()


# -- the registry ---------------------------------------------------------------------------------------------
BUILTIN_DATASETS = ("celeba", "cifar10", "cifar100", "digits", "fashion_mnist", "imagefolder", "kmnist", "mnist", "synthetic", "tensors")


def test_condgan_list_shows_every_builtin_dataset(capsys):
    from condgan.cli import main

    assert main(["list", "dataset"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "datasets:"
    listed = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert set(BUILTIN_DATASETS) <= set(listed)
    assert listed["imagefolder"] == "condgan.data.sources"  # each with the plugin that gave it
    row = next(line for line in lines if line.split()[0] == "cifar10")
    assert "cifar-10-batches-py" in row  # and the files it expects
    for name in BUILTIN_DATASETS:
        cls = get_component("dataset", name)
        assert issubclass(cls, Dataset) and cls.description, name
