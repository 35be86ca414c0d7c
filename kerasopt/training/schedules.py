"""Learning-rate schedules: functions of the optimizer step, serializable.

Epoch-based settings are converted to steps once, from the dataset size
(``steps_per_epoch`` counts optimizer steps, i.e. after gradient accumulation).
"""

from __future__ import annotations

import math

from kerasopt._keras import keras, tf
from kerasopt.config.schema import ExperimentConfig
from kerasopt.registry import Registry

SCHEDULES: Registry = Registry("schedule", key="train.schedule.type")


@keras.utils.register_keras_serializable(package="kerasopt")
class CosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """``lr(step) = peak * (alpha + (1 - alpha) * (1 + cos(pi * t)) / 2)`` with ``t = min(step, decay) / decay``.

    Example:
        >>> float(CosineDecay(1.0, 10)(5))
        0.5
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0) -> None:
        if decay_steps <= 0:
            raise ValueError(f"`decay_steps` must be > 0. Received: decay_steps={decay_steps}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"`alpha` must be in [0, 1]. Received: alpha={alpha}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        t = tf.minimum(step, self.decay_steps) / float(self.decay_steps)
        cosine = 0.5 * (1.0 + tf.cos(math.pi * t))
        return self.initial_learning_rate * (self.alpha + (1.0 - self.alpha) * cosine)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha}


@keras.utils.register_keras_serializable(package="kerasopt")
class ConstantSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A constant learning rate as a schedule, so warm-up can wrap it."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = float(learning_rate)

    def __call__(self, step):
        return tf.constant(self.learning_rate, tf.float32)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}


@keras.utils.register_keras_serializable(package="kerasopt")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up around any schedule (TF Model Garden's pattern).

    ``lr(step) = peak * (step + 1) / warmup_steps`` for ``step < warmup_steps``,
    then ``after(step - warmup_steps)``; ``peak`` is ``after(0)``. The ``+ 1``
    keeps the very first update from being a wasted zero-LR step.

    Example:
        >>> float(LinearWarmup(ConstantSchedule(1.0), 4)(1))
        0.5
    """

    def __init__(self, after: keras.optimizers.schedules.LearningRateSchedule, warmup_steps: int) -> None:
        if warmup_steps <= 0:
            raise ValueError(f"`warmup_steps` must be > 0. Received: warmup_steps={warmup_steps}")
        if isinstance(after, dict):
            after = keras.optimizers.schedules.deserialize(after)
        self.after = after
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.cast(self.after(0), tf.float32)
        warm = peak * (step + 1.0) / float(self.warmup_steps)
        rest = tf.cast(self.after(tf.maximum(step - self.warmup_steps, 0.0)), tf.float32)
        return tf.where(step < self.warmup_steps, warm, rest)

    def get_config(self) -> dict:
        return {"after": keras.optimizers.schedules.serialize(self.after), "warmup_steps": self.warmup_steps}


@SCHEDULES.register("constant")
def _constant(lr: float, total_steps: int, cfg: ExperimentConfig):
    return ConstantSchedule(lr)


@SCHEDULES.register("cosine")
def _cosine(lr: float, total_steps: int, cfg: ExperimentConfig):
    return CosineDecay(lr, max(1, total_steps), alpha=cfg.train.schedule.alpha)


def warmup_steps_for(cfg: ExperimentConfig, steps_per_epoch: int) -> int:
    """Warm-up length in optimizer steps (``warmup_steps`` wins over ``warmup_epochs``)."""
    s = cfg.train.schedule
    return int(s.warmup_steps or round(s.warmup_epochs * steps_per_epoch))


def build_schedule(cfg: ExperimentConfig, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule:
    """The configured schedule over ``epochs * steps_per_epoch`` optimizer steps, warm-up included.

    Example:
        >>> sched = build_schedule(cfg, steps_per_epoch=12)  # doctest: +SKIP
    """
    total = cfg.train.epochs * steps_per_epoch
    warm = warmup_steps_for(cfg, steps_per_epoch)
    if warm >= total:
        from kerasopt.errors import ConfigError

        raise ConfigError(
            f"warm-up of {warm} steps is not shorter than training ({total} steps)",
            key="train.schedule.warmup_steps",
        )
    base = SCHEDULES.get(cfg.train.schedule.type)(cfg.train.optimizer.learning_rate, total - warm, cfg)
    return LinearWarmup(base, warm) if warm else base
