"""image_dir and tfrecord sources on files written into tmp_path."""

import io

import numpy as np
import pytest
from PIL import Image
from tfrecord_examples import example, write_records

from kerasopt.data import build_datasets
from kerasopt.data.sources import load_source
from kerasopt.errors import ConfigError


def png_bytes(value: int, size=(6, 4), mode="RGB", fmt="PNG") -> bytes:
    """A solid image of ``size`` (width, height) filled with ``value``."""
    buf = io.BytesIO()
    Image.new(mode, size, (value,) * len(mode) if mode != "L" else value).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    """cats: 3 PNGs filled with 10, dogs: 2 PNGs filled with 200 and one JPEG, plus a stray text file."""
    root = tmp_path / "photos"
    for cls, value, count in (("cats", 10, 3), ("dogs", 200, 2)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            (root / cls / f"{i}.png").write_bytes(png_bytes(value))
    (root / "dogs" / "x.JPG").write_bytes(png_bytes(200, fmt="JPEG"))
    (root / "dogs" / "notes.txt").write_text("not an image")
    return root


def test_image_dir_classes_sizes_and_values(image_folder, make_cfg, collect):
    cfg = make_cfg(source="image_dir", path=str(image_folder), validation_split=0.0, shuffle_buffer=0)
    bundle = build_datasets(cfg)
    spec = bundle.spec
    assert spec.class_names == ["cats", "dogs"] and spec.class_counts == [3, 3]
    assert spec.input_shape == (4, 6, 3)  # default: the first image's (height, width)
    x, y = collect(bundle.train)
    assert x.dtype == np.float32 and y.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.allclose(x[:3], 10.0) and np.allclose(x[3:5], 200.0)
    assert np.abs(x[5] - 200.0).max() <= 2.0  # JPEG is lossy


def test_image_dir_image_size_and_grayscale(image_folder, make_cfg, collect):
    cfg = make_cfg(source="image_dir", path=str(image_folder), image_size=[8, 8], channels=1, validation_split=0.5)
    bundle = build_datasets(cfg)
    assert bundle.spec.input_shape == (8, 8, 1)
    assert (bundle.spec.num_train, bundle.spec.num_val) == (3, 3)
    x, _ = collect(bundle.val)
    assert x.shape == (3, 8, 8, 1)


def test_image_dir_needs_two_classes(tmp_path, make_cfg):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.png").write_bytes(png_bytes(1))
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="image_dir", path=str(tmp_path)))
    assert e.value.key == "data.path" and str(tmp_path) in str(e.value) and "(only)" in str(e.value)


def test_image_dir_missing_folder(tmp_path, make_cfg):
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="image_dir", path=str(tmp_path / "nowhere")))
    assert e.value.key == "data.path" and "nowhere" in str(e.value)


def test_image_dir_empty_class_folder(image_folder, make_cfg):
    (image_folder / "birds").mkdir()
    with pytest.raises(ConfigError, match="birds has no PNG/JPEG images"):
        load_source(make_cfg(source="image_dir", path=str(image_folder)))


IMAGE_FEATURES = {"image": {"dtype": "image", "shape": [4, 6, 3]}, "label": {"dtype": "int64"}}


def test_tfrecord_images_and_int_labels(tmp_path, make_cfg, collect):
    records = [example(image=png_bytes(10 * i), label=i % 3) for i in range(9)]
    path = write_records(tmp_path / "train.tfrecord", records)
    cfg = make_cfg(source="tfrecord", path=path, features=IMAGE_FEATURES, validation_split=0.0, shuffle_buffer=0)
    bundle = build_datasets(cfg)
    assert bundle.spec.input_shape == (4, 6, 3) and bundle.spec.num_classes == 3
    x, y = collect(bundle.train)
    assert y.tolist() == [i % 3 for i in range(9)]
    assert np.allclose(x.mean(axis=(1, 2, 3)), [10 * i for i in range(9)])


def test_tfrecord_numeric_features_regression_and_glob(tmp_path, make_cfg, collect):
    for f in range(2):
        rows = range(5 * f, 5 * f + 5)
        write_records(tmp_path / f"part-{f}.tfrecord",
                      [example(a=np.float32(i), b=np.array([i, 2 * i]), t=np.float32(i / 2)) for i in rows])
    features = {"a": {"dtype": "float32"}, "b": {"dtype": "int64", "shape": [2]}, "t": {"dtype": "float32"}}
    cfg = make_cfg(source="tfrecord", path=str(tmp_path / "part-*.tfrecord"), features=features, label_key="t",
                   validation_split=0.2, shuffle_buffer=0)
    bundle = build_datasets(cfg)
    spec = bundle.spec
    assert spec.task == "regression" and spec.input_shape == (3,) and (spec.num_train, spec.num_val) == (8, 2)
    x, y = collect(bundle.train)
    assert np.allclose(x[:, 1], x[:, 0]) and np.allclose(x[:, 2], 2 * x[:, 0]) and np.allclose(y, x[:, 0] / 2)
    xv, _ = collect(bundle.val)
    assert sorted(set(x[:, 0]) | set(xv[:, 0])) == list(range(10))


def test_tfrecord_string_labels_become_class_names(tmp_path, make_cfg, collect):
    path = write_records(tmp_path / "s.tfrecord", [example(v=np.float32(i), kind=[b"odd", b"even"][i % 2 == 0])
                                                  for i in range(6)])
    features = {"v": {"dtype": "float32"}, "kind": {"dtype": "string"}}
    bundle = build_datasets(make_cfg(source="tfrecord", path=path, features=features, label_key="kind",
                                     validation_split=0.0, shuffle_buffer=0))
    assert bundle.spec.class_names == ["even", "odd"]
    x, y = collect(bundle.train)
    assert y.tolist() == [0, 1, 0, 1, 0, 1]


def test_tfrecord_shards_by_file(tmp_path, make_cfg, collect):
    for f in range(4):
        write_records(tmp_path / f"p{f}.tfrecord", [example(v=np.float32(10 * f + i), label=i % 2) for i in range(3)])
    features = {"v": {"dtype": "float32"}, "label": {"dtype": "int64"}}
    seen = []
    for index in range(2):
        cfg = make_cfg(source="tfrecord", path=str(tmp_path / "p*.tfrecord"), features=features,
                       validation_split=0.0, shuffle_buffer=0, batch_size=4)
        bundle = build_datasets(cfg, shard=(index, 2))
        assert bundle.steps_per_epoch == 3 and bundle.batch_size == 2
        x, _ = collect(bundle.train.take(3))
        seen.append(set(x[:, 0].tolist()))
    # Worker 0 reads files 0 and 2, worker 1 files 1 and 3.
    assert seen[0] == {0, 1, 2, 20, 21, 22} and seen[1] == {10, 11, 12, 30, 31, 32}


def test_tfrecord_missing_file_and_empty_glob(tmp_path, make_cfg):
    for path, fragment in ((tmp_path / "none.tfrecord", "not found"), (tmp_path / "x-*.tfrecord", "no TFRecord")):
        with pytest.raises(ConfigError) as e:
            load_source(make_cfg(source="tfrecord", path=str(path), features=IMAGE_FEATURES))
        assert e.value.key == "data.path" and fragment in str(e.value) and str(path) in str(e.value)


def test_tfrecord_wrong_feature_spec_names_the_file(tmp_path, make_cfg):
    path = write_records(tmp_path / "t.tfrecord", [example(v=np.float32(1), label=1)])
    features = {"v": {"dtype": "float32", "shape": [3]}, "label": {"dtype": "int64"}}
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="tfrecord", path=path, features=features))
    assert e.value.key == "data.features" and "t.tfrecord" in str(e.value)
    assert "\n" not in str(e.value)


def test_tfrecord_nan_feature_names_the_file(tmp_path, make_cfg):
    path = write_records(tmp_path / "t.tfrecord", [example(v=np.float32("nan"), label=1)])
    features = {"v": {"dtype": "float32"}, "label": {"dtype": "int64"}}
    with pytest.raises(ConfigError, match="NaN or Inf in feature 'v' of .*t.tfrecord") as e:
        load_source(make_cfg(source="tfrecord", path=path, features=features))
    assert e.value.key == "data"


def test_image_dir_normalized_and_augmented(image_folder, make_cfg, collect):
    cfg = make_cfg(source="image_dir", path=str(image_folder), validation_split=0.0, normalize="standard",
                   augment={"flip": "horizontal"}, deterministic=True)
    bundle = build_datasets(cfg)
    x, _ = collect(bundle.train)
    assert x.shape == (6, 4, 6, 3) and abs(x.mean()) < 1e-4 and abs(x.std() - 1.0) < 1e-4
    assert len(bundle.spec.extras["normalize"]["mean"]) == 3  # per RGB channel
