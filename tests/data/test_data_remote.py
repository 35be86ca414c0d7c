"""tfds and keras_datasets without the network: downloads are monkeypatched."""

import sys
import types

import numpy as np
import pytest

from kerasopt._keras import keras, tf
from kerasopt.data import build_datasets
from kerasopt.data.sources import load_source
from kerasopt.errors import ConfigError

URL_ERROR = (
    "URL fetch failure on https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz: None -- "
    "[Errno -3] Temporary failure in name resolution\nTraceback (most recent call last): ..."
)


def test_keras_dataset_offline_is_one_line(monkeypatch, make_cfg):
    def offline():
        raise Exception(URL_ERROR)

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="keras_datasets", name="mnist"))
    msg = str(e.value)
    assert e.value.key == "data.name" and "\n" not in msg
    assert msg.startswith("data.name: could not download 'mnist' (no network?): URL fetch failure")


def test_keras_dataset_loads_train_split(monkeypatch, make_cfg):
    x = np.random.default_rng(0).integers(0, 256, size=(20, 28, 28), dtype=np.uint8)
    y = np.arange(20, dtype=np.uint8) % 10
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((x, y), (x[:2], y[:2])))
    bundle = build_datasets(make_cfg(source="keras_datasets", name="mnist", batch_size=8))
    spec = bundle.spec
    assert spec.input_shape == (28, 28, 1) and spec.num_classes == 10 and spec.class_names[3] == "3"
    assert (spec.num_train, spec.num_val) == (16, 4)


@pytest.mark.parametrize("name, fragment", [("mnsit", "Did you mean 'mnist'"), ("imdb", "variable-length")])
def test_keras_dataset_bad_names(make_cfg, name, fragment):
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="keras_datasets", name=name))
    assert e.value.key == "data.name" and fragment in str(e.value)


def test_tfds_not_installed_says_what_to_install(monkeypatch, make_cfg):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match="pip install tensorflow-datasets") as e:
        load_source(make_cfg(source="tfds", name="mnist"))
    assert e.value.key == "data.source"


class _Image:
    """Stands in for tfds.features.Image."""


class _ClassLabel:
    names = ["zero", "one", "two"]


class _SkipDecoding:
    pass


def fake_tfds(monkeypatch, offline: bool = False):
    """A tiny tensorflow_datasets: 12 images 4x4x1 whose pixels equal their index, label = index % 3."""
    images = np.arange(12, dtype=np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    labels = np.arange(12) % 3

    class Builder:
        info = types.SimpleNamespace(features={"image": _Image(), "label": _ClassLabel()})

        def download_and_prepare(self):
            if offline:
                raise OSError("Failed to resolve 'storage.googleapis.com'\nmore detail")

        def as_dataset(self, split, shuffle_files, decoders=None):
            assert split == "train" and shuffle_files is False
            return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})

    module = types.SimpleNamespace(
        builder=lambda name: Builder(),
        decode=types.SimpleNamespace(SkipDecoding=_SkipDecoding),
        features=types.SimpleNamespace(Image=_Image),
    )
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", module)


def test_tfds_offline_is_one_line(monkeypatch, make_cfg):
    fake_tfds(monkeypatch, offline=True)
    with pytest.raises(ConfigError) as e:
        load_source(make_cfg(source="tfds", name="mnist"))
    expected = "data.name: could not download 'mnist' (no network?): Failed to resolve 'storage.googleapis.com'"
    assert str(e.value) == expected


def test_tfds_streams_the_selected_examples(monkeypatch, make_cfg, collect):
    fake_tfds(monkeypatch)
    bundle = build_datasets(make_cfg(source="tfds", name="fake", validation_split=0.25, shuffle_buffer=0))
    spec = bundle.spec
    assert spec.class_names == ["zero", "one", "two"] and spec.input_shape == (4, 4, 1)
    assert (spec.num_train, spec.num_val) == (9, 3) and spec.class_counts == [3, 3, 3]  # stratified
    x, y = collect(bundle.train)
    xv, yv = collect(bundle.val)
    index = np.concatenate([x[:, 0, 0, 0], xv[:, 0, 0, 0]]).astype(int)
    assert sorted(index.tolist()) == list(range(12))  # every example once, in train or val
    assert np.array_equal(np.concatenate([y, yv]), index % 3)  # features and labels stay paired


def test_tfds_missing_label_key(monkeypatch, make_cfg):
    fake_tfds(monkeypatch)
    with pytest.raises(ConfigError, match="no feature 'target'. Features: image, label") as e:
        load_source(make_cfg(source="tfds", name="fake", label_key="target"))
    assert e.value.key == "data.label_key"
