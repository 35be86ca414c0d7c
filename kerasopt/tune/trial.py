"""One trial: its config, its run directory (or directories), training, the objective and its record.

Run directories live in ``<tune_dir>/trials/trial_<id>/`` (``trial_<id>_e<k>`` for
the k-th extra execution). A Hyperband promotion copies the promoted trial's run
directory and resumes it from its last checkpoint to the new epoch budget; a
trial interrupted by a crash or Ctrl-C is resumed from its own checkpoint when
the search is run again.
"""

from __future__ import annotations

import math
import shutil
import statistics
import time
from pathlib import Path
from typing import Any, Optional

import yaml

from kerasopt.config.loader import dump_config
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError
from kerasopt.tune.runner import Outcome, objective_value, reason, run_in_process, run_isolated
from kerasopt.tune.space import decode_values, trial_config


class TrialFailed(Exception):
    """A trial that raised (OOM, NaN, a bad combination of values): recorded, and the search goes on."""


class TrialInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint: the search stops, a rerun resumes the trial."""


class TrialExecutor:
    """Turns Keras Tuner's trial into kerasopt runs and a record (see ``results.write_trials_csv``)."""

    def __init__(self, cfg: ExperimentConfig, tune_dir: Path, records: dict[str, dict], isolate: bool) -> None:
        self.cfg = cfg
        self.tune = cfg.tune
        self.tune_dir = tune_dir
        self.records = records
        self.isolate = isolate
        for sub in ("trials", "logs"):
            (tune_dir / sub).mkdir(parents=True, exist_ok=True)

    def run_dir(self, trial_id: str, execution: int = 0) -> Path:
        return self.tune_dir / "trials" / (f"trial_{trial_id}" + (f"_e{execution}" if execution else ""))

    def values(self, hp_values: dict[str, Any]) -> dict[str, Any]:
        return decode_values(self.tune, hp_values)

    def extra(self, hp_values: dict[str, Any], execution: int = 0, for_best: bool = False) -> dict[str, Any]:
        """Settings every trial gets on top of its values (quiet, no exports, Hyperband's budget)."""
        extra: dict[str, Any] = {}
        if not for_best:
            extra["train.verbose"] = 2 if self.isolate else 0  # worker output goes to its log
            if not self.tune.export_models:
                extra["export.formats"] = []
        if "tuner/epochs" in hp_values:
            extra["train.epochs"] = int(hp_values["tuner/epochs"])
            if not for_best:  # promotions resume from the checkpoint
                extra["callbacks.checkpoint.enabled"] = True
        if execution:
            extra["seed"] = self.cfg.seed + execution
        return extra

    def best_config(self, record: dict) -> ExperimentConfig:
        """The config ``kerasopt fit best.yaml`` runs: the base, the best values, the base's own exports."""
        hp_values = {"tuner/epochs": record["epochs"]} if self.tune.algorithm == "hyperband" else {}
        return trial_config(self.cfg, record["values"],
                            {**self.extra(hp_values, for_best=True), "name": f"{self.cfg.name}-best"})

    def __call__(self, trial) -> float:
        hpv = dict(trial.hyperparameters.values)
        values = self.values(hpv)
        past = hpv.get("tuner/trial_id")
        rec: dict[str, Any] = {
            "trial": trial.trial_id, "number": self._number(trial.trial_id), "status": "RUNNING",
            "values": values, "objective": None, "reason": None, "isolate": self.isolate,
            "epochs": int(hpv.get("tuner/epochs", 0)) or None, "initial_epoch": int(hpv.get("tuner/initial_epoch", 0)),
            "resumed_from": past, "executions": [], "run_dirs": [],
            "time_s": 0.0, "fit_s": 0.0, "setup_s": 0.0, "startup_s": None,
        }
        self.records[trial.trial_id] = rec
        t0 = time.perf_counter()
        try:
            for k in range(self.tune.executions_per_trial):
                self._execute(rec, hpv, values, k, past)
            obj = statistics.fmean(rec["executions"])
            if not math.isfinite(obj):
                raise TrialFailed(f"objective {self.tune.objective.metric} is {obj}")
            rec.update(status="COMPLETED", objective=obj)
            return obj
        except TrialFailed as e:
            rec.update(status="FAILED", reason=str(e))
            raise
        finally:
            rec["time_s"] = round(time.perf_counter() - t0, 3)

    def _number(self, trial_id: str) -> int:
        old = self.records.get(trial_id)
        return old["number"] if old else 1 + max([r["number"] for r in self.records.values()] or [0])

    def _execute(self, rec: dict, hpv: dict, values: dict, k: int, past: Optional[str]) -> None:
        try:
            cfg = trial_config(self.cfg, values, self.extra(hpv, k))
        except ConfigError as e:
            raise TrialFailed(f"invalid combination: {e}") from None
        if rec["epochs"] is None:
            rec["epochs"] = cfg.train.epochs
        run_dir = self.run_dir(rec["trial"], k)
        rec["run_dirs"].append(str(run_dir))
        log = self.tune_dir / "logs" / f"{run_dir.name}.log"
        state = self._prepare(run_dir, cfg, past, k)
        if state == "done":
            outcome = Outcome(True, run_dir, 0.0, metrics=_read_metrics(run_dir))
        else:
            runner = run_isolated if self.isolate else run_in_process
            outcome = runner(cfg, run_dir, resume=state == "resume", log_path=log)
        if not outcome.ok:
            raise TrialFailed(outcome.error or "unknown error")
        m = outcome.metrics or {}
        if m.get("interrupted_by"):  # SIGINT/SIGTERM: checkpoint saved; a rerun resumes this trial
            raise TrialInterrupted(f"trial {rec['trial']} stopped by {m['interrupted_by']}")
        rec["fit_s"] = round(rec["fit_s"] + m.get("fit_time_s", 0.0), 3)
        rec["setup_s"] = round(rec["setup_s"] + m.get("wall_time_s", 0.0) - m.get("fit_time_s", 0.0), 3)
        if outcome.startup_s is not None:
            rec["startup_s"] = round((rec["startup_s"] or 0.0) + outcome.startup_s, 3)
        try:
            rec["executions"].append(objective_value(run_dir, self.tune.objective))
        except ConfigError as e:
            raise ObjectiveMissing(e) from None

    def _prepare(self, run_dir: Path, cfg: ExperimentConfig, past: Optional[str], k: int) -> str:
        """``fresh``, ``resume`` (own checkpoint, or a promoted trial's copied in) or ``done``."""
        if _same_config(run_dir, cfg):
            metrics = _read_metrics(run_dir)
            if metrics and not metrics.get("interrupted_by") and (
                metrics.get("last_epoch", 0) >= cfg.train.epochs or metrics.get("early_stopped_at_epoch")
            ):
                return "done"  # finished before the search was stopped; its record was not saved
            if _has_checkpoint(run_dir):
                return "resume"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        if past is not None:
            src = self.run_dir(past, k)
            if _has_checkpoint(src):
                shutil.copytree(src, run_dir, ignore=shutil.ignore_patterns("model"))
                return "resume"
        return "fresh"


class ObjectiveMissing(Exception):
    """The objective metric is not logged: a config mistake that stops the search (wraps the ConfigError)."""

    def __init__(self, error: ConfigError) -> None:
        self.error = error
        super().__init__(str(error))


def _has_checkpoint(run_dir: Path) -> bool:
    ck = run_dir / "checkpoints"
    return any((ck / w / "meta.json").is_file() for w in ("last", ".old-last"))


def _read_metrics(run_dir: Path) -> Optional[dict]:
    import json

    p = run_dir / "metrics.json"
    try:
        return json.loads(p.read_text()) if p.is_file() else None
    except ValueError:
        return None


def _same_config(run_dir: Path, cfg: ExperimentConfig) -> bool:
    """The run directory was written by this very trial config (display settings aside)."""
    p = run_dir / "config.yaml"
    if not p.is_file():
        return False
    try:
        old = yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        return False
    new = yaml.safe_load(dump_config(cfg))
    for d in (old, new):
        d.get("train", {}).pop("verbose", None)
    return old == new


__all__ = ["ObjectiveMissing", "TrialExecutor", "TrialFailed", "TrialInterrupted", "reason"]
