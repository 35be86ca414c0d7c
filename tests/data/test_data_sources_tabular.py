"""scikit-learn and .npz sources, and the label/feature rules they share."""

import numpy as np
import pytest

from kerasopt.data.source_base import features_from_array, labels_from_array
from kerasopt.data.sources import SOURCES, load_source
from kerasopt.errors import ConfigError


def test_every_schema_source_is_registered():
    from kerasopt.config.data_schema import SOURCES as NAMES

    assert SOURCES.names() == sorted(NAMES)


def test_unknown_source_lists_the_choices():
    with pytest.raises(ConfigError) as e:
        SOURCES.get("cvs")
    assert e.value.key == "data.source" and "Did you mean 'csv'" in str(e.value)


@pytest.mark.parametrize(
    "name, shape, classes",
    [("digits", (1797, 8, 8, 1), 10), ("iris", (150, 4), 3), ("wine", (178, 13), 3), ("breast_cancer", (569, 30), 2)],
)
def test_sklearn_classification_sets(make_cfg, name, shape, classes):
    src = load_source(make_cfg(source="sklearn", name=name))
    assert src.x.shape == shape and src.x.dtype == np.float32
    assert src.task == "classification" and len(src.class_names) == classes
    assert src.y.dtype.kind == "i" and set(np.unique(src.y)) == set(range(classes))


def test_sklearn_digits_keeps_raw_pixel_values(make_cfg):
    src = load_source(make_cfg(source="sklearn", name="digits"))
    assert src.x.min() == 0.0 and src.x.max() == 16.0
    assert src.class_names == [str(i) for i in range(10)]


def test_sklearn_diabetes_is_regression(make_cfg):
    src = load_source(make_cfg(source="sklearn", name="diabetes"))
    assert src.task == "regression" and src.y.dtype == np.float32 and src.x.shape == (442, 10)


def test_npz_float_features_int_labels(tmp_path, make_cfg):
    path = tmp_path / "d.npz"
    np.savez(path, feats=np.random.rand(20, 3), target=np.arange(20) % 4)
    src = load_source(make_cfg(source="npz", path=str(path), x_key="feats", y_key="target"))
    assert src.x.shape == (20, 3) and src.x.dtype == np.float32
    assert src.task == "classification" and src.input_dtype == "float32"


def test_npz_token_ids_and_string_labels(tmp_path, make_cfg):
    path = tmp_path / "t.npz"
    np.savez(path, x=np.array([[1, 5, 2], [3, 0, 9]], np.int64), y=np.array(["spam", "ham"]))
    src = load_source(make_cfg(source="npz", path=str(path)))
    assert src.input_dtype == "int32" and src.vocab_size == 10
    assert src.class_names == ["ham", "spam"] and src.y.tolist() == [1, 0]


def test_npz_missing_file_names_it(tmp_path, make_cfg):
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="npz", path=str(tmp_path / "nope.npz")))
    assert e.value.key == "data.path" and "nope.npz" in str(e.value)


def test_npz_missing_key_lists_arrays(tmp_path, make_cfg):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="npz", path=str(path)))
    assert e.value.key == "data.x_key"
    assert "d.npz has no array 'x'" in str(e.value) and "images, y" in str(e.value)


def test_npz_length_mismatch(tmp_path, make_cfg):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((3, 2)), y=np.zeros(2))
    with pytest.raises(ConfigError, match="'x' has 3 examples but 'y' has 2") as e:
        load_source(make_cfg(source="npz", path=str(path)))
    assert e.value.key == "data.y_key"


def test_npz_not_an_npz_file(tmp_path, make_cfg):
    path = tmp_path / "d.npz"
    path.write_text("hello")
    with pytest.raises(ConfigError, match="could not read .*d.npz") as e:
        load_source(make_cfg(source="npz", path=str(path)))
    assert e.value.key == "data.path"


@pytest.mark.parametrize(
    "y, expected, task",
    [
        (np.array([2, 0, 1]), [2, 0, 1], "classification"),
        (np.array([[1], [0]]), [1, 0], "classification"),
        (np.array([True, False]), [1, 0], "classification"),
        (np.array([[0.0, 1.0], [1.0, 0.0]]), [1, 0], "classification"),  # one-hot rows
        (np.array([0.5, 1.5]), [0.5, 1.5], "regression"),
        (np.array([["a"], ["c"], ["a"]]), [0, 1, 0], "classification"),
    ],
)
def test_labels_from_array(y, expected, task):
    out, got_task, _ = labels_from_array(y, "f", "data.y_key")
    assert got_task == task and out.tolist() == expected


def test_two_column_float_labels_are_regression_targets():
    out, task, _ = labels_from_array(np.array([[0.2, 3.0], [1.0, 0.0]]), "f", "k")
    assert task == "regression" and out.shape == (2, 2)


def test_negative_token_ids_are_rejected():
    with pytest.raises(ConfigError, match="token ids in f.npz must be >= 0. Received: -1"):
        features_from_array(np.array([[1, -1]]), "f.npz", "data.x_key")


def test_features_vector_becomes_column():
    x, dtype = features_from_array(np.arange(4, dtype=np.float64), "f", "k")
    assert x.shape == (4, 1) and dtype == "float32"

