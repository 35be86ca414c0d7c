"""resolve_head: a table of (labels, config) -> head or error; shape/class-count checks."""

import pytest

from kerasopt.config.model_schema import ModelConfig
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.models import build_model
from kerasopt.models.checks import resolve_input_shape
from kerasopt.models.heads import Head, add_head, resolve_head


def _spec(task="classification", num_classes=10, label_dim=1):
    return DataSpec((13,), task, num_classes, 10, 2, label_dim=label_dim)


@pytest.mark.parametrize(
    "task, num_classes, label_dim, head, expected",
    [
        ("classification", 10, 1, "auto", ("multiclass", 10)),
        ("classification", 2, 1, "auto", ("binary", 1)),
        ("classification", 3, 1, "auto", ("multiclass", 3)),
        ("regression", None, 1, "auto", ("regression", 1)),
        ("regression", None, 4, "auto", ("regression", 4)),
        ("classification", 2, 1, "multiclass", ("multiclass", 2)),
        ("classification", 2, 1, "binary", ("binary", 1)),
        ("classification", 10, 1, "regression", ("regression", 1)),  # e.g. a quality score
        ("regression", None, 1, "regression", ("regression", 1)),
    ],
)
def test_head_table(task, num_classes, label_dim, head, expected):
    got = resolve_head(ModelConfig(type="mlp", head=head), _spec(task, num_classes, label_dim))
    assert got == Head(*expected)
    assert got.activation == {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}[got.kind]


@pytest.mark.parametrize(
    "task, num_classes, config, key, words",
    [
        ("classification", 10, {"head": "binary"}, "model.head", ["binary", "2 classes", "have 10"]),
        ("regression", None, {"head": "multiclass"}, "model.head", ["regression targets", "head='multiclass'"]),
        ("regression", None, {"head": "binary"}, "model.head", ["regression targets"]),
        ("classification", 10, {"num_classes": 5}, "model.num_classes",
         ["config says 5 but the labels have 10 classes", "num_classes=5"]),
        ("regression", None, {"num_classes": 5}, "model.num_classes", ["regression targets"]),
        ("classification", None, {}, "model.num_classes", ["Set model.num_classes"]),
        ("classification", 1, {}, "model.num_classes", ["at least 2 classes", "have 1"]),
    ],
)
def test_head_errors(task, num_classes, config, key, words):
    with pytest.raises(ConfigError) as e:
        resolve_head(ModelConfig(type="mlp", **config), _spec(task, num_classes))
    assert e.value.key == key
    for w in words:
        assert w in str(e.value)


def test_num_classes_from_config_when_data_does_not_say():
    assert resolve_head(ModelConfig(type="mlp", num_classes=4), _spec(num_classes=None)) == Head("multiclass", 4)
    assert resolve_head(ModelConfig(type="mlp", num_classes=10), _spec()) == Head("multiclass", 10)


def test_input_shape_must_match_the_data():
    spec = DataSpec((32, 32, 1), "classification", 10, 10, 2)
    assert resolve_input_shape(ModelConfig(input_shape=[32, 32, 1]), spec) == (32, 32, 1)
    with pytest.raises(ConfigError) as e:
        build_model(ModelConfig(input_shape=[28, 28, 1]), spec)
    assert e.value.key == "model.input_shape"
    assert "(28, 28, 1)" in str(e.value) and "(32, 32, 1)" in str(e.value)


def test_add_head_is_float32_and_probabilities():
    import numpy as np

    from kerasopt._keras import keras

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    inputs = keras.Input((3,))
    out = add_head(keras.layers.Dense(4)(inputs), Head("multiclass", 5))
    assert out.dtype == "float32"
    probs = keras.Model(inputs, out).predict(np.ones((2, 3), "float32"), verbose=0)
    assert probs.shape == (2, 5)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
