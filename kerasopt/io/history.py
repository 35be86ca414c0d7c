"""The one reader of a run's ``history.csv`` (Keras' ``CSVLogger``, one row per epoch, ``epoch`` 0-based).

**Rule: the last row for an epoch wins.** A resumed run, or a NaN recovery that rewinds, runs an
epoch again and appends its row again; the later row is what the weights of that epoch came from.
Rows come out in epoch order. Every reader (the end-of-run summary, the report and compare, the
tuner's scoring and progress line) goes through :func:`read_history`, so they agree on every epoch.

Example:
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "history.csv"
    >>> _ = path.write_text("epoch,loss,val_accuracy\\n0,0.9,0.5\\n1,0.7,\\n1,0.4,0.8\\n")
    >>> read_history(path)
    {'epoch': [0.0, 1.0], 'loss': [0.9, 0.4], 'val_accuracy': [0.5, 0.8]}
    >>> trim_history(path, 1); read_history(path)["loss"]
    [0.9]
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Optional

from kerasopt.errors import ConfigError
from kerasopt.io.atomic import open_atomic

EPOCH = "epoch"


def read_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """``{column: one float per epoch}``, ``epoch`` included; a repeated epoch keeps its last row.

    A missing or empty file, or one whose header has no ``epoch`` column, gives ``{}``; a header
    with no rows gives empty columns. An empty or non-numeric cell is NaN (a run that diverged logs
    ``nan``). A row whose epoch is not a number is a ``ConfigError`` naming the line.
    """
    path = Path(path)
    try:
        f = path.open(newline="")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return {}
    with f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or EPOCH not in reader.fieldnames:
            return {}
        columns = [c for c in reader.fieldnames if c]
        by_epoch: dict[int, dict[str, float]] = {}
        for line, row in enumerate(reader, start=2):
            try:
                epoch = int(float(row[EPOCH]))
            except (TypeError, ValueError):
                raise ConfigError(f"{path}: line {line}: epoch is not a number. Received: {row[EPOCH]!r}") from None
            by_epoch[epoch] = {c: number(row.get(c)) for c in columns}  # a later row for the epoch replaces it
    rows = [by_epoch[e] for e in sorted(by_epoch)]
    return {c: [r[c] for r in rows] for c in columns}


def read_metrics(path: str | os.PathLike) -> dict[str, list[float]]:
    """:func:`read_history` without the ``epoch`` column: ``{metric: values}`` as ``History.history`` has them."""
    return {k: v for k, v in read_history(path).items() if k != EPOCH}


def trim_history(path: str | os.PathLike, keep_epochs: int) -> None:
    """Drop the rows of epochs ``>= keep_epochs`` (a rewound or resumed run writes them again), atomically.

    Rows whose epoch is not a number go too; the header and the column order stay.
    """
    path = Path(path)
    if not path.is_file():
        return
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    col = rows[0].index(EPOCH) if EPOCH in rows[0] else 0
    kept = [rows[0]] + [r for r in rows[1:] if _epoch(r, col) is not None and _epoch(r, col) < keep_epochs]
    with open_atomic(path, "w", newline="") as f:
        csv.writer(f).writerows(kept)


def number(text: Optional[str]) -> float:
    """A CSV cell as a float; empty or unreadable is NaN. Example: ``number("") -> nan``."""
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def _epoch(row: list[str], col: int) -> Optional[int]:
    try:
        return int(row[col])
    except (IndexError, ValueError):
        return None


__all__ = ["EPOCH", "number", "read_history", "read_metrics", "trim_history"]
