"""A progress bar with an ETA for the file check before training, on stderr, on the chief process only.

Short checks stay silent: the bar appears once a check has run for
``DELAY_SECONDS`` (like tqdm's ``delay``), so a run that reuses its manifest
never flashes one. A check that ran that long leaves one summary line,
``checked 12,000 image files in 41.2 s (11,998 from the manifest)``, in place
of the bar (alone when stderr is not a terminal: a log gets no bar redraws).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional

DELAY_SECONDS = 1.0


def chief() -> bool:
    """False in a process of rank > 0 under horovodrun, mpirun or a multi-worker ``TF_CONFIG``.

    Example:
        >>> import os
        >>> os.environ.get("HOROVOD_RANK") in (None, "0") and chief()
        True
    """
    # The rank known before TensorFlow or Horovod start, from the launcher's environment.
    from kerasopt.distribute.tf_config import rank_label

    return rank_label() in (None, "0")


def console() -> Any:
    """The rich console the bar draws on: stderr."""
    from rich.console import Console

    return Console(file=sys.stderr)


def summary_line(what: str, total: int, reused: int, seconds: float) -> str:
    """The line left behind by a check.

    Example:
        >>> summary_line("image file", 12000, 11998, 41.23)
        'checked 12,000 image files in 41.2 s (11,998 from the manifest)'
    """
    return f"checked {total:,} {what}s in {seconds:.1f} s ({reused:,} from the manifest)"


class CheckProgress:
    """Counts items checked; draws a rich bar (done / total, items/s, ETA) once the check is slow.

    ``advance(n)`` after each batch; ``close(reused)`` at the end returns the
    summary dict for ``extras``: ``{"checked", "from_manifest", "seconds"}``.

    Example:
        >>> p = CheckProgress(0, "image file")
        >>> p.advance(0)
        >>> sorted(p.close(reused=5))
        ['checked', 'from_manifest', 'seconds']
    """

    def __init__(self, total: int, what: str, quiet: Optional[bool] = None, started: Optional[float] = None,
                 verb: str = "checking", unit: str = "files") -> None:
        self.total, self.what, self.done = int(total), what, 0
        self.verb, self.unit = verb, unit  # "checking image files ... 120 files/s"
        self.quiet = (not chief()) if quiet is None else quiet
        # ``started``: the ``time.perf_counter()`` when the check began (stat and manifest included).
        self.start = time.perf_counter() if started is None else started
        self._shown = False
        self._bar: Any = None
        self._task: Any = None

    def advance(self, n: int) -> None:
        self.done += int(n)
        if self.quiet or self.total <= 0:
            return
        if not self._shown and time.perf_counter() - self.start >= DELAY_SECONDS:
            self._open()
        if self._bar is not None:
            self._bar.update(self._task, completed=min(self.done, self.total), rate=f"{self.rate():,.0f} {self.unit}/s")

    def _open(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._shown = True
        out = console()
        if not out.is_terminal:  # a log file gets the summary line only, not bar redraws
            return
        self._bar = Progress(
            TextColumn(f"{self.verb} {self.what}s"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TextColumn("ETA"), TimeRemainingColumn(),
            console=out, transient=True,
        )
        self._task = self._bar.add_task("check", total=self.total, completed=0, rate="")
        self._bar.start()

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.start
        return self.done / elapsed if elapsed > 0 else 0.0

    def close(self, reused: int, summary: bool = True) -> dict:
        seconds = time.perf_counter() - self.start
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._shown and summary:
            self._shown = False
            print(summary_line(self.what, self.total + reused, reused, seconds), file=sys.stderr)
        return {"checked": self.total, "from_manifest": int(reused), "seconds": round(seconds, 3)}
