"""Step timing and its statistics, in plain Python (no TensorFlow): testable on a fake clock.

A *step* is one call of the compiled train function (``steps_per_execution``
optimizer steps). Its time runs from the end of the previous step to the end of
this one, so it holds everything the loop does per step: the data wait, the
train function, and every callback's batch hooks. The first step of an epoch is
timed from its own start (the gap before it is validation and epoch-end work,
not training). The first ``warmup`` steps (tracing, XLA compilation, cache
fill, tf.data autotuning) are left out of the statistics and reported apart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Optional


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between ranks (NumPy's default).

    Example:
        >>> percentile([1.0, 2.0, 3.0, 4.0], 25)
        1.75
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"`q` must be in [0, 100]. Received: q={q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


@dataclass(frozen=True)
class StepStats:
    """Steady-state numbers over the measured steps (times in milliseconds).

    ``examples_per_sec`` is all measured examples over all measured time (not
    the median step), so a slow step costs what it really costs.
    """

    steps: int
    examples: int
    seconds: float
    examples_per_sec: float
    median_ms: float
    p25_ms: float
    p75_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    warmup_steps: int
    warmup_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(durations: Sequence[float], examples: Sequence[int], warmup_steps: int = 0,
              warmup_s: float = 0.0) -> StepStats:
    """Statistics of measured step ``durations`` (seconds), each with its number of ``examples``.

    Example:
        >>> s = summarize([0.1, 0.3, 0.2, 0.2], [32, 32, 32, 32])
        >>> round(s.median_ms, 3), round(s.iqr_ms, 3), round(s.examples_per_sec, 3)
        (200.0, 50.0, 160.0)
    """
    if not durations:
        raise ValueError("no measured steps: every step was warm-up (raise the number of steps)")
    if len(durations) != len(examples):
        raise ValueError(f"{len(durations)} durations but {len(examples)} example counts")
    total = float(sum(durations))
    ms = [1000.0 * d for d in durations]
    p25, p75 = percentile(ms, 25), percentile(ms, 75)
    return StepStats(
        steps=len(durations), examples=int(sum(examples)), seconds=total,
        examples_per_sec=sum(examples) / total if total > 0 else float("inf"),
        median_ms=percentile(ms, 50), p25_ms=p25, p75_ms=p75, iqr_ms=p75 - p25,
        mean_ms=sum(ms) / len(ms), min_ms=min(ms), max_ms=max(ms),
        warmup_steps=warmup_steps, warmup_s=warmup_s,
    )


class StepRecorder:
    """Turns batch begin/end events into step durations, the first ``warmup`` steps excluded.

    Example (a fake clock: steps of 5 s warm-up, then 2 s and 3 s):
        >>> t = iter([0.0, 5.0, 7.0, 10.0])
        >>> r = StepRecorder(warmup=1, clock=lambda: next(t))
        >>> r.epoch_begin(); r.batch_begin(); r.batch_end(8); r.batch_begin(); r.batch_end(8)
        >>> r.batch_begin(); r.batch_end(8)
        >>> r.durations, r.warmup_s
        ([2.0, 3.0], 5.0)
    """

    def __init__(self, warmup: int = 1, clock: Callable[[], float] = time.perf_counter) -> None:
        if warmup < 0:
            raise ValueError(f"`warmup` must be >= 0. Received: warmup={warmup}")
        self.warmup = int(warmup)
        self.clock = clock
        self.durations: list[float] = []
        self.examples: list[int] = []
        self.seen = 0
        self.warmup_s = 0.0
        self._prev_end: Optional[float] = None
        self._begin: Optional[float] = None

    def epoch_begin(self) -> None:
        self._prev_end = None  # the time since the last epoch's end is validation, not training

    def batch_begin(self) -> None:
        if self._prev_end is None:
            self._begin = self.clock()

    def batch_end(self, examples: int) -> None:
        now = self.clock()
        start = self._prev_end if self._prev_end is not None else self._begin
        if start is None:  # an end without a begin: nothing to time
            self._prev_end = now
            return
        self._prev_end = now
        self.seen += 1
        if self.seen <= self.warmup:
            self.warmup_s += now - start
            return
        self.durations.append(now - start)
        self.examples.append(int(examples))

    def stats(self) -> StepStats:
        return summarize(self.durations, self.examples, min(self.seen, self.warmup), self.warmup_s)


@dataclass
class EpochRecord:
    """One epoch: training time (to the start of validation), whole epoch, time since training began."""

    epoch: int
    train_s: float
    epoch_s: float
    since_start_s: float
    logs: dict


class EpochRecorder:
    """Per-epoch training and epoch times from epoch/validation events only (no per-step cost).

    Example:
        >>> t = iter([0.0, 0.0, 4.0, 5.0, 5.0, 7.0, 8.0])
        >>> r = EpochRecorder(clock=lambda: next(t))
        >>> r.train_begin(); r.epoch_begin(); r.test_begin(); r.epoch_end(0, {"val_accuracy": 0.5})
        >>> r.epoch_begin(); r.test_begin(); r.epoch_end(1, {"val_accuracy": 0.9})
        >>> [(e.train_s, e.epoch_s, e.since_start_s) for e in r.epochs]
        [(4.0, 5.0, 5.0), (2.0, 3.0, 8.0)]
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.epochs: list[EpochRecord] = []
        self.start: Optional[float] = None
        self._epoch_t0 = 0.0
        self._train_end: Optional[float] = None

    def train_begin(self) -> None:
        if self.start is None:  # a loop that calls fit again (resume, NaN retry) keeps the first start
            self.start = self.clock()

    def epoch_begin(self) -> None:
        self._epoch_t0 = self.clock()
        self._train_end = None

    def test_begin(self) -> None:
        if self._train_end is None:
            self._train_end = self.clock()

    def epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        now = self.clock()
        train_end = self._train_end if self._train_end is not None else now
        start = self.start if self.start is not None else self._epoch_t0
        clean = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        self.epochs.append(EpochRecord(int(epoch), train_end - self._epoch_t0, now - self._epoch_t0,
                                       now - start, clean))

    def time_to(self, key: str, threshold: float) -> Optional[tuple[float, int]]:
        """``(seconds since training began, 1-based epoch)`` of the first epoch with ``logs[key] >= threshold``."""
        for i, e in enumerate(self.epochs):
            if e.logs.get(key, float("-inf")) >= threshold:
                return e.since_start_s, i + 1
        return None

    def as_dicts(self) -> list[dict]:
        return [asdict(e) for e in self.epochs]


def epoch_summary(records: Sequence[dict], examples_per_epoch: int, warmup_epochs: int = 1) -> dict:
    """Median training throughput and epoch time over the epochs after ``warmup_epochs``.

    Example:
        >>> recs = [{"train_s": 9.0, "epoch_s": 10.0}, {"train_s": 2.0, "epoch_s": 2.5},
        ...         {"train_s": 4.0, "epoch_s": 4.5}, {"train_s": 2.0, "epoch_s": 3.0}]
        >>> epoch_summary(recs, 100)["examples_per_sec"]
        50.0
    """
    kept = list(records[warmup_epochs:])
    if not kept:
        raise ValueError(f"no epochs after the {warmup_epochs} warm-up epoch(s); train for more epochs")
    rates = [examples_per_epoch / r["train_s"] for r in kept]
    train = [r["train_s"] for r in kept]
    whole = [r["epoch_s"] for r in kept]
    return {
        "epochs": len(kept), "examples_per_epoch": examples_per_epoch,
        "examples_per_sec": percentile(rates, 50),
        "examples_per_sec_iqr": percentile(rates, 75) - percentile(rates, 25),
        "train_s_median": percentile(train, 50), "epoch_s_median": percentile(whole, 50),
        "first_epoch_s": float(records[0]["epoch_s"]) if records else None,
    }
