"""Keras' TensorBoard callback without per-batch work when nothing is written per batch, and with
its epoch and evaluation scalars written by a traced function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

from .._keras import keras, tf


class TensorBoard(keras.callbacks.TensorBoard):
    """``keras.callbacks.TensorBoard``, the same files, minus a per-batch and a per-epoch cost.

    Keras calls every callback's batch hooks once any callback has them (kerasopt's NaN guard and
    checkpoint do). Keras' TensorBoard then calls ``tf.summary.scalar`` for each log key after
    every batch even with ``update_freq="epoch"``, where no writer is active and nothing is
    written: ~0.75 ms a batch on the 2-core CPU, 1.4% of a digits-CNN step. This skips those calls
    when they cannot write (epoch updates, no profiling, no steps-per-second); the training graph
    is still written after the first batch.

    At each epoch's end (and after each validation pass, the ``evaluation_*_vs_iterations``
    scalars) Keras writes one eager ``tf.summary.scalar`` per metric: 6.2 + 2.5 ms an epoch for
    the digits CNN's ten scalars, 0.9% of its epoch. Here the same summaries (names, steps,
    float32 values) are written by a function traced once per writer and set of names.

    Example:
        >>> TensorBoard(log_dir="runs/x/tensorboard", update_freq="epoch")  # doctest: +SKIP
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # (role, names per writer) -> (those writer objects, traced write); writers are compared by
        # identity, so a writer Keras closed and made again (a second fit) gets a new trace.
        self._scalar_fns: dict[tuple[str, tuple], tuple[tuple, Callable]] = {}

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch" and not self._should_trace and not self.write_steps_per_second:
            if self._should_write_train_graph:  # what Keras does after the first batch
                self._write_keras_model_train_graph()
                self._should_write_train_graph = False
            return
        super().on_train_batch_end(batch, logs)

    def _write_scalars(self, role: str, groups: list[tuple[Any, dict[str, Any]]], step) -> bool:
        """Write each group's ``{tag: value}`` into its writer at ``step``, in one call of a traced function.

        Returns False (nothing written) when a value is not a scalar."""
        try:
            values = [float(v) for _, scalars in groups for v in scalars.values()]
        except (TypeError, ValueError):
            return False
        writers = tuple(w for w, _ in groups)
        names = tuple(tuple(scalars) for _, scalars in groups)
        key = (role, names)
        known: Optional[tuple[tuple, Callable]] = self._scalar_fns.get(key)
        if known is None or any(a is not b for a, b in zip(known[0], writers)):
            def write(vals, at):
                with tf.summary.record_if(True):
                    i = 0
                    for writer, tags in zip(writers, names):
                        with writer.as_default():
                            for tag in tags:
                                tf.summary.scalar(tag, vals[i], step=at)
                                i += 1

            known = self._scalar_fns[key] = (writers, tf.function(write, autograph=False))
        known[1](tf.constant(values, tf.float32), tf.constant(int(step), tf.int64))
        return True

    def _log_epoch_metrics(self, epoch, logs):
        if not logs:
            return
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        train = self._collect_learning_rate(train)
        if self.write_steps_per_second:
            train["steps_per_second"] = self._compute_steps_per_second()
        groups = [(w, {f"epoch_{k}": v for k, v in d.items()})
                  for w, d in ((self._train_writer, train), (self._val_writer, val)) if d]
        if not self._write_scalars("epoch", groups, epoch):
            super()._log_epoch_metrics(epoch, logs)

    def on_test_end(self, logs=None):
        opt = self.model.optimizer
        if logs and opt and hasattr(opt, "iterations"):
            tags = {f"evaluation_{k}_vs_iterations": v for k, v in logs.items()}
            if self._write_scalars("evaluation", [(self._val_writer, tags)], int(opt.iterations.numpy())):
                self._pop_writer()
                return
        super().on_test_end(logs)
