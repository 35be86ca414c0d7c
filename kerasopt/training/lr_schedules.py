"""The schedule classes: functions of the optimizer step, serializable with ``get_config``.

They only ever see steps; :mod:`kerasopt.training.schedules` converts epochs and builds them.
"""

from __future__ import annotations

import math

from kerasopt._keras import keras, tf

_Schedule = keras.optimizers.schedules.LearningRateSchedule


def _positive(name: str, value) -> None:
    if not value > 0:
        raise ValueError(f"`{name}` must be > 0. Received: {name}={value}")


def _fraction(name: str, value) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1]. Received: {name}={value}")


def _maybe_deserialize(schedule):
    return keras.optimizers.schedules.deserialize(schedule) if isinstance(schedule, dict) else schedule


def _cos_anneal(start, end, t):
    """``start`` at ``t = 0`` to ``end`` at ``t = 1`` along half a cosine."""
    return end + (start - end) * 0.5 * (1.0 + tf.cos(math.pi * t))


@keras.utils.register_keras_serializable(package="kerasopt")
class ConstantSchedule(_Schedule):
    """A constant learning rate as a schedule, so warm-up and scaling can wrap it."""

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = float(learning_rate)

    def __call__(self, step):
        return tf.constant(self.learning_rate, tf.float32)

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}


@keras.utils.register_keras_serializable(package="kerasopt")
class StepDecay(_Schedule):
    """``lr(step) = initial * gamma ** floor((step + start_step) / step_size)``.

    ``start_step`` is the training step this schedule's step 0 falls on (the warm-up length),
    so drops land on multiples of ``step_size`` counted from the start of training.

    Example:
        >>> float(StepDecay(1.0, 10, 0.5)(25))
        0.25
    """

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float, start_step: int = 0) -> None:
        _positive("step_size", step_size)
        _positive("gamma", gamma)
        if start_step < 0:
            raise ValueError(f"`start_step` must be >= 0. Received: start_step={start_step}")
        self.initial_learning_rate = float(initial_learning_rate)
        self.step_size, self.gamma, self.start_step = int(step_size), float(gamma), int(start_step)

    def __call__(self, step):
        drops = tf.floor((tf.cast(step, tf.float32) + self.start_step) / float(self.step_size))
        return self.initial_learning_rate * tf.pow(self.gamma, drops)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "step_size": self.step_size,
                "gamma": self.gamma, "start_step": self.start_step}


@keras.utils.register_keras_serializable(package="kerasopt")
class MultiStepDecay(_Schedule):
    """``lr(step) = initial * gamma ** (number of boundaries <= step)``.

    Example:
        >>> float(MultiStepDecay(1.0, [10, 20], 0.5)(15))
        0.5
    """

    def __init__(self, initial_learning_rate: float, boundaries: list[int], gamma: float) -> None:
        b = [int(x) for x in boundaries]
        if not b or b[0] <= 0 or any(y <= x for x, y in zip(b, b[1:])):
            raise ValueError(f"`boundaries` must be non-empty, > 0 and strictly increasing. "
                             f"Received: boundaries={list(boundaries)}")
        _positive("gamma", gamma)
        self.initial_learning_rate, self.boundaries, self.gamma = float(initial_learning_rate), b, float(gamma)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        drops = tf.reduce_sum(tf.cast(step >= tf.constant(self.boundaries, tf.float32), tf.float32))
        return self.initial_learning_rate * tf.pow(self.gamma, drops)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "boundaries": self.boundaries,
                "gamma": self.gamma}


@keras.utils.register_keras_serializable(package="kerasopt")
class ExponentialDecay(_Schedule):
    """``lr(step) = initial * decay_rate ** (step / decay_steps)``, the exponent floored if ``staircase``.

    Example:
        >>> round(float(ExponentialDecay(1.0, 10, 0.5)(5)), 4)
        0.7071
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False) -> None:
        _positive("decay_steps", decay_steps)
        _positive("decay_rate", decay_rate)
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.decay_rate, self.staircase = float(decay_rate), bool(staircase)

    def __call__(self, step):
        p = tf.cast(step, tf.float32) / float(self.decay_steps)
        if self.staircase:
            p = tf.floor(p)
        return self.initial_learning_rate * tf.pow(self.decay_rate, p)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase}


@keras.utils.register_keras_serializable(package="kerasopt")
class CosineDecay(_Schedule):
    """``lr(step) = peak * (alpha + (1 - alpha) * (1 + cos(pi * t)) / 2)`` with ``t = min(step, decay) / decay``.

    Example:
        >>> round(float(CosineDecay(1.0, 10)(5)), 4)
        0.5
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0) -> None:
        _positive("decay_steps", decay_steps)
        _fraction("alpha", alpha)
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
class CosineDecayRestarts(_Schedule):
    """Cosine with warm restarts (SGDR): cycle ``i`` lasts ``first_decay_steps * t_mul ** i`` steps
    and peaks at ``peak * m_mul ** i``; within a cycle at fraction ``t``,
    ``lr = peak * (alpha + (1 - alpha) * m_mul ** i * (1 + cos(pi * t)) / 2)`` (Keras' formula).

    Example:
        >>> float(CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5)(10))  # second cycle starts
        0.5
    """

    def __init__(self, initial_learning_rate: float, first_decay_steps: int, t_mul: float = 1.0,
                 m_mul: float = 1.0, alpha: float = 0.0) -> None:
        _positive("first_decay_steps", first_decay_steps)
        if t_mul < 1.0:
            raise ValueError(f"`t_mul` must be >= 1. Received: t_mul={t_mul}")
        _positive("m_mul", m_mul)
        _fraction("alpha", alpha)
        self.initial_learning_rate, self.first_decay_steps = float(initial_learning_rate), int(first_decay_steps)
        self.t_mul, self.m_mul, self.alpha = float(t_mul), float(m_mul), float(alpha)

    def _cycle_start(self, i):
        """Where cycle ``i`` starts, in units of the first cycle."""
        if self.t_mul == 1.0:
            return i
        return (tf.pow(self.t_mul, i) - 1.0) / (self.t_mul - 1.0)

    def __call__(self, step):
        x = tf.cast(step, tf.float32) / float(self.first_decay_steps)
        if self.t_mul == 1.0:
            i = tf.floor(x)
        else:
            i = tf.floor(tf.math.log1p(x * (self.t_mul - 1.0)) / math.log(self.t_mul))
            # log() rounding can land one cycle off exactly at a boundary; settle it with the sum.
            i = tf.where(x >= self._cycle_start(i + 1.0), i + 1.0, i)
            i = tf.where(x < self._cycle_start(i), i - 1.0, i)
        t = (x - self._cycle_start(i)) / tf.pow(self.t_mul, i)
        cosine = tf.pow(self.m_mul, i) * 0.5 * (1.0 + tf.cos(math.pi * t))
        return self.initial_learning_rate * (self.alpha + (1.0 - self.alpha) * cosine)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "first_decay_steps": self.first_decay_steps,
                "t_mul": self.t_mul, "m_mul": self.m_mul, "alpha": self.alpha}


@keras.utils.register_keras_serializable(package="kerasopt")
class PolynomialDecay(_Schedule):
    """``lr(step) = (peak - end) * (1 - min(step, decay) / decay) ** power + end``, ``end = alpha * peak``.

    Example:
        >>> float(PolynomialDecay(1.0, 10, power=2.0)(5))
        0.25
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, power: float = 1.0,
                 alpha: float = 0.0) -> None:
        _positive("decay_steps", decay_steps)
        _positive("power", power)
        _fraction("alpha", alpha)
        self.initial_learning_rate, self.decay_steps = float(initial_learning_rate), int(decay_steps)
        self.power, self.alpha = float(power), float(alpha)

    def __call__(self, step):
        t = tf.minimum(tf.cast(step, tf.float32), self.decay_steps) / float(self.decay_steps)
        end = self.alpha * self.initial_learning_rate
        return (self.initial_learning_rate - end) * tf.pow(1.0 - t, self.power) + end

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "power": self.power, "alpha": self.alpha}


@keras.utils.register_keras_serializable(package="kerasopt")
class OneCycle(_Schedule):
    """Smith's 1cycle (fastai/PyTorch): cosine from ``peak / div_factor`` up to ``peak`` at step
    ``pct_start * total_steps``, then cosine down to ``peak / (div_factor * final_div_factor)``
    at ``total_steps``, flat after.

    Example:
        >>> float(OneCycle(1.0, 100, pct_start=0.3)(30))
        1.0
    """

    def __init__(self, max_learning_rate: float, total_steps: int, pct_start: float = 0.25,
                 div_factor: float = 25.0, final_div_factor: float = 1e4) -> None:
        _positive("total_steps", total_steps)
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"`pct_start` must be in (0, 1). Received: pct_start={pct_start}")
        _positive("div_factor", div_factor)
        _positive("final_div_factor", final_div_factor)
        self.max_learning_rate, self.total_steps = float(max_learning_rate), int(total_steps)
        self.pct_start, self.div_factor, self.final_div_factor = float(pct_start), float(div_factor), float(
            final_div_factor)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = self.max_learning_rate
        start = peak / self.div_factor
        low = start / self.final_div_factor
        up = self.pct_start * self.total_steps
        rising = _cos_anneal(start, peak, tf.minimum(step / up, 1.0))
        falling = _cos_anneal(peak, low, tf.clip_by_value((step - up) / (self.total_steps - up), 0.0, 1.0))
        return tf.where(step < up, rising, falling)

    def get_config(self) -> dict:
        return {"max_learning_rate": self.max_learning_rate, "total_steps": self.total_steps,
                "pct_start": self.pct_start, "div_factor": self.div_factor,
                "final_div_factor": self.final_div_factor}


@keras.utils.register_keras_serializable(package="kerasopt")
class InverseSqrtDecay(_Schedule):
    """Transformer-style ``lr(step) = peak * sqrt(timescale) / sqrt(max(step, timescale))``:
    flat at ``peak`` for ``timescale`` steps, then proportional to ``1 / sqrt(step)``.

    Example:
        >>> float(InverseSqrtDecay(1.0, 100)(400))
        0.5
    """

    def __init__(self, initial_learning_rate: float, timescale: int) -> None:
        _positive("timescale", timescale)
        self.initial_learning_rate, self.timescale = float(initial_learning_rate), int(timescale)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        return self.initial_learning_rate * math.sqrt(self.timescale) * tf.math.rsqrt(
            tf.maximum(step, float(self.timescale)))

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "timescale": self.timescale}


@keras.utils.register_keras_serializable(package="kerasopt")
class LinearWarmup(_Schedule):
    """Linear warm-up around any schedule (TF Model Garden's pattern).

    ``lr(step) = peak * (step + 1) / warmup_steps`` for ``step < warmup_steps``,
    then ``after(step - warmup_steps)``; ``peak`` is ``after(0)``. The ``+ 1``
    keeps the very first update from being a wasted zero-LR step.

    Example:
        >>> float(LinearWarmup(ConstantSchedule(1.0), 4)(1))
        0.5
    """

    def __init__(self, after: _Schedule, warmup_steps: int) -> None:
        _positive("warmup_steps", warmup_steps)
        self.after = _maybe_deserialize(after)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        peak = tf.cast(self.after(0), tf.float32)
        warm = peak * (step + 1.0) / float(self.warmup_steps)
        rest = tf.cast(self.after(tf.maximum(step - self.warmup_steps, 0.0)), tf.float32)
        return tf.where(step < self.warmup_steps, warm, rest)

    def get_config(self) -> dict:
        return {"after": keras.optimizers.schedules.serialize(self.after), "warmup_steps": self.warmup_steps}


@keras.utils.register_keras_serializable(package="kerasopt")
class FactorFrom(_Schedule):
    """``inner(step)``, times ``factor`` from ``at_step`` on: the LR drop when frozen layers are unfrozen.

    A function of the step alone, so a resume lands on the same LR as an uninterrupted run.

    Example:
        >>> s = FactorFrom(ConstantSchedule(1.0), at_step=10, factor=0.1)
        >>> round(float(s(9)), 4), round(float(s(10)), 4)
        (1.0, 0.1)
    """

    def __init__(self, inner: _Schedule, at_step: int, factor: float) -> None:
        _positive("at_step", at_step)
        _positive("factor", factor)
        self.inner = _maybe_deserialize(inner)
        self.at_step, self.factor = int(at_step), float(factor)

    def __call__(self, step):
        lr = tf.cast(self.inner(step), tf.float32)
        return tf.where(tf.cast(step, tf.float32) < float(self.at_step), lr, lr * self.factor)

    def get_config(self) -> dict:
        return {"inner": keras.optimizers.schedules.serialize(self.inner), "at_step": self.at_step,
                "factor": self.factor}


@keras.utils.register_keras_serializable(package="kerasopt")
class ScaledSchedule(_Schedule):
    """``lr(step) = scale * schedule(step)`` with ``scale`` a ``tf.Variable`` changed at run time.

    Reduce-on-plateau and the NaN guard call :meth:`set_scale`; the variable is read inside the
    compiled train step (XLA included), so a new scale applies from the next step on.

    Example:
        >>> s = ScaledSchedule(ConstantSchedule(0.1))
        >>> s.set_scale(0.5); round(float(s(0)), 4)
        0.05
    """

    def __init__(self, schedule: _Schedule, scale: float = 1.0) -> None:
        self._check(scale)
        self.schedule = _maybe_deserialize(schedule)
        self.scale = tf.Variable(float(scale), dtype=tf.float32, trainable=False, name="lr_scale",
                                 aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    @staticmethod
    def _check(scale) -> None:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"`scale` must be finite and > 0. Received: scale={scale}")

    def set_scale(self, value: float) -> None:
        """Set the multiplier; the next optimizer step uses it."""
        self._check(value)
        self.scale.assign(float(value))

    def __call__(self, step):
        return tf.cast(self.schedule(step), tf.float32) * tf.cast(self.scale, tf.float32)

    def get_config(self) -> dict:
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule),
                "scale": float(keras.backend.get_value(self.scale))}
