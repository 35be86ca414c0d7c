"""Early stopping whose counters and best weights survive a resume."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Optional

import numpy as np

from .._keras import keras, tf
from .monitor import MonitorCallback


class ResumableEarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Unlike Keras' own, the wait counter, the best value and (with
    ``restore_best_weights``) the best weights are part of every checkpoint.

    Example:
        >>> ResumableEarlyStopping(monitor="val_loss", patience=3)  # doctest: +SKIP
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 5, min_delta: float = 0.0,
                 restore_best_weights: bool = True) -> None:
        if patience < 0:
            raise ValueError(f"`patience` must be >= 0. Received: patience={patience}")
        super().__init__(monitor, mode, min_delta, config_key="callbacks.early_stopping.monitor")
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.stopped_epoch = 0
        self._best_weights: Optional[tf.Module] = None
        # Which weights count as "best": the model's own by default; the EMA weights when
        # validation ran on them (set by the factory).
        self.weights_fn: Optional[Callable[[keras.Model], list]] = None

    def build(self, model: keras.Model) -> None:
        """Create the best-weights variables (call after compile, before a restore)."""
        if self.restore_best_weights and self._best_weights is None:
            with model.distribute_strategy.scope():
                holder = tf.Module()
                holder.weights = [tf.Variable(w, trainable=False) for w in model.get_weights()]
            self._best_weights = holder

    def trackables(self) -> dict[str, Any]:
        return {"best_weights": self._best_weights} if self._best_weights is not None else {}

    def get_state(self) -> dict[str, Any]:
        return {"wait": self.wait, "best": self.best, "best_epoch": self.best_epoch,
                "stopped_epoch": self.stopped_epoch}

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state.get("wait", 0))
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.stopped_epoch = int(state.get("stopped_epoch", 0))

    def on_train_begin(self, logs=None):
        self.build(self.model)

    def on_epoch_end(self, epoch, logs=None):
        value = self.monitored(logs)
        if self.improved(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch + 1, 0
            if self._best_weights is not None:
                current = self.weights_fn(self.model) if self.weights_fn else self.model.get_weights()
                for var, w in zip(self._best_weights.weights, current):
                    var.assign(w)
            return
        self.wait += 1
        if self.wait >= max(1, self.patience):  # Keras: stop after `patience` epochs without improvement
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch and self._best_weights is not None and self.best_epoch is not None:
            self.model.set_weights([np.asarray(v.numpy()) for v in self._best_weights.weights])
