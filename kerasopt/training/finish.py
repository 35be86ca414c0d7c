"""End of a run: ``metrics.json``, exports, and the summary a person reads."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from rich.table import Table

from kerasopt.io.atomic import write_json
from kerasopt.io.console import console_print, print_table
from kerasopt.io.history import read_metrics
from kerasopt.monitor import Monitor
from kerasopt.training.rundir import RunDir


def summarize(history: dict[str, list[float]], initial_epoch: int) -> dict[str, Any]:
    """Final and best value of every metric; epochs are 1-based and count from the run's start."""
    skip = ("lr", "examples_per_sec", "step_time_ms")
    final = {k: v[-1] for k, v in history.items() if v and k not in skip}
    best = {}
    for k in final:
        b = Monitor(k).best_of(history[k])  # a NaN epoch is never the best
        if b:
            best[k] = {"value": b[0], "epoch": initial_epoch + b[1] + 1}
    return {"final": final, "best": best}


def _record(cfg, spec, model) -> dict | None:
    """The ``preprocess.json`` record for the SavedModel's raw-input signature (None: no such signature)."""
    from kerasopt.training.preprocess_record import describe_preprocessing

    try:
        return describe_preprocessing(cfg, spec, model)
    except Exception:  # noqa: BLE001 - write_preprocessing says why; the export goes on without serving_raw
        return None


def finish_run(cfg, rd: RunDir, model, history, named, decision, choice, spec, bundle, *, initial_epoch: int,
               fit_seconds: float, wall_seconds: float, say: Callable[[str], None],
               interrupted: str | None = None, write: bool = True) -> dict[str, Any]:
    """Summarize the run; with ``write`` (the chief) export the model and write ``metrics.json``."""
    from kerasopt.export import export_model

    # A preempted job has seconds to live: save (done) and leave; exports come with the resumed run.
    exports = {} if interrupted or not write else export_model(model, rd.model_dir, list(cfg.export.formats),
                                                               name=cfg.name, preprocess=_record(cfg, spec, model))
    tput = history.get("examples_per_sec", [])
    epochs_run = len(next(iter(history.values()), []))
    summary = summarize(history, initial_epoch)
    if initial_epoch and write:
        # A resumed segment's history starts at initial_epoch; history.csv holds every epoch of the
        # run (rows of a rewound epoch were trimmed), so "best" is over the whole run.
        whole = read_metrics(rd.history)
        if len(next(iter(whole.values()), [])) == initial_epoch + len(next(iter(history.values()), [])):
            summary["best"] = {k: v for k, v in summarize(whole, 0)["best"].items() if k in summary["final"]}
    metrics: dict[str, Any] = {
        "name": cfg.name,
        **summary,
        "epochs_run": epochs_run,
        "last_epoch": initial_epoch + epochs_run,
        "resumed_from_epoch": initial_epoch or None,
        "wall_time_s": round(wall_seconds, 3),
        "fit_time_s": round(fit_seconds, 3),
        "throughput": {
            "examples_per_sec_median": statistics.median(tput) if tput else None,
            "examples_per_sec": tput,
            "epoch_seconds": [round(t, 3) for t in named["throughput"].epoch_times],
        },
        "precision": decision.as_dict(),
        "strategy": choice.as_dict(),
        "parameters": int(model.count_params()),
        "data": {"input_shape": list(spec.input_shape), "task": spec.task, "num_classes": spec.num_classes,
                 "num_train": spec.num_train, "num_val": spec.num_val, "steps_per_epoch": bundle.steps_per_epoch,
                 # data.on_bad_file: skip -> what was left out, so the run record says it
                 **({"skipped": list(spec.extras["skipped_files"])} if spec.extras.get("skipped_files") else {}),
                 # the cache decision (kerasopt.data.cache), the shuffle buffer and the up-front file check
                 **{k: spec.extras[k] for k in ("table", "cache", "shuffle", "file_check") if spec.extras.get(k)}},
        "exports": exports,
    }
    ck = named.get("checkpoint")
    if ck is not None:
        metrics["checkpoint"] = {"monitor": ck.monitor, "mode": ck.mode, "best_value": ck.best_value,
                                 "top_k": [{"value": v, "epoch": e} for v, e in ck.top_k]}
    es = named.get("early_stopping")
    if es is not None and getattr(es, "stopped_epoch", 0):
        metrics["early_stopped_at_epoch"] = int(es.stopped_epoch)
        metrics["early_stopping_best_epoch"] = es.best_epoch
    guard = named.get("nan_guard")
    metrics["nan_recoveries"] = list(guard.recoveries) if guard is not None else []
    if guard is not None:  # the count, and what the guard was allowed to do
        metrics["nan_guard"] = {"recoveries": len(guard.recoveries), "max_retries": guard.max_retries,
                                "lr_factor": guard.lr_factor, "loss_bound": guard.loss_bound}
    if "ema" in named:
        metrics["ema"] = {"exported_weights": cfg.callbacks.ema.export}
    if interrupted:
        metrics["interrupted_by"] = interrupted
    if not write:
        return metrics
    from kerasopt.training.segments import merge_segments, read_previous

    # The top-level times and counts are this segment's; segments/total cover every --resume of the run.
    metrics.update(merge_segments(read_previous(rd.metrics), metrics))
    write_json(rd.metrics, metrics)
    print_summary(metrics, rd, say)
    if interrupted:
        say(f"stopped by {interrupted}: checkpoint saved; continue with `kerasopt fit {rd.config} "
            f"--run-dir {rd.path} --resume`")
    return metrics


def print_summary(metrics: dict[str, Any], rd: RunDir, say: Callable[[str], None] | None = None) -> None:
    table = Table(title=f"{metrics['name']}: {metrics['epochs_run']} epochs in {metrics['fit_time_s']:.1f}s",
                  title_justify="left")
    table.add_column("metric")
    table.add_column("final", justify="right")
    table.add_column("best", justify="right")
    table.add_column("best epoch", justify="right")
    for k, v in metrics["final"].items():
        b = metrics["best"].get(k, {})
        table.add_row(k, f"{v:.4f}", f"{b.get('value', float('nan')):.4f}", str(b.get("epoch", "")))
    print_table(table, say)  # a caller-supplied printer (notebooks, tests, quiet runs) gets it as text
    tput = metrics["throughput"]["examples_per_sec_median"]
    lines = [
        f"run directory: {rd.path}",
        f"precision: {metrics['precision']['policy']}, XLA {'on' if metrics['precision']['jit_compile'] else 'off'}"
        + (f", {tput:,.0f} examples/s (median)" if tput else ""),
        f"parameters: {metrics['parameters']:,}; exports: {', '.join(metrics['exports'].values()) or 'none'}",
    ]
    total = metrics.get("total") or {}
    if total.get("segments", 1) > 1:
        untracked = total["untracked_epochs"]
        lines.append(f"whole run: {total['segments']} segments, {total['epochs_run']} epochs in "
                     f"{total['fit_time_s']:.1f}s of training ({total['wall_time_s']:.1f}s wall)"
                     + (f"; {untracked} more epoch(s) from a segment killed before it wrote metrics.json"
                        if untracked else ""))
    for line in lines:
        (say or console_print)(line)
