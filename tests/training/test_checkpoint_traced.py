"""Checkpoints saved through a traced save function: the same files' contents as an eager save,
traced again when variables appear, and the values at the save (not later)."""

import numpy as np
from kerasopt.callbacks import checkpoint as ck

from kerasopt._keras import keras, tf


def _model():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5), keras.layers.Dense(2)])
    m.compile(keras.optimizers.Adam(0.1), "mse")
    m.fit(np.ones((8, 3)), np.zeros((8, 2)), verbose=0, epochs=2)
    return m


def _tensors(path):
    reader = tf.train.load_checkpoint(str(path / "ckpt"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}


def test_traced_and_eager_saves_hold_the_same_tensors(tmp_path):
    m = _model()
    for traced in (True, False):
        cb = ck.AtomicCheckpoint(tmp_path / str(traced), monitor="loss", traced=traced)
        cb.set_model(m)
        cb.save("last", epoch=2, batch=0)
    traced, eager = _tensors(tmp_path / "True" / "last"), _tensors(tmp_path / "False" / "last")
    assert traced.keys() == eager.keys() and len(traced) > 10  # weights, Adam slots, step, RNG state
    for k in traced:
        np.testing.assert_array_equal(traced[k], eager[k], err_msg=k)
    assert ck.verify_checkpoint(tmp_path / "True" / "last") is None
    for traced in ("True", "False"):  # the same layout: one data shard
        names = sorted(p.name for p in (tmp_path / traced / "last").iterdir())
        assert names == ["ckpt.data-00000-of-00001", "ckpt.index", "meta.json"]


def test_a_traced_save_writes_the_values_of_its_call_and_new_variables(tmp_path):
    m = _model()
    cb = ck.AtomicCheckpoint(tmp_path, monitor="loss")
    cb.set_model(m)
    cb.save("last", epoch=2, batch=0)
    m.fit(np.ones((8, 3)), np.zeros((8, 2)), verbose=0, epochs=1)  # the same graph, new values
    cb.save("last", epoch=3, batch=0)
    saved = _tensors(tmp_path / "last")
    kernel = next(k for k in saved if k.startswith("model/layer_with_weights-0/kernel/.ATTRIBUTES"))
    np.testing.assert_array_equal(saved[kernel], m.layers[0].kernel.numpy())
    assert saved["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"] == 3
    # A variable that did not exist at the first trace (here an EMA-like extra trackable) is saved too.
    extra = ck.StatefulCallback()
    extra.trackables = lambda: {"shadow": shadow}
    shadow = tf.Variable([7.0, 8.0])
    cb.callbacks = [extra]
    cb.save("last", epoch=3, batch=0)
    assert any(np.array_equal(v, [7.0, 8.0]) for v in _tensors(tmp_path / "last").values())


def test_resume_from_a_traced_checkpoint_restores_everything(tmp_path):
    m = _model()
    cb = ck.AtomicCheckpoint(tmp_path, monitor="loss")
    cb.set_model(m)
    cb.save("last", epoch=2, batch=0)
    m2 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dropout(0.5),
                           keras.layers.Dense(2)])
    m2.compile(keras.optimizers.Adam(0.1), "mse")
    meta = ck.restore_checkpoint(ck.find_checkpoint(tmp_path), m2)
    assert meta["epoch"] == 2
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(m.optimizer.variables, m2.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_trace_that_would_drop_state_falls_back_to_the_eager_write(tmp_path):
    # A traced write of a loss-scale optimizer leaves out the loss scale: the check at trace time
    # sees the missing tensors and keeps the eager write, so the checkpoint still holds them.
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.compile(keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam(0.1)), "mse")
        m.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, epochs=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    cb = ck.AtomicCheckpoint(tmp_path, monitor="loss")
    cb.set_model(m)
    cb.save("last", epoch=2, batch=0)
    assert cb._write is None  # noqa: SLF001
    assert any("current_loss_scale" in k for k in _tensors(tmp_path / "last"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # the check's scratch folder is gone
    plain = ck.AtomicCheckpoint(tmp_path / "plain", monitor="loss")
    plain.set_model(_model())
    plain.save("last", epoch=2, batch=0)
    assert plain._write is not None  # noqa: SLF001
