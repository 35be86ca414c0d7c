"""What a person watches: a progress bar within the epoch and one line per epoch."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .._keras import keras
from .base import is_scalar

_ORDER = ("loss", "accuracy", "mae")


def format_logs(logs: dict, skip: tuple[str, ...] = ()) -> str:
    """``loss 0.1234  accuracy 0.9800  val_loss ...`` with the training keys first.

    Example:
        >>> format_logs({"val_loss": 0.5, "loss": 0.25})
        'loss 0.2500  val_loss 0.5000'
    """
    def rank(k: str) -> tuple:
        base = k.removeprefix("val_")
        return (k.startswith("val_"), _ORDER.index(base) if base in _ORDER else len(_ORDER), k)

    keys = sorted(logs, key=rank)
    parts = []
    for k in keys:
        if k in skip:
            continue
        v = logs[k]
        if k == "lr":
            parts.append(f"lr {float(v):.3g}")
        elif k == "examples_per_sec":
            parts.append(f"{float(v):,.0f} ex/s")
        elif is_scalar(v):
            parts.append(f"{k} {float(v):.4f}")
    return "  ".join(parts)


class ProgressDisplay(keras.callbacks.Callback):
    """Per-epoch progress for ``model.fit``; ``verbose=1`` adds a live bar over batches.

    Example:
        >>> model.fit(ds, epochs=3, verbose=0, callbacks=[ProgressDisplay(epochs=3, steps=12)])  # doctest: +SKIP
    """

    def __init__(self, epochs: int, steps: int | None, verbose: int = 1, console: Console | None = None) -> None:
        super().__init__()
        self.epochs = epochs
        self.steps = steps
        self.verbose = verbose
        self._console = console
        self._progress = None

    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = Console(highlight=False)
        return self._console

    def __deepcopy__(self, memo):  # rich objects hold locks; a copy starts fresh
        return ProgressDisplay(self.epochs, self.steps, self.verbose)

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()
        if self.verbose == 1 and self.console.is_terminal:
            self._progress = Progress(
                TextColumn(f"epoch {epoch + 1}/{self.epochs}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[loss]}"), TimeRemainingColumn(), console=self.console, transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("train", total=self.steps, loss="")

    def on_train_batch_end(self, batch, logs=None):
        if self._progress is not None:
            # asynchronous training: the step was scheduled, its loss is known at the epoch end
            loss = None if getattr(self, "remote_batch_logs", False) else (logs or {}).get("loss")
            self._progress.update(self._task, completed=batch + 1, loss=f"loss {loss:.4f}" if loss is not None else "")

    def _stop_bar(self):
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_epoch_end(self, epoch, logs=None):
        self._stop_bar()
        if self.verbose:
            dt = time.perf_counter() - self._t0
            width = len(str(self.epochs))
            self.console.print(f"epoch {epoch + 1:>{width}}/{self.epochs}  {format_logs(logs or {}, ('step_time_ms',))}"
                               f"  {dt:.1f}s", soft_wrap=True)

    def on_train_end(self, logs=None):
        self._stop_bar()
