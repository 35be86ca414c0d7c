"""The base of callbacks that watch one logged metric (early stopping, plateau, checkpoint's best).

The "improved?" rule itself is :class:`kerasopt.monitor.Monitor` (TF-free, also used by the report and
the tuner); this base adds what every such callback does the same way: resolving ``mode`` once in
``__init__`` and a missing metric as one ``ConfigError`` naming the config key and the logged metrics.
"""

from __future__ import annotations

from typing import Optional

from ..errors import ConfigError
from ..monitor import Monitor
from .base import StatefulCallback


class MonitorCallback(StatefulCallback):
    """A stateful callback that monitors ``monitor`` (``mode`` auto/min/max, improvements beyond ``min_delta``).

    ``config_key`` is the YAML key that names the monitor, for the error when the metric is not logged.

    Example:
        >>> cb = MonitorCallback("val_auc", config_key="callbacks.early_stopping.monitor")
        >>> cb.mode, cb.improved(0.8, None), cb.improved(0.8, 0.9)
        ('max', True, False)
    """

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0, *, config_key: str) -> None:
        super().__init__()
        self.rule = Monitor(monitor, mode, min_delta)
        self.monitor = monitor
        self.mode = self.rule.mode  # resolved: "min" or "max"
        self.min_delta = self.rule.min_delta
        self.config_key = config_key

    def improved(self, value: float, best: Optional[float]) -> bool:
        """:meth:`kerasopt.monitor.Monitor.improved` with this callback's mode and ``min_delta``."""
        return self.rule.improved(value, best)

    def monitored(self, logs: Optional[dict]) -> float:
        """The monitored value in ``logs``; a key the run does not log is a ``ConfigError`` listing those it does."""
        logs = logs or {}
        if self.monitor not in logs:
            raise ConfigError(f"'{self.monitor}' is not among the logged metrics: {', '.join(sorted(logs)) or 'none'}",
                              key=self.config_key)
        return float(logs[self.monitor])
