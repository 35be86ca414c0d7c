"""The EMA update fused into the compiled train step gives the same averages as the callback path."""

import numpy as np
from kerasopt.callbacks.ema import WeightEMA
from sklearn.datasets import load_wine

from kerasopt._keras import keras
from kerasopt.training.accumulate import add_post_step, prepare_accumulation, with_grad_accumulation


def _run(fused: bool, accum: int = 1):
    x, y = load_wine(return_X_y=True)
    x = ((x - x.mean(0)) / x.std(0)).astype("float32")
    keras.utils.set_random_seed(0)
    inp = keras.Input((13,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(16, activation="relu")(inp))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h))
    train_model = with_grad_accumulation(model, accum, wrap=fused)
    train_model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", jit_compile=True)
    prepare_accumulation(train_model)
    ema = WeightEMA(decay=0.9, warmup=True, export="raw", evaluate_raw=False)
    ema.build(train_model)
    if fused:
        assert add_post_step(train_model, ema.fused_update(train_model))
    train_model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0, callbacks=[ema])
    return [v.numpy() for v in ema.ema_variables], int(ema.get_state()["last_step"])


def test_fused_equals_callback():
    a, step_a = _run(False)
    b, step_b = _run(True)
    assert step_a == step_b == 18  # 178 examples / 32 = 6 steps, 3 epochs
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, atol=1e-6)


def test_fused_with_accumulation_updates_once_per_optimizer_step():
    _, step = _run(True, accum=2)
    assert step == 9
