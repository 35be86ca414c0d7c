"""The tune pipeline: config -> checks -> Keras Tuner search over kerasopt runs -> results.

``kerasopt tune CONFIG`` and ``kerasopt.tune.tune(CONFIG)`` both call :func:`tune`.
Everything lands in ``<runs_root>/<name>/tune/``::

    search.yaml    the resolved config the search was started with (a rerun must match it)
    kt/            Keras Tuner's project (oracle state, one trial.json per trial)
    trials/        one kerasopt run directory per trial (trial_<id>/)
    logs/          each trial's output
    records.json   kerasopt's record of every trial (values, objective, status, times)
    trials.csv     the same as a table
    best.yaml      a complete config with the best values: `kerasopt fit best.yaml`
    tune.png       objective against trial and against the most important keys
    summary.json   best trial, importance, counts

Running the command again continues the same search: finished trials are kept,
an interrupted trial resumes from its checkpoint, and a larger ``max_trials`` adds trials.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

import kerasopt.tune.results as res  # by its own name: importing kerasopt.tune would be a cycle
from kerasopt.config.loader import ConfigLike, dump_config, load_config
from kerasopt.config.schema import ExperimentConfig
from kerasopt.errors import ConfigError
from kerasopt.io.atomic import write_text
from kerasopt.training.runlock import RunLock
from kerasopt.tune.display import TrialTable, fmt_values, short_names
from kerasopt.tune.space import check_space

# Keys a rerun may change without starting over: they do not change what a trial computes.
_RESUMABLE_CHANGES = (("tune", "max_trials"), ("tune", "isolate"), ("tune", "max_consecutive_failures"),
                      ("tune", "export_models"), ("train", "verbose"))


@dataclass
class TuneResult:
    """What :func:`tune` returns. ``stopped`` says why a search ended early (failed trials in a row)."""

    tune_dir: Path
    records: list[dict[str, Any]]
    best: Optional[dict[str, Any]]
    best_config: Optional[ExperimentConfig]
    summary: dict[str, Any]
    stopped: Optional[str] = None
    files: dict[str, Optional[Path]] = field(default_factory=dict)

    def __repr__(self) -> str:
        b = self.best
        shown = f"best trial {b['trial']}: {b['objective']:.4f}" if b else "no completed trial"
        return f"TuneResult(tune_dir='{self.tune_dir}', trials={len(self.records)}, {shown})"


def default_tune_dir(cfg: ExperimentConfig) -> Path:
    return Path(cfg.runs_root) / cfg.name / "tune"


def tune(
    config: ConfigLike,
    overrides: Union[Iterable[str], Mapping[str, Any], None] = None,
    *,
    tune_dir: Optional[str] = None,
    overwrite: bool = False,
    print_fn: Optional[Callable[[str], None]] = None,
) -> TuneResult:
    """Search the config's ``tune.space``; every trial is a full kerasopt training run.

    Example:
        >>> result = kerasopt.tune.tune("configs/digits_tune.yaml", {"tune.max_trials": 4})  # doctest: +SKIP
        >>> result.best["values"], result.best["objective"]  # doctest: +SKIP
    """
    from kerasopt.io.console import console_print

    say = print_fn or console_print
    cfg = load_config(config, overrides)
    check_space(cfg)  # every mistake in the space fails here, before TensorFlow is imported
    tdir = Path(tune_dir) if tune_dir else default_tune_dir(cfg)
    with RunLock(tdir, "tune directory"):  # two searches in one folder would overwrite each other's records
        return _search(cfg, tdir, _prepare_dir(tdir, cfg, overwrite), say, print_fn)


def _search(cfg: ExperimentConfig, tdir: Path, resumed: bool, say: Callable[[str], None],
            print_fn: Optional[Callable[[str], None]]) -> TuneResult:
    """:func:`tune` once the tune directory is locked and prepared."""
    t = cfg.tune
    records = {r["trial"]: r for r in res.load_records(tdir)}

    from kerasopt.tune.space import build_hyperparameters
    from kerasopt.tune.trial import TrialExecutor
    from kerasopt.tune.tuner import FatalConfigError, KerasoptTuner, SearchInterrupted, SearchStopped, build_oracle

    executor = TrialExecutor(cfg, tdir, records, t.isolate)
    keys = list(t.space)
    table = TrialTable(keys, t.objective.metric, print_fn)
    direction = t.objective.direction

    def on_begin(trial) -> None:
        hpv = trial.hyperparameters.values
        past = hpv.get("tuner/trial_id")
        note = f"(resumes trial {past}: epochs {hpv['tuner/initial_epoch']}->{hpv['tuner/epochs']})" if past else ""
        epochs = int(hpv.get("tuner/epochs") or cfg.train.epochs)
        run_dir = executor.run_dir(trial.trial_id)
        table.begin(trial.trial_id, executor.values(hpv), note,
                    progress=lambda: _progress(run_dir, epochs, t.objective.metric))

    def on_end(trial) -> None:
        rec = records.setdefault(trial.trial_id, {
            "trial": trial.trial_id, "number": len(records) + 1, "objective": None, "time_s": 0.0,
            "values": executor.values(trial.hyperparameters.values)})
        if trial.status != "COMPLETED":
            rec["status"] = "FAILED"
            if not rec.get("reason"):
                lines = [ln for ln in (trial.message or "").splitlines() if ln.strip()]
                rec["reason"] = lines[-1].strip()[:300] if lines else "unknown error"
        res.save_records(tdir, records)
        res.write_trials_csv(tdir / "trials.csv", res.load_records(tdir), keys)
        best = res.best_record(list(records.values()), direction)
        table.end(rec, best["objective"] if best else None)

    oracle = build_oracle(cfg, build_hyperparameters(t, cfg))
    tuner = KerasoptTuner(oracle, executor, tdir, on_begin=on_begin, on_end=on_end)
    done = len(records)
    where = "in a subprocess each" if t.isolate else "in this process"
    say(f"{'resuming' if resumed else 'starting'} {t.algorithm} search of {len(keys)} key(s), "
        f"{t.objective.direction} {t.objective.metric}, trials {where}: {tdir}"
        + (f" ({done} trial(s) already done)" if resumed else ""))
    table.header()
    for rec in res.load_records(tdir):
        table.end(rec, None)
    stopped = None
    try:
        tuner.search()
    except SearchStopped as e:
        stopped = str(e)
    except FatalConfigError as e:
        raise e.error from None
    except (KeyboardInterrupt, SearchInterrupted) as e:
        table.close()
        say(f"search interrupted{': ' + str(e) if str(e) else ''}; run the same command again to continue "
            "(the interrupted trial resumes from its checkpoint)")
        raise KeyboardInterrupt from None
    finally:
        table.close()
    return finish(cfg, tdir, executor, stopped, say)


def _progress(run_dir: Path, epochs: int, metric: str) -> str:
    """``epoch 3/10 val_accuracy 0.8312`` from the running trial's history.csv."""
    from kerasopt.io.history import read_history

    values = read_history(run_dir / "history.csv").get(metric) or []
    return f"epoch {len(values)}/{epochs}" + (f" {metric} {values[-1]:.4f}" if values else "")


def _comparable(d: dict) -> dict:
    for section, key in _RESUMABLE_CHANGES:
        (d.get(section) or {}).pop(key, None)
    return d


def _first_difference(a: Any, b: Any, path: str = "") -> Optional[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            d = _first_difference(a.get(k), b.get(k), f"{path}.{k}" if path else str(k))
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} -> {b!r}"


def _prepare_dir(tdir: Path, cfg: ExperimentConfig, overwrite: bool) -> bool:
    """Start or continue the search in ``tdir``; refuse to mix two different searches. True when continuing."""
    if overwrite and tdir.exists():
        shutil.rmtree(tdir)
    saved = tdir / "search.yaml"
    resumed = saved.is_file()
    if resumed:
        old = _comparable(yaml.safe_load(saved.read_text()) or {})
        diff = _first_difference(old, _comparable(yaml.safe_load(dump_config(cfg))))
        if diff:
            raise ConfigError(f"{tdir} holds a search of a different config ({diff}); rerun with --overwrite "
                              "to start over, or --set name=... for a new search")
    elif tdir.exists() and any(tdir.iterdir()):
        raise ConfigError(f"{tdir} exists but holds no kerasopt search (no search.yaml); use --overwrite or "
                          "another --tune-dir")
    tdir.mkdir(parents=True, exist_ok=True)
    write_text(saved, dump_config(cfg))
    return resumed


def finish(cfg: ExperimentConfig, tdir: Path, executor, stopped: Optional[str],
           say: Callable[[str], None]) -> TuneResult:
    """Write trials.csv, best.yaml, tune.png and summary.json; print the summary."""
    t = cfg.tune
    records = res.load_records(tdir)
    keys = list(t.space)
    res.write_trials_csv(tdir / "trials.csv", records, keys)
    best = res.best_record(records, t.objective.direction)
    files: dict[str, Optional[Path]] = {"trials_csv": tdir / "trials.csv", "best_yaml": None, "plot": None}
    best_cfg = None
    if best is not None:
        best_cfg = executor.best_config(best)
        files["best_yaml"] = tdir / "best.yaml"
        res.write_best_yaml(files["best_yaml"], best_cfg, best, t.objective.metric, tdir)
    ranking = res.importance(records, t)
    try:
        from kerasopt.tune.plot import plot_search

        files["plot"] = plot_search(records, t, tdir / "tune.png", ranking=ranking)
    except ImportError:
        say("no plot: matplotlib is not installed (pip install matplotlib)")
    summary = res.write_summary(tdir, t, records, best, ranking, files)
    _print_summary(summary, records, keys, files, say)
    if stopped:
        say(f"search stopped: {stopped}")
    return TuneResult(tdir, records, best, best_cfg, summary, stopped, files)


def _print_summary(summary: dict, records: list[dict], keys: list[str], files: dict, say) -> None:
    names = short_names(keys)
    metric = summary["objective"]["metric"]
    say(f"{summary['trials']} trial(s): {summary['completed']} completed, {summary['failed']} failed")
    best = summary["best"]
    if best is None:
        say("no trial completed: nothing to report")
        return
    top = res.ranked(records, summary["objective"]["direction"])[:5]
    say("top trials:")
    for r in top:
        say(f"  {r['trial']:>6}  {metric}={r['objective']:.4f}  {fmt_values(r['values'], names)}")
    say(f"best trial {best['trial']}: {metric} = {best['objective']:.4f} ({best['run_dirs'][0]})")
    ranked = [f"{names[k]} {v:.2f}" for k, v in summary["importance"].items()]
    say(f"importance: {', '.join(ranked)}")
    for label, key in (("trials", "trials_csv"), ("best config", "best_yaml"), ("plot", "plot")):
        if files.get(key):
            say(f"{label}: {files[key]}")
    if files.get("best_yaml"):
        say(f"reproduce: kerasopt fit {files['best_yaml']}")
