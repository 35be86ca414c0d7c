"""The live trial table: a row per finished trial, and a status line for the running one.

Columns: trial, status, objective, best so far, time, epochs, values. On a
terminal the running trial shows its elapsed time (rich ``Live``); elsewhere
(logs, CI, notebooks given a ``print_fn``) only the finished rows are printed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Optional

from rich.console import Console
from rich.live import Live
from rich.text import Text

_W = {"trial": 6, "status": 9, "objective": 10, "best": 10, "time": 8, "epochs": 6}


def short_names(keys: list[str]) -> dict[str, str]:
    """``train.optimizer.learning_rate`` -> ``learning_rate`` unless two keys end alike.

    Example:
        >>> short_names(["model.dropout", "data.augment.zoom"])
        {'model.dropout': 'dropout', 'data.augment.zoom': 'zoom'}
    """
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def fmt_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def fmt_values(values: Mapping[str, Any], names: Mapping[str, str]) -> str:
    return " ".join(f"{names.get(k, k)}={fmt_value(v)}" for k, v in values.items())


def _num(v: Optional[float]) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


class _Running:
    """Re-rendered twice a second: elapsed time and, when ``progress`` tells, the epoch reached."""

    def __init__(self, text: str, progress: Optional[Callable[[], str]]) -> None:
        self.text, self.progress, self.t0 = text, progress, time.perf_counter()

    def __rich__(self) -> Text:
        where = ""
        if self.progress is not None:
            try:
                where = self.progress()
            except (OSError, ValueError):  # the file is being replaced; next refresh
                where = ""
        line = f"{'':>{_W['trial']}}  running {time.perf_counter() - self.t0:5.0f}s  {where + '  ' if where else ''}"
        return Text(line + self.text, style="dim", no_wrap=True, overflow="ellipsis")


class TrialTable:
    """Prints the table as the search goes. ``print_fn`` (tests, notebooks) gets each line as text."""

    def __init__(self, keys: list[str], objective: str, print_fn: Optional[Callable[[str], None]] = None) -> None:
        self.names = short_names(keys)
        self.objective = objective
        self.w = {**_W, "objective": max(_W["objective"], len(objective))}
        self.console = Console(highlight=False)
        self.say = print_fn or (lambda s: self.console.print(s, soft_wrap=True, markup=False))
        self.live_ok = print_fn is None and self.console.is_terminal
        self._live: Optional[Live] = None

    def header(self) -> None:
        w = self.w
        self.say(f"{'trial':>{w['trial']}}  {'status':<{w['status']}} {self.objective:>{w['objective']}} "
                 f"{'best':>{w['best']}} {'time':>{w['time']}} {'epochs':>{w['epochs']}}  values")

    def begin(self, trial_id: str, values: Mapping[str, Any], note: str = "",
              progress: Optional[Callable[[], str]] = None) -> None:
        if not self.live_ok:
            return
        text = f"trial {trial_id}: {fmt_values(values, self.names)}{'  ' + note if note else ''}"
        self._live = Live(_Running(text, progress), console=self.console, transient=True, refresh_per_second=2)
        self._live.start()

    def end(self, record: Mapping[str, Any], best: Optional[float]) -> None:
        self._stop()
        w = self.w
        epochs = record.get("epochs")
        if record.get("resumed_from") is not None:
            epochs = f"{record.get('initial_epoch')}>{epochs}"
        line = (f"{record['trial']:>{w['trial']}}  {record['status'].lower():<{w['status']}} "
                f"{_num(record.get('objective')):>{w['objective']}} {_num(best):>{w['best']}} "
                f"{record.get('time_s', 0):>{w['time'] - 1}.1f}s {str(epochs or '-'):>{w['epochs']}}  "
                f"{fmt_values(record.get('values', {}), self.names)}")
        if record.get("reason"):
            line += f"  ({record['reason']})"
        self.say(line)

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def close(self) -> None:
        self._stop()
