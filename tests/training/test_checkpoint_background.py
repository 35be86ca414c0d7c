"""Checkpoints written on a background thread: a snapshot taken at the save, failures surfaced."""

import errno
import json

import numpy as np
import pytest
from kerasopt.callbacks import checkpoint as ck

from kerasopt._keras import keras


def _model():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    m.compile(keras.optimizers.Adam(0.1), "mse")
    m.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, epochs=2)
    return m


def test_the_checkpoint_holds_the_values_at_the_save_not_after(tmp_path):
    m = _model()
    at_save = [w.copy() for w in m.get_weights()]
    writer = ck.BackgroundWriter()
    ck.save_checkpoint(tmp_path, "last", ck.training_trackables(m, []), {"epoch": 2}, writer=writer)
    m.set_weights([w + 100.0 for w in at_save])  # training goes on while the writer works
    m.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, epochs=3)
    writer.wait()
    m2 = _model()
    meta = ck.restore_checkpoint(ck.find_checkpoint(tmp_path), m2)
    for a, b in zip(at_save, m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert meta["epoch"] == 2 and int(m2.optimizer.iterations.numpy()) == 2
    assert ck.verify_checkpoint(tmp_path / "last") is None  # sizes and CRC32 recorded after the files
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_background_failure_is_raised_at_the_next_wait_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    m = _model()
    cb = ck.AtomicCheckpoint(tmp_path, monitor="val_loss")
    cb.set_model(m)
    cb.on_epoch_begin(0)
    cb.on_epoch_end(0, {"val_loss": 0.5, "loss": 1.0})
    cb.flush()
    assert json.loads((tmp_path / "best" / "meta.json").read_text())["epoch"] == 1

    def full(_):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck, "file_digests", full)
    cb.on_epoch_begin(1)
    cb.on_epoch_end(1, {"val_loss": 0.4, "loss": 0.9})  # returns: the write fails on the writer's thread
    with pytest.raises(ck.CheckpointWriteError, match=r"No space left on device; the previous checkpoint "
                                                      r".*last \(epoch 1, step 2\) is intact"):
        cb.flush()
    # neither `last` nor the copy to `best` that was queued behind it moved
    assert json.loads((tmp_path / "last" / "meta.json").read_text())["epoch"] == 1
    assert json.loads((tmp_path / "best" / "meta.json").read_text())["epoch"] == 1
    assert not list(tmp_path.glob(".tmp-*"))
    cb.flush()  # reported once


def test_loss_scale_is_snapshotted_and_the_wrapper_warning_is_quiet(tmp_path, caplog):
    # A LossScaleOptimizer's state is variables (inner slots, loss scale): the snapshot has them all,
    # and TensorFlow's "skipped" warning for the wrapper object is not shown on every save.
    import logging

    from kerasopt._keras import tf

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        m.compile(keras.mixed_precision.LossScaleOptimizer(keras.optimizers.Adam(0.1)), "mse")
        m.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, epochs=2)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    state = m.optimizer._loss_scale  # noqa: SLF001 - the variable the checkpoint must hold
    before = float(state._current_loss_scale.numpy())  # noqa: SLF001
    writer = ck.BackgroundWriter()
    with caplog.at_level(logging.WARNING, logger="absl"):
        ck.save_checkpoint(tmp_path, "last", ck.training_trackables(m, []), {"epoch": 2}, writer=writer)
        state._current_loss_scale.assign(before / 4)  # noqa: SLF001 - an overflow right after the save
        writer.wait()
    assert "skipped due to" not in caplog.text
    reader = tf.train.load_checkpoint(str(tmp_path / "last" / "ckpt"))
    saved = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if "current_loss_scale" in k]
    assert saved == [before], (saved, before)
