"""The report's figures, drawn with matplotlib's object API on the Agg canvas, returned as PNG bytes.

``matplotlib.figure.Figure`` is used directly (no ``pyplot``, no
``matplotlib.use``): ``savefig`` renders PNGs with Agg whatever the backend,
so a notebook's inline backend is left alone, no window opens, and a figure is
freed when its bytes are taken.
Sizes are for a laptop screen: a line chart is 5.8 x 3.2 inches, shown at
580 x 320 CSS pixels (two fit side by side at 1280 pixels) and rendered at 150 dpi so it stays sharp on HiDPI panels.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter, StrMethodFormatter

from kerasopt.config.metric_names import FRACTIONS, METRICS, base_name, higher_is_better, top_k

DPI = 150
LINE_SIZE = (5.8, 3.2)  # two side by side on a 1280-pixel-wide screen
_STYLE = {"font.size": 9.5, "axes.titlesize": 11, "axes.labelsize": 9.5, "legend.fontsize": 8.5}
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#7f7f7f", "#bcbd22"]


@dataclass
class Line:
    """One curve: ``x`` and ``y`` of equal length (NaN gaps are fine)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    style: dict = field(default_factory=dict)


def is_fraction(metric: str) -> bool:
    """Metrics in [0, 1] that read better as percentages. Example: ``is_fraction("val_accuracy") -> True``."""
    name = base_name(metric)
    return name in FRACTIONS or top_k(name) is not None or (name not in METRICS and higher_is_better(name))


def _new(size: tuple[float, float]) -> Figure:
    with matplotlib.rc_context(_STYLE):
        return Figure(figsize=size, dpi=DPI, layout="constrained")


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    return buf.getvalue()


def _style_axes(ax, *, xlabel: str, ylabel: str, title: str, percent: bool = False, integer_x: bool = True) -> None:
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.spines[["top", "right"]].set_visible(False)
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
    if percent:  # whole-percent ticks: 2% or 5% or 10% apart, never a rounded 97.5%
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def _slant(ax, names: Sequence[str]) -> None:
    """Class names longer than 3 characters at 45 degrees, anchored at their tick."""
    if max((len(str(s)) for s in names), default=0) > 3:
        for label in ax.get_xticklabels():
            label.set(rotation=45, ha="right", rotation_mode="anchor")


def curves(lines: Sequence[Line], *, title: str, ylabel: str, xlabel: str = "epoch", percent: bool = False,
           logy: bool = False, size: tuple[float, float] = LINE_SIZE, note: str = "") -> bytes:
    """Overlaid line charts. Few points get markers, so a 1-epoch run still shows its value.

    Example:
        >>> png = curves([Line("train", [1, 2, 3], [0.9, 0.5, 0.3])], title="Loss", ylabel="loss")
        >>> png[:4] == b"\\x89PNG"
        True
    """
    fig = _new(size)
    with matplotlib.rc_context(_STYLE):
        ax = fig.add_subplot()
        for i, ln in enumerate(lines):
            style = {"color": PALETTE[i % len(PALETTE)], "linewidth": 1.8}
            if len(ln.x) <= 30:
                style.update(marker="o", markersize=3.5)
            style.update(ln.style)
            ax.plot(list(ln.x), list(ln.y), label=ln.label, **style)
        finite = [v for ln in lines for v in ln.y if v is not None and math.isfinite(v)]
        if logy and finite and min(finite) > 0:
            ax.set_yscale("log")
        _style_axes(ax, xlabel=xlabel, ylabel=ylabel, title=title, percent=percent and not logy)
        if not logy and not percent:
            ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4), useMathText=True)
        if len(lines) > 1:
            ax.legend(frameon=False, loc="best")
        if note:
            ax.annotate(note, xy=(1, 1), xycoords="axes fraction", ha="right", va="bottom", fontsize=8,
                        color="#666666")
        return to_png(fig)


def throughput(epochs: Sequence[int], examples_per_sec: Sequence[float],
               second: Sequence[float] | None = None, second_label: str = "seconds",
               second_title: str = "Epoch time (train + validation)") -> bytes:
    """Examples per second (bars) and, when given, a second per-epoch timing (epoch seconds, step time)."""
    two = bool(second) and len(second) == len(epochs)
    fig = _new((2 * LINE_SIZE[0] - 0.4, LINE_SIZE[1]) if two else LINE_SIZE)
    with matplotlib.rc_context(_STYLE):
        axes = fig.subplots(1, 2) if two else [fig.add_subplot()]
        ax = axes[0]
        ax.bar(list(epochs), [v if math.isfinite(v) else 0 for v in examples_per_sec], color=PALETTE[0],
               width=0.7)
        _style_axes(ax, xlabel="epoch", ylabel="examples / s", title="Training throughput")
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        if two:
            ax2 = axes[1]
            ax2.bar(list(epochs), [v if math.isfinite(v) else 0 for v in second], color=PALETTE[3], width=0.7)
            _style_axes(ax2, xlabel="epoch", ylabel=second_label, title=second_title)
        return to_png(fig)


def confusion(matrix: Sequence[Sequence[int]], names: Sequence[str]) -> bytes:
    """Counts, coloured by the share of each true class (the row), so recall reads off the diagonal."""
    n = len(names)
    longest = max((len(str(s)) for s in names), default=1) if n <= 30 else 2
    side = min(9.0, max(3.6, 0.34 * n + 1.5)) + 0.07 * max(0, longest - 2)  # room for long class names
    fig = _new((side + 1.0, side))
    with matplotlib.rc_context(_STYLE):
        ax = fig.add_subplot()
        totals = [max(1, sum(row)) for row in matrix]
        shares = [[c / t for c in row] for row, t in zip(matrix, totals)]
        im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        cbar = fig.colorbar(im, ax=ax, shrink=0.8, format=PercentFormatter(1.0, decimals=0))
        cbar.set_label("share of the true class")
        if n <= 30:
            ticks = list(range(n))
            ax.set_xticks(ticks, [str(s) for s in names])
            _slant(ax, names)
            ax.set_yticks(ticks, [str(s) for s in names])
        if n <= 25:
            size = 9 if n <= 12 else 7
            for i in range(n):
                for j in range(n):
                    c = matrix[i][j]
                    if c:
                        ax.text(j, i, str(c), ha="center", va="center", fontsize=size,
                                color="white" if shares[i][j] > 0.55 else "#222222")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title("Confusion matrix (validation split, counts)", loc="left")
        return to_png(fig)


def per_class(names: Sequence[str], precision: Sequence[float], recall: Sequence[float]) -> bytes:
    """Grouped bars of precision and recall per class (in %)."""
    n = len(names)
    fig = _new((min(12.0, max(LINE_SIZE[0], 0.4 * n + 1.6)), LINE_SIZE[1]))
    with matplotlib.rc_context(_STYLE):
        ax = fig.add_subplot()
        xs = list(range(n))
        w = 0.38
        ax.bar([x - w / 2 for x in xs], [0 if math.isnan(v) else v for v in precision], w, label="precision",
               color=PALETTE[0])
        ax.bar([x + w / 2 for x in xs], [0 if math.isnan(v) else v for v in recall], w, label="recall",
               color=PALETTE[3])
        _style_axes(ax, xlabel="class", ylabel="score (%)", title="Precision and recall per class",
                    percent=True, integer_x=False)
        ax.set_xticks(xs, [str(s) for s in names])
        _slant(ax, names)
        lo = min([v for v in (*precision, *recall) if not math.isnan(v)] or [0])
        ax.set_ylim(max(0.0, math.floor(lo * 20) / 20 - 0.05) if lo > 0.5 else 0.0, 1.0)
        # above the axes, right of the title: never on top of a bar
        ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, borderaxespad=0.2)
        return to_png(fig)
