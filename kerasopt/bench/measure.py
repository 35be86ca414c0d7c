"""Keras callbacks that time training: per step (``StepTimer``) or per epoch (``EpochTimer``).

Both take a ``clock`` (default ``time.perf_counter``) so tests can drive them
with a fake one. The arithmetic lives in :mod:`kerasopt.bench.stats`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from kerasopt._keras import keras
from kerasopt.bench.stats import EpochRecorder, StepRecorder, StepStats


def steps_per_execution(model) -> int:
    """Optimizer steps per train-function call (``compile(steps_per_execution=...)``), 1 by default."""
    spe = getattr(model, "_steps_per_execution", None)
    return int(keras.backend.get_value(spe)) if spe is not None else 1


class StepTimer(keras.callbacks.Callback):
    """Times every training step; the first ``warmup`` steps (compilation) are left out.

    Put it last in the callback list so each step's time includes the other
    callbacks' batch hooks. Keras converts the logs to numbers before calling
    its batch hooks, which waits for the step to finish: on a GPU, where steps
    are queued asynchronously, the times are those of finished steps.

    Example:
        >>> timer = StepTimer(batch_size=128, warmup=5)  # doctest: +SKIP
        >>> model.fit(ds, steps_per_epoch=55, callbacks=[timer])  # doctest: +SKIP
        >>> timer.stats().examples_per_sec  # doctest: +SKIP
    """

    def __init__(self, batch_size: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be > 0. Received: batch_size={batch_size}")
        self.batch_size = int(batch_size)
        self.recorder = StepRecorder(warmup, clock)
        self._examples = self.batch_size

    def on_train_begin(self, logs=None):
        self._examples = self.batch_size * (steps_per_execution(self.model) if self.model is not None else 1)

    def on_epoch_begin(self, epoch, logs=None):
        self.recorder.epoch_begin()

    def on_train_batch_begin(self, batch, logs=None):
        self.recorder.batch_begin()

    def on_train_batch_end(self, batch, logs=None):
        self.recorder.batch_end(self._examples)

    def stats(self) -> StepStats:
        return self.recorder.stats()


class EpochTimer(keras.callbacks.Callback):
    """Per-epoch training time (to the start of validation), epoch time and logs.

    It has no batch hooks, so adding it to ``model.fit`` adds no per-step work:
    that is what a fair comparison with a plain ``model.fit`` needs. Put it
    last so the epoch time includes the other callbacks' epoch-end work.

    Example:
        >>> timer = EpochTimer()  # doctest: +SKIP
        >>> model.fit(x, y, epochs=5, validation_data=(xv, yv), callbacks=[timer])  # doctest: +SKIP
        >>> timer.recorder.time_to("val_accuracy", 0.99)  # doctest: +SKIP
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        self.recorder = EpochRecorder(clock)

    def on_train_begin(self, logs=None):
        self.recorder.train_begin()

    def on_epoch_begin(self, epoch, logs=None):
        self.recorder.epoch_begin()

    def on_test_begin(self, logs=None):
        self.recorder.test_begin()

    def on_epoch_end(self, epoch, logs=None):
        self.recorder.epoch_end(epoch, logs)
