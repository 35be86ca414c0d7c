"""Read a run directory (``config.yaml``, ``metrics.json``, ``history.csv``, checkpoint metas).

No TensorFlow: reports and comparisons of finished runs load in well under a
second. Every problem with the folder is a ``ConfigError`` that names it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from kerasopt.errors import ConfigError
from kerasopt.io import history

# history.csv columns that are not model metrics (logged by kerasopt's own callbacks)
NON_METRICS = ("epoch", "lr", "examples_per_sec", "step_time_ms")


@dataclass
class RunData:
    """One run, as read from disk. Epochs are 1-based, as in ``metrics.json`` and the console.

    Example:
        >>> run = load_run("runs/digits_cnn")  # doctest: +SKIP
        >>> run.epochs[-1], run.metric_names  # doctest: +SKIP
        (10, ['accuracy'])
    """

    path: Path
    config_text: str
    config: dict[str, Any]
    history: dict[str, list[float]]
    metrics: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.metrics.get("name") or self.config.get("name") or self.path.name)

    @property
    def epochs(self) -> list[int]:
        return [int(e) + 1 for e in self.history["epoch"]]

    @property
    def metric_names(self) -> list[str]:
        """Training metrics besides the loss (``accuracy``, ``mae``...), in column order."""
        return [k for k in self.history if k not in NON_METRICS and k != "loss" and not k.startswith("val_")]

    @property
    def raw_names(self) -> list[str]:
        """Metrics with an EMA (``val_x``) and a raw-weights (``val_raw_x``) column."""
        return [k[len("val_raw_"):] for k in self.history
                if k.startswith("val_raw_") and f"val_{k[len('val_raw_'):]}" in self.history]

    @property
    def task(self) -> Optional[str]:
        return (self.metrics.get("data") or {}).get("task")

    def series(self, key: str) -> Optional[list[float]]:
        """The column ``key``, or None when it is absent or never finite."""
        vals = self.history.get(key)
        if not vals or not any(math.isfinite(v) for v in vals):
            return None
        return vals


def load_run(path: str | Path) -> RunData:
    """Read a run directory; a folder that is not a run, or a run with no epoch yet, is a ConfigError."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"not found: {p}")
    if not p.is_dir() or not (p / "config.yaml").is_file():
        raise ConfigError(f"{p} is not a kerasopt run directory (no config.yaml)")
    config_text = (p / "config.yaml").read_text()
    try:
        config = yaml.safe_load(config_text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p / 'config.yaml'}: YAML syntax error: {str(e).splitlines()[0]}") from None
    history = read_history(p / "history.csv")
    metrics = _read_json(p / "metrics.json") if (p / "metrics.json").is_file() else {}
    checkpoints = {}
    for which in ("best", "last"):
        meta = p / "checkpoints" / which / "meta.json"
        if meta.is_file():
            try:
                data = json.loads(meta.read_text())
            except (OSError, json.JSONDecodeError):
                continue  # a checkpoint mid-swap: the report just leaves it out
            data.pop("config", None)
            checkpoints[which] = data
    return RunData(path=p, config_text=config_text, config=config if isinstance(config, dict) else {},
                   history=history, metrics=metrics, checkpoints=checkpoints)


def read_history(path: Path) -> dict[str, list[float]]:
    """``history.csv`` as columns of floats (:func:`kerasopt.io.history.read_history`: a repeated epoch
    keeps its last row); a run with no finished epoch is a ``ConfigError``, since a report needs one.
    """
    run = path.parent
    if not path.is_file():
        raise ConfigError(f"{run} has no training history yet (no history.csv): "
                          "the report needs at least one finished epoch")
    columns = history.read_history(path)
    if "epoch" not in columns:
        raise ConfigError(f"{run} has no training history yet ({path.name} has no header with 'epoch')")
    if not columns["epoch"]:
        raise ConfigError(f"{run} has no training history yet ({path.name} has no rows): "
                          "the report needs at least one finished epoch")
    return columns


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
