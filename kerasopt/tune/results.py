"""The search's record: ``records.json`` (resume), ``trials.csv``, ``best.yaml``, ``summary.json``.

``trials.csv`` has one row per trial: its values, objective, status, time and
run directory. ``best.yaml`` is a complete config with the best trial's values
filled in: ``kerasopt fit best.yaml`` trains the best trial again.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from kerasopt.config.loader import dump_config
from kerasopt.config.schema import ExperimentConfig
from kerasopt.config.tune_schema import TuneConfig
from kerasopt.io.atomic import write_json, write_text
from kerasopt.monitor import Monitor

RECORDS = "records.json"


def load_records(tune_dir: str | Path) -> list[dict[str, Any]]:
    """Every trial of the search in ``tune_dir``, in the order they started.

    Example:
        >>> recs = load_records("runs/digits_tune/tune")  # doctest: +SKIP
        >>> max(r["objective"] for r in recs if r["status"] == "COMPLETED")  # doctest: +SKIP
    """
    path = Path(tune_dir) / RECORDS
    data = json.loads(path.read_text()) if path.is_file() else {}
    return sorted(data.values(), key=lambda r: r.get("number", 0))


def save_records(tune_dir: Path, records: Mapping[str, dict]) -> None:
    write_json(tune_dir / RECORDS, dict(records))


def best_record(records: Sequence[dict], direction: str) -> Optional[dict]:
    done = [r for r in records if r["status"] == "COMPLETED" and _finite(r.get("objective"))]
    return _rule(direction).best_item(done, lambda r: r["objective"])


def ranked(records: Sequence[dict], direction: str) -> list[dict]:
    """Completed trials with a finite objective, best first (ties keep the trial order)."""
    done = [r for r in records if r["status"] == "COMPLETED" and _finite(r.get("objective"))]
    return _rule(direction).ranked(done, lambda r: r["objective"])


def running_best(values: Sequence[float], direction: str) -> list[float]:
    """The best value so far after each trial. Example: ``running_best([3, 1, 2], "min") -> [3, 1, 1]``."""
    rule, out, best = _rule(direction), [], None
    for v in values:
        best = v if best is None or rule.improved(v, best) else best
        out.append(best)
    return out


def _rule(direction: str) -> Monitor:
    """The objective's improvement rule; ``direction`` is the resolved ``tune.objective.direction``."""
    return Monitor("objective", direction)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _cell(v: Any) -> Any:
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) or v is None else v


def write_trials_csv(path: Path, records: Sequence[dict], keys: Sequence[str]) -> None:
    """One row per trial; a key a trial did not use (a condition was off) is empty."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["trial", "status", "objective", *keys, "epochs", "initial_epoch", "resumed_from", "time_s",
                "fit_s", "overhead_s", "run_dir", "reason"])
    for r in records:
        vals = r.get("values", {})
        fit = r.get("fit_s")
        overhead = round(r["time_s"] - fit, 3) if fit is not None and r.get("time_s") is not None else ""
        w.writerow([r["trial"], r["status"], "" if r.get("objective") is None else r["objective"],
                    *[_cell(vals[k]) if k in vals else "" for k in keys], r.get("epochs", ""),
                    r.get("initial_epoch", ""), r.get("resumed_from") or "", r.get("time_s", ""),
                    "" if fit is None else fit, overhead, (r.get("run_dirs") or [""])[0], r.get("reason") or ""])
    write_text(path, buf.getvalue())


def write_best_yaml(path: Path, cfg: ExperimentConfig, record: dict, metric: str, tune_dir: Path) -> None:
    """``cfg`` (the best trial's complete config) as YAML, headed by where it came from."""
    head = (f"# Best trial {record['trial']} of the search in {tune_dir}: {metric} = {record['objective']:.4f}\n"
            f"# Values: {json.dumps(record['values'])}\n"
            f"# Reproduce it with: kerasopt fit {path}\n")
    write_text(path, head + dump_config(cfg))


def importance(records: Sequence[dict], tune: TuneConfig) -> list[tuple[str, float]]:
    """How strongly each key goes with the objective over the completed trials, in [0, 1], largest first.

    Ranges: |Spearman correlation| (on the log for log sampling); choices and booleans:
    the correlation ratio (share of the objective's spread explained by the groups).
    Example: ``[("train.optimizer.learning_rate", 0.93), ("model.dropout", 0.12)]``.
    """
    import numpy as np

    done = [r for r in records if r["status"] == "COMPLETED" and _finite(r.get("objective"))]
    out = []
    for key, spec in tune.space.items():
        pts = [(r["values"][key], r["objective"]) for r in done if key in r.get("values", {})]
        score = 0.0
        if len(pts) >= 3:
            y = np.array([p[1] for p in pts], dtype=float)
            if spec.type in ("float", "int"):
                x = np.array([p[0] for p in pts], dtype=float)
                x = np.log(x) if spec.sampling == "log" else x
                rx, ry = _ranks(x), _ranks(y)
                if rx.std() > 0 and ry.std() > 0:
                    score = abs(float(np.corrcoef(rx, ry)[0, 1]))
            else:
                labels = [json.dumps(p[0], sort_keys=True) for p in pts]
                total = float(((y - y.mean()) ** 2).sum())
                if total > 0:
                    between = sum(
                        (sum(lb == g for lb in labels)) * (y[[lb == g for lb in labels]].mean() - y.mean()) ** 2
                        for g in set(labels)
                    )
                    score = math.sqrt(between / total)
        out.append((key, round(score, 4)))
    return sorted(out, key=lambda kv: -kv[1])


def _ranks(a):
    import numpy as np

    order = a.argsort(kind="stable")
    ranks = np.empty(len(a), dtype=float)
    ranks[order] = np.arange(len(a), dtype=float)
    for v in np.unique(a):  # ties share their mean rank
        ranks[a == v] = ranks[a == v].mean()
    return ranks


def write_summary(tune_dir: Path, tune: TuneConfig, records: Sequence[dict], best: Optional[dict],
                  ranking: list[tuple[str, float]], files: Mapping[str, Optional[Path]]) -> dict[str, Any]:
    summary = {
        "algorithm": tune.algorithm,
        "objective": {"metric": tune.objective.metric, "direction": tune.objective.direction,
                      "reduce": tune.objective.reduce},
        "trials": len(records),
        "completed": sum(r["status"] == "COMPLETED" for r in records),
        "failed": sum(r["status"] == "FAILED" for r in records),
        "best": best,
        "importance": dict(ranking),
        "files": {k: (str(v) if v else None) for k, v in files.items()},
    }
    write_json(tune_dir / "summary.json", summary)
    return summary
