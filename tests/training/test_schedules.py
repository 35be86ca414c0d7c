"""Schedules against closed-form values, warm-up composition, serialization, the schema and XLA."""

import math

import numpy as np
import pytest

from kerasopt._keras import keras
from kerasopt.config import load_config
from kerasopt.config.train_schema import SCHEDULES as SCHEMA_SCHEDULES
from kerasopt.errors import ConfigError
from kerasopt.training.schedules import (
    SCHEDULES,
    ConstantSchedule,
    CosineDecay,
    CosineDecayRestarts,
    ExponentialDecay,
    InverseSqrtDecay,
    LinearWarmup,
    MultiStepDecay,
    OneCycle,
    PolynomialDecay,
    ScaledSchedule,
    StepDecay,
    build_schedule,
)

BASE = {"data": {"source": "sklearn", "name": "digits"}}


def _cfg(schedule: dict, epochs: int = 10, lr: float = 1.0):
    return load_config({**BASE, "train": {"epochs": epochs, "optimizer": {"learning_rate": lr},
                                          "schedule": schedule}})


def _lr(s, step) -> float:
    return float(s(step))


def test_registry_matches_schema():
    assert sorted(SCHEDULES.names()) == sorted(SCHEMA_SCHEDULES)


@pytest.mark.parametrize("step, expected", [(0, 1.0), (25, 0.5 * (1 + math.cos(math.pi / 4))), (50, 0.5),
                                            (100, 0.0), (150, 0.0)])
def test_cosine_closed_form(step, expected):
    assert _lr(CosineDecay(1.0, 100), step) == pytest.approx(expected, abs=1e-6)


def test_cosine_floor():
    s = CosineDecay(2.0, 10, alpha=0.1)
    assert _lr(s, 10) == pytest.approx(0.2)
    assert _lr(s, 5) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))


def _half_cos(t: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * t))


# (schedule config, step, expected lr / peak) with peak 1, 10 optimizer steps per epoch, 10 epochs.
CLOSED_FORM = [
    ({"type": "constant"}, 73, 1.0),
    ({"type": "step", "step_epochs": 2}, 19, 1.0),
    ({"type": "step", "step_epochs": 2}, 20, 0.1),
    ({"type": "step", "step_epochs": 2}, 39, 0.1),
    ({"type": "step", "step_epochs": 2}, 40, 0.01),
    ({"type": "step", "step_epochs": 2, "gamma": 0.5}, 65, 0.125),
    ({"type": "multistep", "milestones": [2, 5]}, 19, 1.0),
    ({"type": "multistep", "milestones": [2, 5]}, 20, 0.1),
    ({"type": "multistep", "milestones": [2, 5]}, 49, 0.1),
    ({"type": "multistep", "milestones": [2, 5]}, 50, 0.01),
    ({"type": "multistep", "milestones": [2, 5]}, 99, 0.01),
    ({"type": "exponential", "decay_rate": 0.5}, 5, 0.5 ** 0.5),
    ({"type": "exponential", "decay_rate": 0.5}, 10, 0.5),
    ({"type": "exponential", "decay_rate": 0.5, "decay_epochs": 2}, 30, 0.5 ** 1.5),
    ({"type": "exponential", "decay_rate": 0.5, "staircase": True}, 19, 0.5),
    ({"type": "exponential", "decay_rate": 0.5, "staircase": True}, 20, 0.25),
    ({"type": "cosine"}, 50, 0.5),
    ({"type": "cosine", "alpha": 0.2}, 100, 0.2),
    # SGDR: cycles of 10, 20, 40 steps starting at 0, 10, 30; peaks 1, 0.5, 0.25.
    ({"type": "cosine", "restart_epochs": 1}, 5, 0.5),
    ({"type": "cosine", "restart_epochs": 1}, 9, _half_cos(0.9)),
    ({"type": "cosine", "restart_epochs": 1}, 10, 1.0),
    ({"type": "cosine", "restart_epochs": 1}, 25, 0.5),
    ({"type": "cosine", "restart_epochs": 1, "t_mul": 2, "m_mul": 0.5}, 9, _half_cos(0.9)),
    ({"type": "cosine", "restart_epochs": 1, "t_mul": 2, "m_mul": 0.5}, 10, 0.5),
    ({"type": "cosine", "restart_epochs": 1, "t_mul": 2, "m_mul": 0.5}, 20, 0.25),
    ({"type": "cosine", "restart_epochs": 1, "t_mul": 2, "m_mul": 0.5}, 29, 0.5 * _half_cos(19 / 20)),
    ({"type": "cosine", "restart_epochs": 1, "t_mul": 2, "m_mul": 0.5}, 30, 0.25),
    ({"type": "cosine", "restart_epochs": 1, "t_mul": 2, "m_mul": 0.5}, 70, 0.125),
    ({"type": "cosine", "restart_epochs": 1, "t_mul": 2, "alpha": 0.1}, 20, 0.1 + 0.9 * 0.5),
    ({"type": "polynomial"}, 25, 0.75),
    ({"type": "polynomial", "power": 2, "alpha": 0.1}, 50, 0.9 * 0.25 + 0.1),
    ({"type": "polynomial", "power": 2, "alpha": 0.1}, 100, 0.1),
    # one_cycle over 100 steps: 1/25 at 0, the peak at 30, 1/(25 * 1e4) at 100.
    ({"type": "one_cycle", "pct_start": 0.3}, 0, 1 / 25),
    ({"type": "one_cycle", "pct_start": 0.3}, 15, 1 / 25 + (1 - 1 / 25) * 0.5),
    ({"type": "one_cycle", "pct_start": 0.3}, 30, 1.0),
    ({"type": "one_cycle", "pct_start": 0.3}, 65, 1 / 25e4 + (1 - 1 / 25e4) * 0.5),
    ({"type": "one_cycle", "pct_start": 0.3}, 100, 1 / 25e4),
    ({"type": "one_cycle", "div_factor": 10, "final_div_factor": 100}, 100, 1 / 1000),
    # inverse_sqrt, timescale 1 epoch = 10 steps: sqrt(10) / sqrt(max(step, 10)).
    ({"type": "inverse_sqrt"}, 0, 1.0),
    ({"type": "inverse_sqrt"}, 10, 1.0),
    ({"type": "inverse_sqrt"}, 40, 0.5),
    ({"type": "inverse_sqrt", "timescale_epochs": 0.4}, 64, 0.25),
    ({"type": "reduce_on_plateau"}, 99, 1.0),
]


@pytest.mark.parametrize("schedule, step, expected", CLOSED_FORM)
def test_built_schedules_closed_form(schedule, step, expected):
    s = build_schedule(_cfg(schedule, lr=0.4), steps_per_epoch=10)
    assert isinstance(s, ScaledSchedule)
    assert _lr(s, step) == pytest.approx(0.4 * expected, rel=1e-5, abs=1e-9)


def test_polynomial_end_and_restart_defaults():
    assert _lr(PolynomialDecay(1.0, 10, power=2.0), 5) == pytest.approx(0.25)
    assert _lr(CosineDecayRestarts(1.0, 10), 20) == pytest.approx(1.0)
    assert _lr(InverseSqrtDecay(2.0, 100), 2500) == pytest.approx(0.4)


WARMUP = [
    ({"type": "constant"}, 1.0),
    ({"type": "step", "step_epochs": 2}, 1.0),
    ({"type": "multistep", "milestones": [2, 5]}, 1.0),
    ({"type": "exponential", "decay_rate": 0.5}, 1.0),
    ({"type": "cosine"}, 1.0),
    ({"type": "cosine", "restart_epochs": 1}, 1.0),
    ({"type": "polynomial", "power": 2}, 1.0),
    ({"type": "one_cycle"}, 1 / 25),
    ({"type": "inverse_sqrt"}, 1.0),
    ({"type": "reduce_on_plateau"}, 1.0),
]


@pytest.mark.parametrize("schedule, start", WARMUP)
def test_warmup_composes_with_every_type(schedule, start):
    """5 warm-up steps ramp to the schedule's step-0 value, which it holds at the boundary."""
    s = build_schedule(_cfg({**schedule, "warmup_steps": 5}), steps_per_epoch=10)
    assert isinstance(s.schedule, LinearWarmup) and s.schedule.warmup_steps == 5
    assert _lr(s, 0) == pytest.approx(start / 5)
    assert _lr(s, 2) == pytest.approx(3 * start / 5)
    assert _lr(s, 4) == pytest.approx(start)
    assert _lr(s, 5) == pytest.approx(start)


def test_warmup_then_durations_start_after_it_and_drops_count_from_step_zero():
    cos = build_schedule(_cfg({"type": "cosine", "warmup_epochs": 1}), steps_per_epoch=12)
    assert cos.schedule.warmup_steps == 12 and cos.schedule.after.decay_steps == 108
    assert _lr(cos, 11) == pytest.approx(1.0)
    assert _lr(cos, 12 + 54) == pytest.approx(0.5)
    # step / multistep drops land on epochs counted from the start of training, warm-up or not.
    step = build_schedule(_cfg({"type": "step", "step_epochs": 2, "warmup_steps": 5}), steps_per_epoch=10)
    multi = build_schedule(_cfg({"type": "multistep", "milestones": [2], "warmup_steps": 5}), steps_per_epoch=10)
    for s in (step, multi):
        assert [_lr(s, i) for i in (19, 20)] == pytest.approx([1.0, 0.1])
    # exponential runs from the warm-up's end: one decay_epochs later the LR has halved.
    exp = build_schedule(_cfg({"type": "exponential", "decay_rate": 0.5, "warmup_steps": 5}), steps_per_epoch=10)
    assert _lr(exp, 15) == pytest.approx(0.5)


def test_warmup_then_cosine_by_hand():
    s = LinearWarmup(CosineDecay(0.4, 8), 4)
    got = [_lr(s, i) for i in range(13)]
    want = [0.1, 0.2, 0.3, 0.4] + [0.4 * 0.5 * (1 + math.cos(math.pi * i / 8)) for i in range(9)]
    assert got == pytest.approx(want, abs=1e-6)


def test_scale_by_world_size():
    on = _cfg({"type": "cosine", "scale_by_world_size": True}, lr=0.1)
    off = _cfg({"type": "cosine"}, lr=0.1)
    assert _lr(build_schedule(on, 10, world_size=4), 0) == pytest.approx(0.4)
    assert _lr(build_schedule(off, 10, world_size=4), 0) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="Received: world_size=0"):
        build_schedule(off, 10, world_size=0)


ROUND_TRIP = [
    ConstantSchedule(0.1),
    StepDecay(0.3, 7, 0.5, start_step=3),
    MultiStepDecay(0.3, [5, 9], 0.2),
    ExponentialDecay(0.3, 4, 0.7, staircase=True),
    CosineDecay(0.3, 50, alpha=0.05),
    CosineDecayRestarts(0.3, 6, t_mul=2.0, m_mul=0.8, alpha=0.1),
    PolynomialDecay(0.3, 40, power=0.5, alpha=0.1),
    OneCycle(0.3, 60, pct_start=0.4, div_factor=10.0, final_div_factor=100.0),
    InverseSqrtDecay(0.3, 8),
    LinearWarmup(CosineDecay(0.3, 50, alpha=0.05), 7),
]


@pytest.mark.parametrize("sched", ROUND_TRIP, ids=lambda s: type(s).__name__)
def test_serialization_round_trip(sched):
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(sched))
    assert type(again) is type(sched) and again.get_config() == sched.get_config()
    for step in (0, 3, 7, 20, 57, 80):
        assert _lr(again, step) == pytest.approx(_lr(sched, step))


def test_scaled_schedule_round_trip_keeps_the_changed_scale():
    s = ScaledSchedule(LinearWarmup(StepDecay(0.2, 10, 0.5), 3))
    s.set_scale(0.25)
    config = keras.optimizers.schedules.serialize(s)
    assert config["config"]["scale"] == pytest.approx(0.25)
    again = keras.optimizers.schedules.deserialize(config)
    assert isinstance(again, ScaledSchedule) and isinstance(again.schedule, LinearWarmup)
    assert float(again.scale.numpy()) == pytest.approx(0.25)
    for step in (0, 2, 3, 15):
        assert _lr(again, step) == pytest.approx(_lr(s, step))
    assert _lr(again, 15) == pytest.approx(0.25 * 0.2 * 0.5)
    again.set_scale(1.0)  # the copy owns its own variable
    assert float(s.scale.numpy()) == pytest.approx(0.25)


def test_scaled_schedule_trains_with_the_new_scale_under_xla():
    """SGD on ``|w * 1 - 0|``: the gradient is exactly 1, so each step moves ``w`` by the LR."""
    sched = ScaledSchedule(ConstantSchedule(0.05))
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model.compile(keras.optimizers.SGD(sched), "mae", jit_compile=True)
    weights = []

    class Halve(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights.append(float(self.model.get_weights()[0][0, 0]))
            sched.set_scale(float(sched.scale.numpy()) / 2)

    model.fit(np.ones((4, 1), "float32"), np.zeros((4, 1), "float32"), batch_size=1, epochs=3, shuffle=False,
              verbose=0, callbacks=[Halve()])
    assert model._jit_compile
    # 4 steps per epoch at LR 0.05, then 0.025, then 0.0125.
    assert weights == pytest.approx([1 - 0.2, 0.8 - 0.1, 0.7 - 0.05], abs=1e-6)


def test_invalid_arguments_end_with_received_value():
    cases = [
        (lambda: CosineDecay(1.0, 0), "Received: decay_steps=0"),
        (lambda: LinearWarmup(ConstantSchedule(1.0), 0), "Received: warmup_steps=0"),
        (lambda: StepDecay(1.0, 0, 0.1), "Received: step_size=0"),
        (lambda: MultiStepDecay(1.0, [5, 5], 0.1), r"Received: boundaries=\[5, 5\]"),
        (lambda: ExponentialDecay(1.0, 10, -0.5), "Received: decay_rate=-0.5"),
        (lambda: CosineDecayRestarts(1.0, 10, t_mul=0.5), "Received: t_mul=0.5"),
        (lambda: PolynomialDecay(1.0, 10, alpha=2.0), "Received: alpha=2.0"),
        (lambda: OneCycle(1.0, 10, pct_start=1.0), "Received: pct_start=1.0"),
        (lambda: InverseSqrtDecay(1.0, 0), "Received: timescale=0"),
        (lambda: ScaledSchedule(ConstantSchedule(1.0), scale=0.0), "Received: scale=0.0"),
        (lambda: ScaledSchedule(ConstantSchedule(1.0)).set_scale(float("nan")), "Received: scale=nan"),
    ]
    for make, fragment in cases:
        with pytest.raises(ValueError, match=fragment):
            make()


@pytest.mark.parametrize(
    "schedule, key, fragment",
    [
        ({"type": "constant", "alpha": 0.1}, "alpha", "used by: cosine, polynomial"),
        ({"type": "constant", "gamma": 0.5}, "gamma", "used by: step, multistep"),
        ({"type": "cosine", "power": 2}, "power", "used by: polynomial"),
        ({"type": "step", "step_epochs": 2, "milestones": [3]}, "milestones", "used by: multistep"),
        ({"type": "cosine", "factor": 0.5}, "factor", "used by: reduce_on_plateau"),
        ({"type": "polynomial", "monitor": "val_accuracy"}, "monitor", "used by: reduce_on_plateau"),
        ({"type": "one_cycle", "decay_rate": 0.5}, "decay_rate", "used by: exponential"),
        ({"type": "step"}, "step_epochs", "needs 'step_epochs'"),
        ({"type": "multistep"}, "milestones", "needs a non-empty list"),
        ({"type": "multistep", "milestones": [5, 3]}, "milestones", "strictly increasing. Received: [5.0, 3.0]"),
        ({"type": "exponential"}, "decay_rate", "needs 'decay_rate'"),
        ({"type": "cosine", "t_mul": 2}, "t_mul", "needs 'restart_epochs'"),
        ({"type": "step", "step_epochs": 2, "gamma": 0}, "gamma", "Received: 0"),
        ({"type": "step", "step_epochs": -1}, "step_epochs", "Received: -1"),
        ({"type": "one_cycle", "pct_start": 1.5}, "pct_start", "Received: 1.5"),
        ({"type": "cosine", "restart_epochs": 0}, "restart_epochs", "Received: 0"),
        ({"type": "reduce_on_plateau", "mode": "maximum"}, "mode", "Received: 'maximum'"),
        ({"type": "reduce_on_plateau", "factor": 1.0}, "factor", "Received: 1.0"),
        ({"type": "reduce_on_plateau", "patience": -1}, "patience", "Received: -1"),
        ({"type": "cosin"}, "type", "Did you mean 'cosine'?"),
        ({"warmup_epochs": 1, "warmup_steps": 5}, "warmup_steps", "not both"),
    ],
)
def test_schema_errors_name_the_key(schedule, key, fragment):
    with pytest.raises(ConfigError) as exc:
        _cfg(schedule)
    assert exc.value.key == f"train.schedule.{key}", str(exc.value)
    assert fragment in str(exc.value)


def test_schedule_dump_round_trips_and_holds_only_its_types_keys():
    # train.schedule is a union by type: a dump carries the chosen type's keys, and another
    # type's key is an error even at its default.
    cfg = _cfg({"type": "step", "step_epochs": 2})
    dumped = cfg.train.schedule.model_dump()
    assert set(dumped) == {"type", "gamma", "step_epochs", "warmup_epochs", "warmup_steps", "scale_by_world_size"}
    assert _cfg(dumped).train.schedule == cfg.train.schedule
    with pytest.raises(ConfigError, match="does not apply to type 'constant'"):
        _cfg({"type": "constant", "gamma": 0.1})


@pytest.mark.parametrize(
    "schedule, key, fragment",
    [
        ({"type": "multistep", "milestones": [2, 10]}, "milestones", "must be < train.epochs (10)"),
        ({"type": "multistep", "milestones": [1], "warmup_epochs": 1.5}, "milestones", "after the warm-up"),
        ({"type": "step", "step_epochs": 1, "warmup_epochs": 1}, "step_epochs", "after the warm-up"),
        ({"type": "reduce_on_plateau", "min_lr": 1.0}, "min_lr", "Received: 1.0"),
        ({"type": "cosine", "warmup_steps": 100}, "warmup_steps", "not shorter than training"),
    ],
)
def test_build_schedule_cross_checks(schedule, key, fragment):
    with pytest.raises(ConfigError) as exc:
        build_schedule(_cfg(schedule, lr=0.5), steps_per_epoch=10)
    assert exc.value.key == f"train.schedule.{key}"
    assert fragment in str(exc.value)
