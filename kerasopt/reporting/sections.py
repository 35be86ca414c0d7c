"""The table-and-text sections of a run report: overview, device, checkpoints, configuration."""

from __future__ import annotations

import math
from typing import Any

from kerasopt.monitor import Monitor
from kerasopt.reporting.document import Code, Section, Table, Text, fmt
from kerasopt.reporting.rundata import NON_METRICS, RunData


def best_of(run: RunData, key: str) -> tuple[float, int] | None:
    """(best value, 1-based epoch) of a history column; scores are maximized, losses and errors minimized.

    Same rule as ``metrics.json``'s ``best``, but over the whole history.csv (every resumed segment).
    """
    vals = run.series(key)
    if vals is None:
        return None
    best = Monitor(key).best_of(vals)
    return None if best is None else (best[0], run.epochs[best[1]])


def median_of(run: RunData, key: str) -> float | None:
    """Median of a history column over the whole run (None when it was not logged)."""
    vals = sorted(v for v in (run.series(key) or []) if math.isfinite(v))
    return vals[len(vals) // 2] if vals else None


def _order(key: str) -> tuple[int, int, str]:
    group = 2 if key.startswith("val_raw_") else 1 if key.startswith("val_") else 0
    base = key.removeprefix("val_raw_").removeprefix("val_")
    return group, 0 if base == "loss" else 1, base


def metrics_table(run: RunData) -> Table:
    rows = []
    for k in sorted((k for k in run.history if k not in NON_METRICS), key=_order):
        b = best_of(run, k)
        if b is None:
            continue
        rows.append([k, fmt(run.history[k][-1]), fmt(b[0]), str(b[1])])
    return Table(["metric", "last epoch", "best", "best epoch"], rows,
                 caption="Best is the maximum for scores (accuracy, auc, f1, r2, ...) and the minimum for "
                 "losses and errors.")


def overview_section(run: RunData) -> Section:
    m, cfg = run.metrics, run.config
    sec = Section("Summary")
    planned = (cfg.get("train") or {}).get("epochs")
    epochs = f"{run.epochs[-1]}" + (f" of {planned}" if planned else "")
    ck = m.get("checkpoint") or {}
    monitor = ck.get("monitor")
    headline = f"{run.name}: {epochs} epochs"
    b = best_of(run, monitor) if monitor else None
    if b is not None:
        headline += f"; best {monitor} {fmt(b[0])} at epoch {b[1]}"
    sec.add(Text(headline + "."))
    if not m:
        sec.add(Text("metrics.json is missing: the run has not finished (or was killed); "
                     "this report shows its history so far.", muted=True))
    data = m.get("data") or {}
    resumed = f" (resumed from epoch {m['resumed_from_epoch']})" if m.get("resumed_from_epoch") else ""
    rows = [
        ["epochs", epochs + resumed],
        ["wall time" + (" (resumed segment)" if resumed else ""),
         f"{fmt(m.get('wall_time_s'), 1)} s (training {fmt(m.get('fit_time_s'), 1)} s)"
         if m.get("wall_time_s") is not None else "—"],
        ["parameters", fmt(m.get("parameters"))],
        ["data", _data_line(data) if data else "—"],
        ["exports", ", ".join(f"{k}: {v}" for k, v in (m.get("exports") or {}).items()) or "none"],
        ["NaN recoveries", fmt(len(m.get("nan_recoveries") or []))],
    ]
    if m.get("early_stopped_at_epoch"):
        rows.append(["early stopping", f"stopped at epoch {m['early_stopped_at_epoch']}, "
                                       f"best epoch {m.get('early_stopping_best_epoch')}"])
    if m.get("interrupted_by"):
        rows.append(["interrupted by", str(m["interrupted_by"])])
    sec.add(Table(["", ""], rows, align_right=False))
    sec.add(metrics_table(run))
    return sec


def _data_line(d: dict[str, Any]) -> str:
    shape = "x".join(str(s) for s in d.get("input_shape") or [])
    classes = f", {d['num_classes']} classes" if d.get("num_classes") else ""
    return (f"{d.get('task', '?')}{classes}; {fmt(d.get('num_train'))} train / {fmt(d.get('num_val'))} "
            f"validation examples; input {shape}")


def device_section(run: RunData) -> Section:
    p, s = run.metrics.get("precision") or {}, run.metrics.get("strategy") or {}
    train = run.config.get("train") or {}
    sec = Section("Device and precision")
    if not p:
        return sec.add(Text("Not recorded (metrics.json is missing).", muted=True))
    rows = [
        ["device", str(p.get("device", "—"))],
        ["precision policy", f"{p.get('policy', '—')} (asked for: {train.get('precision', 'auto')})"],
        ["XLA (jit_compile)",
         f"{'on' if p.get('jit_compile') else 'off'} (asked for: {train.get('jit_compile', 'auto')})"],
        ["why", str(p.get("reason", "—"))],
        ["strategy", f"{s.get('name', '—')}, {s.get('replicas', 1)} replica(s): {s.get('reason', '')}"],
        ["median throughput", f"{fmt(median_of(run, 'examples_per_sec'), 0)} examples/s"],
    ]
    return sec.add(Table(["", ""], rows, align_right=False))


def checkpoints_section(run: RunData) -> Section:
    sec = Section("Checkpoints")
    ck = run.metrics.get("checkpoint") or {}
    if ck:
        sec.add(Text(f"Monitored: {ck.get('monitor')} ({ck.get('mode', 'auto')}); best value "
                     f"{fmt(ck.get('best_value'))}. Folder: {run.path / 'checkpoints'}."))
    if run.checkpoints:
        keys: list[str] = []
        for meta in run.checkpoints.values():
            keys += [k for k in (meta.get("logs") or {}) if k not in NON_METRICS and k not in keys]
        keys.sort(key=_order)
        rows = []
        for which, meta in run.checkpoints.items():
            logs = meta.get("logs") or {}
            where = f"{meta.get('epoch')}" + (f" (batch {meta['batch']})" if meta.get("batch") else "")
            rows.append([which, where, fmt(meta.get("step")), *[fmt(logs.get(k)) for k in keys]])
        sec.add(Table(["checkpoint", "epoch", "step", *keys], rows,
                      caption="Metrics logged at the epoch each checkpoint was written."))
    else:
        sec.add(Text("No checkpoint was found in checkpoints/best or checkpoints/last.", muted=True))
    top = ck.get("top_k") or []
    if len(top) > 1:
        sec.add(Table(["rank", "epoch", ck.get("monitor", "value")],
                      [[str(i), str(t.get("epoch")), fmt(t.get("value"))] for i, t in enumerate(top, 1)],
                      caption="The top-k checkpoints kept."))
    return sec


def config_section(run: RunData) -> Section:
    c = run.config
    d, mo, t, cb = (c.get(k) or {} for k in ("data", "model", "train", "callbacks"))
    opt, sch = t.get("optimizer") or {}, t.get("schedule") or {}
    on = [k for k, v in cb.items() if isinstance(v, dict) and v.get("enabled")]
    limit = f"; at most {d['max_examples']} examples" if d.get("max_examples") else ""
    warm = f", {sch['warmup_epochs']} warm-up epoch(s)" if sch.get("warmup_epochs") else ""
    rows = [
        ["data", f"{d.get('source')}: {d.get('name') or d.get('path')}; validation split {d.get('validation_split')}; "
                 f"batch {d.get('batch_size')}{limit}"],
        ["model", str(mo.get("type"))],
        ["optimizer", f"{opt.get('type')}, learning rate {opt.get('learning_rate')}"
                      + (f", weight decay {opt['weight_decay']}" if opt.get("weight_decay") else "")],
        ["schedule", f"{sch.get('type')}{warm}"],
        ["epochs", str(t.get("epochs"))],
        ["precision / XLA", f"{t.get('precision')} / {t.get('jit_compile')}"],
        ["callbacks on", ", ".join(on) or "none"],
        ["seed", str(c.get("seed"))],
    ]
    return Section("Configuration").add(
        Table(["", ""], rows, align_right=False),
        Code(run.config_text, "yaml", summary="The full resolved config (config.yaml)"))
