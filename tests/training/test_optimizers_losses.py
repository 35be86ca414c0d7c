"""Optimizers by name with clipping; losses, metrics and class weights for each head."""

import numpy as np
import pytest

from kerasopt._keras import keras
from kerasopt.config import load_config
from kerasopt.data.spec import DataSpec
from kerasopt.errors import ConfigError
from kerasopt.training import compile as comp
from kerasopt.training.optimizers import OPTIMIZERS, build_optimizer

SPEC = DataSpec(input_shape=(4,), task="classification", num_classes=3, num_train=40, num_val=10,
                class_counts=[20, 15, 5])


def _cfg(**train):
    return load_config({"data": {"name": "iris"}, "train": train})


def test_every_optimizer_builds_and_names_match_schema():
    from kerasopt.config.train_schema import OPTIMIZERS as NAMES

    assert OPTIMIZERS.names() == sorted(NAMES)
    for name in NAMES:
        opt = build_optimizer(_cfg(optimizer={"type": name}).train.optimizer, 0.01)
        assert isinstance(opt, keras.optimizers.Optimizer)


def test_sgd_options_and_clipping_reach_keras():
    o = _cfg(optimizer={"type": "sgd", "momentum": 0.9, "nesterov": True, "global_clipnorm": 1.0}).train.optimizer
    opt = build_optimizer(o, 0.1)
    assert (opt.momentum, opt.nesterov, opt.global_clipnorm) == (0.9, True, 1.0)
    v = keras.Variable if hasattr(keras, "Variable") else None  # noqa: F841
    import tensorflow as tf

    w = tf.Variable([0.0, 0.0])
    opt_plain = build_optimizer(_cfg(optimizer={"type": "sgd", "global_clipnorm": 1.0}).train.optimizer, 1.0)
    opt_plain.apply_gradients([(tf.constant([3.0, 4.0]), w)])  # norm 5 clipped to 1
    np.testing.assert_allclose(w.numpy(), [-0.6, -0.8], rtol=1e-6)


def test_adamw_default_weight_decay():
    opt = build_optimizer(_cfg(optimizer={"type": "adamw"}).train.optimizer, 0.01)
    assert opt.weight_decay == pytest.approx(0.004)


def test_class_weights_balanced_hand_computed():
    w = comp.class_weights(_cfg(class_weight="balanced"), SPEC)
    # n / (k * count): 40 / (3 * 20), 40 / (3 * 15), 40 / (3 * 5)
    assert w == pytest.approx({0: 40 / 60, 1: 40 / 45, 2: 40 / 15})
    assert comp.class_weights(_cfg(class_weight={2: 3.0}), SPEC) == {0: 1.0, 1: 1.0, 2: 3.0}
    with pytest.raises(ConfigError) as e:
        comp.class_weights(_cfg(class_weight={7: 1.0}), SPEC)
    assert e.value.key == "train.class_weight"


@pytest.mark.parametrize(
    "train, kind, loss_cls, one_hot",
    [({}, "multiclass", keras.losses.SparseCategoricalCrossentropy, False),
     ({"label_smoothing": 0.1}, "multiclass", keras.losses.CategoricalCrossentropy, True),
     ({"loss": "categorical_crossentropy"}, "multiclass", keras.losses.CategoricalCrossentropy, True),
     ({}, "binary", keras.losses.BinaryCrossentropy, False),
     ({}, "regression", keras.losses.MeanSquaredError, False),
     ({"loss": "huber"}, "regression", keras.losses.Huber, False)],
)
def test_loss_table(train, kind, loss_cls, one_hot):
    cfg = _cfg(**train)
    assert isinstance(comp.build_loss(cfg, kind), loss_cls)
    assert comp.wants_one_hot(cfg, kind) is one_hot


def test_label_smoothing_value_and_mismatched_loss():
    loss = comp.build_loss(_cfg(label_smoothing=0.1), "multiclass")
    # smoothed target for class 0 of 2: [0.95, 0.05]; CE with prediction [0.5, 0.5] is ln 2
    assert float(loss([[1.0, 0.0]], [[0.5, 0.5]])) == pytest.approx(np.log(2), rel=1e-5)
    with pytest.raises(ConfigError) as e:
        comp.build_loss(_cfg(loss="mse"), "multiclass")
    assert e.value.key == "train.loss"


def test_unknown_metric_is_named():
    with pytest.raises(ConfigError) as e:
        comp.build_metrics(_cfg(metrics=["acuracy_x"]), "multiclass", False)
    assert e.value.key == "train.metrics" and "acuracy_x" in str(e.value)
