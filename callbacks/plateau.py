"""Reduce the learning rate when a metric stops improving, through ``ScaledSchedule.scale``."""

from __future__ import annotations

import math
from typing import Any, Optional

from .._keras import keras
from .monitor import MonitorCallback

# float32 holds the scale, so "already at min_lr" needs a little slack.
_REL_TOL = 1e-6


def find_scaled_schedule(optimizer) -> Any:
    """The ``ScaledSchedule`` driving ``optimizer`` (a ``LossScaleOptimizer`` is looked through).

    Example:
        >>> find_scaled_schedule(model.optimizer).set_scale(0.5)  # doctest: +SKIP
    """
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = getattr(inner, "_learning_rate", None)
    if not (hasattr(lr, "set_scale") and hasattr(lr, "schedule")):
        raise ValueError(
            "the optimizer's learning rate must be a kerasopt ScaledSchedule (what build_schedule returns). "
            f"Received: {type(lr).__name__}"
        )
    return lr


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the LR by ``factor`` after ``patience`` epochs without improvement (Keras' semantics).

    The change goes through the schedule's ``scale`` variable, so it works under XLA and
    composes with warm-up, any schedule and the NaN guard (which also scales). ``min_lr`` floors
    the effective LR, ``schedule(step) * scale``. Pass ``schedule`` only when the callback is
    not deep-copied (Keras Tuner copies callbacks); by default it uses the model optimizer's.
    Counters carry over between ``fit()`` calls of one run; a new run takes a new callback.

    Example:
        >>> cb = ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2)
        >>> model.fit(ds, validation_data=val, callbacks=[cb])  # doctest: +SKIP
    """

    def __init__(self, schedule: Optional[Any] = None, *, monitor: str = "val_loss", factor: float = 0.1,
                 patience: int = 10, mode: str = "auto", min_delta: float = 1e-4, cooldown: int = 0,
                 min_lr: float = 0.0) -> None:
        if not 0.0 < factor < 1.0:
            raise ValueError(f"`factor` must be in (0, 1). Received: factor={factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown), ("min_delta", min_delta),
                            ("min_lr", min_lr)):
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0. Received: {name}={value}")
        super().__init__(monitor, mode, min_delta, config_key="train.schedule.monitor")
        self.schedule = schedule
        self.factor, self.patience = float(factor), int(patience)
        self.cooldown, self.min_lr = int(cooldown), float(min_lr)
        self._pending_scale: Optional[float] = None
        self._reset()

    def _reset(self) -> None:
        self.wait = 0
        self.cooldown_counter = 0
        self.best = self.rule.worst  # not None: a NaN first epoch must not become the best

    def _schedule(self):
        if self.schedule is None:
            if self.model is None:
                raise ValueError("ReduceLROnPlateau has no schedule: pass one or attach it to a model")
            self.schedule = find_scaled_schedule(self.model.optimizer)
        return self.schedule

    def _step(self) -> int:
        opt = getattr(self.model, "optimizer", None)
        return int(keras.backend.get_value(opt.iterations)) if opt is not None else 0

    def on_train_begin(self, logs=None):
        # Unlike Keras, no reset here: a run is several fit() calls (the rest of an interrupted
        # epoch, then the remaining epochs; NaN-guard retries), and the counters span them all.
        sched = self._schedule()
        if self._pending_scale is not None:
            sched.set_scale(self._pending_scale)
            self._pending_scale = None

    def on_epoch_end(self, epoch, logs=None):
        current = self.monitored(logs)
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce()

    def _reduce(self) -> None:
        sched = self._schedule()
        base = float(keras.backend.get_value(sched.schedule(self._step())))
        scale = float(keras.backend.get_value(sched.scale))
        old_lr = base * scale
        if base <= 0 or old_lr <= self.min_lr * (1.0 + _REL_TOL):
            return  # already at the floor: Keras neither reduces nor restarts the cooldown here
        new_lr = max(old_lr * self.factor, self.min_lr)
        sched.set_scale(new_lr / base)
        self.cooldown_counter = self.cooldown
        self.wait = 0

    def get_state(self) -> dict[str, Any]:
        """Counters, best value (``None`` before any epoch: JSON has no infinity) and the LR scale."""
        scale = self._pending_scale
        if scale is None and (self.schedule is not None or self.model is not None):
            scale = float(keras.backend.get_value(self._schedule().scale))
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter,
                "best": None if math.isinf(self.best) else self.best, "scale": scale}

    def set_state(self, state: dict[str, Any]) -> None:
        self.wait = int(state["wait"])
        self.cooldown_counter = int(state["cooldown_counter"])
        best = state.get("best")
        self.best = self.rule.worst if best is None else float(best)
        scale = state.get("scale")
        if scale is not None:
            if self.schedule is not None:
                self.schedule.set_scale(float(scale))
            else:  # no model yet (restored before fit): applied at on_train_begin
                self._pending_scale = float(scale)
