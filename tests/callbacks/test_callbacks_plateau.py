"""ReduceLROnPlateau: a reduction table (Lightning style), resume state, errors and a real fit."""

import copy
import json

import numpy as np
import pytest
from kerasopt.callbacks.plateau import ReduceLROnPlateau, find_scaled_schedule

from kerasopt._keras import keras
from kerasopt.errors import ConfigError
from kerasopt.training.schedules import ConstantSchedule, CosineDecay, LinearWarmup, ScaledSchedule


def _drive(cb, losses, start_epoch=0, key="val_loss"):
    """Feed one monitored value per epoch; return the LR scale after each epoch."""
    scales = []
    for i, loss in enumerate(losses, start=start_epoch):
        cb.on_epoch_end(i, {"loss": 0.0, key: loss})
        scales.append(float(cb.schedule.scale.numpy()))
    return scales


def _plateau(base_lr=1.0, **kwargs):
    cb = ReduceLROnPlateau(ScaledSchedule(ConstantSchedule(base_lr)), **{"min_delta": 0.0, **kwargs})
    cb.on_train_begin()
    return cb


@pytest.mark.parametrize(
    "val_losses, patience, cooldown, factor, expected_scales",
    [
        ([1.0, 0.9, 0.8, 0.7], 1, 0, 0.5, [1, 1, 1, 1]),  # always improving
        ([1.0, 1.0, 1.0, 1.0, 1.0], 1, 0, 0.5, [1, 0.5, 0.25, 0.125, 0.0625]),
        ([1.0, 1.0, 1.0, 1.0, 1.0], 2, 0, 0.5, [1, 1, 0.5, 0.5, 0.25]),
        ([1.0, 2.0, 0.5, 3.0], 0, 0, 0.1, [1, 0.1, 0.1, 0.01]),  # patience 0: every bad epoch
        # cooldown 2: after a reduction one epoch is skipped (Keras counts the cooldown down first).
        ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 1, 2, 0.5, [1, 0.5, 0.5, 0.25, 0.25, 0.125]),
        # Keras quirk kept: cooldown 1 is used up on the epoch right after the reduction.
        ([1.0, 1.0, 1.0, 1.0], 1, 1, 0.5, [1, 0.5, 0.25, 0.125]),
        ([3.0, 2.0, 2.5, 2.5, 1.0, 1.5, 1.5, 1.5], 2, 0, 0.1, [1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01]),
        ([1.0, 1.0, 1.0, 0.5, 0.6, 0.6, 0.6], 2, 1, 0.5, [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]),
    ],
)
def test_reduction_table(val_losses, patience, cooldown, factor, expected_scales):
    cb = _plateau(patience=patience, cooldown=cooldown, factor=factor)
    assert _drive(cb, val_losses) == pytest.approx(expected_scales, rel=1e-6)


def test_min_lr_floors_the_effective_lr():
    cb = _plateau(base_lr=0.4, patience=1, factor=0.5, min_lr=0.08)
    # LR 0.4 -> 0.2 -> 0.1 -> 0.08 (floor) -> stays; scale = LR / 0.4.
    assert _drive(cb, [1.0] * 6) == pytest.approx([1, 0.5, 0.25, 0.2, 0.2, 0.2], rel=1e-6)
    assert cb.wait == 2  # at the floor nothing is reduced, so the counter is not reset (Keras)


def test_min_lr_uses_the_schedule_value_at_the_current_step():
    sched = ScaledSchedule(LinearWarmup(ConstantSchedule(1.0), 4))
    cb = ReduceLROnPlateau(sched, patience=0, factor=0.1, min_lr=0.05, min_delta=0.0)
    cb.on_train_begin()
    _drive(cb, [1.0, 1.0])  # no model: step 0, where warm-up gives 0.25; 0.25 * 0.1 < 0.05
    assert float(sched.scale.numpy()) == pytest.approx(0.2)


@pytest.mark.parametrize("monitor, mode, values, expected", [
    ("val_accuracy", "auto", [0.5, 0.6, 0.6, 0.6], [1, 1, 0.1, 0.01]),
    ("val_auc", "auto", [0.9, 0.8, 0.95], [1, 0.1, 0.1]),
    ("val_loss", "auto", [0.5, 0.6, 0.4], [1, 0.1, 0.1]),
    ("val_loss", "max", [0.5, 0.6, 0.4], [1, 1, 0.1]),
    ("val_accuracy", "min", [0.5, 0.6, 0.4], [1, 0.1, 0.1]),
])
def test_mode(monitor, mode, values, expected):
    cb = _plateau(monitor=monitor, mode=mode, patience=0)
    assert _drive(cb, values, key=monitor) == pytest.approx(expected, rel=1e-6)


def test_min_delta():
    cb = _plateau(patience=0, min_delta=0.1)
    # 0.95 is not 0.1 better than 1.0; 0.85 is.
    assert _drive(cb, [1.0, 0.95, 0.85]) == pytest.approx([1, 0.1, 0.1], rel=1e-6)


def test_state_round_trip_mid_plateau_continues_identically():
    losses = [1.0, 0.8, 0.9, 0.9, 0.85, 0.9, 0.7, 0.9, 0.9, 0.9, 0.9, 0.9]
    kwargs = dict(patience=3, cooldown=2, factor=0.5, min_delta=0.0, min_lr=0.1)
    full = _plateau(**kwargs)
    want = _drive(full, losses)

    first = _plateau(**kwargs)
    got = _drive(first, losses[:4])  # stops with wait == 2, one epoch before a reduction
    state = json.loads(json.dumps(first.get_state()))
    assert state["wait"] == 2 and state["best"] == pytest.approx(0.8)

    resumed = ReduceLROnPlateau(ScaledSchedule(ConstantSchedule(1.0)), **kwargs)
    resumed.set_state(state)
    resumed.on_train_begin()  # fit begins after the restore; it must not wipe the counters
    got += _drive(resumed, losses[4:], start_epoch=4)
    assert got == pytest.approx(want, rel=1e-6)
    assert resumed.get_state() == pytest.approx(full.get_state())
    assert min(want) < 1.0  # the table crossed at least one reduction after the split


def test_counters_span_fit_segments():
    """A run is several fit() calls (rest of an interrupted epoch, NaN retries): no reset between them."""
    whole = _plateau(patience=3, factor=0.5)
    split = _plateau(patience=3, factor=0.5)
    losses = [1.0, 1.0, 1.0, 1.0, 1.0]
    want = _drive(whole, losses)
    got = _drive(split, losses[:2])
    split.on_train_begin()
    got += _drive(split, losses[2:], start_epoch=2)
    assert got == pytest.approx(want) and got[3] == pytest.approx(0.5)


def test_state_before_any_epoch_is_json_and_restores_a_scale_before_fit():
    cb = _plateau()
    state = cb.get_state()
    assert state == {"wait": 0, "cooldown_counter": 0, "best": None, "scale": 1.0}
    json.dumps(state, allow_nan=False)
    fresh = ReduceLROnPlateau()  # no schedule yet: the scale waits for on_train_begin
    fresh.set_state({**state, "scale": 0.25, "wait": 1})
    assert fresh.get_state()["scale"] == 0.25
    sched = ScaledSchedule(ConstantSchedule(1.0))
    fresh.schedule = sched
    fresh.on_train_begin()
    assert float(sched.scale.numpy()) == pytest.approx(0.25) and fresh.wait == 1


def test_missing_monitor_names_the_available_metrics():
    cb = _plateau(monitor="val_acc")
    with pytest.raises(ConfigError) as exc:
        cb.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.0, "val_accuracy": 0.5})
    assert exc.value.key == "train.schedule.monitor"
    assert "'val_acc'" in str(exc.value) and "loss, val_accuracy, val_loss" in str(exc.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"factor": 1.0}, "Received: factor=1.0"),
    ({"factor": 0.0}, "Received: factor=0.0"),
    ({"patience": -1}, "Received: patience=-1"),
    ({"cooldown": -2}, "Received: cooldown=-2"),
    ({"min_lr": -0.1}, "Received: min_lr=-0.1"),
    ({"mode": "maximum"}, "Received: mode='maximum'"),
])
def test_invalid_arguments(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        ReduceLROnPlateau(**kwargs)


def test_optimizer_without_scaled_schedule_is_refused():
    with pytest.raises(ValueError, match="Received: CosineDecay"):
        find_scaled_schedule(keras.optimizers.SGD(CosineDecay(0.1, 10)))


def test_fit_finds_the_optimizer_schedule_and_survives_deepcopy():
    """A stalled val_loss halves the LR; SGD on |w| moves w by exactly the LR per step."""
    cb = copy.deepcopy(ReduceLROnPlateau(patience=1, factor=0.5, min_delta=0.0))
    sched = ScaledSchedule(ConstantSchedule(0.05))
    opt = keras.optimizers.SGD(sched)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model.compile(opt, "mae", jit_compile=True)
    weights = []

    class Stalled(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = 1.0
            weights.append(float(self.model.get_weights()[0][0, 0]))

    model.fit(np.ones((4, 1), "float32"), np.zeros((4, 1), "float32"), batch_size=1, epochs=4, shuffle=False,
              verbose=0, callbacks=[Stalled(), cb])
    assert cb.schedule is sched and find_scaled_schedule(opt) is sched
    # LR per epoch: 0.05, 0.05 (epoch 1 ends with a reduction), 0.025, 0.0125; 4 steps each.
    assert weights == pytest.approx([0.8, 0.6, 0.5, 0.45], abs=1e-6)
    assert cb.get_state()["scale"] == pytest.approx(0.125)
