"""``tune.png``: the objective against the trial and against the most important keys.

Uses matplotlib's Agg backend (no display needed); the Notebooks issue reuses
:func:`plot_search` on a finished search::

    from kerasopt.tune import load_results, plot_search
    plot_search(load_results("runs/digits_tune/tune"), cfg.tune, "search.png")
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from kerasopt.config.tune_schema import TuneConfig
from kerasopt.tune.display import fmt_value, short_names
from kerasopt.tune.results import _finite, importance, running_best


def plot_search(records: Sequence[dict], tune: TuneConfig, path: str | Path, top: int = 3,
                ranking: Optional[list[tuple[str, float]]] = None) -> Path:
    """Write the PNG and return its path. Failed trials are drawn as red crosses at the bottom."""
    # No matplotlib.use("Agg"): that would switch pyplot's backend in the caller's process (a notebook's
    # inline figures stop showing). A bare Figure renders its PNG with Agg whatever the backend.
    from matplotlib.figure import Figure  # a Figure, not pyplot: no global state, no GUI
    from matplotlib.ticker import MaxNLocator

    ranking = ranking if ranking is not None else importance(records, tune)
    keys = [k for k, _ in ranking[:top]]
    score = dict(ranking)
    names = short_names(list(tune.space))
    fig = Figure(figsize=(4.2 * (1 + len(keys)), 3.6), layout="constrained")
    axes = fig.subplots(1, 1 + len(keys), squeeze=False)[0]
    metric, direction = tune.objective.metric, tune.objective.direction

    ok = [(r["number"], r["objective"]) for r in records if r["status"] == "COMPLETED" and _finite(r.get("objective"))]
    bad = [r["number"] for r in records if not (r["status"] == "COMPLETED" and _finite(r.get("objective")))]
    ax = axes[0]
    if ok:
        xs, ys = zip(*ok)
        ax.scatter(xs, ys, s=22, label="trial")
        best = running_best(ys, direction)
        ax.step(xs, best, where="post", color="tab:orange", label="best so far")
        floor = min(ys)
    else:
        floor = 0.0
    if bad:
        ax.scatter(bad, [floor] * len(bad), marker="x", color="tab:red", label="failed")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel=metric, title=f"{tune.algorithm} search ({direction})")
    ax.legend(fontsize=8)

    for ax, key in zip(axes[1:], keys):
        spec = tune.space[key]
        pts = [(r["values"][key], r["objective"]) for r in records
               if r["status"] == "COMPLETED" and _finite(r.get("objective")) and key in r.get("values", {})]
        if spec.type in ("float", "int"):
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=22)
            if spec.sampling == "log":
                ax.set_xscale("log")
        else:
            labels = [json.dumps(v, sort_keys=True) for v in spec.candidates()]
            if pts:
                ax.scatter([labels.index(json.dumps(p[0], sort_keys=True)) for p in pts], [p[1] for p in pts], s=22)
            ax.set_xticks(range(len(labels)), [fmt_value(v)[:14] for v in spec.candidates()], rotation=20,
                          fontsize=8)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set(xlabel=names[key], ylabel=metric, title=f"importance {score.get(key, 0):.2f}")
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
