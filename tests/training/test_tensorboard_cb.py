"""kerasopt's TensorBoard: no per-batch summary calls when it writes per epoch; the same files otherwise."""

import numpy as np
import pytest
from kerasopt.callbacks.tensorboard import TensorBoard

from kerasopt._keras import keras


def _fit_counting(monkeypatch, tmp_path, cls, update_freq):
    from tf_keras.src import callbacks as keras_callbacks  # its `tf` is tensorflow.compat.v2

    summary = keras_callbacks.tf.summary
    names = []
    real = summary.scalar

    def counting(name, *args, **kwargs):
        names.append(name)
        return real(name, *args, **kwargs)

    with monkeypatch.context() as patch:  # undone on return: a second call counts only its own fit
        patch.setattr(summary, "scalar", counting)
        _fit(tmp_path, cls, update_freq)
    return names


def _fit(tmp_path, cls, update_freq):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = np.random.RandomState(0).rand(40, 4), np.arange(40) % 3
    # A second callback with a batch hook makes Keras call every callback's batch hooks, as kerasopt's do.
    busy = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: None)
    m.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0,
          callbacks=[busy, cls(log_dir=str(tmp_path / "tb"), update_freq=update_freq)])


def test_epoch_updates_make_no_per_batch_summary_calls(monkeypatch, tmp_path):
    ours = _fit_counting(monkeypatch, tmp_path / "a", TensorBoard, "epoch")
    theirs = _fit_counting(monkeypatch, tmp_path / "b", keras.callbacks.TensorBoard, "epoch")
    # Keras' callback calls scalar("batch_loss"/"batch_accuracy") after each of the 2 x 5 batches (no-ops).
    assert sum(n.startswith("batch_") for n in theirs) == 10 * 2
    assert not any(n.startswith("batch_") for n in ours)
    # What is written per epoch is the same.
    assert sorted(n for n in ours) == sorted(n for n in theirs if not n.startswith("batch_"))
    assert "epoch_loss" in ours and "epoch_accuracy" in ours


@pytest.mark.parametrize("freq", ["batch", 2])
def test_batch_updates_still_write_batch_summaries(monkeypatch, tmp_path, freq):
    ours = _fit_counting(monkeypatch, tmp_path, TensorBoard, freq)
    assert sum(n == "batch_loss" for n in ours) == 10
