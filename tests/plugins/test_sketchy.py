"""Sketchy: class splits, the released feature layout, class-balanced pairs and batches, and the VGG extractor.

Class lists are the real files when ``$WYNERKIT_DATA/sketchy`` has them, else generated ones; features
and images are generated miniatures in the released layouts.
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from wynerkit.cli.app import build_app
from wynerkit.data.batching import collate_pairs
from wynerkit.data_root import DATA_ENV
from wynerkit.datafiles import DataFile, DataSource
from wynerkit.errors import UsageError
from wynerkit.testing import check_component
from wynerkit_plugins.datasets.sketchy import ClassCyclingBatchSampler, SketchyFeatures, SketchyFeaturesParams
from wynerkit_plugins.datasets.sketchy_extract import extract_sketchy_features
from wynerkit_plugins.datasets.sketchy_layout import (
    CLASSES_FILE,
    ECCV_FILE,
    SKETCHY_SOURCE,
    ClassLists,
    feature_files,
    list_images,
    load_class_lists,
    load_feature_set,
    split1_train_classes,
    zero_shot_split,
)
from wynerkit_plugins.datasets.vgg16 import conv_stack, extract_features, load_vgg16

REAL_LISTS = Path(os.environ.get(DATA_ENV, "").strip() or "/nonexistent").expanduser() / "sketchy"
HAVE_REAL_LISTS = all((REAL_LISTS / f.name).is_file() for f in SKETCHY_SOURCE.files)
SKETCH = "sketch/tx_000000000000/{c}/n{j:03d}_1.png"
PHOTO = "photo/{c}/n{j:03d}.jpg"
DIM = 512


@pytest.fixture
def lists_root(tmp_path: Path) -> tuple[Path, DataSource]:
    return write_lists(tmp_path)


def write_lists(tmp_path: Path) -> tuple[Path, DataSource]:
    """A data root with the class lists (real ones when available) and the source that verifies them."""
    folder = tmp_path / "sketchy"
    folder.mkdir()
    if HAVE_REAL_LISTS:
        for file in SKETCHY_SOURCE.files:
            shutil.copy(REAL_LISTS / file.name, folder)
        return tmp_path, SKETCHY_SOURCE
    names = [f"class_{i:03d}" for i in range(125)]
    np.random.default_rng(1).shuffle(names)  # file order is not sorted order, as in the real list
    contents = {CLASSES_FILE: "\n".join(names) + "\n", ECCV_FILE: "\n".join(names[::6][:21]) + "\n"}
    for name, text in contents.items():
        (folder / name).write_text(text)
    files = tuple(DataFile(name, sha256=hashlib.sha256(text.encode()).hexdigest()) for name, text in contents.items())
    return tmp_path, DataSource(name="sketchy", files=files)


@pytest.fixture
def lists(lists_root: tuple[Path, DataSource]) -> ClassLists:
    root, source = lists_root
    return load_class_lists(root, source=source)


def write_features(root: Path, lists: ClassLists, number: int, *, sketches: int = 6, photos: int = 3) -> None:
    """Four train and two test classes of the split in the released layout.

    Feature 0 of every row is its class label and feature 1 a running id, so pairs can be checked.
    """
    split = zero_shot_split(lists, number)
    label = {c: i for i, c in enumerate(lists.classes)}
    rng = np.random.default_rng(number)
    for part, classes in (("train", split.train[:4]), ("test", split.test[:2])):
        for kind, per_class, template in (("sketch", sketches, SKETCH), ("image", photos, PHOTO)):
            rows = [(c, j) for c in classes for j in range(per_class)]
            features = rng.standard_normal((len(rows), DIM)).astype(np.float32)
            features[:, 0] = [label[c] for c, _ in rows]
            features[:, 1] = np.arange(len(rows))
            features_path, paths_path = feature_files(root, number, part, kind)
            features_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(features_path, features)
            np.save(paths_path, np.array([template.format(c=c, j=j) for c, j in rows]))


def provider(lists_root: tuple[Path, DataSource], *, split: int = 1, seed: int = 0, **params) -> SketchyFeatures:
    root, source = lists_root
    return SketchyFeatures(SketchyFeaturesParams(split=split, **params), root, seed, source=source)


def test_split1_reproduces_the_recipe_and_restores_numpy_state(lists):
    np.random.seed(0)
    expected = tuple(np.random.choice(sorted(lists.classes), 100, replace=False))
    np.random.seed(123)
    state_before = np.random.get_state()
    assert split1_train_classes(lists.classes) == expected
    after = np.random.get_state()
    assert all(np.array_equal(a, b) for a, b in zip(state_before, after, strict=True))
    split = zero_shot_split(lists, 1)
    assert split.train == expected and len(split.test) == 25
    assert set(split.test) == set(lists.classes) - set(expected)


def test_eccv_split_tests_the_21_listed_classes(lists_root, lists):
    listed = (lists_root[0] / "sketchy" / ECCV_FILE).read_text().split()
    split = zero_shot_split(lists, 2)
    assert len(listed) == 21 and set(split.test) == set(listed)
    assert len(split.train) == 104 and not set(split.train) & set(split.test)
    if HAVE_REAL_LISTS:
        assert {"bat", "cabin", "windmill", "window"} <= set(split.test)


@pytest.mark.parametrize("split", [1, 2])
def test_feature_pairs_share_a_class_and_splits_are_disjoint(lists_root, lists, split):
    write_features(lists_root[0], lists, split)
    data = provider(lists_root, split=split, valid_fraction=0.25)
    assert data.x_shape == data.y_shape == (DIM,)
    zs = zero_shot_split(lists, split)
    classes = {}
    for name in ("train", "valid", "test"):
        items = data.split(name)
        batch = items.__getitems__(list(range(len(items))))
        assert torch.equal(batch["x"][:, 0].long(), batch["x_label"]), "label = index in classes_125.txt"
        assert torch.equal(batch["y"][:, 0].long(), batch["x_label"]), "the photo is of the sketch's class"
        assert torch.equal(batch["x_label"], batch["y_label"])
        classes[name] = {lists.classes[i] for i in batch["x_label"].tolist()}
    assert len(classes["valid"]) == 1 and len(classes["train"]) == 3, "valid holds one of four classes out whole"
    assert classes["train"] | classes["valid"] == set(zs.train[:4]) and classes["test"] == set(zs.test[:2])
    assert {n: len(data.split(n)) for n in ("train", "valid", "test")} == {"train": 18, "valid": 6, "test": 12}
    assert data.describe()["valid_classes"] == sorted(classes["valid"])


def test_set_epoch_redraws_photos_deterministically_per_seed(lists_root, lists):
    write_features(lists_root[0], lists, 1)
    a, b, other = (provider(lists_root, seed=s).split("train") for s in (0, 0, 1))
    assert torch.equal(a.y_index, b.y_index)
    assert not torch.equal(a.y_index, other.y_index)
    first = a.y_index.clone()
    a.set_epoch(1)
    assert not torch.equal(a.y_index, first)
    assert torch.equal(a.y[a.y_index][:, 0], a.x[a.x_index][:, 0]), "redrawn photos keep the class"
    a.set_epoch(0)
    assert torch.equal(a.y_index, first)


def test_batch_sampler_cycles_through_the_classes():
    labels = np.repeat([7, 3, 5, 9], [5, 5, 5, 3])
    sampler = ClassCyclingBatchSampler(labels, batch_size=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(len(labels) / 4)
    assert sorted(i for b in batches for i in b) == list(range(len(labels))), "each item once per epoch"
    stream = [labels[i] for b in batches for i in b]
    rotation = stream[:4]
    assert sorted(rotation) == [3, 5, 7, 9], "the first round visits every class once"
    assert stream[:12] == rotation * 3, "rounds repeat the epoch's class order"
    assert stream[12:] == [c for c in rotation if c != 9] * 2, "exhausted classes drop out of the cycle"
    assert list(ClassCyclingBatchSampler(labels, 4, seed=0)) == batches
    sampler.set_epoch(1)
    assert list(sampler) != batches
    assert len(ClassCyclingBatchSampler(labels, 4, drop_last=True)) == len(labels) // 4


def test_dataloader_batches_hold_one_class_per_pair_and_distinct_classes(lists_root, lists):
    write_features(lists_root[0], lists, 1)
    items = provider(lists_root, valid_fraction=0).split("train")
    loader = torch.utils.data.DataLoader(items, batch_sampler=items.batch_sampler(4), collate_fn=collate_pairs)
    batches = list(loader)
    assert sum(len(b["x"]) for b in batches) == len(items)
    for batch in batches:
        assert torch.equal(batch["x"][:, 0], batch["y"][:, 0])
        assert len(set(batch["x_label"].tolist())) == len(batch["x_label"]), "four classes, four per batch"


def test_queries_and_gallery_are_the_raw_test_items(lists_root, lists):
    write_features(lists_root[0], lists, 2)
    test = provider(lists_root, split=2).split("test")
    queries, query_labels = test.queries()
    gallery, gallery_labels = test.gallery()
    assert queries.shape == (12, DIM) and gallery.shape == (6, DIM)
    assert torch.equal(queries[:, 0].long(), query_labels) and torch.equal(gallery[:, 0].long(), gallery_labels)
    assert sorted(gallery[:, 1].tolist()) == list(range(6)), "every test photo once"


def test_contract_holds_on_the_miniature(builtin_host, lists_root, lists):
    if not HAVE_REAL_LISTS:
        pytest.skip("the built component verifies the real class lists")
    write_features(lists_root[0], lists, 1)
    data = check_component(
        builtin_host, "dataset", "sketchy-features", {"root": str(lists_root[0]), "valid_fraction": 0.25}
    )
    assert data.describe()["features"].startswith("released SEM-PCYC features")


def test_bad_feature_files_are_named(lists_root, lists):
    root = lists_root[0]
    with pytest.raises(UsageError, match=r"missing: .*train_sketch_features\.npy"):
        provider(lists_root)
    write_features(root, lists, 1)
    features_path, paths_path = feature_files(root, 1, "train", "image")
    paths = np.load(paths_path)
    np.save(paths_path, paths.astype(object), allow_pickle=True)
    with pytest.raises(ValueError, match="never unpickles"):
        load_feature_set(root, 1, "train", "image")
    np.save(paths_path, paths[:-1])
    with pytest.raises(ValueError, match=f"{features_path} has 12 rows but {paths_path} has 11 paths"):
        load_feature_set(root, 1, "train", "image")
    test_class = zero_shot_split(lists, 1).test[0]
    np.save(paths_path, np.array([PHOTO.format(c=test_class, j=j) for j in range(len(paths))]))
    with pytest.raises(ValueError, match=rf"\['{test_class}'\] are not train classes of zero-shot split 1"):
        provider(lists_root)


def write_image_tree(root: Path, classes: list[str]) -> None:
    """Two sketches (PNG) per class, one photo (JPEG) in ``photo/`` and one in ``EXTEND_image_sketchy/``."""
    rng = np.random.default_rng(0)
    for c in classes:
        for relative in (f"sketch/tx_000000000000/{c}/b.png", f"sketch/tx_000000000000/{c}/a.png"):
            path = root / "sketchy" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(path)
        for relative in (f"photo/{c}/p.jpg", f"EXTEND_image_sketchy/{c}/e.jpg"):
            path = root / "sketchy" / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)).save(path)


def test_image_listing_is_deterministic_and_includes_the_extended_photos(tmp_path, lists):
    classes = [lists.classes[5], lists.classes[2]]
    write_image_tree(tmp_path, classes)
    listed = list_images(tmp_path / "sketchy", lists.classes)
    first, second = lists.classes[2], lists.classes[5]  # classes_125 order
    assert listed["sketch"] == [f"sketch/tx_000000000000/{c}/{n}.png" for c in (first, second) for n in "ab"]
    assert listed["image"] == [
        p for c in (first, second) for p in (f"photo/{c}/p.jpg", f"EXTEND_image_sketchy/{c}/e.jpg")
    ]
    (tmp_path / "sketchy" / "photo" / "not_a_class").mkdir()
    with pytest.raises(UsageError, match=r"not Sketchy classes: \['not_a_class'\]"):
        list_images(tmp_path / "sketchy", lists.classes)


@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised VGG-16 convolution stack under torchvision's key names (no classifier)."""
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in conv_stack().state_dict().items()}
    path = tmp_path_factory.mktemp("vgg") / "vgg16.pth"
    torch.save(state, path)
    return path


def test_vgg_gives_512_features_and_names_mismatched_keys(tmp_path, vgg_weights):
    write_image_tree(tmp_path, ["x"])
    paths = sorted((tmp_path / "sketchy").rglob("*.*g"))
    features = extract_features(load_vgg16(vgg_weights), paths, image_size=32, batch_size=2)
    assert features.shape == (len(paths), 512) and features.dtype == np.float32 and np.isfinite(features).all()
    state = torch.load(vgg_weights, weights_only=True)
    state["features.renamed.weight"] = state.pop("features.28.weight")
    torch.save(state, tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match=r"missing keys \['features.28.weight'\]; unexpected keys \['features.renamed"):
        load_vgg16(tmp_path / "renamed.pth")
    with pytest.raises(ValueError, match=r"missing keys \['classifier.0.bias', 'classifier.0.weight'"):
        load_vgg16(vgg_weights, "fc7")


def test_vgg_weights_load_from_safetensors_and_bad_files_are_named(tmp_path, vgg_weights):
    state = torch.load(vgg_weights, weights_only=True)
    save_file(state, tmp_path / "vgg16.safetensors")
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_vgg16(tmp_path / "vgg16.safetensors")(images), load_vgg16(vgg_weights)(images))
    for name in ("garbage.pth", "garbage.safetensors"):
        (tmp_path / name).write_bytes(b"not weights")
        with pytest.raises(ValueError, match=f"{name}: not a"):
            load_vgg16(tmp_path / name)


def test_extraction_writes_the_released_layout_the_dataset_reads(lists_root, lists, vgg_weights):
    root, source = lists_root
    split1, split2 = zero_shot_split(lists, 1), zero_shot_split(lists, 2)
    train = [c for c in lists.classes if c in split1.train and c in split2.train][:2]
    test = [c for c in lists.classes if c in split1.test and c in split2.test][:1]
    write_image_tree(root, train + test)
    extract_sketchy_features(root, vgg_weights, image_size=32, batch_size=2, source=source)
    for number in (1, 2):
        written = load_feature_set(root, number, "train", "sketch")
        assert written.features.shape == (4, 512) and set(written.classes) == set(train)
        assert set(load_feature_set(root, number, "test", "image").classes) == set(test)
    data = provider(lists_root, split=2, valid_fraction=0)
    assert len(data.split("train")) == 4 and len(data.split("test").gallery()[0]) == 2
    assert data.describe()["features"]["extractor"] == "wynerkit VGG-16, layer conv5_3 (512-d)"


def test_extract_features_command(builtin_host, lists_root, vgg_weights):
    cli = CliRunner()
    app = build_app(builtin_host)
    result = cli.invoke(app, ["data", "extract-features", "mnist", "--weights", str(vgg_weights)])
    assert result.exit_code == 2 and "sketchy" in result.output
    if not HAVE_REAL_LISTS:
        pytest.skip("the command verifies the real class lists")
    root = lists_root[0]
    write_image_tree(root, [zero_shot_split(load_class_lists(root), 1).test[0]])
    args = ["--weights", str(vgg_weights), "--root", str(root), "--image-size", "32", "--batch-size", "2"]
    result = cli.invoke(app, ["data", "extract-features", "sketchy", *args])
    assert result.exit_code == 0, result.output
    assert feature_files(root, 1, "test", "image")[0].is_file()
