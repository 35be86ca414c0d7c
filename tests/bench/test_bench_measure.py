"""StepTimer and EpochTimer inside a real ``model.fit`` (tiny model on iris), driven by a fake clock."""

import numpy as np
import pytest
from sklearn.datasets import load_iris

from kerasopt._keras import keras
from kerasopt.bench.measure import EpochTimer, StepTimer


class Clock:
    """Returns the next scripted time at each call and counts the calls."""

    def __init__(self, times):
        self.times = list(times)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return self.times.pop(0)


@pytest.fixture(scope="module")
def iris():
    x, y = load_iris(return_X_y=True)
    return x.astype("float32")[:128], y.astype("int32")[:128]  # 128 = 8 batches of 16


def tiny_model(spe=1):
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", steps_per_execution=spe)
    return m


def test_step_timer_excludes_warmup_steps_in_fit(iris):
    x, y = iris
    # 2 epochs of 4 steps. Epoch 1: begin 0, ends 10 (compile), 11, 13, 14; epoch 2: begin 100, ends 102, 103, 105, 106.
    clock = Clock([0, 10, 11, 13, 14, 100, 102, 103, 105, 106])
    timer = StepTimer(batch_size=32, warmup=1, clock=clock)
    tiny_model().fit(x, y, batch_size=32, epochs=2, shuffle=False, verbose=0, callbacks=[timer])
    assert clock.calls == 10  # one reading per step end, plus one at each epoch's first step
    assert timer.recorder.warmup_s == 10
    assert timer.recorder.durations == [1, 2, 1, 2, 1, 2, 1]
    s = timer.stats()
    assert (s.steps, s.examples, s.warmup_steps) == (7, 224, 1)
    assert s.examples_per_sec == pytest.approx(224 / 10)
    assert s.median_ms == pytest.approx(1000.0)
    assert s.iqr_ms == pytest.approx(1000.0)  # p25 = 1 s, p75 = 2 s


def test_step_timer_counts_steps_per_execution(iris):
    x, y = iris
    # steps_per_execution=2: 4 batches of 32 per epoch are 2 calls of the train function
    clock = Clock([0, 5, 7, 9])
    timer = StepTimer(batch_size=32, warmup=1, clock=clock)
    tiny_model(spe=2).fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[timer])
    s = timer.stats()
    assert s.steps == 1 and s.examples == 64  # one measured call = 2 optimizer steps of 32
    assert s.examples_per_sec == pytest.approx(64 / 2)


def test_step_timer_checks_batch_size():
    with pytest.raises(ValueError, match="batch_size=0"):
        StepTimer(batch_size=0)


def test_epoch_timer_has_no_batch_hooks_and_splits_validation(iris):
    x, y = iris
    timer = EpochTimer(clock=Clock([0, 0, 3, 4, 4, 6, 7]))
    assert not timer._implements_train_batch_hooks()  # adds no per-step work to the fit it times
    tiny_model().fit(x[:96], y[:96], batch_size=32, epochs=2, validation_data=(x[96:], y[96:]), verbose=0,
                     callbacks=[timer])
    recs = timer.recorder.epochs
    assert [(e.train_s, e.epoch_s, e.since_start_s) for e in recs] == [(3, 4, 4), (2, 3, 7)]
    assert set(recs[0].logs) == {"loss", "val_loss"}
    assert np.isfinite(recs[1].logs["val_loss"])


def test_fit_runs_extra_callbacks_after_its_own(tmp_path):
    import kerasopt

    timer = EpochTimer()
    cfg = {"name": "t", "runs_root": str(tmp_path), "report": False, "export": {"formats": ["keras"]},
           "data": {"source": "sklearn", "name": "iris", "batch_size": 16, "normalize": "standard"},
           "model": {"type": "mlp", "hidden_units": [8]},
           "train": {"epochs": 2, "verbose": 0, "jit_compile": False},
           "callbacks": {"tensorboard": {"enabled": False}}}
    result = kerasopt.fit(cfg, print_fn=lambda s: None, callbacks=[timer])
    recs = timer.recorder.epochs
    assert [e.epoch for e in recs] == [0, 1]
    assert all(0 < e.train_s < e.epoch_s for e in recs)  # validation and epoch-end callbacks come after
    # the logs it saw were complete: kerasopt's own callbacks (throughput, LR) had already run
    assert {"val_accuracy", "examples_per_sec", "lr"} <= set(recs[1].logs)
    assert recs[1].logs["val_accuracy"] == pytest.approx(result.history["val_accuracy"][1])
