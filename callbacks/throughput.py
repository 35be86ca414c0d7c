"""Examples per second and step time per epoch, without the first (compiling) step; whole-epoch times."""

from __future__ import annotations

import time

from .._keras import keras


class Throughput(keras.callbacks.Callback):
    """Adds ``examples_per_sec`` and ``step_time_ms`` to the epoch logs.

    The first batch of the first epoch traces and compiles the step (seconds
    with XLA) and is left out, so the numbers are steady-state.

    ``epoch_times`` holds whole epochs: from the epoch's start until every callback's
    ``on_epoch_end`` has run (validation, checkpoint, CSV, TensorBoard), so an epoch is closed
    at the next epoch's start or at the end of training. This callback's own ``on_epoch_end`` runs
    before those of the callbacks listed after it; timing there left their work out. An epoch that
    never ended (a stop mid-epoch) is not counted.

    Example:
        >>> Throughput(batch_size=128)  # doctest: +SKIP
    """

    def __init__(self, batch_size: int, clock=time.perf_counter) -> None:
        super().__init__()
        if batch_size <= 0:
            raise ValueError(f"`batch_size` must be > 0. Received: batch_size={batch_size}")
        self.batch_size = int(batch_size)
        self._clock = clock
        self._compiled = False
        self._ended: float | None = None  # start of the epoch whose on_epoch_end has run
        self.epoch_times: list[float] = []

    def _close_epoch(self) -> None:
        if self._ended is not None:
            self.epoch_times.append(self._clock() - self._ended)
            self._ended = None

    def on_train_begin(self, logs=None):
        self._compiled = False
        self._ended = None

    def on_train_end(self, logs=None):
        self._close_epoch()

    def on_epoch_begin(self, epoch, logs=None):
        self._close_epoch()
        self._t0 = None
        self._batches = 0
        self._epoch_start = self._clock()

    def on_train_batch_begin(self, batch, logs=None):
        if self._t0 is None and self._compiled:
            self._t0 = self._clock()

    def on_train_batch_end(self, batch, logs=None):
        if getattr(self, "remote_batch_logs", False):  # asynchronous: every scheduled step counts (see below)
            self._batches += 1
            return
        if not self._compiled:
            self._compiled = True  # the next batch starts the clock
            return
        self._batches += 1
        self._t_last = self._clock()  # validation after the last batch is not training time

    def on_epoch_end(self, epoch, logs=None):
        self._ended = self._epoch_start
        if getattr(self, "remote_batch_logs", False):
            # asynchronous training: a batch hook marks a step scheduled, not run; the steps were done when
            # the epoch's results arrived (validation included in this time)
            self._t0, self._t_last = self._epoch_start, self._clock()
        if logs is None or self._t0 is None or self._batches == 0:
            return
        # steps_per_execution > 1 reports one "batch" per execution; Keras tells us how many it ran.
        spe = int(getattr(self.model, "_steps_per_execution", None) is not None
                  and keras.backend.get_value(self.model._steps_per_execution) or 1)
        elapsed = max(self._t_last - self._t0, 1e-9)
        steps = self._batches * spe
        logs["examples_per_sec"] = steps * self.batch_size / elapsed
        logs["step_time_ms"] = 1000.0 * elapsed / steps
