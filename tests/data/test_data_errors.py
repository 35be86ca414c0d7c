"""Run-time data checks: each bad input is one ConfigError with the key and the file it is about."""

import numpy as np
import pytest

from kerasopt.data import build_datasets
from kerasopt.errors import ConfigError


def npz(tmp_path, x, y, name="d.npz"):
    path = tmp_path / name
    np.savez(path, x=x, y=y)
    return str(path)


def raises(cfg, key, *fragments, shard=None):
    with pytest.raises(ConfigError) as e:
        build_datasets(cfg, shard=shard)
    assert e.value.key == key, str(e.value)
    for fragment in fragments:
        assert fragment in str(e.value)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_validation_split_leaving_no_training_examples(make_cfg):
    cfg = make_cfg(source="sklearn", name="iris", max_examples=1, validation_split=0.5)
    msg = raises(cfg, "data.validation_split", "leaves 0 of 1 examples")
    assert msg.endswith("Received: validation_split=0.5")


def test_nan_and_inf_features_name_the_file(tmp_path, make_cfg):
    x = np.ones((10, 2))
    x[3, 1], x[7, 0] = np.nan, np.inf
    path = npz(tmp_path, x, np.arange(10) % 2)
    raises(make_cfg(source="npz", path=path), "data", "d.npz", "2 NaN or Inf", "example 3")


def test_nan_regression_target(tmp_path, make_cfg):
    y = np.linspace(0, 1, 10)
    y[4] = np.nan
    raises(make_cfg(source="npz", path=npz(tmp_path, np.ones((10, 2)), y)), "data", "d.npz", "NaN or Inf targets")


def test_negative_class_label(tmp_path, make_cfg):
    path = npz(tmp_path, np.ones((6, 2)), np.array([0, 1, -1, 1, 0, 1]))
    msg = raises(make_cfg(source="npz", path=path), "data.y_key", "must be >= 0", "d.npz", "example 2")
    assert msg.endswith("Received: -1")


def test_empty_source(tmp_path, make_cfg):
    raises(make_cfg(source="npz", path=npz(tmp_path, np.ones((0, 2)), np.zeros(0, int))), "data.path", "no examples")


@pytest.mark.parametrize(
    "data, key, fragment",
    [
        ({"reshape": [10]}, "data.reshape", "(8, 8, 1) (64 values) cannot become (10,)"),
        ({"name": "iris", "resize": [8, 8]}, "data.resize", "applies to images"),
        ({"name": "iris", "augment": {"flip": "horizontal"}}, "data.augment", "examples have shape (4,)"),
        ({"batch_size": 63, "shard": (0, 2)}, "data.batch_size", "Received: batch_size=63"),
    ],
)
def test_transform_mismatches(make_cfg, data, key, fragment):
    data = {"source": "sklearn", "name": "digits", **data}
    shard = data.pop("shard", None)
    raises(make_cfg(**data), key, fragment, shard=shard)


@pytest.mark.parametrize("data, key", [({"normalize": "standard"}, "data.normalize"),
                                       ({"augment": {"zoom": 0.1}}, "data.augment")])
def test_token_ids_cannot_be_normalized_or_augmented(make_cfg, data, key):
    raises(make_cfg(source="synthetic", task="tokens", shape=[8], num_examples=20, **data), key, "token ids")


def test_shard_with_more_workers_than_examples(make_cfg):
    cfg = make_cfg(source="sklearn", name="iris", max_examples=5, validation_split=0.0, batch_size=8)
    raises(cfg, "data", "worker 7 of 8 gets no training examples", shard=(7, 8))


def test_bad_shard_argument_is_a_programming_error(make_cfg):
    with pytest.raises(ValueError, match=r"Received: shard=\(2, 2\)"):
        build_datasets(make_cfg(source="sklearn", name="iris"), shard=(2, 2))
