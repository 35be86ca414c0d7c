"""Gradient accumulation: k micro-batches of b equal one batch of k*b."""

import numpy as np
import pytest
from sklearn.datasets import load_wine

from kerasopt._keras import keras
from kerasopt.training.accumulate import prepare_accumulation, with_grad_accumulation


def _data():
    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")[:128]
    return x, y[:128].astype("int32")


def _model():
    keras.utils.set_random_seed(0)
    inp = keras.Input((13,))
    h = keras.layers.Dense(16, activation="relu")(inp)
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))


def _train(k, batch, opt, jit=False, epochs=3):
    x, y = _data()
    model = _model()
    train_model = with_grad_accumulation(model, k)
    train_model.compile(opt, "sparse_categorical_crossentropy", jit_compile=jit)
    prepare_accumulation(train_model)
    train_model.fit(x, y, batch_size=batch, epochs=epochs, shuffle=False, verbose=0)
    return model, int(train_model.optimizer.iterations.numpy())


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_accumulation_equals_large_batch(opt_name):
    make = {"sgd": lambda: keras.optimizers.SGD(0.1, momentum=0.9), "adam": lambda: keras.optimizers.Adam(0.01)}
    big, big_steps = _train(1, 128, make[opt_name]())
    acc, acc_steps = _train(4, 32, make[opt_name]())
    assert big_steps == acc_steps == 3  # one optimizer step per 128 examples, 3 epochs
    for a, b in zip(big.get_weights(), acc.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_accumulation_under_xla_and_weights_stay_plain():
    big, _ = _train(1, 128, keras.optimizers.SGD(0.1), epochs=2)
    acc, _ = _train(4, 32, keras.optimizers.SGD(0.1), jit=True, epochs=2)
    for a, b in zip(big.get_weights(), acc.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert len(acc.weights) == 4  # accumulators are not model weights


def test_without_accumulation_the_model_is_returned_as_is():
    m = _model()
    assert with_grad_accumulation(m, 1) is m
