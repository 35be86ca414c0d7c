"""``kerasopt compare RUN_DIR...``: one table and overlaid curves for several runs -> ``compare.html``.

Reads only the run directories' files (no TensorFlow). Time to accuracy is
what counts (ARCHITECTURE.md §1), so the table has the seconds of training to
each run's best epoch and a chart plots validation metrics against time.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import kerasopt.reporting.plots as plots  # by its own name: importing kerasopt.reporting would be a cycle
from kerasopt.errors import ConfigError
from kerasopt.reporting.document import Document, Figure, Section, Table, Text, fmt
from kerasopt.reporting.rundata import RunData, load_run
from kerasopt.reporting.sections import best_of


def _labels(runs: Sequence[RunData]) -> list[str]:
    names = [r.name for r in runs]
    return [r.name if names.count(r.name) == 1 else str(r.path) for r in runs]


def _metrics(runs: Sequence[RunData]) -> list[str]:
    """Metrics besides the loss, in first-seen order over the runs (accuracy, mae, ...)."""
    return list(dict.fromkeys(itertools.chain.from_iterable(r.metric_names for r in runs)))


def elapsed(run: RunData) -> Optional[list[float]]:
    """Cumulative seconds at the end of each epoch (from ``metrics.json``), or None when unknown.

    Example: epoch seconds ``[30.9, 3.7, 3.6]`` -> ``[30.9, 34.6, 38.2]``.
    """
    secs = (run.metrics.get("throughput") or {}).get("epoch_seconds") or []
    if len(secs) != len(run.epochs):  # e.g. a resumed run: metrics.json has only the last segment
        return None
    return list(itertools.accumulate(float(s) for s in secs))


def compare_table(runs: Sequence[RunData]) -> Table:
    """One row per run: epochs, best validation loss and metrics (with epoch), time to best, speed."""
    metrics = _metrics(runs)
    header = ["run", "epochs", "best val_loss"]
    for m in metrics:
        header += [f"best val_{m}", f"s to best val_{m}"]
    header += ["wall s", "examples/s", "precision", "params"]
    rows = []
    for label, r in zip(_labels(runs), runs):
        row = [label, str(r.epochs[-1]), _best_cell(r, "val_loss")]
        t = elapsed(r)
        for m in metrics:
            b = best_of(r, f"val_{m}")
            row += [_best_cell(r, f"val_{m}"), fmt(t[r.epochs.index(b[1])], 1) if b and t else "—"]
        p = r.metrics.get("precision") or {}
        row += [fmt(r.metrics.get("wall_time_s"), 1),
                fmt((r.metrics.get("throughput") or {}).get("examples_per_sec_median"), 0),
                (p.get("policy", "") + (" + XLA" if p.get("jit_compile") else "")) or "—",
                fmt(r.metrics.get("parameters"))]
        rows.append(row)
    return Table(header, rows, caption="best: value @ epoch (1-based; the maximum for scores such as accuracy or auc, "
                                       "else the minimum); s to best: seconds of training and validation up to "
                                       "that epoch; examples/s: median over epochs.")


def _best_cell(run: RunData, key: str) -> str:
    b = best_of(run, key)
    return f"{fmt(b[0])} @{b[1]}" if b else "—"


def _overlay(runs: Sequence[RunData], labels: list[str], key: str, *, title: str, ylabel: str,
             time_axis: bool = False, logy: bool = False) -> Optional[Figure]:
    lines = []
    for i, (label, r) in enumerate(zip(labels, runs)):
        ys = r.series(key)
        xs = elapsed(r) if time_axis else r.epochs
        if ys is None or xs is None:
            continue
        lines.append(plots.Line(label, xs, ys, {"color": plots.PALETTE[i % len(plots.PALETTE)]}))
    if not lines:
        return None
    pct = plots.is_fraction(key)
    name = f"{key}_vs_time" if time_axis else key
    png = plots.curves(lines, title=title, ylabel=f"{ylabel} (%)" if pct else ylabel, percent=pct, logy=logy,
                       xlabel="training time (s)" if time_axis else "epoch")
    return Figure(name, png, f"{title} for each run")


def build_compare(runs: Sequence[RunData]) -> Document:
    labels = _labels(runs)
    metrics = _metrics(runs)
    doc = Document(title=f"Comparison of {len(runs)} run{'s' if len(runs) != 1 else ''}",
                   subtitle=", ".join(str(r.path) for r in runs))
    doc.sections.append(Section("Runs").add(compare_table(runs)))
    val = Section("Validation curves")
    val.add(_overlay(runs, labels, "val_loss", title="Validation loss", ylabel="loss"))
    for m in metrics:
        val.add(_overlay(runs, labels, f"val_{m}", title=f"Validation {m}", ylabel=m))
        val.add(_overlay(runs, labels, f"val_{m}", title=f"Validation {m} against training time", ylabel=m,
                         time_axis=True))
    doc.sections.append(val)
    train = Section("Training curves")
    train.add(_overlay(runs, labels, "loss", title="Training loss", ylabel="loss"))
    for m in metrics:
        train.add(_overlay(runs, labels, m, title=f"Training {m}", ylabel=m))
    doc.sections.append(train)
    other = Section("Learning rate and throughput")
    other.add(_overlay(runs, labels, "lr", title="Learning rate", ylabel="learning rate (per step)"))
    other.add(_overlay(runs, labels, "examples_per_sec", title="Training throughput", ylabel="examples / s"))
    doc.sections.append(other)
    for s in doc.sections:
        if not s.blocks:
            s.add(Text("No run logged these values.", muted=True))
    return doc


def compare_runs(run_dirs: Sequence[str | os.PathLike], output: str | os.PathLike = "compare.html") -> dict[str, Any]:
    """Load every run (all must be valid before anything is written), write ``output``.

    Returns ``{"html": Path, "table": Table, "runs": [RunData, ...]}``.

    Example:
        >>> compare_runs(["runs/a", "runs/b"], "compare.html")["html"]  # doctest: +SKIP
        PosixPath('compare.html')
    """
    if not run_dirs:
        raise ConfigError("compare needs at least one run directory")
    runs = [load_run(d) for d in run_dirs]
    out = Path(output)
    if out.is_dir():
        raise ConfigError(f"--output {out} is a folder; give a file name such as {out / 'compare.html'}")
    if not out.parent.is_dir():
        raise ConfigError(f"--output: the folder {out.parent} does not exist")
    doc = build_compare(runs)
    from kerasopt.io.atomic import write_text
    from kerasopt.reporting.html import render_html

    write_text(out, render_html(doc))
    return {"html": out, "table": doc.sections[0].blocks[0], "runs": runs}


def rich_table(table: Table, title: str = "", width: Optional[int] = None) -> Any:
    """The same table for the terminal (``rich``); turned on its side (one column per run) when it would
    not fit in ``width`` characters, so no number is ever broken across lines."""
    from rich.table import Table as RichTable

    need = sum(max(len(str(c)) for c in (h, *col)) + 3 for h, *col in zip(table.header, *table.rows))
    header, rows = table.header, table.rows
    if width is not None and need > width and len(rows) < len(header):
        header = [table.header[0], *[str(r[0]) for r in rows]]
        rows = [[h, *[str(r[i]) for r in table.rows]] for i, h in enumerate(table.header) if i]
    rt = RichTable(title=title or None, title_justify="left", caption=table.caption or None,
                   caption_justify="left")
    for i, h in enumerate(header):
        rt.add_column(h, justify="right" if i and table.align_right else "left", overflow="fold")
    for row in rows:
        rt.add_row(*[str(c) for c in row])
    return rt


__all__ = ["build_compare", "compare_runs", "compare_table", "elapsed", "rich_table"]
