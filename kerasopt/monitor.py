"""The "improved?" rule for a monitored metric: which way is better and by how much.

Early stopping, LR-on-plateau, the checkpoint's best and top-k, ``metrics.json``'s best values, the
report's best column and the tuner's objective all decide through :class:`Monitor`, so a metric
improves by the same rule everywhere. ``mode: auto`` asks :func:`kerasopt.config.metric_names.higher_is_better`
(scores such as accuracy, auc, f1 and r2 are maximized; losses and errors minimized). No TensorFlow.

Example:
    >>> m = Monitor("val_accuracy", min_delta=0.01)
    >>> m.mode, m.improved(0.905, best=0.9), m.improved(0.92, best=0.9)
    ('max', False, True)
    >>> Monitor("val_loss").best_of([0.9, float("nan"), 0.4, 0.4])
    (0.4, 2)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Optional, TypeVar

from kerasopt.config.metric_names import higher_is_better

MODES = ("auto", "min", "max")
T = TypeVar("T")


def resolve_mode(key: str, mode: str = "auto") -> str:
    """``"min"`` or ``"max"`` for ``key``; ``auto`` decides by the metric's name.

    Example:
        >>> resolve_mode("val_auc"), resolve_mode("val_auc", "min"), resolve_mode("val_rmse")
        ('max', 'min', 'min')
    """
    if mode not in MODES:
        raise ValueError(f"`mode` must be auto, min or max. Received: mode={mode!r}")
    if mode != "auto":
        return mode
    return "max" if higher_is_better(key) else "min"


@dataclass(frozen=True)
class Monitor:
    """A monitored key, its resolved mode (``min``/``max``) and the ``min_delta`` an improvement must beat."""

    key: str
    mode: str = "auto"
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", resolve_mode(self.key, self.mode))
        delta = float(self.min_delta)
        if math.isnan(delta):
            raise ValueError(f"`min_delta` must be a number. Received: min_delta={self.min_delta!r}")
        object.__setattr__(self, "min_delta", abs(delta))

    @property
    def maximize(self) -> bool:
        return self.mode == "max"

    @property
    def worst(self) -> float:
        """The value every real value improves on: ``-inf`` when maximizing, ``inf`` when minimizing."""
        return -math.inf if self.maximize else math.inf

    def improved(self, value: float, best: Optional[float]) -> bool:
        """Whether ``value`` beats ``best`` by more than ``min_delta``; anything beats ``None`` (no best yet).

        NaN never beats a number: a diverged epoch is not an improvement.
        """
        if best is None:
            return True
        if self.maximize:
            return value > best + self.min_delta
        return value < best - self.min_delta

    def best_index(self, values: Sequence[float]) -> Optional[int]:
        """Index of the best finite value (the first one on a tie), or None when none is finite."""
        kept = [i for i, v in enumerate(values) if v is not None and math.isfinite(v)]
        if not kept:
            return None
        return (max if self.maximize else min)(kept, key=values.__getitem__)

    def best_of(self, values: Sequence[float]) -> Optional[tuple[float, int]]:
        """``(best finite value, its index)`` or None. NaN and infinite values never count as best."""
        i = self.best_index(values)
        return None if i is None else (values[i], i)

    def best_item(self, items: Iterable[T], value: Callable[[T], float]) -> Optional[T]:
        """The item whose ``value`` is best among finite ones (the first on a tie), or None."""
        items = [x for x in items if math.isfinite(value(x))]
        if not items:
            return None
        return (max if self.maximize else min)(items, key=value)

    def ranked(self, items: Iterable[T], value: Callable[[T], float]) -> list[T]:
        """``items`` best first (a stable sort: ties keep their order)."""
        return sorted(items, key=value, reverse=self.maximize)


__all__ = ["MODES", "Monitor", "resolve_mode"]
