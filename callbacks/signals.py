"""SIGTERM/SIGINT (preemption, Ctrl-C): finish the current batch, save a checkpoint, stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Optional

from .._keras import keras


class GracefulStop(keras.callbacks.Callback):
    """Installs SIGTERM/SIGINT handlers for the duration of ``fit``.

    On a signal the current batch finishes, ``on_stop`` is called (it saves a
    mid-epoch checkpoint) and training stops; a second signal aborts at once.

    Example:
        >>> GracefulStop(on_stop=lambda: ckpt.save_partial())  # doctest: +SKIP
    """

    def __init__(self, on_stop: Optional[Callable[[], None]] = None,
                 signals: tuple = (signal.SIGTERM, signal.SIGINT)) -> None:
        super().__init__()
        self.on_stop = on_stop
        self.signals = signals
        self.received: Optional[str] = None
        self._saved = False
        self._previous: dict = {}
        # Under Horovod: max over ranks, so all ranks stop after the same batch.
        self.sync: Optional[Callable[[float], float]] = None

    def __deepcopy__(self, memo):
        return GracefulStop(self.on_stop, self.signals)

    @property
    def stop_agreed(self) -> bool:
        """The stop is decided for this process (after the batch every rank agreed on, under a sync)."""
        return self._saved

    def _handler(self, signum, frame):
        if self.received is not None:  # second signal: give up waiting
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name

    def on_train_begin(self, logs=None):
        self.received = None
        self._saved = False
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handler)

    def on_train_batch_end(self, batch, logs=None):
        if self._saved:
            return
        if self.sync is not None:
            # Act on the agreed value only. A signal that arrives while this rank waits inside the all-reduce
            # is handled the moment it returns, so re-reading ``received`` here would stop this rank alone
            # (the others saw 0) and hang the job in its next collective; it is agreed after the next batch.
            if self.sync(1.0 if self.received else 0.0) <= 0.0:
                return
            self.received = self.received or "SIGTERM"  # another rank was signalled
        elif not self.received:
            return
        self._saved = True
        if self.on_stop is not None:
            self.on_stop()
        self.model.stop_training = True

    def on_train_end(self, logs=None):
        for s, h in self._previous.items():
            signal.signal(s, h)
        self._previous = {}
