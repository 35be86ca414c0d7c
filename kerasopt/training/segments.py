"""Totals over the segments of a resumed run, for ``metrics.json``.

A run continued with ``--resume`` trains in segments, and each ``kerasopt fit`` rewrites
``metrics.json``. Its top-level ``epochs_run``, ``wall_time_s``, ``fit_time_s`` and
``throughput`` describe the latest segment only (the tuner adds them up per trial itself);
``resumed_from_epoch`` and ``last_epoch`` place that segment in the run. Two keys cover the
whole run::

    "segments": [{"initial_epoch": 0, "last_epoch": 3, "epochs_run": 3, "wall_time_s": 9.1, ...},
                 {"initial_epoch": 3, "last_epoch": 6, "epochs_run": 3, "wall_time_s": 7.4, ...}],
    "total": {"segments": 2, "epochs_run": 6, "wall_time_s": 16.5, "fit_time_s": 11.2,
              "examples_per_sec_median": 2650.0, "untracked_epochs": 0}

A segment killed outright (SIGKILL, a lost node) never writes ``metrics.json``: its epochs
are in ``history.csv`` and the checkpoint, but its time is unknown. ``untracked_epochs``
counts them, so the totals never pass off a partial sum as the whole run.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Optional


def segment_entry(metrics: dict[str, Any]) -> dict[str, Any]:
    """One segment's record, from the top-level keys of its ``metrics.json``.

    Example:
        >>> segment_entry({"resumed_from_epoch": None, "last_epoch": 2, "epochs_run": 2, "wall_time_s": 5.0,
        ...                "fit_time_s": 4.0, "throughput": {"examples_per_sec": [10.0, 30.0]}})["initial_epoch"]
        0
    """
    tput = (metrics.get("throughput") or {}).get("examples_per_sec") or []
    return {
        "initial_epoch": int(metrics.get("resumed_from_epoch") or 0),
        "last_epoch": int(metrics.get("last_epoch") or 0),
        "epochs_run": int(metrics.get("epochs_run") or 0),
        "wall_time_s": float(metrics.get("wall_time_s") or 0.0),
        "fit_time_s": float(metrics.get("fit_time_s") or 0.0),
        "examples_per_sec": [float(v) for v in tput],
        "interrupted_by": metrics.get("interrupted_by"),
    }


def read_previous(path: Path) -> Optional[dict[str, Any]]:
    """The ``metrics.json`` an earlier segment left, or None (none yet, or unreadable: start the list afresh)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def merge_segments(previous: Optional[dict[str, Any]], current: dict[str, Any]) -> dict[str, Any]:
    """``{"segments": [...], "total": {...}}`` for ``current`` (this segment's metrics) after ``previous``.

    ``previous`` is the run's earlier ``metrics.json`` (None for a new run); one written before
    segments were recorded counts as a single segment.

    Example:
        >>> first = {"last_epoch": 3, "epochs_run": 3, "wall_time_s": 10.0, "fit_time_s": 8.0}
        >>> second = {"resumed_from_epoch": 3, "last_epoch": 5, "epochs_run": 2, "wall_time_s": 6.0,
        ...           "fit_time_s": 4.0}
        >>> merge_segments(first, second)["total"]["fit_time_s"]
        12.0
    """
    segments: list[dict[str, Any]] = []
    if previous:
        old = previous.get("segments")
        segments = [dict(s) for s in old] if isinstance(old, list) else [segment_entry(previous)]
    segments.append(segment_entry(current))
    rates = [v for s in segments for v in s.get("examples_per_sec") or []]
    epochs = sum(int(s.get("epochs_run") or 0) for s in segments)
    total = {
        "segments": len(segments),
        "epochs_run": epochs,
        "wall_time_s": round(sum(float(s.get("wall_time_s") or 0.0) for s in segments), 3),
        "fit_time_s": round(sum(float(s.get("fit_time_s") or 0.0) for s in segments), 3),
        "examples_per_sec_median": statistics.median(rates) if rates else None,
        "untracked_epochs": max(0, int(current.get("last_epoch") or 0) - epochs),
    }
    return {"segments": segments, "total": total}
