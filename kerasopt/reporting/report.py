"""``kerasopt report RUN_DIR``: one run as ``report.html`` (self-contained) and ``report.md`` (+ ``report/*.png``).

Everything is built in memory first and written last, each file through a
temporary name, so a failure (bad folder, no history yet) leaves nothing broken.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional

import kerasopt.reporting.plots as plots  # by its own name: importing kerasopt.reporting would be a cycle
from kerasopt.errors import ConfigError
from kerasopt.io.atomic import staged_folder, write_text
from kerasopt.reporting.document import Document, Figure, Section, Table, Text, fmt
from kerasopt.reporting.rundata import RunData, load_run
from kerasopt.reporting.sections import checkpoints_section, config_section, device_section, median_of, overview_section

FIGURES_DIR = "report"


def write_report(run_dir: str | os.PathLike, *, model: Any = None, bundle: Any = None,
                 evaluate: bool = True) -> dict[str, Path]:
    """Write ``report.html``, ``report.md`` and ``report/*.png`` into ``run_dir``; return their paths.

    ``model``/``bundle`` (the trained Keras model and the ``DataBundle``) let
    ``fit`` skip reloading them for the confusion matrix; without them the
    exported ``model/*.keras`` runs on a rebuilt validation split.
    ``evaluate=False`` leaves the per-class section out (no TensorFlow import).

    Example:
        >>> paths = write_report("runs/digits_cnn")  # doctest: +SKIP
        >>> sorted(paths)  # doctest: +SKIP
        ['figures', 'html', 'markdown']
    """
    run = load_run(run_dir)  # ConfigError for a non-run or a run with no epoch yet, before any write
    doc = build_report(run, model=model, bundle=bundle, evaluate=evaluate)
    from kerasopt.reporting.html import render_html
    from kerasopt.reporting.markdown import render_markdown

    html = render_html(doc)
    markdown = render_markdown(doc, FIGURES_DIR)
    figures = _write_figures(run.path / FIGURES_DIR, doc.figures)
    write_text(run.path / "report.md", markdown)
    write_text(run.path / "report.html", html)
    return {"html": run.path / "report.html", "markdown": run.path / "report.md", "figures": figures}


def build_report(run: RunData, *, model: Any = None, bundle: Any = None, evaluate: bool = True) -> Document:
    """The report of ``run`` as a :class:`Document` (no files written)."""
    doc = Document(title=f"Training report: {run.name}", subtitle=str(run.path))
    doc.sections.append(overview_section(run))
    doc.sections.append(device_section(run))
    doc.sections.append(_curves_section(run))
    for section in (_lr_section(run), _ema_section(run), _throughput_section(run)):
        if section is not None:
            doc.sections.append(section)
    if run.task == "classification" or (not run.task and "accuracy" in run.history):
        doc.sections.append(_classes_section(run, model, bundle, evaluate))
    doc.sections.append(checkpoints_section(run))
    doc.sections.append(config_section(run))
    return doc


def _loss_label(run: RunData) -> str:
    loss = ((run.config.get("train") or {}).get("loss")) or "auto"
    if loss == "auto":
        loss = "cross-entropy" if run.task == "classification" else "mse" if run.task == "regression" else ""
    return f"loss ({loss.replace('_', ' ')})" if loss else "loss"


def _pair(run: RunData, key: str) -> list[plots.Line]:
    lines = []
    for k, label, style in ((key, "train", {}), (f"val_{key}", "validation", {})):
        ys = run.series(k)
        if ys is not None:
            lines.append(plots.Line(label, run.epochs, ys, style))
    return lines


def _curves_section(run: RunData) -> Section:
    sec = Section("Training curves")
    ema = " (validation uses the EMA weights)" if run.raw_names else ""
    sec.add(Text(f"Per-epoch values from history.csv; training values are averaged over the epoch's batches, "
                 f"validation values are measured at its end{ema}."))
    lines = _pair(run, "loss")
    if lines:
        sec.add(Figure("loss", plots.curves(lines, title="Loss", ylabel=_loss_label(run)),
                       "training and validation loss per epoch"))
    for m in run.metric_names:
        lines = _pair(run, m)
        if lines:
            pct = plots.is_fraction(m)
            sec.add(Figure(m, plots.curves(lines, title=m.replace("_", " ").capitalize(),
                                           ylabel=f"{m} (%)" if pct else m, percent=pct),
                           f"training and validation {m} per epoch"))
    return sec


def _lr_section(run: RunData) -> Optional[Section]:
    lr = run.series("lr")
    if lr is None:
        return None
    sched = ((run.config.get("train") or {}).get("schedule") or {})
    what = sched.get("type", "")
    warm = sched.get("warmup_epochs") or 0
    desc = f"{what} schedule" + (f" with {warm:g} warm-up epoch(s)" if warm else "") if what else ""
    png = plots.curves([plots.Line("learning rate", run.epochs, lr)], title="Learning rate",
                       ylabel="learning rate (per step)")
    return Section("Learning rate").add(
        Text(f"The optimizer's learning rate at the end of each epoch{': ' + desc if desc else ''}."),
        Figure("lr", png, "learning rate per epoch"))


def _ema_section(run: RunData) -> Optional[Section]:
    if not run.raw_names:
        return None
    sec = Section("EMA vs raw weights")
    sec.add(Text("Validation metrics of the exponential moving average of the weights (EMA) against those of "
                 "the raw weights the optimizer updates (val_raw_*). Until the EMA starts averaging the two "
                 "coincide."))
    rows = []
    for m in run.raw_names:
        ema, raw = run.series(f"val_{m}"), run.series(f"val_raw_{m}")
        if ema is None or raw is None:
            continue
        pct = plots.is_fraction(m)
        # the EMA line is wider and the raw one dashed on top: both stay visible where they coincide
        lines = [plots.Line("EMA weights", run.epochs, ema, {"linewidth": 3.0}),
                 plots.Line("raw weights", run.epochs, raw, {"linestyle": "--", "linewidth": 1.5})]
        sec.add(Figure(f"ema_{m}", plots.curves(lines, title=f"Validation {m.replace('_', ' ')}: EMA vs raw",
                                                  ylabel=f"{m} (%)" if pct else m, percent=pct),
                       f"validation {m} of the EMA and raw weights"))
        rows.append([m, fmt(ema[-1]), fmt(raw[-1]), fmt(ema[-1] - raw[-1])])
    if rows:
        sec.add(Table(["metric (last epoch)", "EMA", "raw", "EMA - raw"], rows))
    return sec


def _throughput_section(run: RunData) -> Optional[Section]:
    eps = run.series("examples_per_sec")
    if eps is None:
        return None
    secs = ((run.metrics.get("throughput") or {}).get("epoch_seconds")) or []
    step = run.series("step_time_ms")
    if len(secs) == len(eps):
        png = plots.throughput(run.epochs, eps, secs)
    elif step is not None:  # a resumed run: metrics.json has the epoch times of the last segment only
        png = plots.throughput(run.epochs, eps, step, "milliseconds", "Time per training step")
    else:
        png = plots.throughput(run.epochs, eps)
    resumed = " (and of a resumed segment)" if run.metrics.get("resumed_from_epoch") else ""
    median = fmt(median_of(run, "examples_per_sec"), 0)
    sec = Section("Throughput").add(
        Text(f"Training examples per second in each epoch (median {median}); the first epoch of a run"
             f"{resumed} includes tracing and, with XLA, compilation."),
        Figure("throughput", png, "training throughput per epoch"))
    if step is not None:
        sec.add(Text(f"Median step time: {fmt(median_of(run, 'step_time_ms'), 1)} ms.", muted=True))
    return sec


def _classes_section(run: RunData, model: Any, bundle: Any, evaluate: bool) -> Section:
    sec = Section("Per-class results")
    if not evaluate:
        return sec.add(Text("Not computed (evaluation was switched off for this report).", muted=True))
    from kerasopt.reporting.classeval import evaluate_classes

    try:
        rep = evaluate_classes(run.path, model=model, bundle=bundle,
                               num_classes=(run.metrics.get("data") or {}).get("num_classes"))
    except ConfigError as e:
        return sec.add(Text(f"Not available: {e}", muted=True))
    except Exception as e:  # noqa: BLE001 - the rest of the report is still worth writing
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return sec.add(Text(f"Not available: {type(e).__name__}: {first}", muted=True))
    weights = " (EMA weights)" if (run.metrics.get("ema") or {}).get("exported_weights") == "ema" else ""
    sec.add(Text(f"{rep.source}{weights} on the {int(rep.matrix.sum()):,} validation examples: "
                 f"accuracy {rep.accuracy:.2%}. Rows are the true class; each row's colour is its share, "
                 "so the diagonal reads as recall."))
    sec.add(Figure("confusion", plots.confusion(rep.matrix.tolist(), rep.names), "confusion matrix"))
    if len(rep.names) <= 40:
        sec.add(Figure("per_class", plots.per_class(rep.names, rep.precision.tolist(), rep.recall.tolist()),
                       "precision and recall per class"))
    order = list(range(len(rep.names)))
    note = ""
    if len(order) > 50:  # the 50 weakest classes: the ones worth reading about
        order = sorted(order, key=lambda i: (rep.f1[i] if not math.isnan(rep.f1[i]) else -1))[:50]
        note = f"the 50 classes with the lowest F1 of {len(rep.names)}"
    rows = [[rep.names[i], fmt(float(rep.precision[i])), fmt(float(rep.recall[i])), fmt(float(rep.f1[i])),
             fmt(int(rep.support[i]))] for i in order]
    sec.add(Table(["class", "precision", "recall", "F1", "support"], rows,
                  caption=note or "— : the class was never predicted (precision) or is absent (recall)"))
    return sec


def _write_figures(folder: Path, figures: list[Figure]) -> Path:
    """Replace ``folder`` with the new PNGs: written beside it, then swapped in."""
    with staged_folder(folder) as tmp:
        for f in figures:
            (tmp / f"{f.name}.png").write_bytes(f.png)
    return folder

