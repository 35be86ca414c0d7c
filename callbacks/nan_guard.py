"""Stop an epoch the moment the loss turns NaN/Inf or exceeds a bound.

The training loop then reloads the last good checkpoint, scales the learning
rate down and retries (TF Model Garden's recovery action). The checkpoint
callback asks :meth:`tripped` and saves nothing from a diverged epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Optional

from .base import StatefulCallback


class NaNGuard(StatefulCallback):
    """Example:
        >>> guard = NaNGuard(max_retries=3, lr_factor=0.5)
        >>> guard.check(float("nan"), epoch=2, batch=7)
        True
    """

    def __init__(self, max_retries: int = 3, lr_factor: float = 0.5, loss_bound: Optional[float] = None) -> None:
        super().__init__()
        if max_retries < 0:
            raise ValueError(f"`max_retries` must be >= 0. Received: max_retries={max_retries}")
        if not 0.0 < lr_factor <= 1.0:
            raise ValueError(f"`lr_factor` must be in (0, 1]. Received: lr_factor={lr_factor}")
        if loss_bound is not None and loss_bound <= 0:
            raise ValueError(f"`loss_bound` must be > 0. Received: loss_bound={loss_bound}")
        self.max_retries = max_retries
        self.lr_factor = lr_factor
        self.loss_bound = loss_bound
        self.recoveries: list[dict[str, Any]] = []
        self.event: Optional[dict[str, Any]] = None  # the divergence that stopped the current fit
        self._epoch = 0
        # Under Horovod: max over ranks, so every rank stops at the same batch (no hang in allreduce).
        self.sync: Optional[Callable[[float], float]] = None

    def tripped(self) -> bool:
        return self.event is not None

    def get_state(self) -> dict[str, Any]:
        return {"recoveries": self.recoveries}

    def set_state(self, state: dict[str, Any]) -> None:
        self.recoveries = list(state.get("recoveries", []))

    def check(self, loss: float, epoch: int, batch: int) -> bool:
        """Record a divergence if ``loss`` is non-finite or above the bound (on any rank); True when it is."""
        bad = not math.isfinite(loss) or (self.loss_bound is not None and loss > self.loss_bound)
        if self.sync is not None:
            bad = self.sync(1.0 if bad else 0.0) > 0.0
        if bad and self.event is None:
            reason = "non-finite" if not math.isfinite(loss) else f"above loss_bound {self.loss_bound:g}"
            self.event = {"epoch": epoch + 1, "batch": batch + 1, "loss": str(loss), "reason": reason}
        return bad

    def on_train_begin(self, logs=None):
        self.event = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if getattr(self, "remote_batch_logs", False):  # the step has not run yet: checked at the epoch end
            return
        loss = (logs or {}).get("loss")
        first = self.event is None
        if loss is not None and self.check(float(loss), self._epoch, batch):
            if first and self.event is not None:  # the optimizer step that produced it, for metrics.json
                self.event["step"] = int(self.model.optimizer.iterations.numpy())
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        """Under asynchronous training (``remote_batch_logs``) the epoch's loss is the first one seen."""
        loss = (logs or {}).get("loss")
        if getattr(self, "remote_batch_logs", False) and loss is not None and self.check(float(loss), epoch, -1):
            self.event["step"] = int(self.model.optimizer.iterations.numpy())
            self.event["batch"] = "end of epoch"
            self.model.stop_training = True
