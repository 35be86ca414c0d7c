"""Put the learning rate of each epoch into the logs (history, CSV, TensorBoard)."""

from __future__ import annotations

from .._keras import keras


def current_lr(optimizer) -> float:
    """The learning rate the optimizer uses at its current step (schedules resolved)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    # `learning_rate` of a tf_keras optimizer with a schedule is the LR of the last
    # applied step; the schedule itself (`_learning_rate`) gives the LR of the next one.
    lr = getattr(inner, "_learning_rate", None)
    if lr is None:
        lr = inner.learning_rate
    if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
        lr = lr(inner.iterations)
    return float(keras.backend.get_value(lr))


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``lr`` to the epoch logs. Put it before loggers so they see the key.

    Example:
        >>> model.fit(ds, callbacks=[LearningRateLogger(), keras.callbacks.CSVLogger("h.csv")])  # doctest: +SKIP
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._lr = current_lr(self.model.optimizer)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            # The LR the epoch trained with started at _lr; log the value at its start
            # so epoch 0 of a warm-up shows the warm-up value.
            logs["lr"] = getattr(self, "_lr", current_lr(self.model.optimizer))
