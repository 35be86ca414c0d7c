"""Schedules against closed-form values, and a serialization round trip."""

import math

import pytest

from kerasopt._keras import keras
from kerasopt.config import load_config
from kerasopt.training.schedules import ConstantSchedule, CosineDecay, LinearWarmup, build_schedule


@pytest.mark.parametrize("step, expected", [(0, 1.0), (25, 0.5 * (1 + math.cos(math.pi / 4))), (50, 0.5),
                                            (100, 0.0), (150, 0.0)])
def test_cosine_closed_form(step, expected):
    assert float(CosineDecay(1.0, 100)(step)) == pytest.approx(expected, abs=1e-6)


def test_cosine_floor():
    s = CosineDecay(2.0, 10, alpha=0.1)
    assert float(s(10)) == pytest.approx(0.2)
    assert float(s(5)) == pytest.approx(2.0 * (0.1 + 0.9 * 0.5))


def test_warmup_then_cosine():
    s = LinearWarmup(CosineDecay(0.4, 8), 4)
    got = [float(s(i)) for i in range(13)]
    want = [0.1, 0.2, 0.3, 0.4] + [0.4 * 0.5 * (1 + math.cos(math.pi * i / 8)) for i in range(9)]
    assert got == pytest.approx(want, abs=1e-6)


def test_serialization_round_trip():
    s = LinearWarmup(CosineDecay(0.3, 50, alpha=0.05), 7)
    again = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert isinstance(again, LinearWarmup) and isinstance(again.after, CosineDecay)
    for step in (0, 3, 7, 20, 57, 80):
        assert float(again(step)) == pytest.approx(float(s(step)))
    c = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(ConstantSchedule(0.1)))
    assert float(c(10)) == pytest.approx(0.1)


def test_build_schedule_converts_epochs_to_steps():
    cfg = load_config({"data": {"name": "digits"}, "train": {"epochs": 10, "optimizer": {"learning_rate": 1.0},
                                                             "schedule": {"type": "cosine", "warmup_epochs": 1}}})
    s = build_schedule(cfg, steps_per_epoch=12)
    assert isinstance(s, LinearWarmup) and s.warmup_steps == 12 and s.after.decay_steps == 108
    assert float(s(11)) == pytest.approx(1.0)
    assert float(s(12 + 54)) == pytest.approx(0.5)


def test_invalid_arguments_end_with_received_value():
    with pytest.raises(ValueError, match="Received: decay_steps=0"):
        CosineDecay(1.0, 0)
    with pytest.raises(ValueError, match="Received: warmup_steps=0"):
        LinearWarmup(ConstantSchedule(1.0), 0)
