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


def _scalars(folder):
    """``{(subfolder, tag, step): value}`` of every scalar summary in a TensorBoard folder's event files."""
    from kerasopt._keras import tf

    out = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name == "scalars":
                    out[(events.parent.name, v.tag, event.step)] = float(tf.make_ndarray(v.tensor))
    return out


def test_epoch_updates_make_no_per_batch_summary_calls(monkeypatch, tmp_path):
    ours = _fit_counting(monkeypatch, tmp_path / "a", TensorBoard, "epoch")
    theirs = _fit_counting(monkeypatch, tmp_path / "b", keras.callbacks.TensorBoard, "epoch")
    # Keras' callback calls scalar("batch_loss"/"batch_accuracy") after each of the 2 x 5 batches (no-ops).
    assert sum(n.startswith("batch_") for n in theirs) == 10 * 2
    assert not any(n.startswith("batch_") for n in ours)
    # (The epoch scalars go through a traced function: what they write is compared file to file below.)


def test_the_event_files_hold_the_same_scalars_as_keras(tmp_path):
    _fit(tmp_path / "a", TensorBoard, "epoch")
    _fit(tmp_path / "b", keras.callbacks.TensorBoard, "epoch")
    ours, theirs = _scalars(tmp_path / "a" / "tb"), _scalars(tmp_path / "b" / "tb")
    # 2 epochs x (loss, accuracy) in train/; 2 x (loss, accuracy) x (epoch_*, evaluation_*) in validation/
    assert len(theirs) == 2 * 2 + 2 * 2 * 2
    assert ("validation", "evaluation_loss_vs_iterations", 10) in theirs
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize("freq", ["batch", 2])
def test_batch_updates_still_write_batch_summaries(monkeypatch, tmp_path, freq):
    ours = _fit_counting(monkeypatch, tmp_path, TensorBoard, freq)
    assert sum(n == "batch_loss" for n in ours) == 10


def test_a_second_fit_writes_through_the_new_writers(tmp_path):
    """Keras closes its writers at the end of a fit and opens new ones in the next (kerasopt's NaN retries and
    resumed partial epochs call fit again): the traced write must not keep the closed writer."""
    def two_fits(folder, cls):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        m.compile(keras.optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 5, 0.5)),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
        x, y = np.random.RandomState(0).rand(40, 4), np.arange(40) % 3
        cb = cls(log_dir=str(folder), update_freq="epoch")
        m.fit(x, y, batch_size=8, epochs=2, validation_data=(x, y), verbose=0, callbacks=[cb])
        m.fit(x, y, batch_size=8, epochs=4, initial_epoch=2, validation_data=(x, y), verbose=0, callbacks=[cb])

    two_fits(tmp_path / "a", TensorBoard)
    two_fits(tmp_path / "b", keras.callbacks.TensorBoard)
    ours, theirs = _scalars(tmp_path / "a"), _scalars(tmp_path / "b")
    assert ("train", "epoch_learning_rate", 3) in theirs and ("train", "epoch_loss", 3) in theirs
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, rel=1e-6), key
