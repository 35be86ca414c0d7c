"""Throughput on a fake clock, atomic checkpoints, the progress line, the LR logger."""

import json

import numpy as np
import pytest
from kerasopt.callbacks.checkpoint import (
    AtomicCheckpoint,
    find_checkpoint,
    restore_checkpoint,
    save_checkpoint,
    training_trackables,
)
from kerasopt.callbacks.lr_logger import LearningRateLogger
from kerasopt.callbacks.progress import format_logs
from kerasopt.callbacks.throughput import Throughput

from kerasopt._keras import keras
from kerasopt.errors import ConfigError


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_throughput_excludes_the_compile_step():
    clock = FakeClock()
    cb = Throughput(batch_size=10, clock=clock)
    cb.set_model(keras.Sequential([keras.layers.Dense(1)]))
    cb.on_train_begin()
    logs = {}
    cb.on_epoch_begin(0)
    for i, dt in enumerate([5.0, 0.1, 0.1, 0.1, 0.1]):  # first batch: 5 s of tracing/compiling
        cb.on_train_batch_begin(i)
        clock.t += dt
        cb.on_train_batch_end(i)
    cb.on_epoch_end(0, logs)
    assert logs["examples_per_sec"] == pytest.approx(40 / 0.4)
    assert logs["step_time_ms"] == pytest.approx(100.0)
    logs = {}
    cb.on_epoch_begin(1)  # second epoch: every batch counts
    for i in range(3):
        cb.on_train_batch_begin(i)
        clock.t += 0.2
        cb.on_train_batch_end(i)
    cb.on_epoch_end(1, logs)
    assert logs["examples_per_sec"] == pytest.approx(30 / 0.6)
    clock.t += 0.05  # the epoch-end work of the callbacks after this one (a checkpoint save)
    cb.on_train_end()
    assert cb.epoch_times == pytest.approx([5.4, 0.65])


def test_throughput_epoch_times_are_whole_epochs():
    """An epoch's time includes every epoch-end callback: it closes at the next epoch's start."""
    clock = FakeClock()
    cb = Throughput(batch_size=10, clock=clock)
    cb.set_model(keras.Sequential([keras.layers.Dense(1)]))
    cb.on_train_begin()
    for epoch, tail in enumerate([0.25, 0.125]):
        cb.on_epoch_begin(epoch)
        for i in range(2):
            cb.on_train_batch_begin(i)
            clock.t += 0.5
            cb.on_train_batch_end(i)
        cb.on_epoch_end(epoch, {})
        clock.t += tail  # later callbacks' on_epoch_end
    cb.on_train_end()
    assert cb.epoch_times == pytest.approx([1.25, 1.125])
    cb.on_train_begin()  # a second fit (a NaN retry) stopped mid-epoch: that epoch is not counted
    cb.on_epoch_begin(2)
    clock.t += 3.0
    cb.on_train_end()
    assert cb.epoch_times == pytest.approx([1.25, 1.125])


def test_format_logs_orders_training_keys_first():
    assert format_logs({"val_accuracy": 0.5, "lr": 0.001, "accuracy": 0.25, "loss": 1.0}) == (
        "loss 1.0000  accuracy 0.2500  lr 0.001  val_accuracy 0.5000")


def _compiled_model():
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    m.compile(keras.optimizers.Adam(0.1), "mse")
    m.fit(np.ones((4, 3)), np.zeros((4, 2)), verbose=0, epochs=2)
    return m


def test_checkpoint_restores_weights_and_optimizer_slots(tmp_path):
    m = _compiled_model()
    save_checkpoint(tmp_path, "last", training_trackables(m, []), {"epoch": 2})
    m2 = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    m2.compile(keras.optimizers.Adam(0.1), "mse")
    meta = restore_checkpoint(find_checkpoint(tmp_path), m2)
    assert meta["epoch"] == 2
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(m2.optimizer.iterations.numpy()) == 2
    for a, b in zip(m.optimizer.variables, m2.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_a_kill_during_the_swap_keeps_a_loadable_checkpoint(tmp_path):
    m = _compiled_model()
    save_checkpoint(tmp_path, "last", training_trackables(m, []), {"epoch": 1})
    # Simulate a kill after `last` was moved aside but before the new one was renamed in.
    (tmp_path / "last").rename(tmp_path / ".old-last")
    found = find_checkpoint(tmp_path)
    assert found == tmp_path / ".old-last"
    save_checkpoint(tmp_path, "last", training_trackables(m, []), {"epoch": 2})
    assert json.loads((tmp_path / "last" / "meta.json").read_text())["epoch"] == 2
    assert not (tmp_path / ".old-last").exists()
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("traced", [True, False])
def test_best_follows_the_monitor_and_a_missing_metric_is_named(tmp_path, traced):
    m = _compiled_model()
    cb = AtomicCheckpoint(tmp_path, monitor="val_accuracy", mode="auto", save_top_k=2, traced=traced)
    cb.set_model(m)
    assert cb.mode == "max"
    for epoch, acc in enumerate([0.5, 0.7, 0.6, float("nan")]):
        cb.on_epoch_begin(epoch)
        cb.on_epoch_end(epoch, {"val_accuracy": acc, "loss": 1.0})
    best = json.loads((tmp_path / "best" / "meta.json").read_text())
    last = json.loads((tmp_path / "last" / "meta.json").read_text())
    assert (best["epoch"], best["value"], last["epoch"], last["best_value"]) == (2, 0.7, 4, 0.7)
    assert sorted(p.name for p in tmp_path.glob("epoch-*")) == ["epoch-0002", "epoch-0003"]
    assert cb.top_k == [(0.7, 2), (0.6, 3)]
    # a non-finite loss is never saved over a good checkpoint
    cb.on_epoch_end(4, {"val_accuracy": 0.9, "loss": float("nan")})
    assert json.loads((tmp_path / "last" / "meta.json").read_text())["epoch"] == 4
    with pytest.raises(ConfigError) as e:
        cb.on_epoch_end(3, {"loss": 1.0, "accuracy": 0.1})
    assert e.value.key == "callbacks.checkpoint.monitor" and "accuracy, loss" in str(e.value)


def test_lr_logger_reports_the_scheduled_lr():
    from kerasopt.training.schedules import ConstantSchedule, LinearWarmup

    m = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    m.compile(keras.optimizers.SGD(LinearWarmup(ConstantSchedule(1.0), 4)), "mse")
    hist = m.fit(np.ones((8, 1)), np.ones((8, 1)), batch_size=4, epochs=3, verbose=0,
                 callbacks=[LearningRateLogger()])
    # 2 steps an epoch; the LR at the start of epochs 0, 1, 2 is at step 0, 2, 4
    assert hist.history["lr"] == pytest.approx([0.25, 0.75, 1.0])


@pytest.mark.parametrize("spe, expected", [(1, [(5, 5)]), (3, [(6, 6)]), (4, [(8, 8)])])
def test_mid_epoch_saves_count_batches_with_steps_per_execution(tmp_path, spe, expected):
    # 10 batches, every_n_steps 5. Keras calls the batch hook after the last batch of each execution:
    # spe 3 -> after batches 3, 6, 9, 10; the step count passes 5 at the call after batch 6, whose
    # checkpoint must say 6 batches done (not 2 calls). Batch 10 ends the epoch: saved at epoch end.
    keras.utils.set_random_seed(1)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    m.compile(keras.optimizers.SGD(0.01), "mse", steps_per_execution=spe)
    saves = []

    class Recording(AtomicCheckpoint):
        def save(self, which, epoch, batch, logs=None, value=None, eager=False):
            if which == "last" and batch:
                saves.append((batch, int(self.model.optimizer.iterations.numpy())))
            return super().save(which, epoch=epoch, batch=batch, logs=logs, value=value, eager=eager)

    cb = Recording(tmp_path, monitor="loss", mode="min", every_n_steps=5)
    m.fit(np.ones((40, 3)), np.zeros((40, 2)), batch_size=4, epochs=1, verbose=0, callbacks=[cb], shuffle=False)
    assert saves == expected
    assert json.loads((tmp_path / "last" / "meta.json").read_text())["epoch"] == 1
