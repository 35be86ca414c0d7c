"""Run one trial's training: in this process, or in a fresh Python process (``tune.isolate``).

Both paths call :func:`kerasopt.workflow.fit` on a complete trial config and
leave a normal kerasopt run directory behind; the objective is then read from
its ``history.csv``, so both paths are scored the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from kerasopt.config.loader import dump_config
from kerasopt.config.schema import ExperimentConfig
from kerasopt.config.tune_schema import ObjectiveConfig
from kerasopt.errors import ConfigError
from kerasopt.io.history import read_metrics
from kerasopt.monitor import Monitor

_GRACE_S = 60.0  # how long an interrupted worker may take to save its checkpoint


@dataclass
class Outcome:
    """What one training run of a trial gave: its metrics.json, or why it failed."""

    ok: bool
    run_dir: Path
    wall_s: float
    metrics: Optional[dict] = None
    error: Optional[str] = None
    startup_s: Optional[float] = None  # isolate: process start and imports, until the worker could train


def reason(exc: BaseException) -> str:
    """One line for trials.csv: ``ResourceExhaustedError: OOM when allocating ...``."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def run_in_process(cfg: ExperimentConfig, run_dir: Path, *, resume: bool, log_path: Path) -> Outcome:
    """Train here; the Keras session is cleared afterwards so graphs do not pile up across trials."""
    import gc

    from kerasopt._keras import keras
    from kerasopt.workflow import fit

    t0 = time.perf_counter()
    with open(log_path, "a") as log:
        try:
            res = fit(cfg, run_dir=str(run_dir), resume=resume, overwrite=not resume,
                      print_fn=lambda s: print(s, file=log, flush=True))
            return Outcome(True, run_dir, time.perf_counter() - t0, metrics=res.metrics)
        except Exception as e:  # noqa: BLE001 - a failed trial is recorded, the search goes on
            log.write(traceback.format_exc())
            return Outcome(False, run_dir, time.perf_counter() - t0, error=reason(e))
        finally:
            keras.backend.clear_session()
            gc.collect()


def run_isolated(cfg: ExperimentConfig, run_dir: Path, *, resume: bool, log_path: Path) -> Outcome:
    """Train in ``python -m kerasopt.tune.worker``: its memory goes back to the OS when it exits."""
    stem = log_path.with_suffix("")
    cfg_path, result_path = Path(f"{stem}.yaml"), Path(f"{stem}.result.json")
    cfg_path.write_text(dump_config(cfg))
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "kerasopt.tune.worker", str(cfg_path), str(run_dir), str(result_path),
           "--t0", repr(time.time())]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    with open(log_path, "a") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            proc.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the worker too: it finishes its batch, saves a checkpoint and exits.
            try:
                proc.wait(timeout=_GRACE_S)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                proc.kill()
                proc.wait()
            raise
    wall = time.perf_counter() - t0
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    startup = result.get("startup_s")
    if result.get("ok"):
        return Outcome(True, run_dir, wall, metrics=result["metrics"], startup_s=startup)
    error = result.get("error") or _exit_reason(proc.returncode, log_path)
    return Outcome(False, run_dir, wall, error=error, startup_s=startup)


def _exit_reason(code: int, log_path: Path) -> str:
    if code in (-9, 137):
        return f"worker killed by SIGKILL (exit {code}): out of memory?"
    if code < 0:
        return f"worker killed by signal {-code}"
    lines = [ln for ln in log_path.read_text(errors="replace").splitlines() if ln.strip()] if log_path.is_file() else []
    return f"worker exited with code {code}" + (f": {lines[-1].strip()[:200]}" if lines else "")


def objective_value(run_dir: Path, objective: ObjectiveConfig) -> float:
    """The trial's score: the metric's last epoch (``reduce: final``) or its best epoch.

    A metric the run does not log is a config mistake: ``ConfigError`` naming the metrics that exist.
    """
    history = read_metrics(run_dir / "history.csv")
    values = history.get(objective.metric)
    if not values:
        from kerasopt.registry import suggest

        logged = ", ".join(sorted(history)) or "none"
        hint = suggest(objective.metric, list(history))
        raise ConfigError(f"'{objective.metric}' is not logged by the trial's run.{hint} Logged metrics: {logged}",
                          key="tune.objective.metric")
    if objective.reduce == "final":
        return values[-1]
    best = Monitor(objective.metric, objective.direction).best_of(values)
    return float("nan") if best is None else best[0]
