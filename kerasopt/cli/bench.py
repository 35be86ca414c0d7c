"""``kerasopt bench CONFIG``: steady-state training throughput of a config and its variants.

Importing this module imports no TensorFlow; each variant is measured in its
own process (``kerasopt.bench.child``). ``kerasopt.cli`` registers the command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kerasopt.cli.common import guard

_MODES = {
    "train": "the config's input pipeline feeds the model (end to end)",
    "synthetic": "one real batch repeated from memory: the model alone",
    "pipeline": "the input pipeline alone, no model: examples/s it can feed",
}


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config key for every variant, e.g. --set data.batch_size=64 (repeatable).")
@click.option("--variant", "variants", multiple=True, metavar="KEY=V1,V2",
              help="Measure each value; several --variant options give every combination. KEY is a dotted "
                   "config key or precision, jit_compile, batch_size, steps_per_execution, cache, prefetch, "
                   "num_parallel_calls.")
@click.option("--mode", type=click.Choice(list(_MODES)), default="train", show_default=True,
              help="train: " + _MODES["train"] + "; synthetic: " + _MODES["synthetic"] + "; pipeline: "
                   + _MODES["pipeline"] + ".")
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True,
              help="Measured steps per variant.")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Steps left out before measuring (compilation, cache fill). Default: 10, plus one epoch "
                   "when data.cache is on (train and pipeline modes).")
@click.option("--out", "--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the results. Default: bench_<name>.json in the current folder.")
@click.option("--timeout", type=click.FloatRange(min=1), default=None, help="Seconds allowed per variant.")
@guard
def bench(config, overrides, variants, mode, steps, warmup, json_path, timeout):
    """Measure training throughput of CONFIG and of variants of it.

    Reports examples/s, the median step time and its spread (IQR, the middle half
    of the steps), peak host memory and, on a GPU, peak device memory. Compilation
    and warm-up steps are excluded. Each variant runs in its own process. Example:

    \b
      kerasopt bench configs/digits_cnn.yaml \\
          --variant precision=float32,mixed_bfloat16 --variant jit_compile=false,true
    """
    from rich.console import Console

    from kerasopt.bench import session
    from kerasopt.config import load_config

    cfg = load_config(config, overrides)  # a bad config or --set fails here, before anything runs
    rows = session.plan(config, overrides, variants)
    json_path = json_path or Path(f"bench_{cfg.name}.json")
    console = Console(highlight=False, markup=False)  # config paths and labels may hold "[...]"
    if not console.is_terminal:  # a log file or pipe: no need to squeeze the table into 80 columns
        console = Console(highlight=False, width=150, markup=False)
    console.print(f"bench {config} ({mode}: {_MODES[mode]}): {len(rows)} row(s), {steps} steps each, "
                  f"each in its own process")
    status = None

    def on_start(i, row):
        nonlocal status
        text = f"[{i + 1}/{len(rows)}] {row['label']}"
        if console.is_terminal:
            status = console.status(text + " ...")
            status.start()
        else:
            console.print(text + " ...")

    def on_done(i, result):
        if status is not None:
            status.stop()
        console.print(f"[{i + 1}/{len(rows)}] {result['label']}: {_one_line(result)}")

    results = session.run_rows(config, rows, mode=mode, steps=steps, warmup=warmup, timeout=timeout,
                               on_start=on_start, on_done=on_done)
    doc = session.document(config, overrides, variants, mode, steps, warmup, results)
    console.print(results_table(results, mode))
    console.print(doc["summary"]["line"])
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=2, default=float) + "\n")
    console.print(f"wrote {json_path}")
    code = session.exit_code(results)
    if code:
        sys.exit(code)


def _one_line(r: dict) -> str:
    if not r.get("ok"):
        return f"failed: {r.get('error')}"
    s = r["stats"]
    return (f"{s['examples_per_sec']:,.0f} examples/s, step {s['median_ms']:.1f} ms (IQR {s['iqr_ms']:.1f}), "
            f"{r.get('wall_s', 0):.0f} s")


def results_table(results: list[dict], mode: str):
    """A rich table: one row per variant."""
    from rich.table import Table

    gpu = any(r.get("device_peak_mb") is not None for r in results)
    table = Table(title="kerasopt bench", title_justify="left")
    table.add_column("variant")
    if mode != "pipeline":
        table.add_column("precision")
        table.add_column("XLA")
    table.add_column("examples/s", justify="right")
    table.add_column("step ms median" if mode != "pipeline" else "batch ms median", justify="right")
    table.add_column("IQR ms", justify="right")
    table.add_column("vs as given", justify="right")
    table.add_column("peak host MiB", justify="right")
    if gpu:
        table.add_column("peak GPU MiB", justify="right")
    for r in results:
        if not r.get("ok"):
            cells = [r["label"]] + (["", ""] if mode != "pipeline" else []) + [f"failed: {r.get('error')}"]
            table.add_row(*cells)
            continue
        s = r["stats"]
        cells = [r["label"]]
        if mode != "pipeline":
            cells += [r.get("precision", ""), "on" if r.get("jit_compile") else "off"]
        cells += [f"{s['examples_per_sec']:,.0f}", f"{s['median_ms']:.2f}", f"{s['iqr_ms']:.2f}",
                  f"{r['vs_as_given']:.2f}x" if "vs_as_given" in r else "", f"{r['peak_rss_mb']:,.0f}"]
        if gpu:
            cells.append(f"{r['device_peak_mb']:,.0f}" if r.get("device_peak_mb") is not None else "")
        table.add_row(*cells)
    return table
